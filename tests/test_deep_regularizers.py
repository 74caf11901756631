"""Regularizers and reducers against PML's, alone and plugged into the losses."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pml_losses = pytest.importorskip("pytorch_metric_learning.losses")
pml_reducers = pytest.importorskip("pytorch_metric_learning.reducers")
pml_regularizers = pytest.importorskip("pytorch_metric_learning.regularizers")

from skmetric.deep import MetricEmbedder  # noqa: E402
from skmetric.deep.losses import (  # noqa: E402
    ArcFaceLoss,
    AvgNonZeroReducer,
    BaseLoss,
    CenterInvariantRegularizer,
    ClassWeightedReducer,
    ContrastiveLoss,
    LpRegularizer,
    MeanReducer,
    PerAnchorReducer,
    ProxyAnchorLoss,
    RegularFaceRegularizer,
    SoftTripleLoss,
    SparseCentersRegularizer,
    ThresholdReducer,
    TripletMarginLoss,
    ZeroMeanRegularizer,
)
from skmetric.deep.miners import MultiSimilarityMiner, TripletMarginMiner  # noqa: E402

DEVICES = [
    "cpu",
    pytest.param("cuda", marks=[
        pytest.mark.gpu,
        pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
    ]),
]

REGULARIZERS = {
    "lp": (LpRegularizer, pml_regularizers.LpRegularizer),
    "lp_p1_power2": (lambda: LpRegularizer(p=1, power=2),
                     lambda: pml_regularizers.LpRegularizer(p=1, power=2)),
    "zero_mean": (ZeroMeanRegularizer, pml_regularizers.ZeroMeanRegularizer),
    "center_invariant": (CenterInvariantRegularizer,
                         pml_regularizers.CenterInvariantRegularizer),
    "regular_face": (RegularFaceRegularizer, pml_regularizers.RegularFaceRegularizer),
    "sparse_centers": (lambda: SparseCentersRegularizer(3, 4),
                       lambda: pml_regularizers.SparseCentersRegularizer(3, 4)),
    "lp_threshold_reducer": (lambda: LpRegularizer(reducer=ThresholdReducer(high=4.0)),
                             lambda: pml_regularizers.LpRegularizer(
                                 reducer=pml_reducers.ThresholdReducer(high=4.0))),
}


def _tol(dtype):
    return {"rtol": 1e-5, "atol": 1e-6} if dtype == torch.float32 else {"rtol": 1e-10,
                                                                        "atol": 1e-12}


def _value_and_grads(fn, *tensors):
    tensors = [t.clone().requires_grad_(True) for t in tensors]
    value = fn(*tensors)
    value.backward()
    return (value.detach(), *(t.grad for t in tensors))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", sorted(REGULARIZERS))
def test_regularizer_value_and_gradient_match_pml(name, dtype, device):
    ours, ref = (make() for make in REGULARIZERS[name])
    x = torch.randn(12, 5, generator=torch.Generator().manual_seed(0), dtype=dtype).to(device)
    torch.testing.assert_close(_value_and_grads(ours.to(device), x),
                               _value_and_grads(ref.to(device), x), **_tol(dtype))


def test_regularizers_on_hand_computed_rows():
    x = torch.tensor([[3.0, 4.0], [0.0, -1.0]])
    torch.testing.assert_close(LpRegularizer()(x), torch.tensor(3.0))  # (5 + 1) / 2
    torch.testing.assert_close(LpRegularizer(p=1, power=2)(x), torch.tensor(25.0))
    torch.testing.assert_close(ZeroMeanRegularizer()(x), torch.tensor(4.0))  # (7 + 1) / 2
    # squared norms 25 and 1, deviations +-12: 144 / 4
    torch.testing.assert_close(CenterInvariantRegularizer()(x), torch.tensor(36.0))
    w = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, -1.0]])
    # closest other rows: 0 -> 1 (cos .707), 1 -> 0 (.707), 2 -> 0 (0)
    torch.testing.assert_close(RegularFaceRegularizer()(w), torch.tensor(2 ** 0.5 / 3))
    # one class, two orthogonal centers: sqrt(2 - 0) / 2
    torch.testing.assert_close(SparseCentersRegularizer(1, 2)(w[[0, 2]]),
                               torch.tensor(2 ** 0.5 / 2))


# ------------------------------------------------------------------------------ reducers
def _pml_dict(losses, indices, kind):
    return {"loss": {"losses": losses, "indices": indices, "reduction_type": kind}}


REDUCERS = {
    "mean": (MeanReducer, pml_reducers.MeanReducer),
    "avg_non_zero": (AvgNonZeroReducer, pml_reducers.AvgNonZeroReducer),
    "threshold_low_high": (lambda: ThresholdReducer(0.2, 0.8),
                           lambda: pml_reducers.ThresholdReducer(0.2, 0.8)),
    "threshold_high": (lambda: ThresholdReducer(high=0.5),
                       lambda: pml_reducers.ThresholdReducer(high=0.5)),
    "class_weighted": (lambda: ClassWeightedReducer([0.5, 2.0, 1.0]),
                       lambda: pml_reducers.ClassWeightedReducer(torch.tensor([0.5, 2.0, 1.0]))),
    "per_anchor": (PerAnchorReducer, pml_reducers.PerAnchorReducer),
    "per_anchor_threshold": (lambda: PerAnchorReducer(ThresholdReducer(low=0.3)),
                             lambda: pml_reducers.PerAnchorReducer(
                                 pml_reducers.ThresholdReducer(low=0.3))),
}


@pytest.mark.parametrize("kind", ["element", "pos_pair", "neg_pair", "triplet"])
@pytest.mark.parametrize("name", sorted(REDUCERS))
def test_reducer_matches_pml_on_every_kind_of_term(name, kind):
    if name.startswith("per_anchor") and kind == "triplet":
        with pytest.raises(ValueError, match="not triplets"):
            REDUCERS[name][0]()(torch.ones(2), (torch.arange(2),) * 3, kind,
                                torch.zeros(2, 2), torch.arange(2))
        return
    gen = torch.Generator().manual_seed(1)
    n = 9
    emb = torch.randn(n, 3, generator=gen, dtype=torch.float64)
    labels = torch.randint(0, 3, (n,), generator=gen)
    # Unique (anchor, other) pairs: PML's per-anchor reducer overwrites duplicates.
    flat = torch.randperm(n * n, generator=gen)[:20]
    a, o = flat // n, flat % n
    indices = {"element": torch.arange(n), "pos_pair": (a, o), "neg_pair": (a, o),
               "triplet": (a, o, o.flip(0))}[kind]
    m = n if kind == "element" else 20
    losses = torch.relu(torch.randn(m, generator=gen, dtype=torch.float64))
    ours, ref = (make() for make in REDUCERS[name])
    value, grad = _value_and_grads(lambda t: ours(t, indices, kind, emb, labels), losses)
    ref_value, ref_grad = _value_and_grads(
        lambda t: ref(_pml_dict(t, indices, kind), emb, labels), losses)
    torch.testing.assert_close(value, ref_value)
    torch.testing.assert_close(grad, ref_grad)


def test_reducers_on_hand_computed_terms_and_empty_input():
    emb, labels = torch.zeros(4, 2, requires_grad=True), torch.tensor([0, 0, 1, 1])
    x = torch.tensor([0.0, 1.0, 2.0, 5.0])
    idx = torch.arange(4)
    assert float(MeanReducer()(x, idx, "element", emb, labels)) == 2.0
    assert float(AvgNonZeroReducer()(x, idx, "element", emb, labels)) == pytest.approx(8 / 3)
    assert float(ThresholdReducer(0.5, 3.0)(x, idx, "element", emb, labels)) == 1.5
    assert float(ThresholdReducer(low=9.0)(x, idx, "element", emb, labels)) == 0.0
    weighted = ClassWeightedReducer([1.0, 0.0])(x, idx, "element", emb, labels)
    assert float(weighted) == 0.25
    # anchors 0 and 1 of 4: pair means 2 and 5, the rest 0 -> (2 + 5) / 4
    pairs = (torch.tensor([0, 0, 1]), torch.tensor([2, 3, 2]))
    per_anchor = PerAnchorReducer()(torch.tensor([1.0, 3.0, 5.0]), pairs, "pos_pair", emb,
                                    labels)
    assert float(per_anchor) == 1.75
    empty = MeanReducer()(torch.zeros(0), idx[:0], "element", emb, labels)
    assert float(empty.detach()) == 0.0 and empty.requires_grad


# --------------------------------------------------------------- plugged into the losses
LOSS_CASES = {
    "contrastive": (lambda **kw: ContrastiveLoss(0.1, 0.9, **kw),
                    lambda **kw: pml_losses.ContrastiveLoss(0.1, 0.9, **kw),
                    lambda: MultiSimilarityMiner(0.2)),
    "triplet": (lambda **kw: TripletMarginLoss(0.2, **kw),
                lambda **kw: pml_losses.TripletMarginLoss(0.2, **kw),
                lambda: TripletMarginMiner(0.3)),
}
OPTIONS = {
    "embedding_lp": (dict(embedding_regularizer=LpRegularizer(), embedding_reg_weight=0.3),
                     dict(embedding_regularizer=pml_regularizers.LpRegularizer(),
                          embedding_reg_weight=0.3)),
    "mean": (dict(reducer=MeanReducer()), dict(reducer=pml_reducers.MeanReducer())),
    "threshold": (dict(reducer=ThresholdReducer(0.05, 0.5)),
                  dict(reducer=pml_reducers.ThresholdReducer(0.05, 0.5))),
    "class_weighted": (dict(reducer=ClassWeightedReducer([2.0, 0.5, 1.0, 3.0])),
                       dict(reducer=pml_reducers.ClassWeightedReducer(
                           torch.tensor([2.0, 0.5, 1.0, 3.0])))),
    "per_anchor_and_zero_mean": (
        dict(reducer=PerAnchorReducer(), embedding_regularizer=ZeroMeanRegularizer()),
        dict(reducer=pml_reducers.PerAnchorReducer(),
             embedding_regularizer=pml_regularizers.ZeroMeanRegularizer())),
}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mined", [False, True])
@pytest.mark.parametrize("option", sorted(OPTIONS))
@pytest.mark.parametrize("name", sorted(LOSS_CASES))
def test_loss_with_regularizer_or_reducer_matches_pml(name, option, mined, device):
    if option.startswith("per_anchor") and name == "triplet":
        pytest.skip("PML's PerAnchorReducer has no triplet reduction (ours raises too)")
    ours_loss, pml_loss, ours_miner = LOSS_CASES[name]
    ours, ref = ours_loss(**OPTIONS[option][0]).to(device), pml_loss(**OPTIONS[option][1])
    gen = torch.Generator().manual_seed(2)
    emb = (2 * torch.randn(16, 5, generator=gen, dtype=torch.float64)).to(device)
    labels = torch.randint(0, 4, (16,), generator=gen).to(device)
    # Our miner's tuples go to both (the miners' agreement is tested in test_deep_miners).
    kwargs = dict(indices_tuple=ours_miner()(emb, labels)) if mined else {}
    torch.testing.assert_close(
        _value_and_grads(lambda e: ours(e, labels, **kwargs), emb),
        _value_and_grads(lambda e: ref.to(device)(e, labels, **kwargs), emb))


PROXY_CASES = {
    "arcface_regular_face": (
        lambda: ArcFaceLoss(4, 6, weight_regularizer=RegularFaceRegularizer(),
                            weight_reg_weight=0.7, embedding_regularizer=LpRegularizer()),
        lambda: pml_losses.ArcFaceLoss(4, 6, margin=math.degrees(0.5), scale=64,
                                       weight_regularizer=pml_regularizers.RegularFaceRegularizer(),
                                       weight_reg_weight=0.7,
                                       embedding_regularizer=pml_regularizers.LpRegularizer()),
        "W", "W"),
    "proxy_anchor_center_invariant": (
        lambda: ProxyAnchorLoss(4, 6, weight_regularizer=CenterInvariantRegularizer()),
        lambda: pml_losses.ProxyAnchorLoss(
            4, 6, weight_regularizer=pml_regularizers.CenterInvariantRegularizer()),
        "proxies", "proxies"),
    "soft_triple_sparse_centers": (
        lambda: SoftTripleLoss(4, 6, centers_per_class=3,
                               weight_regularizer=SparseCentersRegularizer(4, 3),
                               weight_reg_weight=0.2),
        lambda: pml_losses.SoftTripleLoss(
            4, 6, centers_per_class=3, weight_reg_weight=0.2,
            weight_regularizer=pml_regularizers.SparseCentersRegularizer(4, 3)),
        "centers", "fc"),
}


@pytest.mark.parametrize("name", sorted(PROXY_CASES))
def test_proxy_loss_with_weight_regularizer_matches_pml_in_value_and_both_gradients(name):
    make_ours, make_ref, our_attr, ref_attr = PROXY_CASES[name]
    ours, ref = make_ours().double(), make_ref().double()
    getattr(ref, ref_attr).data = getattr(ours, our_attr).data.clone()
    gen = torch.Generator().manual_seed(3)
    emb = torch.randn(12, 6, generator=gen, dtype=torch.float64)
    labels = torch.randint(0, 4, (12,), generator=gen)
    value, grad = _value_and_grads(lambda e: ours(e, labels), emb)
    ref_value, ref_grad = _value_and_grads(lambda e: ref(e, labels), emb)
    torch.testing.assert_close((value, grad), (ref_value, ref_grad))
    torch.testing.assert_close(getattr(ours, our_attr).grad, getattr(ref, ref_attr).grad)


def test_default_options_leave_every_loss_unchanged_and_are_keyword_arguments():
    import inspect

    sig = inspect.signature(ContrastiveLoss)
    assert sig.parameters["embedding_regularizer"].default is None
    assert sig.parameters["reducer"].kind is inspect.Parameter.KEYWORD_ONLY
    assert "weight_regularizer" not in sig.parameters  # no class weights to regularise
    assert "weight_regularizer" in inspect.signature(ArcFaceLoss).parameters
    loss = ContrastiveLoss()
    assert loss.reducer is None and loss.embedding_regularizer is None
    assert loss.embedding_reg_weight == 1.0


def test_options_are_validated_with_clear_errors():
    class OwnLoss(BaseLoss):  # a user's loss that reduces itself (every built-in takes one)
        def compute_loss(self, embeddings, labels, indices_tuple, ref_emb, ref_labels):
            return embeddings.sum()

    with pytest.raises(ValueError, match="does not take reducer="):
        OwnLoss(reducer=MeanReducer())
    with pytest.raises(ValueError, match="embedding_reg_weight"):
        ContrastiveLoss(embedding_reg_weight=float("nan"))
    with pytest.raises(ValueError, match="embedding_regularizer"):
        ContrastiveLoss(embedding_regularizer="lp")
    with pytest.raises(ValueError, match="low, high or both"):
        ThresholdReducer()
    with pytest.raises(ValueError, match="centers_per_class"):
        SparseCentersRegularizer(3, 1)
    with pytest.raises(ValueError, match="12 rows"):
        SparseCentersRegularizer(3, 4)(torch.randn(5, 2))
    with pytest.raises(ValueError, match="finite class weights"):
        ClassWeightedReducer([1.0, float("inf")])


def test_metric_embedder_routes_regularizer_and_reducer_to_its_loss():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 30)
    X = (rng.normal(size=(3, 8))[y] * 3 + rng.normal(size=(90, 8))).astype(np.float32)
    emb = MetricEmbedder(loss="contrastive", miner=None, normalize=False,
                         loss__embedding_regularizer=LpRegularizer(),
                         loss__embedding_reg_weight=0.01, loss__reducer=MeanReducer(),
                         embedding_dim=4, batch_size=30, max_epochs=3, random_state=0,
                         verbose=0).fit(X, y)
    assert isinstance(emb.loss_.embedding_regularizer, LpRegularizer)
    assert isinstance(emb.loss_.reducer, MeanReducer) and emb.loss_.embedding_reg_weight == 0.01
    assert np.isfinite(emb.history[:, "train_loss"]).all()
    proxy = MetricEmbedder(loss="arcface", miner=None,
                           loss__weight_regularizer=RegularFaceRegularizer(),
                           embedding_dim=4, batch_size=30, max_epochs=1, random_state=0,
                           verbose=0).fit(X, y)
    assert isinstance(proxy.loss_.weight_regularizer, RegularFaceRegularizer)
