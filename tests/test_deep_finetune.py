"""Fine-tuning a named trunk (frozen backbone, head learning rate, frozen BatchNorm) and
train_transform (training batches only; two views for a self-supervised loss)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("skorch")

from skorch.callbacks import Callback, Freezer, Unfreezer  # noqa: E402
from skorch.dataset import ValidSplit  # noqa: E402
from torch import nn  # noqa: E402

from skmetric.deep import MetricEmbedder, SelfSupervisedLoss  # noqa: E402
from skmetric.deep.losses import NTXentLoss  # noqa: E402

TRUNK = "shufflenet_v2_x0_5"  # the smallest torchvision family member (0.35 M weights)


def _images(n_per_class=4, n_classes=3, size=32, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 256, size=(n_per_class * n_classes, 3, size, size), dtype=np.uint8)
    return X, np.repeat(np.arange(n_classes), n_per_class)


def _small_images():
    """Fashion-MNIST test images when installed (dataset-fashion-mnist), else sklearn's
    digits, upscaled to 16x16; uint8 (n, 28 or 16, 28 or 16), 10 classes of 4 each."""
    from skmetric.deep.datasets import load_fashion_mnist

    try:
        X, y = load_fashion_mnist(subset="test", n_samples=200, scale=False,
                                  dtype=np.uint8)
        X = X[:, 0]
    except FileNotFoundError:
        from sklearn.datasets import load_digits

        X, y = load_digits(return_X_y=True)
        X = np.kron(X.reshape(-1, 8, 8), np.ones((2, 2))).astype(np.uint8) * 15
    keep = np.concatenate([np.flatnonzero(y == c)[:4] for c in range(10)])
    return X[keep], y[keep]


class _Snapshots(Callback):
    """The module's parameters and buffers at the end of every epoch."""

    def on_train_begin(self, net, **kwargs):
        self.states = [self._state(net)]

    def on_epoch_end(self, net, **kwargs):
        self.states.append(self._state(net))

    @staticmethod
    def _state(net):
        return {k: v.detach().clone() for k, v in net.module_.state_dict().items()}


def _changed(before, after, prefix, kind="weight"):
    keys = [k for k in before if k.startswith(prefix) and k.endswith(kind)]
    assert keys
    return [k for k in keys if not torch.equal(before[k], after[k])]


def test_backbone_frozen_for_the_first_epoch_then_trained():
    X, y = _images()
    snaps = _Snapshots()
    emb = MetricEmbedder(TRUNK, embedding_dim=4, batch_size=12, max_epochs=2, lr=1e-2,
                         random_state=0, verbose=0, module__freeze_bn=True,
                         callbacks=[snaps, Freezer("backbone.*"),
                                    Unfreezer("backbone.*", at=2)]).fit(X, y)
    start, epoch1, epoch2 = snaps.states
    assert _changed(start, epoch1, "backbone.") == []  # frozen in epoch 1
    assert _changed(start, epoch1, "head.")  # the head trains from the start
    assert len(_changed(epoch1, epoch2, "backbone.")) > 10  # unfrozen in epoch 2
    # The Unfreezer does not thaw the frozen BatchNorm layers (module__freeze_bn=True).
    bn = [n for n, m in emb.module_.named_modules() if isinstance(m, nn.BatchNorm2d)]
    assert bn and _changed(start, epoch2, tuple(n + "." for n in bn)) == []


def test_head_learning_rate_group():
    X, y = _images()
    emb = MetricEmbedder(TRUNK, embedding_dim=4, batch_size=12, max_epochs=1, lr=1e-3,
                         optimizer__param_groups=[("head.*", {"lr": 0.1})],
                         random_state=0, verbose=0).fit(X, y)
    groups = emb.optimizer_.param_groups
    head = {id(p) for p in emb.module_.head.parameters()}
    assert [g["lr"] for g in groups] == [0.1, 1e-3]
    assert {id(p) for p in groups[0]["params"]} == head
    assert not head & {id(p) for p in groups[1]["params"]}


@pytest.mark.parametrize("freeze_bn", [True, False])
def test_frozen_batch_norm_keeps_its_statistics_and_affine_weights(freeze_bn):
    X, y = _images()
    snaps = _Snapshots()
    MetricEmbedder(TRUNK, embedding_dim=4, batch_size=12, max_epochs=1, lr=1e-2,
                   module__freeze_bn=freeze_bn, callbacks=[snaps], random_state=0,
                   verbose=0).fit(X, y)
    start, end = snaps.states
    bn = [k[: -len(".running_mean")] for k in start if k.endswith("running_mean")]
    stats_moved = [k for k in bn if not torch.equal(start[k + ".running_mean"],
                                                    end[k + ".running_mean"])]
    affine_moved = [k for k in bn if not torch.equal(start[k + ".weight"], end[k + ".weight"])]
    convs_moved = _changed(start, end, "backbone.conv1.0.weight")
    assert convs_moved  # the rest of the backbone trains either way
    if freeze_bn:
        assert stats_moved == [] and affine_moved == []
    else:
        assert len(stats_moved) == len(bn) and affine_moved


class _Recorder:
    """A transform that records the shapes, dtypes and ranges it is called on."""

    def __init__(self):
        self.calls = []

    def __call__(self, x):
        self.calls.append((tuple(x.shape), x.dtype, float(x.max())))
        return x


def test_train_transform_runs_on_training_batches_only():
    X, y = _images(size=8)
    for per_sample, shape in [(True, (3, 8, 8)), (False, (12, 3, 8, 8))]:
        record = _Recorder()
        emb = MetricEmbedder(embedding_dim=4, batch_size=12, max_epochs=2, verbose=0,
                             train_transform=record, train_transform_per_sample=per_sample,
                             random_state=0)
        emb.fit(X, y)
        n_fit = len(record.calls)
        assert n_fit == (2 * 12 if per_sample else 2)
        # After the uint8 -> [0, 1] scaling, on the batch's device.
        assert {c[:2] for c in record.calls} == {(shape, torch.float32)}
        assert max(c[2] for c in record.calls) <= 1.0
        emb.transform(X)
        emb.score(X, y)
        assert len(record.calls) == n_fit  # not in transform
    # Nor in validation: skorch's internal split still trains on augmented batches only.
    X, y = _images(n_per_class=8, size=8)
    record = _Recorder()
    MetricEmbedder(embedding_dim=4, batch_size=12, max_epochs=1, verbose=0,
                   train_transform=record, train_split=ValidSplit(4, stratified=True),
                   random_state=0).fit(X, y)
    assert len(record.calls) == 12  # 18 training samples: one batch of 12 (drop_last)


@pytest.mark.parametrize("per_sample", [True, False])
def test_flip_augmentation_equals_training_on_flipped_images(per_sample):
    v2 = pytest.importorskip("torchvision.transforms.v2")
    X, y = _small_images()
    params = dict(embedding_dim=8, batch_size=20, max_epochs=1, random_state=0, verbose=0,
                  module__channels=(8, 16))
    # One epoch: the flip's coin (torch.rand, even with p=1) moves torch's generator,
    # from which the next epoch's batches are drawn.
    flipped = MetricEmbedder(**params).fit(np.ascontiguousarray(X[:, :, ::-1]), y)
    augmented = MetricEmbedder(**params, train_transform=v2.RandomHorizontalFlip(p=1.0),
                               train_transform_per_sample=per_sample).fit(X, y)
    for (name, a), b in zip(augmented.module_.state_dict().items(),
                            flipped.module_.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, msg=name)
    # transform is not augmented: the augmented model embeds the flipped images as the
    # other one does, and the originals differently.
    np.testing.assert_allclose(augmented.transform(X[:, :, ::-1]),
                               flipped.transform(X[:, :, ::-1]), rtol=1e-5, atol=1e-6)
    assert not np.allclose(augmented.transform(X), flipped.transform(X[:, :, ::-1]))


class _AlternateFlip:
    """Identity on odd calls, a horizontal flip on even calls: two known views."""

    def __init__(self):
        self.n = 0

    def __call__(self, x):
        self.n += 1
        return x if self.n % 2 else x.flip(-1)


def test_self_supervised_loss_gets_two_views_from_train_transform():
    X, y = _images(size=8)
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 6))
    params = dict(loss=SelfSupervisedLoss(NTXentLoss()), miner=None, samples_per_class=None,
                  batch_size=12, random_state=0, verbose=0, train_transform=_AlternateFlip(),
                  train_transform_per_sample=False)
    initial = MetricEmbedder(net, max_epochs=0, **params).fit(X, y).module_
    emb = MetricEmbedder(net, max_epochs=1, **params).fit(X, y)
    x = torch.from_numpy(X).float() / 255
    z = torch.nn.functional.normalize(initial(torch.cat([x, x.flip(-1)])), dim=1)
    with torch.no_grad():
        expected = SelfSupervisedLoss(NTXentLoss())(z[:12], z[12:])  # order-invariant
    first_batch = emb.history[0, "batches", 0, "train_loss"]
    assert first_batch == pytest.approx(expected.item(), rel=1e-5)
    assert emb.transform(X).shape == (12, 6)

    with pytest.raises(ValueError, match="train_transform="):
        MetricEmbedder(net, **{**params, "train_transform": None}).fit(X, y)
    with pytest.raises(ValueError, match="miner=None"):
        MetricEmbedder(net, **{**params, "miner": "multi_similarity"}).fit(X, y)
    with pytest.raises(ValueError, match="samples_per_class=None"):
        MetricEmbedder(net, **{**params, "samples_per_class": 4}).fit(X, y)


def test_vicreg_trains_on_two_views():
    v2 = pytest.importorskip("torchvision.transforms.v2")
    X, y = _small_images()
    emb = MetricEmbedder(loss="vicreg", miner=None, samples_per_class=None, normalize=False,
                         train_transform=v2.RandomResizedCrop(X.shape[1:], scale=(0.6, 1.0)),
                         embedding_dim=8, batch_size=20, max_epochs=2, random_state=0,
                         verbose=0, module__channels=(8, 16)).fit(X, y)
    losses = emb.history[:, "train_loss"]
    assert np.all(np.isfinite(losses)) and emb.transform(X).shape == (40, 8)


def test_self_supervised_loss_on_several_processes_is_refused_clearly(monkeypatch):
    # The two views of each rank's batch are stacked; gathering them across ranks would
    # interleave them, so several processes are refused before any collective call.
    from skmetric.deep import DistributedMetricEmbedder, distributed

    monkeypatch.setattr(distributed, "_world", lambda: (0, 2))
    X, y = _images(size=8)
    emb = DistributedMetricEmbedder(
        nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 6)),
        loss=SelfSupervisedLoss(NTXentLoss()), miner=None, samples_per_class=None,
        train_transform=_AlternateFlip(), batch_size=12, max_epochs=1, verbose=0)
    with pytest.raises(ValueError, match="not supported on 2 processes"):
        emb.fit(X, y)
