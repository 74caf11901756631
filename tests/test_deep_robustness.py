"""Deep training that goes wrong says so: hyper-parameters, divergence, inputs, progress."""

import inspect
import io
import math
import sys
import warnings
from numbers import Real

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("skorch")

from _deep_data import blobs as _blobs  # noqa: E402
from sklearn.utils._param_validation import Interval  # noqa: E402
from torch import nn  # noqa: E402

from skmetric.deep import MetricEmbedder, ProbabilisticEmbedder, _embedder  # noqa: E402
from skmetric.deep.losses import LOSSES, ArcFaceLoss, SubCenterArcFaceLoss  # noqa: E402
from skmetric.deep.miners import MINERS  # noqa: E402

FAST = dict(max_epochs=2, batch_size=16, samples_per_class=4, embedding_dim=8,
            random_state=0, verbose=0)


# ------------------------------------------------------------ hyper-parameters
def _numeric_hyper_parameters(cls):
    """(name, default) of the float-valued constructor arguments of a loss or miner."""
    return [(name, p.default) for name, p in inspect.signature(cls).parameters.items()
            if isinstance(p.default, float)]


@pytest.mark.parametrize("name, cls", [*LOSSES.items(), *MINERS.items()])
def test_every_numeric_hyper_parameter_rejects_nan_naming_class_parameter_and_range(name, cls):
    required = {"num_classes": 3, "embedding_size": 4} \
        if getattr(cls, "requires_classes", False) else {}
    numeric = _numeric_hyper_parameters(cls)
    constraints = cls._all_constraints()
    for param, _ in numeric:
        # Every float hyper-parameter is declared (one validation path, no silent NaN).
        assert param in constraints, f"{cls.__name__}.{param} has no constraint"
        with pytest.raises(ValueError, match=rf"'{param}' parameter of {cls.__name__} must "
                                             r"be .*Got nan"):
            cls(**required, **{param: float("nan")})
    cls(**required)  # the defaults are valid


@pytest.mark.parametrize("make, match", [
    (lambda: LOSSES["proxy_anchor"](3, 4, alpha=0.0), r"'alpha'.*ProxyAnchorLoss.*\(0.0, inf\)"),
    (lambda: LOSSES["npairs"](l2_reg=-1.0), r"'l2_reg'.*NPairsLoss.*\[0.0, inf\)"),
    (lambda: LOSSES["triplet_margin"](margin=float("inf")), r"'margin'.*TripletMarginLoss"),
    (lambda: LOSSES["soft_triple"](3, 4, centers_per_class=0), r"'centers_per_class'"),
    (lambda: MINERS["random"](tuples_per_anchor=0), r"'tuples_per_anchor'.*RandomMiner"),
    (lambda: MINERS["distance_weighted"](cutoff=-0.1), r"'cutoff'.*DistanceWeightedMiner"),
    (lambda: MINERS["triplet_margin"](type_of_triplets="hardest"), r"'type_of_triplets'"),
])
def test_invalid_hyper_parameters_fail_at_construction(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_a_users_subclass_inherits_the_checks_and_adds_its_own():
    from skmetric.deep.losses import ContrastiveLoss

    class Scaled(ContrastiveLoss):
        _parameter_constraints = {"scale": [Interval(Real, 0, None, closed="neither")]}

        def __init__(self, scale=1.0, **kwargs):
            super().__init__(**kwargs)
            self.scale = scale

    with pytest.raises(ValueError, match="'scale' parameter of Scaled"):
        Scaled(scale=-1.0)
    with pytest.raises(ValueError, match="'neg_margin' parameter of Scaled"):
        Scaled(neg_margin=float("nan"))
    assert list(inspect.signature(Scaled).parameters) == ["scale", "kwargs"]


def test_embedder_loss_parameters_are_checked_before_training():
    X, y = _blobs()
    emb = MetricEmbedder(loss="triplet", miner=None, loss__margin=float("nan"), **FAST)
    with pytest.raises(ValueError, match="'margin' parameter of TripletMarginLoss"):
        emb.fit(X, y)
    assert not hasattr(emb, "n_iter_")


@pytest.mark.parametrize("cls", [ArcFaceLoss, SubCenterArcFaceLoss])
def test_arcface_margin_is_in_radians_and_degrees_looking_values_are_caught(cls):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cls(3, 4, margin=0.5)  # the usual radians: silent
    with pytest.warns(UserWarning, match=r"radians \(115 degrees\).*math.radians\(2\)"):
        cls(3, 4, margin=2)
    with pytest.raises(ValueError, match=r"radians in \[0, pi\).*math.radians"):
        cls(3, 4, margin=28.6)  # pytorch-metric-learning's default, in degrees


# --------------------------------------------------------- divergence, collapse
@pytest.mark.parametrize("params", [
    {},                                                     # embeddings collapse to zero
    {"normalize": False},                                   # they blow up to ~1e24
    {"normalize": False, "distance": "euclidean", "loss": "triplet", "miner": None},
    {"loss": "arcface", "miner": None},
])
def test_diverging_training_stops_with_an_error_naming_the_epoch_and_lr(params):
    X, y = _blobs(per_class=16)
    emb = MetricEmbedder(**{**FAST, "lr": 1e10, "max_epochs": 5, **params})
    with pytest.raises(ValueError, match=r"diverged at epoch \d.*lr=1e\+10; try lr=1e\+09"):
        emb.fit(X, y)


def test_the_epoch_end_check_is_a_default_callback_that_can_be_turned_off():
    X, y = _blobs(per_class=16)
    emb = MetricEmbedder(**{**FAST, "lr": 1e10, "max_epochs": 2},
                         callbacks__divergence_check=None).fit(X, y)
    assert np.ptp(emb.transform(X), axis=0).max() == 0  # collapsed, as asked not to check


class _Constant(nn.Module):
    """Returns a fixed value for every sample (after one learnable scale)."""

    def __init__(self, value):
        super().__init__()
        self.value = value
        self.w = nn.Parameter(torch.ones(()))

    def forward(self, x):
        return self.w * torch.full((len(x), 4), self.value)


class _InfLoss(nn.Module):
    def forward(self, embeddings, labels, indices_tuple=None):
        return (embeddings * 0).sum() + float("inf")


@pytest.mark.parametrize("params, match", [
    ({"module": _Constant(float("nan"))}, "embeddings hold NaN"),
    ({"module": _Constant(1.0)}, "collapsed"),
    ({"loss": _InfLoss(), "miner": None}, "the loss is inf"),
])
def test_non_finite_or_constant_outputs_are_reported(params, match):
    X, y = _blobs(per_class=16)
    with pytest.raises(ValueError, match=rf"epoch 1.*{match}|{match}.*epoch"):
        MetricEmbedder(**{**FAST, **params}).fit(X, y)


def test_collapse_check_spares_normal_training_and_zero_initialised_heads():
    X, y = _blobs()

    class ZeroHead(nn.Module):  # constant (zero) output before the first step
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Linear(5, 16), nn.ReLU())
            self.head = nn.Linear(16, 4)
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)

        def forward(self, x):
            return self.head(self.body(x))

    # One batch per epoch: the check must skip the first step's constant output. (With
    # normalize=True a zero output gets no gradient at all: that collapse is real.)
    for params in ({"module": ZeroHead(), "batch_size": 48, "max_epochs": 3, "loss": "arcface",
                    "miner": None, "normalize": False},
                   {"max_epochs": 5}, {"loss": "proxy_anchor", "miner": None},
                   {"normalize": False, "distance": "euclidean", "loss": "contrastive"}):
        emb = MetricEmbedder(**{**FAST, **params}).fit(X, y)
        assert np.ptp(emb.transform(X), axis=0).max() > 1e-3


# ------------------------------------------------------------------- messages
def test_unknown_keyword_arguments_fail_at_construction_naming_the_closest():
    with pytest.raises(TypeError, match="'max_epoch'; did you mean max_epochs"):
        MetricEmbedder(max_epoch=1)
    with pytest.raises(TypeError, match="did you mean loss__margin"):
        MetricEmbedder(loss_margin=0.1)
    with pytest.raises(TypeError, match="did you mean freeze_trunk"):
        ProbabilisticEmbedder(freeze_trunc=False)
    emb = MetricEmbedder()
    with pytest.raises(ValueError, match="set_params.*did you mean samples_per_class"):
        emb.set_params(samples_per_clas=2)
    assert emb.samples_per_class == 4


def test_prefixed_sub_parameters_still_route_to_their_components():
    X, y = _blobs()
    sink = []
    emb = MetricEmbedder(module__hidden=(7,), loss="triplet", loss__margin=0.3,
                         miner="semihard", miner__margin=0.1, optimizer__weight_decay=1e-4,
                         iterator_train__num_workers=0, callbacks__print_log__sink=sink.append,
                         **{**FAST, "verbose": 1})
    emb.set_params(iterator_valid__batch_size=5).fit(X, y)
    assert emb.module_.layers[1].out_features == 7
    assert emb.loss_.margin == 0.3 and emb.miner_.margin == 0.1
    assert emb.optimizer_.param_groups[0]["weight_decay"] == 1e-4
    assert any("train_loss" in line for line in sink)


def test_a_miner_with_a_proxy_loss_warns():
    X, y = _blobs()
    with pytest.warns(UserWarning, match="proxy loss ArcFaceLoss.*miner=None"):
        MetricEmbedder(loss="arcface", **FAST).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        MetricEmbedder(loss="arcface", miner=None, **FAST).fit(X, y)


def test_channels_last_images_get_a_transpose_hint():
    X, y = _blobs(n_features=8 * 8 * 3)
    with pytest.raises(ValueError, match=r"channels-last.*X.transpose\(0, 3, 1, 2\)"):
        MetricEmbedder(**FAST).fit(X.reshape(-1, 8, 8, 3), y)
    emb = MetricEmbedder(**FAST).fit(X.reshape(-1, 8, 8, 3).transpose(0, 3, 1, 2), y)
    assert emb.transform(X.reshape(-1, 8, 8, 3).transpose(0, 3, 1, 2)).shape == (48, 8)


@pytest.mark.parametrize("shape, n_pool", [((1, 1, 1), 0), ((1, 2, 2), 1), ((2, 3, 1), 0),
                                           ((1, 3, 3), 1), ((1, 5, 4), 2)])
def test_the_default_cnn_adapts_its_poolings_to_tiny_images(shape, n_pool):
    X, y = _blobs(n_features=int(np.prod(shape)))
    X = X.reshape(-1, *shape)
    emb = MetricEmbedder(**FAST).fit(X, y)
    pools = [m for m in emb.module_.modules() if isinstance(m, nn.MaxPool2d)]
    assert len(pools) == n_pool
    assert emb.transform(X).shape == (48, 8)


def test_too_many_explicit_poolings_are_rejected_up_front():
    X, y = _blobs(n_features=4)
    with pytest.raises(ValueError, match=r"2x2 pixels are too small.*module__n_pool=1"):
        MetricEmbedder(module__n_pool=2, **FAST).fit(X.reshape(-1, 1, 2, 2), y)


def test_messages_show_plain_labels_not_numpy_reprs():
    X, _ = _blobs()
    with pytest.raises(ValueError, match=r"got 1 class \(1\)\.") as info:
        MetricEmbedder(**FAST).fit(X, np.ones(len(X), dtype=np.int64))
    assert "np." not in str(info.value)


# ------------------------------------------------------------------- progress
def test_progress_is_shown_by_default_as_a_plain_table_off_a_terminal(capsys):
    X, y = _blobs()
    assert MetricEmbedder().verbose == 1
    MetricEmbedder(**{**FAST, "verbose": 1, "max_epochs": 3}).fit(X, y)
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].split() == ["epoch", "train_loss", "dur"]
    assert [line.split()[0] for line in lines[2:]] == ["1", "2", "3"]
    assert "\x1b[" not in out and "\x1b[" not in err and err == ""


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_on_a_terminal_the_table_has_colours_and_epochs_get_a_progress_bar(monkeypatch):
    X, y = _blobs()
    out, err = _Terminal(), _Terminal()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    monkeypatch.setattr(_embedder._EpochProgressBar, "delay", 0.0)
    MetricEmbedder(**{**FAST, "verbose": 1}).fit(X, y)
    assert "\x1b[" in out.getvalue()  # the best loss is highlighted, as in skorch
    assert "0/3 [" in err.getvalue() and "batch/s" in err.getvalue()  # 3 batches an epoch
    err.seek(0)
    err.truncate()
    MetricEmbedder(**FAST).fit(X, y)  # verbose=0: no bar either
    assert err.getvalue() == ""


def test_nothing_is_printed_with_verbose_0(capsys):
    X, y = _blobs()
    MetricEmbedder(**FAST).fit(X, y)
    assert capsys.readouterr() == ("", "")
    assert math.isfinite(MetricEmbedder(**FAST).fit(X, y).history[-1, "train_loss"])


def test_prefixed_params_with_a_loss_object_are_refused_not_silently_dropped():
    """Rebuilding ContrastiveLoss(pos_margin=0.2) from loss__neg_margin alone lost pos_margin."""
    from skmetric.deep import MetricEmbedder
    from skmetric.deep.losses import ContrastiveLoss

    X = np.random.RandomState(0).randn(24, 4).astype("float32")
    y = np.arange(24) % 3
    net = MetricEmbedder(loss=ContrastiveLoss(pos_margin=0.2), loss__neg_margin=0.5,
                         max_epochs=1, verbose=0, random_state=0)
    with pytest.raises(ValueError, match=r"loss__\* parameters \['neg_margin'\].*by name"):
        net.fit(X, y)
    named = MetricEmbedder(loss="contrastive", loss__pos_margin=0.2, loss__neg_margin=0.5,
                           max_epochs=1, verbose=0, random_state=0).fit(X, y)
    assert (named.criterion_.pos_margin, named.criterion_.neg_margin) == (0.2, 0.5)
