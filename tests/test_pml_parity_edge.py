"""Tiny miner tuples: every loss that takes pairs or triplets, against pytorch-metric-learning.

One positive and one negative pair, a single triplet, a single pair of one kind, no tuples
at all, and identical embeddings. The reference is pytorch-metric-learning (PML) 2.9 with
one line corrected: its pair losses (``GenericPairLoss``: contrastive, SNR contrastive,
(generalized) lifted structure, multi-similarity, circle, SupCon, tuplet margin, NT-Xent,
intra-pair variance) return 0 whenever no index tensor of the pairs has two elements
(``all(len(x) <= 1 for x in indices_tuple)``), so one positive and one negative pair give
no loss and no gradient, while one positive and two negatives give the full loss. The guard
is meant for "no pairs" (PML's own test of it, ``test_with_no_valid_pairs``, uses a batch
of one sample; its other losses test ``len(...) == 0``): skmetric returns the pairs' loss,
and ``test_pml_2_9_drops_single_pairs`` states what PML 2.9 returns instead.
"""

import inspect
import math
import warnings

import pytest

pytest.importorskip("pytorch_metric_learning")
torch = pytest.importorskip("torch")

from _loss_agreement import value_and_grad as _value_and_grad  # noqa: E402
from pytorch_metric_learning import losses as pml_losses  # noqa: E402
from pytorch_metric_learning.utils import common_functions as pml_cf  # noqa: E402
from pytorch_metric_learning.utils import loss_and_miner_utils as pml_lmu  # noqa: E402

from skmetric.deep import losses as sk  # noqa: E402
from skmetric.deep._distances import get_distance  # noqa: E402
from skmetric.deep.miners import get_miner  # noqa: E402

GenericPairLoss = pml_losses.GenericPairLoss


def _pml_pair_loss_with_the_guard_corrected(self, embeddings, labels, indices_tuple, ref_emb,
                                            ref_labels):
    """PML 2.9's ``GenericPairLoss.compute_loss`` with ``len(x) == 0`` for ``len(x) <= 1``."""
    pml_cf.labels_or_indices_tuple_required(labels, indices_tuple)
    indices_tuple = pml_lmu.convert_to_pairs(indices_tuple, labels, ref_labels)
    if all(len(x) == 0 for x in indices_tuple):
        return self.zero_losses()
    mat = self.distance(embeddings, ref_emb)
    return self.loss_method(mat, indices_tuple)


@pytest.fixture
def corrected_pml(monkeypatch):
    monkeypatch.setattr(GenericPairLoss, "compute_loss", _pml_pair_loss_with_the_guard_corrected)


class _PMLFixedHistogram(pml_losses.DynamicSoftMarginLoss):
    """PML's loss with its running histogram out of the autograd graph (skmetric's documented
    difference: PML sends gradient through the histogram into earlier batches)."""

    def update_histogram(self, data):
        super().update_histogram(data.detach())


# Every loss of the registry that takes a miner's tuples and is not a proxy loss, with PML's
# defaults on both sides (the constructors' defaults are part of the comparison).
PAIR_AND_TRIPLET_LOSSES = {
    name: (cls, getattr(pml_losses, cls.__name__))
    for name, cls in sk.LOSSES.items()
    if getattr(cls, "takes_indices_tuple", False) and not cls.requires_classes
}
PAIR_AND_TRIPLET_LOSSES["dynamic_soft_margin"] = (sk.LOSSES["dynamic_soft_margin"],
                                                  _PMLFixedHistogram)
GENERIC_PAIR_LOSSES = sorted(name for name, (_, theirs) in PAIR_AND_TRIPLET_LOSSES.items()
                             if issubclass(theirs, GenericPairLoss))

# 3 classes x 3 samples in blocks: the one layout where PML's Smooth-AP is right
LABELS = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2])


def _t(*parts):
    return tuple(torch.tensor(p, dtype=torch.long) for p in parts)


# name -> (indices tuple, embeddings all equal)
EDGES = {
    "one_pos_one_neg": (_t([0], [1], [0], [3]), False),
    "one_triplet": (_t([0], [1], [3]), False),
    "one_pos_pair_only": (_t([0], [1], [], []), False),
    "one_neg_pair_only": (_t([], [], [0], [3]), False),
    "pos_and_neg_of_other_anchors": (_t([4], [5], [6], [0]), False),
    "no_pairs": (_t([], [], [], []), False),
    "no_triplets": (_t([], [], []), False),
    "all_equal_all_tuples": (None, True),
    "all_equal_one_pos_one_neg": (_t([0], [1], [0], [3]), True),
}


def _embeddings(equal, dtype, seed=0):
    if equal:
        return torch.full((len(LABELS), 5), 0.3, dtype=dtype)
    g = torch.Generator().manual_seed(seed)
    return torch.randn(len(LABELS), 5, generator=g, dtype=torch.float64).to(dtype)


def _tol(dtype):
    return dict(rtol=1e-5, atol=1e-6) if dtype == torch.float32 else dict(rtol=1e-7, atol=1e-9)


def _grad_or_zeros(grad, emb):
    return torch.zeros_like(emb) if grad is None else grad  # PML leaves unused inputs' None


def test_the_table_covers_every_tuple_loss_and_pml_s_pair_losses():
    assert len(PAIR_AND_TRIPLET_LOSSES) == 20
    assert GENERIC_PAIR_LOSSES == sorted([
        "circle", "contrastive", "generalized_lifted_structure", "intra_pair_variance",
        "lifted_structure", "multi_similarity", "ntxent", "snr_contrastive", "supcon",
        "tuplet_margin"])


@pytest.mark.usefixtures("corrected_pml")
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("edge", list(EDGES))
@pytest.mark.parametrize("name", sorted(PAIR_AND_TRIPLET_LOSSES))
def test_tiny_tuples_match_pytorch_metric_learning(name, edge, dtype):
    ours_cls, theirs_cls = PAIR_AND_TRIPLET_LOSSES[name]
    indices, equal = EDGES[edge]
    emb = _embeddings(equal, dtype)
    ours, theirs = ours_cls(), theirs_cls()
    if name == "histogram" and equal:
        # PML indexes past its histogram for a similarity of exactly 1 (documented): with
        # every similarity 1, p+ and p- sit on the last node and the loss is 1.
        with pytest.raises(RuntimeError, match="out of bounds"):
            theirs(emb, LABELS, indices)
        value, grad = _value_and_grad(ours, emb, LABELS, indices_tuple=indices)
        assert value.item() == pytest.approx(1.0)
        torch.testing.assert_close(grad, torch.zeros_like(grad), rtol=0, atol=1e-5)
        return
    if name == "tuplet_margin" and equal:
        # acos has an infinite slope at a cosine of 1: a cosine that rounds to 1 gives
        # NaN gradients, on both sides alike (left as PML has it).
        ref_value, ref_grad = _value_and_grad(theirs, emb, LABELS, indices_tuple=indices)
        value, grad = _value_and_grad(ours, emb, LABELS, indices_tuple=indices)
        torch.testing.assert_close(value, ref_value, **_tol(dtype))
        torch.testing.assert_close(grad, ref_grad, equal_nan=True, rtol=1e-5, atol=1e-6)
        return
    value, grad = _value_and_grad(ours, emb, LABELS, indices_tuple=indices)
    ref_value, ref_grad = _value_and_grad(theirs, emb, LABELS, indices_tuple=indices)
    tol = _tol(dtype)
    if name == "histogram":  # PML bins in float32 (a similarity's bin), off by ~2e-6
        tol = dict(rtol=1e-5, atol=1e-5)
    assert torch.isfinite(value) and torch.isfinite(grad).all()
    torch.testing.assert_close(value, ref_value.to(value.dtype), **tol)
    torch.testing.assert_close(grad, _grad_or_zeros(ref_grad, emb), **tol)


@pytest.mark.parametrize("name", GENERIC_PAIR_LOSSES)
def test_pml_2_9_drops_single_pairs(name):
    """What PML 2.9 itself returns: 0 with no gradient for one positive and one negative pair
    (and for one triplet, split into those pairs), the full loss for one positive and two
    negatives. If this fails after a PML upgrade, PML has fixed its guard: drop the note in
    docs/deep_losses.md and the corrected reference above."""
    emb = _embeddings(False, torch.float64, seed=1)
    theirs = PAIR_AND_TRIPLET_LOSSES[name][1]()
    for indices in (_t([0], [1], [0], [3]), _t([0], [1], [3])):
        value, grad = _value_and_grad(theirs, emb, LABELS, indices_tuple=indices)
        assert value.item() == 0 and (grad is None or torch.count_nonzero(grad) == 0)
        ours = PAIR_AND_TRIPLET_LOSSES[name][0]()(emb, LABELS, indices)
        if name != "intra_pair_variance":  # a lone pair sits on its own mean: 0 here too
            assert ours.item() != 0
    value, _ = _value_and_grad(theirs, emb, LABELS, indices_tuple=_t([0], [1], [0, 0], [3, 6]))
    assert value.item() != 0


def test_one_positive_and_one_negative_pair_pin_closed_forms():
    """Our values for a single positive and a single negative pair, from the formulas."""
    g = torch.Generator().manual_seed(3)
    emb = torch.randn(4, 6, generator=g, dtype=torch.float64)
    labels = torch.tensor([0, 0, 1, 1])
    pairs = _t([0], [1], [0], [2])
    unit = torch.nn.functional.normalize(emb, dim=1)
    d_ap, d_an = (unit[0] - unit[1]).norm(), (unit[0] - unit[2]).norm()
    s_ap, s_an = unit[0] @ unit[1], unit[0] @ unit[2]
    # contrastive: relu(d_ap - pos_margin) + relu(neg_margin - d_an) (PML 2.9: 0)
    expected = torch.relu(d_ap - 0.1) + torch.relu(1.2 - d_an)
    assert expected > 0
    torch.testing.assert_close(sk.ContrastiveLoss(0.1, 1.2)(emb, labels, pairs), expected)
    # NT-Xent: -log(e^{s_ap/t} / (e^{s_ap/t} + e^{s_an/t})) (PML 2.9: 0)
    t = 0.5
    expected = -torch.log(torch.exp(s_ap / t) / (torch.exp(s_ap / t) + torch.exp(s_an / t)))
    torch.testing.assert_close(sk.NTXentLoss(temperature=t)(emb, labels, pairs), expected)
    # intra-pair variance: a lone pair is its group's mean, so only the slack counts:
    # relu((1 - eps) s - s)^2 = (eps s)^2 for a positive pair of negative similarity s,
    # relu(s - (1 + eps) s)^2 for a negative pair.
    flipped = torch.stack([unit[0], -torch.sign(s_ap) * unit[1], unit[2], unit[3]])
    s = flipped[0] @ flipped[1]
    assert s < 0
    expected = (0.3 * s) ** 2 + torch.relu(-0.2 * (flipped[0] @ flipped[2])) ** 2
    torch.testing.assert_close(
        sk.IntraPairVarianceLoss(0.3, 0.2)(flipped, labels, pairs), expected)


# ---------------------------------------------------------------- proxy losses with tuples
C, D = 3, 5
# ours, PML's class and kwargs, the weight attribute on each side
PROXY_TWINS = {
    "normface": (lambda: sk.NormFaceLoss(C, D, scale=20.0), "NormalizedSoftmaxLoss", {}, "W", "W"),
    "cosface": (lambda: sk.CosFaceLoss(C, D), "CosFaceLoss", {}, "W", "W"),
    "arcface": (lambda: sk.ArcFaceLoss(C, D), "ArcFaceLoss", dict(margin=math.degrees(0.5)),
                "W", "W"),
    "subcenter_arcface": (lambda: sk.SubCenterArcFaceLoss(C, D), "SubCenterArcFaceLoss",
                          dict(margin=math.degrees(0.5)), "W", "W"),
    "large_margin_softmax": (lambda: sk.LargeMarginSoftmaxLoss(C, D, lambda_start=0),
                             "LargeMarginSoftmaxLoss", {}, "W", "W"),
    "sphereface": (lambda: sk.SphereFaceLoss(C, D, lambda_start=0), "SphereFaceLoss", {}, "W", "W"),
    "proxy_nca": (lambda: sk.ProxyNCALoss(C, D), "ProxyNCALoss", {}, "proxies", "proxies"),
    "soft_triple": (lambda: sk.SoftTripleLoss(C, D), "SoftTripleLoss", {}, "centers", "fc"),
}


def _proxy_twins(name):
    make, pml_name, kwargs, ours_attr, pml_attr = PROXY_TWINS[name]
    torch.manual_seed(0)
    ours = make()
    theirs = getattr(pml_losses, pml_name)(num_classes=C, embedding_size=D, **kwargs)
    getattr(theirs, pml_attr).data = getattr(ours, ours_attr).data.clone().double()
    return ours, theirs


@pytest.mark.parametrize("edge", [e for e in EDGES if not e.startswith("all_equal")])
@pytest.mark.parametrize("name", sorted(PROXY_TWINS))
def test_proxy_losses_weight_tiny_tuples_as_pytorch_metric_learning(name, edge):
    ours, theirs = _proxy_twins(name)
    emb = _embeddings(False, torch.float64)
    indices = EDGES[edge][0]
    value, grad = _value_and_grad(ours, emb, LABELS, indices_tuple=indices)
    ref_value, ref_grad = _value_and_grad(theirs, emb, LABELS, indices_tuple=indices)
    torch.testing.assert_close(value, ref_value, **_tol(torch.float64))
    torch.testing.assert_close(grad, ref_grad, **_tol(torch.float64))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_losses_whose_references_are_not_the_batch_weight_both_anchors_of_pairs(seed):
    """ProxyNCA (proxies as references) and NCA with ``ref_emb`` count a1 and a2 (PML's
    ``get_anchors``), not only a1."""
    g = torch.Generator().manual_seed(seed)
    emb = torch.randn(12, D, generator=g, dtype=torch.float64)
    labels = torch.randint(0, C, (12,), generator=g)
    ref = torch.randn(9, D, generator=g, dtype=torch.float64)
    ref_labels = torch.randint(0, C, (9,), generator=g)
    pairs = tuple(torch.randint(0, m, (k,), generator=g) for m, k in
                  ((12, 4), (9, 4), (12, 7), (9, 7)))
    ours, theirs = _proxy_twins("proxy_nca")
    for o, t, kwargs in ((ours, theirs, {}),
                         (sk.NCALoss(), pml_losses.NCALoss(),
                          dict(ref_emb=ref, ref_labels=ref_labels))):
        value, grad = _value_and_grad(o, emb, labels, indices_tuple=pairs, **kwargs)
        ref_value, ref_grad = _value_and_grad(t, emb, labels, indices_tuple=pairs, **kwargs)
        torch.testing.assert_close(value, ref_value, **_tol(torch.float64))
        torch.testing.assert_close(grad, ref_grad, **_tol(torch.float64))


# ---------------------------------------------------------------- constructor names, defaults
# skmetric's class -> PML's class of another name; None: PML has no such loss.
PML_CLASS_NAMES = {"NormFaceLoss": "NormalizedSoftmaxLoss", "L2SoftmaxLoss": None,
                   "ClassCircleLoss": None}
# PML's options of every loss (its base classes' and mixins'): skmetric takes `distance` as
# a name, and `reducer` and the regularizers as PML does; `collect_stats` (PML's statistics
# recording) and `weight_init_func` are PML's machinery, not the loss's hyper-parameters.
PML_FRAMEWORK = {"distance", "reducer", "embedding_regularizer", "embedding_reg_weight",
                 "weight_regularizer", "weight_reg_weight", "weight_init_func",
                 "collect_stats", "mat_based_loss"}
# Defaults that differ on purpose, each with its docstring's reason: ours -> PML's value.
DIFFERENT_DEFAULTS = {
    # radians, as everywhere (PML's 28.6 degrees is the paper's 0.5 rounded)
    ("arcface", "margin"): lambda pml: round(math.radians(pml), 2),
    ("subcenter_arcface", "margin"): lambda pml: round(math.radians(pml), 2),
    ("tuplet_margin", "margin"): lambda pml: math.radians(pml),
    ("ranked_list", "margin"): None,  # PML has no default: ours documented
    ("ranked_list", "Tn"): None,
    ("manifold", "K"): None,  # num_classes: set by MetricEmbedder, as for every proxy loss
}


def _pml_class(cls):
    name = PML_CLASS_NAMES.get(cls.__name__, cls.__name__)
    return None if name is None else getattr(pml_losses, name)


def _pml_parameters(pml_cls):
    """PML's constructor parameters of a loss, through the ``**kwargs`` its ``__init__``
    hands to its base classes (the first, most derived, default wins)."""
    params = {}
    for klass in pml_cls.__mro__:
        if klass is pml_losses.BaseMetricLossFunction:
            break
        init = vars(klass).get("__init__")
        if init is None:
            continue
        for name, p in list(inspect.signature(init).parameters.items())[1:]:
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or name in PML_FRAMEWORK:
                continue
            params.setdefault(name, p.default)
    return params


SIGNATURE_CASES = sorted(name for name, cls in sk.LOSSES.items() if _pml_class(cls) is not None)


def test_every_loss_but_two_has_a_pml_twin():
    assert sorted(set(sk.LOSSES) - set(SIGNATURE_CASES)) == ["class_circle", "l2_softmax"]


@pytest.mark.parametrize("name", SIGNATURE_CASES)
def test_constructors_take_pml_s_names_with_pml_s_defaults(name):
    """Every parameter name of PML 2.9's constructor is accepted, as ours or as a
    ``pml_names`` alias, and defaults agree (converted through the alias) unless listed in
    DIFFERENT_DEFAULTS."""
    cls = sk.LOSSES[name]
    ours = {k: p.default for k, p in inspect.signature(cls).parameters.items()}
    aliases = getattr(cls, "pml_names", {})
    for pml_name, pml_default in _pml_parameters(_pml_class(cls)).items():
        assert pml_name in ours or pml_name in aliases, (name, pml_name)
        alias = aliases.get(pml_name)
        our_name = alias.name if alias else pml_name
        our_default = ours[our_name]
        if (name, pml_name) in DIFFERENT_DEFAULTS:
            convert = DIFFERENT_DEFAULTS[name, pml_name]
            if convert is not None:
                assert our_default == pytest.approx(convert(pml_default))
            continue
        if pml_default is inspect.Parameter.empty:
            assert our_default is inspect.Parameter.empty, (name, pml_name)
        else:
            expected = alias.convert(pml_default) if alias else pml_default
            assert our_default == pytest.approx(expected), (name, pml_name)


def test_pml_names_build_the_same_loss():
    """PML's names, with PML's values, give our loss its parameters; both names at once,
    or a bad value under PML's name, are refused with the name the user wrote."""
    assert sk.NormFaceLoss(3, 4, temperature=0.1).scale == pytest.approx(10.0)
    assert sk.get_loss("normface", num_classes=3, embedding_size=4).scale == 20.0  # PML's 0.05
    p2s = sk.P2SGradLoss(descriptors_dim=4, num_classes=3)
    assert (p2s.embedding_size, p2s.num_classes, tuple(p2s.W.shape)) == (4, 3, (4, 3))
    manifold = sk.ManifoldLoss(l=4, K=3, lambdaC=0.5, alpha=0.7)
    assert (manifold.embedding_size, manifold.num_classes, manifold.lambda_c) == (4, 3, 0.5)
    with pytest.raises(TypeError, match="both scale= and temperature="):
        sk.NormFaceLoss(3, 4, scale=2.0, temperature=0.5)
    with pytest.raises(ValueError, match="'temperature' parameter of NormFaceLoss"):
        sk.NormFaceLoss(3, 4, temperature=0.0)
    with pytest.raises(ValueError, match="'lambdaC' parameter of ManifoldLoss"):
        sk.ManifoldLoss(l=4, K=3, lambdaC=-1.0)
    # and the value equals PML's given the same weights
    ours = sk.NormFaceLoss(3, 5, temperature=0.2)
    theirs = pml_losses.NormalizedSoftmaxLoss(3, 5, temperature=0.2)
    theirs.W.data = ours.W.data.clone().double()
    emb = _embeddings(False, torch.float64)
    torch.testing.assert_close(ours(emb, LABELS), theirs(emb, LABELS))


def test_metric_embedder_passes_pml_names_to_its_loss():
    """``loss__K=`` (PML's num_classes) is not overridden by the embedder's class count,
    nor refused as given twice; ``loss__temperature=`` reaches NormFace."""
    np = pytest.importorskip("numpy")
    from skmetric.deep import MetricEmbedder

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(30, 6)).astype("float32"), np.arange(30) % 3
    fitted = MetricEmbedder(embedding_dim=4, max_epochs=1, miner=None, loss="manifold",
                            loss__K=3, loss__l=4, loss__lambdaC=0.5).fit(X, y)
    assert (fitted.loss_.num_classes, fitted.loss_.embedding_size) == (3, 4)
    assert fitted.loss_.lambda_c == 0.5
    fitted = MetricEmbedder(embedding_dim=4, max_epochs=1, miner=None, loss="normface",
                            loss__temperature=0.1).fit(X, y)
    assert fitted.loss_.scale == pytest.approx(10.0)


# ---------------------------------------------------------------- warnings point at the caller
def _fit(**params):
    np = pytest.importorskip("numpy")
    from skmetric.deep import MetricEmbedder

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(24, 5)).astype("float32"), np.arange(24) % 3
    return MetricEmbedder(embedding_dim=4, max_epochs=1, **params).fit(X, y)


def _reload_without_loss_weights(tmp_path):
    from skmetric.deep import MetricEmbedder

    fitted = _fit(loss="normface", miner=None)
    fitted.save_params(f_params=tmp_path / "params.pt")
    MetricEmbedder(embedding_dim=4, loss="normface", miner=None).load_params(
        f_params=tmp_path / "params.pt")


# Every warning skmetric.deep emits, by each way a user reaches it: (trigger, category, text).
WARNINGS = {
    "ranked_list_temperature": (lambda tmp: sk.LOSSES["ranked_list"](Tn=6.0), UserWarning,
                                "Tp or Tn above 5"),
    "ranked_list_by_name": (lambda tmp: sk.get_loss("ranked_list", Tn=6.0), UserWarning,
                            "Tp or Tn above 5"),
    "ranked_list_in_fit": (lambda tmp: _fit(loss="ranked_list", loss__Tn=6.0, miner=None),
                           UserWarning, "Tp or Tn above 5"),
    "arcface_degrees": (lambda tmp: sk.ArcFaceLoss(3, 4, margin=1.2), UserWarning, "radians"),
    "subcenter_arcface_degrees": (lambda tmp: sk.SubCenterArcFaceLoss(3, 4, margin=1.2),
                                  UserWarning, "radians"),
    "arcface_degrees_in_fit": (lambda tmp: _fit(loss="arcface", loss__margin=1.2, miner=None),
                               UserWarning, "radians"),
    "cosine_loss": (lambda tmp: sk.ContrastiveLoss(distance="cosine"), FutureWarning,
                    "deprecated"),
    "cosine_miner": (lambda tmp: get_miner("multi_similarity", distance="cosine"),
                     FutureWarning, "deprecated"),
    "cosine_distance": (lambda tmp: get_distance("cosine"), FutureWarning, "deprecated"),
    "cosine_in_fit": (lambda tmp: _fit(distance="cosine"), FutureWarning, "deprecated"),
    "miner_with_proxy_loss": (lambda tmp: _fit(loss="normface"), UserWarning,
                              "need no mining"),
    "loss_weights_not_loaded": (_reload_without_loss_weights, UserWarning, "f_criterion"),
}


@pytest.mark.parametrize("case", sorted(WARNINGS))
def test_warnings_point_at_the_users_line(case, tmp_path):
    """The warning's location is this file (the caller), not skmetric, skorch or torch."""
    trigger, category, text = WARNINGS[case]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trigger(tmp_path)
    ours = [w for w in caught if issubclass(w.category, category) and text in str(w.message)]
    assert ours, [str(w.message) for w in caught]
    assert {w.filename for w in ours} == {__file__}, [(w.filename, w.lineno) for w in ours]
