"""Data-parallel training (skmetric.deep.distributed): 2 processes with the gloo backend on
127.0.0.1 against 1 process on the concatenated (global) batches.

Each 2-process run is spawned as two subprocesses of tests/_distributed_worker.py, always
under a timeout, so a bug that deadlocks a collective fails the test instead of hanging
the suite.
"""

import time
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("skorch")

import _distributed_worker as worker  # noqa: E402
from _spawn_ranks import check_ok, spawn  # noqa: E402

from skmetric.deep import (  # noqa: E402
    DistributedMetricEmbedder,
    MetricEmbedder,
)
from skmetric.deep.distributed import ShardedBatchSampler, all_gather_with_grad  # noqa: E402

WORKER = Path(worker.__file__)


def _spawn(mode, out, *, timeout=240, group_timeout=30):
    """Run the 2 ranks of ``mode``; return their (returncode, stderr)."""
    return spawn(WORKER, mode, out, timeout=timeout, group_timeout=group_timeout)


@pytest.fixture(scope="module")
def grads_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("grads")
    check_ok(_spawn("grads", out))
    return [torch.load(out / f"grads_rank{r}.pt", weights_only=False) for r in range(2)]


@pytest.fixture(scope="module")
def train_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("train")
    check_ok(_spawn("train", out))
    return out, [torch.load(out / f"train_rank{r}.pt", weights_only=False) for r in range(2)]


@pytest.mark.parametrize("loss, miner", worker.combos())
def test_two_process_gradients_equal_one_process_on_the_concatenated_batch(
        grads_run, loss, miner):
    E, y = worker.batch()
    want, value = worker.gradient_of(MetricEmbedder, loss, miner, E, y)
    got = torch.cat([grads_run[r][(loss, miner, False)][0] for r in range(2)])
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
    # the loss each rank reports is the global one
    for r in range(2):
        assert grads_run[r][(loss, miner, False)][1] == pytest.approx(value, abs=1e-6)


def test_efficient_mode_anchors_each_rank_on_the_gathered_batch(grads_run):
    """efficient=True: rank r's loss is the loss of its own rows (anchors) against the whole
    batch (references, own copies excluded); its gradient w.r.t. its rows treats the
    other ranks' rows as constants."""
    E, y = worker.batch()
    for loss, miner in worker.EFFICIENT:
        net = MetricEmbedder(module=torch.nn.Linear(8, 8), loss=loss, miner=miner,
                             embedding_dim=8, verbose=0, random_state=0).initialize()
        for r in range(2):
            rows = slice(8 * r, 8 * r + 8)
            Er = E[rows].clone().requires_grad_(True)
            ref = torch.cat([E[:8 * r], Er, E[8 * r + 8:]]) if r else torch.cat([Er, E[8:]])
            tuples = net.miner_(Er.detach(), y[rows], ref.detach(), y) if miner else None
            if tuples is None:
                from skmetric.deep._tuples import all_pairs
                tuples = all_pairs(y[rows], y)
            from skmetric.deep.distributed import _drop_self
            tuples = _drop_self(tuples, 8 * r)
            value = net.loss_(Er, y[rows], indices_tuple=tuples, ref_emb=ref, ref_labels=y)
            value.backward()
            got_grad, got_value = grads_run[r][(loss, miner, True)]
            torch.testing.assert_close(got_grad, Er.grad, rtol=0, atol=1e-6)
            assert got_value == pytest.approx(float(value.detach()), abs=1e-6)


@pytest.mark.parametrize("loss", ["multi_similarity", "proxy_anchor"])
def test_twenty_steps_on_two_processes_equal_one_process_on_the_global_batches(
        train_run, loss):
    out, runs = train_run
    X, y = worker.problem()
    ref = MetricEmbedder(**worker.train_params(loss)).fit(X, y)
    r0, r1 = runs[0][loss], runs[1][loss]
    # 20 steps; each rank's history holds the batch records of both ranks
    assert r0["steps"] == r1["steps"] == 2 * 20
    for name, want in ref.module_.state_dict().items():
        torch.testing.assert_close(r0["module"][name], want, rtol=0, atol=1e-5)
        torch.testing.assert_close(r1["module"][name], r0["module"][name], rtol=0, atol=0)
    # A proxy loss's class weights move in sync on both ranks, and as in one process.
    assert set(r0["loss"]) == set(ref.loss_.state_dict())
    for name, want in ref.loss_.state_dict().items():
        torch.testing.assert_close(r0["loss"][name], want, rtol=0, atol=1e-5)
        torch.testing.assert_close(r1["loss"][name], r0["loss"][name], rtol=0, atol=0)
    if loss == "proxy_anchor":
        assert len(r0["loss"]) > 0
    # transform gives the same embeddings on every rank; the history agrees everywhere
    np.testing.assert_array_equal(r0["embedding"], r1["embedding"])
    np.testing.assert_allclose(r0["embedding"], ref.transform(X), atol=1e-4)
    assert r0["train_loss"] == r1["train_loss"]
    np.testing.assert_allclose(r0["train_loss"], ref.history[:, "train_loss"], rtol=1e-4)
    # only rank 0 wrote checkpoints
    assert any((out / f"ckpt_{loss}_rank0").iterdir())
    rank1 = out / f"ckpt_{loss}_rank1"  # skorch's Checkpoint makes its folder on each rank
    assert not rank1.exists() or not any(rank1.iterdir())


def test_a_failure_on_one_rank_ends_the_other_with_a_clear_error(tmp_path):
    start = time.monotonic()
    (code0, err0), (code1, err1) = _spawn("fail", tmp_path, timeout=180, group_timeout=10)
    assert code1 != 0 and "planted failure on rank 1" in err1
    assert code0 != 0, err0[-2000:]
    assert "rank 0 of 2" in err0 and "another rank failed" in err0, err0[-3000:]
    assert time.monotonic() - start < 170


def test_single_process_is_the_plain_embedder():
    X, y = worker.problem()
    params = worker.train_params("multi_similarity")
    a = DistributedMetricEmbedder(**params).fit(X, y)
    b = MetricEmbedder(**params).fit(X, y)
    np.testing.assert_array_equal(a.transform(X), b.transform(X))
    assert a.get_params()["efficient"] is False
    x = torch.ones(2, 3, requires_grad=True)
    assert all_gather_with_grad(x) is x


def test_sharded_batches_hold_the_global_batch_and_fail_clearly_when_uneven():
    from skmetric.deep import ClassBalancedBatchSampler

    labels = np.repeat(np.arange(6), 5)
    batches = list(ClassBalancedBatchSampler(labels, 2, 8, n_batches=4, random_state=0))
    shards = [list(ShardedBatchSampler(ClassBalancedBatchSampler(
        labels, 2, 8, n_batches=4, random_state=0), r, 2)) for r in range(2)]
    assert len(shards[0]) == len(shards[1]) == 4
    for batch, a, b in zip(batches, *shards, strict=True):
        assert a + b == batch  # C classes x m samples, split between the ranks
    with pytest.raises(ValueError, match="multiple of the world size"):
        list(ShardedBatchSampler([[0, 1, 2]], 0, 2))
