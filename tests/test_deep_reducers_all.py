"""``reducer=`` on every registered loss, against pytorch-metric-learning (PML).

Parametrised from ``LOSSES``: every loss must have a PML counterpart here; a loss with
``supports_reducer`` must give PML's value and gradient under each reducer (PML hands the
reducer the same kind of terms: "element", "pos_pair", "neg_pair", "triplet" or
"already_reduced", the last returned as is); a loss without it must refuse ``reducer=``
with a clear error and be listed in ``NOT_YET`` (so the gap is visible, not silent).
"""

import math

import pytest

torch = pytest.importorskip("torch")
pml_losses = pytest.importorskip("pytorch_metric_learning.losses")
pml_reducers = pytest.importorskip("pytorch_metric_learning.reducers")
pml_distances = pytest.importorskip("pytorch_metric_learning.distances")

from skmetric.deep import losses as sk  # noqa: E402
from skmetric.deep.losses import LOSSES  # noqa: E402
from skmetric.deep.losses.reducers import REDUCERS, get_reducer  # noqa: E402

N_CLASSES, DIM = 3, 6
#: Looser tolerances where PML computes in float32 inside (its histogram's bins).
#: PML's Smooth-AP returns float32 whatever the input: compared at float32 precision.
TOLERANCE = {"histogram": dict(rtol=1e-5, atol=1e-6), "smooth_ap": dict(rtol=1e-4, atol=1e-6)}


class _PMLFixedHistogram(pml_losses.DynamicSoftMarginLoss):
    """PML's loss with its running histogram out of the autograd graph, as skmetric's (a
    deliberate difference, see docs/deep_losses.md)."""

    def update_histogram(self, data):
        super().update_histogram(data.detach())


# name -> (skmetric loss from reducer kwargs, PML loss from reducer kwargs[, sync])
# "sync" copies PML's random class weights into skmetric's.
_W = {"sync": lambda ours, theirs: ours.W.data.copy_(theirs.W)}
CASES = {
    "contrastive": (lambda **kw: sk.ContrastiveLoss(0.1, 0.9, **kw),
                    lambda **kw: pml_losses.ContrastiveLoss(0.1, 0.9, **kw)),
    "triplet_margin": (lambda **kw: sk.TripletMarginLoss(0.2, **kw),
                       lambda **kw: pml_losses.TripletMarginLoss(0.2, **kw)),
    "lifted_structure": (lambda **kw: sk.LiftedStructureLoss(**kw),
                         lambda **kw: pml_losses.LiftedStructureLoss(**kw)),
    "generalized_lifted_structure": (
        lambda **kw: sk.GeneralizedLiftedStructureLoss(**kw),
        lambda **kw: pml_losses.GeneralizedLiftedStructureLoss(**kw)),
    "npairs": (lambda **kw: sk.NPairsLoss(**kw), lambda **kw: pml_losses.NPairsLoss(**kw)),
    "multi_similarity": (lambda **kw: sk.MultiSimilarityLoss(**kw),
                         lambda **kw: pml_losses.MultiSimilarityLoss(**kw)),
    "margin": (lambda **kw: sk.MarginLoss(**kw), lambda **kw: pml_losses.MarginLoss(**kw)),
    "circle": (lambda **kw: sk.CircleLoss(**kw), lambda **kw: pml_losses.CircleLoss(**kw)),
    "l2_softmax": (lambda **kw: sk.L2SoftmaxLoss(N_CLASSES, DIM, **kw), None),
    # PML's defaults differ here (temperature for scale, no L-Softmax annealing, margins in
    # degrees): the parameters of tests/test_deep_proxy_losses.py's PML comparisons.
    "normface": (lambda **kw: sk.NormFaceLoss(N_CLASSES, DIM, scale=20.0, **kw),
                 lambda **kw: pml_losses.NormalizedSoftmaxLoss(N_CLASSES, DIM,
                                                               temperature=0.05, **kw), _W),
    "large_margin_softmax": (
        lambda **kw: sk.LargeMarginSoftmaxLoss(N_CLASSES, DIM, margin=3, scale=2.0,
                                               lambda_start=0, **kw),
        lambda **kw: pml_losses.LargeMarginSoftmaxLoss(N_CLASSES, DIM, margin=3, scale=2,
                                                       **kw), _W),
    "sphereface": (lambda **kw: sk.SphereFaceLoss(N_CLASSES, DIM, margin=4, scale=1.0,
                                                  lambda_start=0, **kw),
                   lambda **kw: pml_losses.SphereFaceLoss(N_CLASSES, DIM, margin=4, scale=1,
                                                          **kw), _W),
    "cosface": (lambda **kw: sk.CosFaceLoss(N_CLASSES, DIM, **kw),
                lambda **kw: pml_losses.CosFaceLoss(N_CLASSES, DIM, **kw), _W),
    "arcface": (lambda **kw: sk.ArcFaceLoss(N_CLASSES, DIM, margin=0.5, **kw),
                lambda **kw: pml_losses.ArcFaceLoss(N_CLASSES, DIM,
                                                    margin=math.degrees(0.5), **kw), _W),
    "subcenter_arcface": (
        lambda **kw: sk.SubCenterArcFaceLoss(N_CLASSES, DIM, margin=0.5, **kw),
        lambda **kw: pml_losses.SubCenterArcFaceLoss(num_classes=N_CLASSES,
                                                     embedding_size=DIM,
                                                     margin=math.degrees(0.5), **kw), _W),
    "proxy_nca": (lambda **kw: sk.ProxyNCALoss(N_CLASSES, DIM, **kw),
                  lambda **kw: pml_losses.ProxyNCALoss(N_CLASSES, DIM, **kw),
                  {"sync": lambda ours, theirs: ours.proxies.data.copy_(theirs.proxies)}),
    "proxy_anchor": (lambda **kw: sk.ProxyAnchorLoss(N_CLASSES, DIM, **kw),
                     lambda **kw: pml_losses.ProxyAnchorLoss(N_CLASSES, DIM, **kw),
                     {"sync": lambda ours, theirs: ours.proxies.data.copy_(theirs.proxies)}),
    "soft_triple": (
        lambda **kw: sk.SoftTripleLoss(N_CLASSES, DIM, centers_per_class=4, la=20.0,
                                       gamma=0.1, margin=0.01, **kw),
        lambda **kw: pml_losses.SoftTripleLoss(N_CLASSES, DIM, centers_per_class=4, la=20,
                                               gamma=0.1, margin=0.01, **kw),
        {"sync": lambda ours, theirs: ours.centers.data.copy_(theirs.fc)}),
    "class_circle": (lambda **kw: sk.ClassCircleLoss(N_CLASSES, DIM, **kw), None),
    "p2sgrad": (lambda **kw: sk.P2SGradLoss(N_CLASSES, DIM, **kw),
                lambda **kw: pml_losses.P2SGradLoss(DIM, N_CLASSES, **kw),
                {"sync": lambda ours, theirs: ours.W.data.copy_(theirs.weight)}),
    "supcon": (lambda **kw: sk.SupConLoss(**kw), lambda **kw: pml_losses.SupConLoss(**kw)),
    "tuplet_margin": (lambda **kw: sk.TupletMarginLoss(**kw),
                      lambda **kw: pml_losses.TupletMarginLoss(**kw)),
    "snr_contrastive": (lambda **kw: sk.SignalToNoiseRatioContrastiveLoss(**kw),
                        lambda **kw: pml_losses.SignalToNoiseRatioContrastiveLoss(**kw)),
    "smooth_ap": (lambda **kw: sk.SmoothAPLoss(**kw),
                  lambda **kw: pml_losses.SmoothAPLoss(**kw)),
    "ranked_list": (lambda **kw: sk.RankedListLoss(0.4, 1.0, **kw),
                    lambda **kw: pml_losses.RankedListLoss(0.4, 1.0, **kw)),
    "pnp": (lambda **kw: sk.PNPLoss(**kw), lambda **kw: pml_losses.PNPLoss(**kw)),
    "threshold_consistent_margin": (
        lambda **kw: sk.ThresholdConsistentMarginLoss(**kw),
        lambda **kw: pml_losses.ThresholdConsistentMarginLoss(**kw)),
    "vicreg": (lambda **kw: sk.VICRegLoss(**kw), lambda **kw: pml_losses.VICRegLoss(**kw)),
    "ntxent": (lambda **kw: sk.NTXentLoss(**kw), lambda **kw: pml_losses.NTXentLoss(**kw)),
    "nca": (lambda **kw: sk.NCALoss(**kw), lambda **kw: pml_losses.NCALoss(**kw)),
    "fast_ap": (lambda **kw: sk.FastAPLoss(**kw), lambda **kw: pml_losses.FastAPLoss(**kw)),
    "angular": (lambda **kw: sk.AngularLoss(**kw), lambda **kw: pml_losses.AngularLoss(**kw)),
    "intra_pair_variance": (lambda **kw: sk.IntraPairVarianceLoss(**kw),
                            lambda **kw: pml_losses.IntraPairVarianceLoss(**kw)),
    "instance": (lambda **kw: sk.InstanceLoss(**kw),
                 lambda **kw: pml_losses.InstanceLoss(**kw)),
    "histogram": (lambda **kw: sk.HistogramLoss(**kw),
                  lambda **kw: pml_losses.HistogramLoss(**kw)),
    "dynamic_soft_margin": (lambda **kw: sk.DynamicSoftMarginLoss(**kw),
                            lambda **kw: _PMLFixedHistogram(**kw)),
    "manifold": (lambda **kw: sk.ManifoldLoss(N_CLASSES, DIM, **kw), None),
}

#: Losses that do not take reducer= yet (they refuse it with a ValueError).
NOT_YET = set()

#: Self-supervised (two views, no labels): compared with PML in test_vicreg_reducer.
TWO_VIEWS = {"vicreg"}

#: Losses that refuse ClassWeightedReducer: PML hands their per-sample terms to it as an
#: (n, 1) column, so the class weights broadcast into an (n, n) product whose mean is
#: mean(terms) * mean(weights[labels]) -- a quirk that weighs no class, not copied.
#: ProxyAnchor: PML's terms are one per proxy, and its reducer reads labels[proxy index].
CLASS_WEIGHTED_REFUSED = {"multi_similarity", "circle", "lifted_structure",
                          "generalized_lifted_structure", "tuplet_margin", "angular",
                          "proxy_anchor"}

#: Losses whose terms PML hands to PerAnchorReducer as an (n, 1) column, which its
#: PerAnchorReducer cannot index (a RuntimeError): compared with PML's reducer given the
#: same terms as a 1-D tensor (``_SqueezedPerAnchor``).
PML_PER_ANCHOR_FAILS = {"lifted_structure", "tuplet_margin", "angular"}


class _SqueezedPerAnchor(pml_reducers.PerAnchorReducer):
    def tuple_reduction_helper(self, losses, *args, **kwargs):
        return super().tuple_reduction_helper(losses.squeeze(1), *args, **kwargs)


#: PML computes these terms as log(1 + sum exp(...)) and rounds the smallest to exactly 0,
#: where skmetric keeps them positive (log1p): AvgNonZeroReducer's count then differs.
#: Compared on overlapping classes, where no term is that small.
ROUNDED_TO_ZERO_IN_PML = {("tuplet_margin", "avg_non_zero")}

#: Losses whose terms are triplets: PML's PerAnchorReducer has no triplet reduction, and
#: skmetric's raises a ValueError saying so.
TRIPLET_TERMS = {"triplet_margin", "margin"}

# reducer name -> (skmetric reducer, PML reducer)
WEIGHTS = [0.5, 2.0, 1.5]
REDUCER_PAIRS = {
    "mean": (lambda: "mean", pml_reducers.MeanReducer),
    "avg_non_zero": (lambda: "avg_non_zero", pml_reducers.AvgNonZeroReducer),
    "threshold": (lambda: sk.ThresholdReducer(low=0.05, high=3.0),
                  lambda: pml_reducers.ThresholdReducer(low=0.05, high=3.0)),
    "class_weighted": (lambda: sk.ClassWeightedReducer(WEIGHTS),
                       lambda: pml_reducers.ClassWeightedReducer(torch.tensor(WEIGHTS))),
    "per_anchor": (lambda: "per_anchor", pml_reducers.PerAnchorReducer),
    # a threshold on the per-anchor means: a pair given to the wrong anchor changes them
    "per_anchor_threshold": (
        lambda: sk.PerAnchorReducer(sk.ThresholdReducer(low=0.05, high=3.0)),
        lambda: pml_reducers.PerAnchorReducer(pml_reducers.ThresholdReducer(low=0.05,
                                                                            high=3.0))),
}


def _batch(seed=0, n=12, offset=1.5):
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(N_CLASSES).repeat_interleave(n // N_CLASSES)
    emb = torch.randn(n, DIM, generator=g, dtype=torch.float64)
    return emb + offset * torch.eye(N_CLASSES, DIM, dtype=torch.float64)[labels], labels


def _value_and_grad(loss, emb, labels):
    e = emb.clone().requires_grad_(True)
    value = loss(e, labels)
    value.backward()
    return value.detach().reshape(()), e.grad


def test_every_registered_loss_has_a_case():
    assert set(CASES) == set(LOSSES), "add the new loss's PML counterpart to CASES"
    assert NOT_YET <= set(LOSSES)


@pytest.mark.parametrize("reducer", sorted(REDUCER_PAIRS))
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_reducer_gives_pml_value_and_gradient(name, reducer):
    ours_factory, pml_factory, *extra = CASES[name]
    ours_reducer, pml_reducer = REDUCER_PAIRS[reducer]
    if not getattr(LOSSES[name], "supports_reducer", False):
        assert name in NOT_YET, f"{name} refuses reducer= but is not listed in NOT_YET"
        with pytest.raises(ValueError, match="reducer"):
            ours_factory(reducer=get_reducer(ours_reducer()))
        return
    assert name not in NOT_YET, f"{name} takes reducer= now: remove it from NOT_YET"
    if name in TWO_VIEWS:
        pytest.skip(f"{name} takes two views and no labels: see test_vicreg_reducer")
    if pml_factory is None:
        pytest.skip(f"PML has no {name} loss; its reducer path is tested by hand below")
    if reducer == "class_weighted" and name in CLASS_WEIGHTED_REFUSED:
        for refused in (ours_reducer(), sk.PerAnchorReducer(ours_reducer())):
            with pytest.raises(ValueError, match="ClassWeightedReducer"):
                ours_factory(reducer=refused)
        return
    ours = ours_factory(reducer=ours_reducer()).double()
    if reducer == "per_anchor" and name in PML_PER_ANCHOR_FAILS:
        pml_reducer = _SqueezedPerAnchor
    if reducer == "per_anchor_threshold" and name in PML_PER_ANCHOR_FAILS:
        def pml_reducer():
            return _SqueezedPerAnchor(pml_reducers.ThresholdReducer(low=0.05, high=3.0))
    theirs = pml_factory(reducer=pml_reducer()).double()
    if extra:
        with torch.no_grad():
            extra[0]["sync"](ours, theirs)
    # PML's Smooth-AP is right only for k classes x k samples (here 3 x 3); classes that
    # overlap, so that no anchor's AP is 1 up to rounding (PML's float32 would make it 0)
    emb, labels = _batch(n=9, offset=0.0) if name == "smooth_ap" else _batch()
    if (name, reducer) in ROUNDED_TO_ZERO_IN_PML:
        emb, labels = _batch(offset=0.0)
    if reducer.startswith("per_anchor") and name in TRIPLET_TERMS:
        with pytest.raises(ValueError, match="not triplets"):
            ours(emb, labels)
        return
    v1, g1 = _value_and_grad(ours, emb, labels)
    v2, g2 = _value_and_grad(theirs, emb, labels)
    torch.testing.assert_close(v1, v2.to(v1.dtype), **TOLERANCE.get(name, {}))
    torch.testing.assert_close(g1, g2.to(g1.dtype), **TOLERANCE.get(name, {}))


@pytest.mark.parametrize("name", sorted(n for n, c in LOSSES.items()
                                        if getattr(c, "supports_reducer", False)))
def test_the_reducer_is_used(name):
    """A threshold no term passes gives 0 where the default reduction does not (an ignored
    reducer= would pass the PML comparison only where PML's default equals it)."""
    ours_factory = CASES[name][0]
    if name in TWO_VIEWS:
        pytest.skip(f"{name} takes two views and no labels: see test_vicreg_reducer")
    emb, labels = _batch(1)
    torch.manual_seed(0)  # the same initial class weights in both losses
    default = float(_value_and_grad(ours_factory(), emb, labels)[0])
    assert default > 0
    torch.manual_seed(0)
    blocked = ours_factory(reducer=sk.ThresholdReducer(low=1e6))
    if getattr(LOSSES[name], "terms_already_reduced", False):  # PML's "already_reduced": left as is
        assert float(_value_and_grad(blocked, emb, labels)[0]) == default
    else:
        assert float(_value_and_grad(blocked, emb, labels)[0]) == 0


def test_reducer_names_and_errors():
    assert set(REDUCERS) == {"mean", "avg_non_zero", "per_anchor"}
    assert isinstance(sk.ContrastiveLoss(reducer="mean").reducer, sk.MeanReducer)
    with pytest.raises(ValueError, match="reducer"):
        sk.ContrastiveLoss(reducer="median")
    with pytest.raises(ValueError, match="Unknown reducer 'median'"):
        get_reducer("median")
    reducer = sk.ThresholdReducer(low=0.1)
    assert get_reducer(reducer) is reducer and get_reducer(None) is None


def test_already_reduced_terms_pass_through_every_reducer():
    emb, labels = torch.zeros(3, 2, requires_grad=True), torch.arange(3)
    value = (emb.sum() + 2.5).reshape(())
    for make in (sk.MeanReducer, sk.AvgNonZeroReducer, lambda: sk.ThresholdReducer(low=9.0),
                 lambda: sk.ClassWeightedReducer([0.0, 0.0, 0.0]), sk.PerAnchorReducer):
        out = make()(value, None, "already_reduced", emb, labels)
        assert float(out) == 2.5 and out.requires_grad


@pytest.mark.parametrize("num_classes", [None, N_CLASSES])
@pytest.mark.parametrize("reducer", ["mean", "threshold", "class_weighted"])
def test_margin_beta_regulariser_terms_give_pml(num_classes, reducer):
    """MarginLoss's nu * beta term: PML's "already_reduced" (one beta) or per-anchor
    "element" terms (one beta per class), reduced and added to the triplets'."""
    ours_reducer, pml_reducer = REDUCER_PAIRS[reducer]
    kw = dict(beta=1.0, learn_beta=True, nu=0.3, num_classes=num_classes)
    ours = sk.MarginLoss(reducer=ours_reducer(), **kw).double()
    theirs = pml_losses.MarginLoss(reducer=pml_reducer(), **kw)
    emb, labels = _batch()
    v1, g1 = _value_and_grad(ours, emb, labels)
    v2, g2 = _value_and_grad(theirs, emb, labels)
    torch.testing.assert_close(v1, v2.to(v1.dtype))
    torch.testing.assert_close(g1, g2.to(g1.dtype))


@pytest.mark.parametrize("reducer", ["mean", "avg_non_zero", "threshold", "per_anchor",
                                     "per_anchor_threshold", "class_weighted"])
def test_vicreg_reducer(reducer):
    """VICReg's terms (invariance per sample, variance per dimension, covariance already
    reduced) each reduced as PML does; no labels, so ClassWeightedReducer is refused."""
    ours_reducer, pml_reducer = REDUCER_PAIRS[reducer]
    if reducer == "class_weighted":
        with pytest.raises(ValueError, match="ClassWeightedReducer.*no labels"):
            sk.VICRegLoss(reducer=ours_reducer())
        return
    z1, _ = _batch(2)
    z2 = z1 + 0.3 * _batch(3)[0]
    # scaled down so that some variance terms are 0 and others pass the threshold
    z1, z2 = 0.5 * z1, 0.5 * z2
    ours = sk.VICRegLoss(invariance_lambda=2.0, variance_mu=3.0, covariance_v=0.5,
                         reducer=ours_reducer())
    theirs = pml_losses.VICRegLoss(invariance_lambda=2.0, variance_mu=3.0, covariance_v=0.5,
                                   reducer=pml_reducer())
    results = []
    for loss in (ours, theirs):
        a, b = z1.clone().requires_grad_(True), z2.clone().requires_grad_(True)
        value = loss(a, ref_emb=b)
        value.backward()
        results.append((value.detach().reshape(()), a.grad, b.grad))
    for x, y in zip(*results, strict=True):
        torch.testing.assert_close(x, y.to(x.dtype))
    blocked = sk.VICRegLoss(invariance_lambda=2.0, variance_mu=3.0, covariance_v=0.5,
                            reducer=sk.ThresholdReducer(low=1e6))
    covariance_only = 0.5 * (sk.VICRegLoss._covariance(z1) + sk.VICRegLoss._covariance(z2))
    torch.testing.assert_close(blocked(z1, ref_emb=z2), covariance_only)
