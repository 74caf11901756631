"""MetricEmbedder's training options for accelerators: mixed precision and device-resident data.

``precision='bf16'`` runs the trunk under autocast (checked on the CPU, where torch
supports bfloat16 autocast too); in-memory training arrays are moved to the training
device once and each batch is gathered there (``_device_data``).
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("skorch")

from torch import nn  # noqa: E402

from skmetric.deep import MetricEmbedder, _device_data  # noqa: E402
from skmetric.deep._device_data import DeviceTensorDataset, device_dataset  # noqa: E402
from skmetric.deep._precision import full_precision  # noqa: E402


def _data(n=64, d=10, n_classes=4, seed=0):
    # Overlapping classes: the loss stays well above zero for the two epochs.
    rng = np.random.default_rng(seed)
    y = np.arange(n) % n_classes
    X = (rng.standard_normal((n, d)) + 0.3 * y[:, None]).astype(np.float32)
    return X, y


class _Trunk(nn.Module):
    """A small MLP that records the dtype of its hidden activations."""

    def __init__(self, d=10):
        super().__init__()
        self.hidden = nn.Linear(d, 32)
        self.out = nn.Linear(32, 8)
        self.seen = []

    def forward(self, x):
        h = self.hidden(x)
        self.seen.append(h.dtype)
        return self.out(torch.relu(h))


def _fit(precision, **params):
    X, y = _data()
    # The class, not an instance: the embedder builds it under random_state (same init).
    est = MetricEmbedder(_Trunk, loss="multi_similarity", miner=None, batch_size=16,
                         max_epochs=2, precision=precision, verbose=0, random_state=0,
                         **params)
    return est.fit(X, y), X


def test_bf16_runs_the_trunk_in_bfloat16_and_keeps_float32_weights():
    est, X = _fit("bf16")
    # Autocast reached the trunk in every training batch (2 epochs x 4 batches; the one
    # float32 call is the probe of the embedding size, outside training).
    assert est.module_.seen.count(torch.bfloat16) == 8
    assert all(p.dtype == torch.float32 for p in est.module_.parameters())
    est.module_.seen.clear()
    Z = est.transform(X)
    assert set(est.module_.seen) == {torch.bfloat16}
    assert Z.dtype == np.float32 and np.isfinite(Z).all()
    losses = [row["train_loss"] for row in est.history_]
    assert np.isfinite(losses).all()


def test_bf16_training_stays_close_to_float32():
    # Same seed, same init, same batches: bfloat16 (8-bit mantissa) rounds the trunk's
    # products only, so losses agree to ~1e-3 and the embeddings point the same way.
    full, X = _fit("32")
    mixed, _ = _fit("bf16")
    assert set(full.module_.seen) == {torch.float32}
    loss_full = [r["train_loss"] for r in full.history_]
    assert min(loss_full) > 0.5  # a loss worth comparing
    np.testing.assert_allclose([r["train_loss"] for r in mixed.history_], loss_full,
                               rtol=1e-2)
    cos = np.sum(full.transform(X) * mixed.transform(X), axis=1)  # normalised embeddings
    assert cos.min() > 0.999


def test_unknown_precision_is_rejected_with_the_options():
    X, y = _data()
    with pytest.raises(ValueError, match=r"'precision' parameter .* among .*'bf16'"):
        MetricEmbedder(_Trunk(), precision="16", verbose=0).fit(X, y)


def test_full_precision_casts_half_embeddings_only():
    assert full_precision(torch.zeros(2, dtype=torch.bfloat16)).dtype == torch.float32
    assert full_precision(torch.zeros(2, dtype=torch.float64)).dtype == torch.float64


def test_training_batches_are_gathered_from_one_device_copy(monkeypatch):
    # The arrays become one dataset on the device; every batch is one __getitems__
    # (a gather there), never a per-sample __getitem__ collated on the host.
    built, batches = [], []
    original = DeviceTensorDataset.__getitems__

    def counting_getitems(self, indices):
        batch = original(self, indices)
        batches.append((self, batch[0]))
        return batch

    def no_getitem(self, i):
        raise AssertionError("a sample was fetched alone: batches are built on the host")

    monkeypatch.setattr(DeviceTensorDataset, "__getitems__", counting_getitems)
    monkeypatch.setattr(DeviceTensorDataset, "__getitem__", no_getitem)

    def recording_device_dataset(*args, **kwargs):
        built.append(device_dataset(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(_device_data, "device_dataset", recording_device_dataset)
    est, X = _fit("32")
    assert len(built) == 1  # one copy for the whole fit, not one per epoch or batch
    dataset = built[0]
    assert dataset.X.device == torch.device(est.device) and dataset.X.dtype == torch.float32
    np.testing.assert_array_equal(dataset.X.numpy(), X)
    assert len(batches) == 2 * len(X) // est.batch_size  # every batch, both epochs
    assert all(owner is dataset and xb.device == dataset.X.device for owner, xb in batches)


def test_data_that_is_not_an_array_keeps_skorchs_dataset():
    X, y = _data()
    assert device_dataset(X.tolist(), y, "cpu") is None
    assert device_dataset(X.astype(object), y, "cpu") is None
    assert isinstance(device_dataset(X, y, "cpu"), DeviceTensorDataset)


@pytest.mark.gpu
def test_training_data_moves_to_cuda_when_it_fits():
    X, y = _data()
    on_gpu = device_dataset(X, y, "cuda")
    assert on_gpu.X.is_cuda and on_gpu.y.is_cuda
    assert device_dataset(X, y, "cuda", share=0.0) is None  # does not fit: skorch's path
    est = MetricEmbedder(_Trunk(), loss="contrastive", miner="pair_margin", batch_size=16,
                         max_epochs=1, device="cuda", precision="bf16", verbose=0,
                         random_state=0).fit(X, y)
    assert np.isfinite(est.transform(X)).all()


def test_device_none_leaves_data_and_autocast_to_the_module():
    # skorch's device=None moves nothing: the data stays skorch's and autocast follows
    # the module's parameters.
    X, y = _data()
    assert device_dataset(X, y, None) is None
    est = MetricEmbedder(_Trunk, loss="multi_similarity", miner=None, batch_size=16,
                         max_epochs=1, device=None, precision="bf16", verbose=0,
                         random_state=0).fit(X, y)
    assert torch.bfloat16 in est.module_.seen


def test_a_validation_split_trains_on_the_device_copy_of_its_subset():
    from skorch.dataset import ValidSplit

    X, y = _data()
    est, _ = _fit("32", train_split=ValidSplit(4, stratified=True))
    assert np.isfinite([row["valid_loss"] for row in est.history_]).all()
    subset, kwargs = _device_data.on_device(
        torch.utils.data.Subset(_skorch_dataset(X, y), [0, 5, 9]), "cpu")
    assert kwargs and isinstance(subset.dataset, DeviceTensorDataset)
    xb, yb = subset.__getitems__([0, 2])
    np.testing.assert_array_equal(xb.numpy(), X[[0, 9]])
    np.testing.assert_array_equal(yb.numpy(), y[[0, 9]])


def _skorch_dataset(X, y):
    from skorch.dataset import Dataset

    return Dataset(X, y)
