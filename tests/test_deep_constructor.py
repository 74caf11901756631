"""The embedders are built by skorch's own constructor and extend it through its hooks."""

import inspect
import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("skorch")

from _deep_data import blobs as _blobs  # noqa: E402
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
    "train_split", "warm_start", "device", "random_state", "verbose", "precision",
    "train_transform", "train_transform_per_sample", "compile",
}


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
    (DistributedMetricEmbedder, {"efficient", "sync_batchnorm"}),
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


# ------------------------------------------------------- 'cosine_similarity' naming
def test_no_deep_default_uses_the_word_cosine_which_means_a_distance_elsewhere():
    from skmetric.deep._distances import DISTANCES
    from skmetric.deep.losses import LOSSES
    from skmetric.deep.miners import MINERS

    assert "cosine" not in DISTANCES and DISTANCES["cosine_similarity"].is_similarity
    classes = [*LOSSES.values(), *MINERS.values(), MetricEmbedder]
    defaults = {cls.__name__: inspect.signature(cls).parameters["distance"].default
                for cls in classes if "distance" in inspect.signature(cls).parameters}
    assert len(defaults) > 30 and defaults["MetricEmbedder"] == "cosine_similarity"
    assert set(defaults.values()) <= set(DISTANCES), defaults
    for cls in classes:  # the allowed lists speak the same language
        assert set(getattr(cls, "allowed_distances", None) or ()) <= set(DISTANCES), cls


def test_the_former_name_cosine_still_works_with_a_future_warning():
    from skmetric.deep.losses import CircleLoss
    from skmetric.deep.miners import MultiSimilarityMiner

    z = torch.nn.functional.normalize(torch.randn(12, 4, generator=torch.Generator()
                                                  .manual_seed(0)), dim=1)
    labels = torch.arange(12) % 3
    for make in (lambda d: CircleLoss(distance=d), lambda d: ContrastiveLoss(distance=d)):
        with pytest.warns(FutureWarning, match="use distance='cosine_similarity'"):
            old = make("cosine")
        new = make("cosine_similarity")
        assert old.distance == "cosine_similarity"  # CircleLoss accepts only that name
        assert torch.equal(old(z, labels), new(z, labels))
    with pytest.warns(FutureWarning, match="cosine distance 1 - cos"):
        miner = MultiSimilarityMiner(distance="COSINE")
    assert [torch.equal(a, b) for a, b in zip(
        miner(z, labels), MultiSimilarityMiner()(z, labels), strict=True)] == [True] * 4


def test_the_embedders_cosine_is_deprecated_at_fit_and_trains_the_same_model():
    import warnings

    from skmetric.metrics import precision_at_k

    X, y = _blobs()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the defaults use the current name
        new = MetricEmbedder(**FAST).fit(X, y)
    emb = MetricEmbedder(**FAST, distance="cosine")  # construction only stores it
    with pytest.warns(FutureWarning, match="cosine_similarity") as caught:
        emb.fit(X, y)
    assert len([w for w in caught if w.category is FutureWarning]) == 1
    assert emb.get_params()["distance"] == "cosine"  # parameters are kept as given
    assert emb.loss_.distance == emb.miner_.distance == "cosine_similarity"
    np.testing.assert_array_equal(emb.transform(X), new.transform(X))
    # score ranks with skmetric.metrics' cosine distance: the similarity's order
    assert new.score(X, y) == precision_at_k(new.transform(X), y, k=1, metric="cosine")
    with pytest.raises(ValueError, match="'cosine' \\(deprecated\\)") as error:
        MetricEmbedder(**FAST, distance="manhattan").fit(X, y)
    assert "'cosine_similarity'" in str(error.value)
