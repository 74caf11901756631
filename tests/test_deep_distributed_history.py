"""History, early stopping and checkpoints of data-parallel training (2 gloo processes).

The distributed embedders record into skorch's ``DistributedHistory``: every rank's batch
records, in every rank's history. Epoch scores computed from them (train/valid loss) are
then equal on every rank, EarlyStopping stops every rank at the same epoch (and a callback
that stops one rank alone stops them all), and only rank 0 writes checkpoints.
"""

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("skorch")

import _distributed_history_worker as worker  # noqa: E402
from _spawn_ranks import check_ok, spawn  # noqa: E402
from skorch.callbacks import Checkpoint  # noqa: E402
from skorch.history import History  # noqa: E402

from skmetric.deep import DistributedMetricEmbedder  # noqa: E402


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("history")
    check_ok(spawn(Path(worker.__file__), "history", out, timeout=240))
    return out, [torch.load(out / f"history_rank{r}.pt", weights_only=False)
                 for r in range(2)]


def test_every_rank_holds_the_batch_records_of_all_ranks(run):
    _, (r0, r1) = run
    history = r0["efficient"]["history"]
    assert history == r1["efficient"]["history"]  # everything but the durations
    assert len(history) == 2
    for epoch in history:
        batches = epoch["batches"]
        # 5 steps, each recorded by both ranks (rank order within a step)
        assert len(batches) == 10 and epoch["train_batch_count"] == 5
        assert all(b["train_batch_size"] == 16 for b in batches)
        # the epoch's loss (what EarlyStopping and Checkpoint see) averages all ranks
        assert epoch["train_loss"] == pytest.approx(
            np.mean([b["train_loss"] for b in batches]), rel=1e-12)
    # efficient=True: each rank's loss is its own rows' loss, so they differ
    batches = history[0]["batches"]
    assert all(batches[2 * k]["train_loss"] != batches[2 * k + 1]["train_loss"]
               for k in range(5))
    np.testing.assert_array_equal(r0["efficient"]["embedding"], r1["efficient"]["embedding"])


def test_a_second_fit_records_afresh(run):
    """The refit (rank 1 recording each step late, other losses) must not read the first
    fit's records, which sit under the same (epoch, batch, rank) keys."""
    _, (r0, r1) = run
    assert r0["refit"] == r1["refit"]
    assert len(r0["refit"]) == 1 and len(r0["refit"][0]["batches"]) == 10
    # The losses differ from the first fit's after the first step (new lr), so records
    # read from the first fit would show: rank 0 would hold old values for rank 1's.
    first = [b["train_loss"] for b in r0["efficient"]["history"][0]["batches"]]
    again = [b["train_loss"] for b in r0["refit"][0]["batches"]]
    assert all(a != b for a, b in zip(first[2:], again[2:], strict=True))


def test_early_stopping_of_one_rank_stops_all_at_the_same_epoch(run):
    """The monitored score worsens on rank 1 only (patience 2: it stops after epoch 3)
    and improves on rank 0; without agreement rank 0 would wait for rank 1 forever."""
    _, (r0, r1) = run
    assert r0["early"]["epochs"] == r1["early"]["epochs"] == 3
    assert [e["rank_score"] for e in r1["early"]["history"]] == [1.0, 2.0, 3.0]
    for a, b in zip(r0["early"]["history"], r1["early"]["history"], strict=True):
        assert a["batches"] == b["batches"] and a["train_loss"] == b["train_loss"]


def test_only_rank_0_writes_checkpoints_and_they_load_back(run):
    out, (r0, r1) = run
    files = {"params.pt", "optimizer.pt", "criterion.pt", "history.json"}
    assert {f.name for f in (out / "ckpt_rank0").iterdir()} == files
    rank1 = out / "ckpt_rank1"  # skorch's Checkpoint makes its folder on each rank
    assert not rank1.exists() or not any(rank1.iterdir())
    # Every rank ended with the checkpoint of the last epoch (load_best) and the same
    # embeddings; one process loads the files back to the same model.
    X, y = worker.problem()
    np.testing.assert_array_equal(r0["checkpoint"]["embedding"], r1["checkpoint"]["embedding"])
    params = worker.train_params("proxy_anchor")
    for folder in ("ckpt_rank0", "best"):
        net = DistributedMetricEmbedder(**params).initialize()
        net.load_params(checkpoint=Checkpoint(**worker.checkpoint_params(out / folder)))
        np.testing.assert_allclose(net.transform(X), r0["checkpoint"]["embedding"],
                                   rtol=0, atol=1e-6)
        for name, value in r0["checkpoint"]["loss"].items():
            torch.testing.assert_close(net.loss_.state_dict()[name], value, rtol=0, atol=0)
    saved = History.from_file(str(out / "ckpt_rank0" / "history.json"))
    assert len(saved) == 4
    for row, want in zip(saved, r1["checkpoint"]["history"], strict=True):
        assert row["batches"] == want["batches"] and row["train_loss"] == want["train_loss"]


def test_one_process_keeps_skorch_plain_history():
    X, y = worker.problem()
    net = DistributedMetricEmbedder(**{**worker.efficient_params(), "max_epochs": 1}).fit(X, y)
    assert type(net.history) is History
    assert len(net.history[-1, "batches"]) == 5
