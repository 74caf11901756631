"""Synchronised batch normalisation on CPU (skmetric.deep._sync_batchnorm): the gradient
against finite differences, 2 gloo processes against torch's BatchNorm on the
concatenated batch, and 20 training steps of networks with BatchNorm on 2 processes
against 1 process.
"""

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("skorch")

import _sync_bn_worker as worker  # noqa: E402
from _distributed_worker import problem, train_params  # noqa: E402
from _spawn_ranks import check_ok, spawn  # noqa: E402
from torch import nn  # noqa: E402

from skmetric.deep import MetricEmbedder, ProbabilisticEmbedder  # noqa: E402
from skmetric.deep._sync_batchnorm import (  # noqa: E402
    SyncBatchNorm,
    convert_sync_batchnorm,
    sync_batch_norm,
)


@pytest.mark.parametrize("shape", [(6, 3), (5, 2, 4), (4, 2, 3, 2)])
@pytest.mark.parametrize("affine", [True, False])
def test_gradient_matches_finite_differences(shape, affine):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=g, dtype=torch.float64, requires_grad=True)
    w = (torch.rand(shape[1], generator=g, dtype=torch.float64) + 0.5).requires_grad_(affine)
    b = torch.randn(shape[1], generator=g, dtype=torch.float64).requires_grad_(affine)
    inputs = (x, w, b) if affine else (x, None, None)
    assert torch.autograd.gradcheck(lambda *a: sync_batch_norm(*a, 1e-5)[0], inputs)
    y, mean, unbiased = sync_batch_norm(*inputs, 1e-5)
    dims = [d for d in range(x.ndim) if d != 1]
    torch.testing.assert_close(mean, x.mean(dims))
    torch.testing.assert_close(unbiased, x.var(dims, unbiased=True))


@pytest.mark.parametrize("kwargs", [{}, {"momentum": None}, {"affine": False},
                                    {"track_running_stats": False}])
def test_one_process_is_plain_batchnorm(kwargs):
    torch.manual_seed(0)
    ref, bn = nn.BatchNorm1d(3, **kwargs), SyncBatchNorm(3, **kwargs)
    bn.load_state_dict(ref.state_dict())
    for step in range(3):
        x = torch.randn(8, 3) * (step + 1)
        torch.testing.assert_close(bn(x), ref(x))
    torch.testing.assert_close(bn.state_dict(), ref.state_dict())
    bn.eval(), ref.eval()
    torch.testing.assert_close(bn(x), ref(x))


def test_conversion_keeps_the_parameters_buffers_and_mode():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2),
                        nn.Sequential(nn.Flatten(), nn.BatchNorm1d(8)))
    net[2].eval()
    params, state = list(net.parameters()), net.state_dict()
    out = convert_sync_batchnorm(net)
    assert out is net and isinstance(net[1], SyncBatchNorm) and isinstance(net[2][1],
                                                                          SyncBatchNorm)
    assert all(a is b for a, b in zip(params, net.parameters(), strict=True))
    assert net.state_dict().keys() == state.keys()
    assert net[1].training and not net[2][1].training
    assert isinstance(convert_sync_batchnorm(nn.BatchNorm1d(3)), SyncBatchNorm)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("sync_bn")
    check_ok(spawn(Path(worker.__file__), "bn", out, timeout=240))
    return [torch.load(out / f"bn_rank{r}.pt", weights_only=False) for r in range(2)]


@pytest.mark.parametrize("name, shape, kwargs", worker.LAYERS)
def test_two_ranks_equal_batchnorm_on_the_concatenated_batch(run, name, shape, kwargs):
    """Ranks of 5 and 11 rows, two steps: outputs, input gradients, weight gradients
    (summed over the ranks, as the embedders do) and running statistics equal torch's
    BatchNorm on the 16 rows."""
    x, grad, w, b = worker.layer_batch(shape)
    want = worker.run_layer(worker.reference_layer(shape, kwargs), x, grad, w, b)
    r0, r1 = run[0][name], run[1][name]
    for key in ("y", "dx"):
        torch.testing.assert_close(torch.cat([r0[key], r1[key]]), want[key], rtol=0,
                                   atol=1e-10)
    for key in ("dw", "db"):
        if want[key] is not None:
            torch.testing.assert_close(r0[key] + r1[key], want[key], rtol=0, atol=1e-10)
    for key in ("running_mean", "running_var"):
        for r in (r0, r1):
            torch.testing.assert_close(r[key], want[key], rtol=0, atol=1e-12)


def _assert_equal_to_one_process(got, want, atol):
    assert got.keys() == want.keys()
    for key, value in want.items():
        torch.testing.assert_close(got[key], value, rtol=0, atol=atol, msg=key)


def test_probabilistic_embedder_on_two_processes_equals_one_process(run):
    """PFE's uncertainty head has two BatchNorm layers: synchronised, the 20 steps on 2
    processes equal 1 process on the global batches (weights and running statistics)."""
    X, y = problem()
    ref = ProbabilisticEmbedder(**worker.pfe_params()).fit(X, y)
    assert run[0]["pfe"]["n_sync"] == 2
    for r in run:
        _assert_equal_to_one_process(r["pfe"]["module"], ref.module_.state_dict(), 1e-5)
    np.testing.assert_allclose(run[0]["pfe"]["variance"], ref.transform_uncertainty(X),
                               rtol=1e-4)
    np.testing.assert_array_equal(run[0]["pfe"]["variance"], run[1]["pfe"]["variance"])


def test_metric_embedder_with_a_batchnorm_trunk_equals_one_process(run):
    X, y = problem()
    ref = MetricEmbedder(**worker.bn_trunk_params()).fit(X, y)
    for r in run:
        _assert_equal_to_one_process(r["bn_trunk"]["module"], ref.module_.state_dict(), 1e-5)
    np.testing.assert_allclose(run[0]["bn_trunk"]["embedding"], ref.transform(X), atol=1e-5)
    assert train_params("multi_similarity")["max_epochs"] * 5 == 20  # the steps compared


def test_without_sync_batchnorm_ranks_agree_but_differ_from_one_process(run):
    """sync_batchnorm=False: each rank normalises its own share and the running
    statistics are averaged, so the ranks stay equal but are not the 1-process run."""
    X, y = problem()
    ref = ProbabilisticEmbedder(**worker.pfe_params()).fit(X, y).module_.state_dict()
    got0, got1 = run[0]["pfe_local"]["module"], run[1]["pfe_local"]["module"]
    for key in got0:
        torch.testing.assert_close(got1[key], got0[key], rtol=0, atol=0)
    assert not torch.allclose(got0["head.gamma"], ref["head.gamma"], rtol=0, atol=1e-5)


def test_a_converted_embedder_exports_pickles_and_loads_into_plain_batchnorm(tmp_path):
    """Rank 0's network after distributed training holds SyncBatchNorm layers: it still
    exports, pickles, and its saved weights load into the plain network."""
    import pickle

    X, y = problem()
    params = worker.bn_trunk_params()
    net = MetricEmbedder(**{**params, "max_epochs": 1}).fit(X, y)
    net.module_ = convert_sync_batchnorm(net.module_)
    assert isinstance(net.module_[1], SyncBatchNorm)
    want = net.transform(X)
    program = net.export_torch()
    np.testing.assert_allclose(program.module()(torch.as_tensor(X)).numpy(), want, atol=1e-6)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(net)).transform(X), want)
    net.save_params(f_params=tmp_path / "params.pt")
    plain = MetricEmbedder(**params).initialize()
    plain.load_params(f_params=tmp_path / "params.pt")
    assert type(plain.module_[1]) is nn.BatchNorm1d
    np.testing.assert_array_equal(plain.transform(X), want)


def test_sync_batchnorm_must_be_a_boolean():
    from skmetric.deep import DistributedMetricEmbedder, DistributedProbabilisticEmbedder

    X, y = problem()
    for cls in (DistributedMetricEmbedder, DistributedProbabilisticEmbedder):
        with pytest.raises(ValueError, match="sync_batchnorm"):
            cls(sync_batchnorm="yes", max_epochs=1, verbose=0).fit(X, y)
    with pytest.raises(ValueError, match="efficient"):
        DistributedMetricEmbedder(efficient=1.5, max_epochs=1, verbose=0).fit(X, y)
