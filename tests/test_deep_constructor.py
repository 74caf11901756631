"""The embedders are built by skorch's own constructor and extend it through its hooks."""

import inspect
import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("skorch")

from sklearn.base import clone  # noqa: E402
from skorch import NeuralNet  # noqa: E402
from torch import nn  # noqa: E402

from skmetric.deep import (  # noqa: E402
    DistributedMetricEmbedder,
    MetricEmbedder,
    ProbabilisticEmbedder,
)
from skmetric.deep.losses import ContrastiveLoss  # noqa: E402

FAST = dict(max_epochs=1, batch_size=16, samples_per_class=4, embedding_dim=8,
            random_state=0, verbose=0)
# The public parameters: what get_params(deep=False) has listed since the first release.
METRIC_EMBEDDER_PARAMS = {
    "module", "loss", "miner", "embedding_dim", "normalize", "distance",
    "samples_per_class", "batch_size", "lr", "max_epochs", "optimizer", "callbacks",
    "train_split", "warm_start", "device", "random_state", "verbose",
}


def _blobs(n_classes=6, per_class=8, n_features=5, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=3.0, size=(n_classes, n_features))
    X = np.repeat(centers, per_class, axis=0) + rng.normal(size=(n_classes * per_class,
                                                                 n_features))
    return X.astype(np.float32), np.repeat(np.arange(n_classes), per_class)


def test_skorchs_constructor_stores_every_one_of_its_arguments_on_the_instance():
    emb = MetricEmbedder(lr=0.01, module__hidden=(7,))
    skorch_args = [n for n, p in inspect.signature(NeuralNet.__init__).parameters.items()
                   if n != "self" and p.kind is not p.VAR_KEYWORD]
    # Set on the instance by NeuralNet.__init__ (not preset on the class), so that an
    # argument a skorch release adds exists here too, at skorch's default.
    assert set(skorch_args) <= set(vars(emb)), set(skorch_args) - set(vars(emb))
    assert vars(emb)["lr"] == 0.01 and vars(emb)["module__hidden"] == (7,)
    assert emb._params_to_validate == {"module__hidden"}  # skorch checks them at initialize
    for name in ("iterator_train", "dataset", "use_caching", "compile"):
        assert getattr(emb, name) == inspect.signature(NeuralNet).parameters[name].default
    # skorch's state is there, under private names (scikit-learn: __init__ sets params only)
    assert emb.initialized_ is False and emb.history_ is None
    assert {"initialized_", "history_", "virtual_params_"}.isdisjoint(vars(emb))


@pytest.mark.parametrize("cls, extra", [
    (MetricEmbedder, set()),
    (ProbabilisticEmbedder, {"freeze_trunk", "uncertainty_hidden", "uncertainty_input"}),
    (DistributedMetricEmbedder, {"efficient"}),
])
def test_get_params_lists_the_estimators_parameters_and_not_skorchs_fixed_ones(cls, extra):
    params = cls().get_params(deep=False)
    assert set(params) == METRIC_EMBEDDER_PARAMS | extra
    nested = cls(loss__margin=0.2, iterator_train__num_workers=0).get_params(deep=False)
    assert set(nested) == METRIC_EMBEDDER_PARAMS | extra | {"loss__margin",
                                                            "iterator_train__num_workers"}
    if cls is MetricEmbedder:
        assert repr(cls(lr=0.5)) == "MetricEmbedder(lr=0.5)"


def test_fitting_initialises_skorchs_state_and_clone_starts_afresh():
    X, y = _blobs()
    emb = MetricEmbedder(**FAST).fit(X, y)
    assert emb.initialized_ is True and len(emb.history_) == 1 and emb.n_iter_ == 1
    # skorch's machinery drives the declared components: lr is a virtual parameter of the
    # optimizer, loss__* re-initialises the loss and the optimizer sees its new weights.
    emb.set_params(lr=0.3)
    assert emb.optimizer_.param_groups[0]["lr"] == 0.3
    fresh = clone(emb)
    assert fresh.initialized_ is False and fresh.history_ is None
    assert not hasattr(fresh, "module_") and fresh.lr == 0.3
    restored = pickle.loads(pickle.dumps(emb))
    assert restored.initialized_ is True and len(restored.history_) == 1
    np.testing.assert_array_equal(restored.transform(X), emb.transform(X))


def test_a_loss_module_instance_can_be_set_before_and_after_fitting():
    X, y = _blobs()
    emb = MetricEmbedder(**FAST, miner=None)
    emb.set_params(loss=ContrastiveLoss(neg_margin=0.7))  # skorch would refuse a module here
    emb.fit(X, y)
    assert isinstance(emb.loss_, ContrastiveLoss) and emb.loss_.neg_margin == 0.7
    assert emb.loss_ is not emb.loss  # fitting never changes the object the user passed
    emb.set_params(loss=ContrastiveLoss(neg_margin=0.4)).fit(X, y)
    assert emb.loss_.neg_margin == 0.4


def test_skorchs_criterion_is_named_loss_here():
    with pytest.raises(TypeError, match="'criterion'; did you mean loss"):
        MetricEmbedder(criterion=nn.MSELoss)
    with pytest.raises(TypeError, match="'iterator_train'.*iterator_train__\\*"):
        MetricEmbedder(iterator_train=torch.utils.data.DataLoader)


class _BatchSizes(nn.Module):
    """A linear trunk that records the size of every batch it embeds."""

    def __init__(self, n_features=5, dim=4):
        super().__init__()
        self.linear = nn.Linear(n_features, dim)
        self.sizes = []

    def forward(self, x):
        self.sizes.append(len(x))
        return self.linear(x)


def test_transform_batches_come_from_skorchs_iterator_with_its_options():
    X, y = _blobs()
    emb = MetricEmbedder(module=_BatchSizes(), **{**FAST, "batch_size": 16}).fit(X, y)
    emb.module_.sizes.clear()
    default = emb.transform(X)
    assert emb.module_.sizes == [16, 16, 16]  # batch_size, as skorch does
    emb.module_.sizes.clear()
    # skorch's "one batch of everything", set on the fitted net (skorch 1.4 alone refuses)
    emb.set_params(iterator_valid__batch_size=-1)
    np.testing.assert_allclose(emb.transform(X), default, atol=1e-6)
    assert emb.module_.sizes == [len(X)]
    state = torch.random.get_rng_state()
    emb.transform(X)
    assert torch.equal(state, torch.random.get_rng_state())


def test_the_embedder_resolves_loss_and_miner_names_as_their_registries_do():
    from skmetric.deep import losses, miners
    from skmetric.deep._embedder import _registered_class

    for slot, package, registry, get in (
            ("loss", losses, losses.LOSSES, losses.get_loss),
            ("miner", miners, miners.MINERS, miners.get_miner)):
        names = {**{n: registry[n] for n in registry},
                 **{a: registry[t] for a, t in package.ALIASES.items()}}
        for name, cls in names.items():
            tolerant = name.replace("_", "-").upper() + f" {slot}"  # 'AM-SOFTMAX loss'
            assert _registered_class(slot, name) is cls
            assert _registered_class(slot, tolerant) is cls, tolerant
        with pytest.raises(ValueError) as by_registry:
            get("no_such_thing")
        with pytest.raises(ValueError) as by_embedder:
            MetricEmbedder(**{slot: "no_such_thing"}).fit(*_blobs())
        assert str(by_embedder.value) == str(by_registry.value)
