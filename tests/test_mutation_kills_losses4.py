"""Tests that kill mutants of the losses of issue #17 (skmetric/deep/losses/: SupCon,
NT-Xent, NCA, instance, FastAP, Smooth-AP, ...) that survived ``scripts/mutation.py``
(fourth session; see tests/README.md).

The reference is pytorch-metric-learning 2.9 (PML): every test compares the loss's value
AND its gradient with respect to the embeddings with PML's class, in float32 and float64,
with and without a miner's tuples, or with the loss's formula written out by hand.
"""

import math

import pytest

torch = pytest.importorskip("torch")
pml_losses = pytest.importorskip("pytorch_metric_learning.losses")
pml_distances = pytest.importorskip("pytorch_metric_learning.distances")

from _loss_agreement import mined as _mined  # noqa: E402
from _loss_agreement import value_and_grad as _value_and_grad  # noqa: E402

from skmetric.deep import losses  # noqa: E402

DTYPES = [torch.float32, torch.float64]
TOL = {torch.float32: dict(rtol=1e-4, atol=1e-5), torch.float64: dict(rtol=1e-7, atol=1e-9)}


def _batch(seed=0, n=20, dim=5, n_classes=4, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    emb = torch.randn(n, dim, generator=g, dtype=torch.float64) * (
        0.3 + 2 * torch.rand(n, 1, generator=g, dtype=torch.float64))
    labels = torch.randint(0, n_classes, (n,), generator=g)
    labels[:n_classes] = torch.arange(n_classes)[:n]  # every class present
    return emb.to(dtype), labels


def _square_batch(seed=0, n_classes=4, dtype=torch.float64):
    # PML's Smooth-AP is right only for n_classes contiguous blocks of n_classes samples.
    emb, _ = _batch(seed, n=n_classes * n_classes, dtype=dtype)
    return emb, torch.arange(n_classes).repeat_interleave(n_classes)


def _agree(ours, theirs, emb, labels, tol=None, **kwargs):
    v1, g1 = _value_and_grad(ours, emb, labels, **kwargs)
    v2, g2 = _value_and_grad(theirs, emb, labels, **kwargs)
    tol = tol or TOL[emb.dtype]
    assert v1.dtype == emb.dtype
    torch.testing.assert_close(v1, v2.to(v1.dtype).reshape(()), **tol)
    torch.testing.assert_close(g1, g2.to(g1.dtype), **tol)
    return v1


# --- Default arguments equal PML's -------------------------------------------------------

# (ours, PML's, whether it takes a miner's tuples, batch maker)
DEFAULTS = {
    "supcon": (losses.SupConLoss, pml_losses.SupConLoss, True, _batch),
    "ntxent": (losses.NTXentLoss, pml_losses.NTXentLoss, True, _batch),
    "nca": (losses.NCALoss, pml_losses.NCALoss, True, _batch),
    "instance": (losses.InstanceLoss, pml_losses.InstanceLoss, False, _batch),
    "fast_ap": (losses.FastAPLoss, pml_losses.FastAPLoss, True, _batch),
    "smooth_ap": (losses.SmoothAPLoss, pml_losses.SmoothAPLoss, True, _square_batch),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(DEFAULTS))
def test_defaults_match_pml(name, dtype):
    ours, theirs, with_miner, make = DEFAULTS[name]
    values = []
    for seed in range(2):
        emb, labels = make(seed, dtype=dtype)
        for kind in ([None, "triplets", "pairs"] if with_miner else [None]):
            indices = _mined(emb, labels, kind)
            tol = dict(rtol=1e-4, atol=1e-5) if name == "smooth_ap" else None  # PML: float32
            values.append(_agree(ours(), theirs(), emb, labels, tol, indices_tuple=indices))
    assert any(v > 1e-3 for v in values)


# --- The terms and indices a reducer receives --------------------------------------------

from test_mutation_kills_losses2 import _PML_CALLS, _PMLRecorder, _Recorder, _rows  # noqa: E402


def _both(cls, *args, pml_args=None, reference=True, make=_batch):
    """(skmetric's ``cls``, PML's class of the same name), each from a reducer, built with
    the same (non-default) arguments; whether the loss takes a reference set; the batch."""
    return (lambda r: getattr(losses, cls)(*args, reducer=r),
            lambda r: getattr(pml_losses, cls)(*(pml_args or args), reducer=r), reference, make)


# name -> _both(...)
RECORDED = {
    "supcon": _both("SupConLoss", 0.3),
    "ntxent": _both("NTXentLoss", 0.2),
    "nca": _both("NCALoss", 2.0),
    "instance": _both("InstanceLoss", 8.0, reference=False),
    "fast_ap": _both("FastAPLoss", 7, reference=False),
    "smooth_ap": _both("SmoothAPLoss", 0.2, reference=False, make=_square_batch),
    "angular": _both("AngularLoss", 45.0),
    "intra_pair_variance": _both("IntraPairVarianceLoss", 0.05, 0.1),
    # PML's margin is in degrees
    "tuplet_margin": _both("TupletMarginLoss", 0.2, 16.0, pml_args=(math.degrees(0.2), 16.0)),
    "ranked_list": _both("RankedListLoss", 0.4, 2.0, reference=False),
}


def _assert_same_reducer_calls(ours_factory, theirs_factory, emb, labels, **kwargs):
    """The loss (from a recording reducer) hands its reducer the same kinds and (index,
    value) terms as PML's hands PML's reducer, and the two values agree."""
    recorder = _Recorder(emb, labels)
    ours, theirs = ours_factory(recorder), theirs_factory(_PMLRecorder())
    _PML_CALLS.clear()
    value = ours(emb, labels, **kwargs)
    expected = theirs(emb, labels, **kwargs)
    tiny = 1e-6 if emb.dtype == torch.float32 else 1e-9
    assert value.item() == pytest.approx(expected.item(), rel=1e-5, abs=tiny)
    pml_calls = [c for c in _PML_CALLS if torch.is_tensor(c[2])]
    assert [c[0] for c in recorder.calls] == [c[0] for c in pml_calls]
    for (kind, idx, vals), (_, pidx, pvals) in zip(recorder.calls, pml_calls, strict=True):
        rows, pml_rows = _rows(kind, idx, vals), _rows(kind, pidx, pvals)
        assert [k for k, _ in rows] == [k for k, _ in pml_rows], kind
        # PML's Smooth-AP sums in float32 whatever the input's dtype
        assert [v for _, v in rows] == pytest.approx([v for _, v in pml_rows], rel=1e-5,
                                                     abs=tiny)


@pytest.mark.parametrize("name, reference",
                         [(n, False) for n in RECORDED]
                         + [(n, True) for n, case in RECORDED.items() if case[2]])
def test_reducer_receives_pml_s_terms_with_their_indices(name, reference):
    """The same kinds and (index, value) terms as PML's reducer receives (the anchors of
    element terms, the pairs of pair terms), also against a reference set and with a
    miner's tuples (which weight the terms of FastAP, NCA and Smooth-AP)."""
    ours_factory, theirs_factory, _, make = RECORDED[name]
    for seed in range(2):
        emb, labels = make(seed)
        kwargs = {}
        if reference:
            ref, ref_labels = _batch(seed + 7, n=11)
            kwargs = {"ref_emb": ref, "ref_labels": ref_labels}
        _assert_same_reducer_calls(ours_factory, theirs_factory, emb, labels, **kwargs)
        if name not in ("instance", "ranked_list") and not reference:
            _assert_same_reducer_calls(ours_factory, theirs_factory, emb, labels,
                                       indices_tuple=_mined(emb, labels, "triplets"))


# --- Edge cases against PML ----------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_supcon_with_singletons_one_class_and_raw_embeddings(dtype):
    """Anchors without a positive (singleton classes) cost nothing and get a finite zero
    gradient in float64 too; a batch of one class (no negative pair) gives 0, as PML; the
    Euclidean distance of unnormalised embeddings is PML's ``LpDistance(normalize=False)``."""
    emb, labels = _batch(3, n=12, dtype=dtype)
    labels = torch.tensor([0, 0, 0, 1, 1, 2, 3, 4, 5, 6, 6, 7])  # singletons 2, 3, 4, 5, 7
    _agree(losses.SupConLoss(0.2), pml_losses.SupConLoss(0.2), emb, labels)
    one = torch.zeros(12, dtype=torch.long)
    v, g = _value_and_grad(losses.SupConLoss(0.2), emb, one)
    assert v.item() == 0 and torch.count_nonzero(g) == 0
    _agree(losses.SupConLoss(0.2), pml_losses.SupConLoss(0.2), emb, one)
    for n in (False, True):
        ours = losses.SupConLoss(0.7, distance="euclidean", normalize=n)
        theirs = pml_losses.SupConLoss(0.7, distance=pml_distances.LpDistance(
            normalize_embeddings=n))
        for kind in (None, "pairs"):
            _agree(ours, theirs, emb * 3, labels, indices_tuple=_mined(emb, labels, kind))


def _reference(seed=11, n=9):
    ref, _ = _batch(seed, n=n)
    return ref, torch.tensor([0, 0, 0, 2, 2, 2, 3, 3, 3])[:n]


@pytest.mark.parametrize("dtype", DTYPES)
def test_nca_one_or_two_samples_against_a_reference_set(dtype):
    """One sample: zero (PML returns zero for a batch of at most one, even with a reference
    set), a graph-connected zero without one; two samples, one of a class absent from the
    reference set: its term is dropped and the mean is over the single other term."""
    ref, ref_labels = _reference()
    ref = ref.to(dtype)
    one, _ = _batch(5, n=1, dtype=dtype)
    for kwargs in ({"ref_emb": ref, "ref_labels": ref_labels}, {}):
        value, grad = _value_and_grad(losses.NCALoss(2.0), one, torch.tensor([0]), **kwargs)
        assert value.item() == 0 and torch.count_nonzero(grad) == 0
        _agree(losses.NCALoss(2.0), pml_losses.NCALoss(2.0), one, torch.tensor([0]), **kwargs)
    two, _ = _batch(6, n=2, dtype=dtype)
    value = _agree(losses.NCALoss(2.0), pml_losses.NCALoss(softmax_scale=2.0), two,
                   torch.tensor([0, 1]), ref_emb=ref, ref_labels=ref_labels)
    assert value > 0.1


@pytest.mark.parametrize("labels", [
    torch.tensor([3.0, 1.0, 1.0, 7.5, 3.0, 3.0, 1.0, 7.5, 7.5, 3.0]),
    torch.tensor([3, 1, 1, 7, 3, 3, 1, 7, 7, 3], dtype=torch.int32),
])
def test_instance_loss_with_float_and_int32_labels(labels):
    """Labels of any numeric dtype (documented): the targets are the ranks of the labels,
    as PML's ``torch.unique(..., return_inverse=True)``."""
    emb, _ = _batch(9, n=10)
    for dtype in DTYPES:
        _agree(losses.InstanceLoss(5.0), pml_losses.InstanceLoss(gamma=5), emb.to(dtype),
               labels)


DEGENERATE = {"one class": torch.zeros(8, dtype=torch.long),
              "singletons": torch.arange(8),
              "one pair": torch.tensor([0, 0, 1, 2, 3, 4, 5, 6])}


@pytest.mark.parametrize("labels", list(DEGENERATE))
@pytest.mark.parametrize("name", [n for n in RECORDED
                                  if n not in ("smooth_ap", "ranked_list", "angular",
                                               "intra_pair_variance", "tuplet_margin")])
def test_batches_without_positive_or_negative_pairs_match_pml(name, labels):
    """No positive pair (singletons), no negative pair (one class), or a single positive
    pair: the value and gradient equal PML's (where PML's NCA divides 0 by 0 the loss is a
    documented zero), and a reducer receives the terms PML's receives (none when PML returns
    zero)."""
    ours_factory, theirs_factory, _, _ = RECORDED[name]
    labels = DEGENERATE[labels]
    for dtype in DTYPES:
        emb, _ = _batch(4, n=8, dtype=dtype)
        v1, g1 = _value_and_grad(ours_factory(None), emb, labels)
        v2, g2 = _value_and_grad(theirs_factory(None), emb, labels)
        assert torch.isfinite(v1) and torch.isfinite(g1).all()
        if torch.isnan(v2):
            assert name == "nca" and v1.item() == 0 and torch.count_nonzero(g1) == 0
        else:
            torch.testing.assert_close(v1, v2.to(dtype).reshape(()), **TOL[dtype])
            torch.testing.assert_close(g1, g2, **TOL[dtype])
        if not (name == "nca" and torch.isnan(v2)):
            _assert_same_reducer_calls(ours_factory, theirs_factory, emb, labels)


# --- NT-Xent --------------------------------------------------------------------------------

def _ntxent_pair(dtype, a1, p, a2, n, temperature=0.2, **kwargs):
    emb, _ = _batch(2, n=6, dtype=dtype)
    labels = torch.tensor([0, 0, 0, 1, 1, 2])
    indices = tuple(torch.tensor(t, dtype=torch.long) for t in (a1, p, a2, n))
    return _agree(losses.NTXentLoss(temperature, **kwargs),
                  pml_losses.NTXentLoss(temperature, **{k: v for k, v in kwargs.items()
                                                         if k == "distance"}),
                  emb, labels, indices_tuple=indices)


@pytest.mark.parametrize("dtype", DTYPES)
def test_ntxent_with_one_positive_or_one_negative_pair(dtype):
    """One positive and one negative pair give their loss (PML 2.9 returns 0 there, its
    off-by-one guard: see tests/test_pml_parity_edge.py), as do two positives and one
    negative, or one positive and two negatives; no negatives or no positives give 0."""
    emb, _ = _batch(2, n=6, dtype=dtype)
    labels = torch.tensor([0, 0, 0, 1, 1, 2])
    one_each = tuple(torch.tensor(t) for t in ([0], [1], [0], [3]))
    # PML past its guard: the positive pair listed twice has the same mean term
    twice = tuple(torch.tensor(t) for t in ([0, 0], [1, 1], [0], [3]))
    v1, g1 = _value_and_grad(losses.NTXentLoss(0.2), emb, labels, indices_tuple=one_each)
    v2, g2 = _value_and_grad(pml_losses.NTXentLoss(0.2), emb, labels, indices_tuple=twice)
    assert v1 > 0
    torch.testing.assert_close(v1, v2.reshape(()), **TOL[dtype])
    torch.testing.assert_close(g1, g2, **TOL[dtype])
    assert _ntxent_pair(dtype, [0, 1], [1, 2], [0], [3]) > 0
    assert _ntxent_pair(dtype, [0], [1], [0, 0], [3, 5]) > 0
    assert _ntxent_pair(dtype, [], [], [0, 1], [3, 5]).item() == 0
    assert _ntxent_pair(dtype, [0, 1], [1, 2], [], []).item() == 0


@pytest.mark.parametrize("dtype", DTYPES)
def test_ntxent_underflowing_ratio_is_capped_as_pml(dtype):
    """A positive pair far less similar than its negatives at a low temperature: the ratio
    underflows to 0 and the term is PML's ``-log(0 + tiny)`` (about 87 or 708), not NaN."""
    value = _ntxent_pair(dtype, [0, 3], [1, 4], [0, 0, 3], [3, 4, 0], temperature=0.0005)
    assert 50 < value.item() < 1000


def test_ntxent_repeated_negative_pairs_in_float64():
    """A negative pair listed twice counts twice; the log of its multiplicity is taken in
    float64 (a float32 count would move the loss by about 1e-9, relative)."""
    emb, _ = _batch(2, n=6)
    labels = torch.tensor([0, 0, 0, 1, 1, 2])
    indices = tuple(torch.tensor(t) for t in ([0, 1, 2], [1, 2, 0], [0, 0, 0, 1, 1, 2],
                                              [3, 3, 3, 4, 5, 5]))
    for distance, pml_distance in (("cosine_similarity", pml_distances.CosineSimilarity()),
                                   ("euclidean", pml_distances.LpDistance(
                                       normalize_embeddings=False))):
        kwargs = {"normalize": False} if distance == "euclidean" else {}
        _agree(losses.NTXentLoss(0.3, distance=distance, **kwargs),
               pml_losses.NTXentLoss(0.3, distance=pml_distance), emb * 2, labels,
               tol=dict(rtol=1e-13, atol=1e-15), indices_tuple=indices)


# --- FastAP ---------------------------------------------------------------------------------

def test_fast_ap_miner_weights_in_float64():
    """Miner weights (occurrences over the most frequent, e.g. 3/7) in float64, as PML's:
    float32 weights would move the loss by about 1e-8, relative."""
    emb, labels = _batch(5, n=16)
    indices = _mined(emb, labels, "triplets")
    for num_bins in (10, 4):
        ours, theirs = losses.FastAPLoss(num_bins), pml_losses.FastAPLoss(num_bins)
        value = _agree(ours, theirs, emb, labels, tol=dict(rtol=1e-12, atol=1e-14),
                       indices_tuple=indices)
        assert value > 0.01


# --- P2SGrad ----------------------------------------------------------------------------------

def test_p2sgrad_class_weights_start_as_pml_s():
    """Under the same seed the class weights are PML's: uniform on [-1, 1], then unit
    columns."""
    for seed in range(3):
        torch.manual_seed(seed)
        ours = losses.P2SGradLoss(num_classes=5, embedding_size=6)
        torch.manual_seed(seed)
        theirs = pml_losses.P2SGradLoss(descriptors_dim=6, num_classes=5)
        torch.testing.assert_close(ours.W.data, theirs.weight.data, rtol=0, atol=0)
        emb, labels = _batch(seed, n=12, dim=6, n_classes=5)
        # PML renormalises its float32 weights before casting them: float32 agreement.
        _agree(ours, theirs, emb, labels, TOL[torch.float32])


def test_p2sgrad_refuses_miners_and_reference_sets_with_its_messages():
    loss = losses.P2SGradLoss(num_classes=3, embedding_size=4)
    emb, labels = _batch(0, n=6, dim=4, n_classes=3)
    triplets = (torch.tensor([0]), torch.tensor([1]), torch.tensor([2]))
    with pytest.raises(ValueError) as info:
        loss(emb, labels, indices_tuple=triplets)
    assert str(info.value) == ("P2SGradLoss does not weight samples by miner tuples (neither "
                               "does pytorch-metric-learning); use it without a miner.")
    for kwargs in ({"ref_emb": emb}, {"ref_labels": labels},
                   {"ref_emb": emb, "ref_labels": labels}):
        with pytest.raises(ValueError, match="ref_emb and ref_labels are not supported"):
            loss(emb, labels, **kwargs)


# --- VICReg ---------------------------------------------------------------------------------

class _ViewRecorder(losses.MeanReducer):
    """A mean reducer that records its calls and checks it is handed the first view and no
    labels."""

    def __init__(self, z1):
        super().__init__()
        self.z1, self.calls = z1, []

    def forward(self, losses_, indices, kind, embeddings, labels):
        assert embeddings is self.z1 and labels is None
        self.calls.append((kind, indices, losses_))
        return super().forward(losses_, indices, kind, embeddings, labels)


def test_vicreg_reducer_receives_pml_s_terms_with_their_indices():
    """Invariance terms per sample, variance terms per dimension (one call per view), the
    covariance already reduced: the kinds, indices and values of PML's reducer calls."""
    from test_mutation_kills_losses2 import _PML_CALLS, _PMLRecorder

    z1, _ = _batch(1, n=12, dim=5)
    z2 = 0.5 * z1 + 0.4 * _batch(2, n=12, dim=5)[0]
    recorder = _ViewRecorder(z1)
    value = losses.VICRegLoss(2.0, 3.0, 0.5, reducer=recorder)(z1, ref_emb=z2)
    _PML_CALLS.clear()
    expected = pml_losses.VICRegLoss(2.0, 3.0, 0.5, reducer=_PMLRecorder())(z1, ref_emb=z2)
    assert value.item() == pytest.approx(expected.item(), rel=1e-9)
    assert [c[0] for c in recorder.calls] == [c[0] for c in _PML_CALLS]
    for (kind, idx, vals), (_, pidx, pvals) in zip(recorder.calls, _PML_CALLS, strict=True):
        assert _rows(kind, idx, vals) == _rows(kind, pidx, pvals), kind


def test_vicreg_usage_errors_say_what_to_do():
    z1, labels = _batch(1, n=6, dim=3)
    loss = losses.VICRegLoss()
    usage = ("VICRegLoss is self-supervised: call it as loss(z1, ref_emb=z2) on two views of "
             "a batch, without labels or miner tuples. MetricEmbedder trains on labels and "
             "cannot use it; write your own loop for it.")
    triplets = (torch.tensor([0]), torch.tensor([1]), torch.tensor([2]))
    for kwargs in ({"labels": labels}, {"ref_labels": labels}, {"indices_tuple": triplets},
                   {"labels": labels, "indices_tuple": triplets}):
        with pytest.raises(TypeError) as info:
            loss(z1, ref_emb=z1, **kwargs)
        assert str(info.value) == usage
    with pytest.raises(ValueError) as info:
        loss(z1)
    assert str(info.value) == "VICRegLoss needs the second view: loss(z1, ref_emb=z2)."
    with pytest.raises(ValueError) as info:
        loss(z1[:1], ref_emb=z1[:1])
    assert str(info.value) == ("VICRegLoss needs at least 2 samples per batch (it uses "
                               "their variance).")


# --- Manifold -------------------------------------------------------------------------------

def _manifold_pair(seed, num_classes=5, dim=6, **kwargs):
    """Our ManifoldLoss and PML's (meta-classes as labels) built under the same seed."""
    torch.manual_seed(seed)
    ours = losses.ManifoldLoss(num_classes, dim, **kwargs)
    pml_kwargs = {{"lambda_c": "lambdaC"}.get(k, k): v for k, v in kwargs.items()}
    torch.manual_seed(seed)
    theirs = pml_losses.ManifoldLoss(l=dim, K=num_classes, **pml_kwargs)
    return ours, theirs


@pytest.mark.parametrize("dtype", DTYPES)
def test_manifold_defaults_and_proxies_equal_pml_s(dtype):
    """Default lambda_c, alpha and margin, and the proxies drawn (``randn``) under one
    seed, are PML's; labels that leave out the last classes still index all proxies."""
    for seed, labels in ((0, None), (1, torch.tensor([0, 1, 2, 0, 1, 2, 2, 1]))):
        ours, theirs = _manifold_pair(seed)
        torch.testing.assert_close(ours.proxies.data, theirs.proxies.data, rtol=0, atol=0)
        emb, random_labels = _batch(seed, n=8, dim=6, n_classes=5, dtype=dtype)
        labels = random_labels if labels is None else labels
        ours, theirs = ours.to(dtype), theirs.to(dtype)
        e1, e2 = emb.clone().requires_grad_(True), emb.clone().requires_grad_(True)
        v1, v2 = ours(e1, labels), theirs(e2, None, labels)
        v1.backward()
        v2.backward()
        tol = TOL[torch.float32]  # PML inverts in float32 whatever the dtype
        torch.testing.assert_close(v1, v2.reshape(()), **tol)
        torch.testing.assert_close(e1.grad, e2.grad, **tol)
        assert v1 > 0


def test_manifold_random_walk_in_float64_and_half_precision():
    """The random walk ``(1 - alpha) (I - alpha S_bar)^-1`` is solved in the input's
    precision (float64 to 1e-12, against ``torch.linalg.solve``); bfloat16 inputs are
    inverted in float32 and the loss stays bfloat16, near the float32 loss."""
    emb, labels = _batch(3, n=8, dim=6, n_classes=5)
    ours, _ = _manifold_pair(3, alpha=0.7, margin=0.01)
    ours = ours.double()
    points = torch.cat([emb, ours.proxies.data])
    unit = torch.nn.functional.normalize(points, dim=1)
    eye = torch.eye(len(points), dtype=torch.float64)
    affinity = torch.exp((unit @ unit.T).clamp(min=0) / 0.5) * (1 - eye)
    scale = affinity.sum(1) ** -0.5
    expected = 0.3 * torch.linalg.solve(eye - 0.7 * scale[:, None] * affinity * scale, eye)
    torch.testing.assert_close(ours._random_walk(points), expected, rtol=1e-12, atol=1e-14)
    value = ours.float()(emb.float(), labels)
    half = ours.to(torch.bfloat16)(emb.to(torch.bfloat16), labels)
    assert half.dtype == torch.bfloat16
    assert half.float().item() == pytest.approx(value.item(), rel=0.05)


def test_manifold_hard_proxy_term_keeps_ties_with_the_margin():
    """A proxy exactly as close as the sample's own (excess 0 at margin 0) counts, as in
    PML (only negative excesses are dropped): log(1 + e^0)."""
    from skmetric.deep.losses.manifold import _hard_proxy_term

    sim = torch.tensor([[0.5, 0.5, 0.1], [0.2, 0.9, 0.3]], dtype=torch.float64)
    term = _hard_proxy_term(sim, torch.tensor([0, 1]), 0.0)
    assert term.item() == pytest.approx((torch.log(torch.tensor(2.0)).item() + 0) / 2)


def test_manifold_refuses_miner_tuples_with_its_message():
    loss = losses.ManifoldLoss(3, 4)
    emb, labels = _batch(0, n=6, dim=4, n_classes=3)
    with pytest.raises(ValueError) as info:
        loss(emb, labels, (torch.tensor([0]), torch.tensor([1]), torch.tensor([2])))
    assert str(info.value) == ("ManifoldLoss takes no miner tuples (miner=None in "
                               "MetricEmbedder); the labels give each sample's proxy.")


# --- Threshold-consistent margin, dynamic soft margin, SNR ---------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_tcm_pairs_exactly_at_the_margin_and_a_single_violation(dtype):
    """Pairs exactly at the margin count (with a zero term) in the mean, as PML's ``>=``; a
    single violating pair is its own mean; a batch whose similarities sum to exactly 0 gives a
    finite zero."""
    emb = torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1]], dtype=dtype)
    labels = torch.arange(4)
    for margin_minus in (0.0, 0.3):  # sims 0 (three pairs, both ways) and 1/sqrt(3)
        _agree(losses.ThresholdConsistentMarginLoss(margin_minus=margin_minus),
               pml_losses.ThresholdConsistentMarginLoss(margin_minus=margin_minus), emb,
               labels)
    one = tuple(torch.tensor(t, dtype=torch.long) for t in ([], [], [0], [3]))
    value = _agree(losses.ThresholdConsistentMarginLoss(margin_minus=0.3),
                   pml_losses.ThresholdConsistentMarginLoss(margin_minus=0.3), emb, labels,
                   indices_tuple=one)
    assert value.item() == pytest.approx(3 ** -0.5 - 0.3)
    opposite = torch.tensor([[1.0, 0.0], [-1.0, 0.0]], dtype=dtype)
    value, grad = _value_and_grad(losses.ThresholdConsistentMarginLoss(), opposite,
                                  torch.tensor([0, 1]))
    assert value.item() == 0 and torch.isfinite(grad).all()


def test_dynamic_soft_margin_without_triplets_one_triplet_and_below_min_val():
    """No triplet: a zero (and the histogram untouched); one triplet: PML's value; every
    difference below ``min_val``: all on the first node, so the loss is the mean difference."""
    emb, _ = _batch(2, n=6, dim=4)
    loss = losses.DynamicSoftMarginLoss()
    value, grad = _value_and_grad(loss, emb, torch.zeros(6, dtype=torch.long))
    assert value.item() == 0 and torch.count_nonzero(grad) == 0
    assert torch.count_nonzero(loss.hist_) == 0
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    one = tuple(torch.tensor([t]) for t in (0, 1, 2))
    with torch.no_grad():
        expected = pml_losses.DynamicSoftMarginLoss()(emb, labels, indices_tuple=one)
    value = losses.DynamicSoftMarginLoss()(emb, labels, indices_tuple=one)
    torch.testing.assert_close(value, expected.reshape(()).to(value.dtype))
    # Clustered: each positive much closer than each negative (differences near -1.4).
    g = torch.Generator().manual_seed(0)
    centres = torch.eye(4, dtype=torch.float64)[:3]
    emb = centres[labels] + 0.01 * torch.randn(6, 4, generator=g, dtype=torch.float64)
    loss = losses.DynamicSoftMarginLoss(min_val=-0.5, num_bins=4)
    unit = torch.nn.functional.normalize(emb, dim=1)
    dist = torch.cdist(unit, unit)
    diffs = [dist[a, p] - dist[a, n] for a in range(6) for p in range(6) for n in range(6)
             if a != p and labels[a] == labels[p] and labels[a] != labels[n]]
    assert max(diffs) < -0.5
    assert loss(emb, labels).item() == pytest.approx(torch.stack(diffs).mean().item())
    assert loss.hist_[0].item() == pytest.approx(1.0)


def test_snr_contrastive_reports_its_distance():
    loss = losses.SignalToNoiseRatioContrastiveLoss(0.1, 0.9, normalize=False)
    assert loss.distance == "snr"
    assert "distance='snr'" in repr(loss) and "normalize=False" in repr(loss)


# --- Histogram, ranked list ----------------------------------------------------------------

def test_histogram_bins_and_degenerate_batches_match_pml():
    """``delta`` and ``n_bins`` must agree (delta = 2 / n_bins); a batch without a triplet
    gives a finite zero; two singleton classes make no pair between them (no triplet has
    either as anchor with a positive), as PML's triplets."""
    assert losses.HistogramLoss(n_bins=10, delta=0.2).bin_width == 0.2
    assert losses.HistogramLoss(n_bins=8, delta=0.25).bin_width == 0.25
    with pytest.raises(ValueError, match="delta = 2 / n_bins"):
        losses.HistogramLoss(n_bins=10, delta=0.3)
    emb, _ = _batch(3, n=10)
    value, grad = _value_and_grad(losses.HistogramLoss(n_bins=10), emb,
                                  torch.zeros(10, dtype=torch.long))
    assert value.item() == 0 and torch.isfinite(grad).all()
    labels = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 3, 4])  # 3 and 4 are singletons
    for dtype in DTYPES:
        _agree(losses.HistogramLoss(n_bins=10), pml_losses.HistogramLoss(n_bins=10),
               emb.to(dtype), labels, tol=dict(rtol=1e-5, atol=1e-6))


def test_ranked_list_documented_defaults_warning_and_ties():
    """The defaults are the documented margin=0.4, Tn=1.0 (PML has none); temperatures above
    5 warn, as PML's; a negative exactly at distance alpha is not a violation (PML's ``<``)."""
    import warnings

    emb, labels = _batch(4, n=12)
    _agree(losses.RankedListLoss(), pml_losses.RankedListLoss(margin=0.4, Tn=1.0), emb, labels)
    message = "Tp or Tn above 5: large temperatures may overflow exp()."
    for tp, tn in ((5.5, 1.0), (0.0, 5.5)):
        with pytest.warns(UserWarning) as record:
            losses.RankedListLoss(Tp=tp, Tn=tn)
        assert [str(w.message) for w in record] == [message]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        losses.RankedListLoss(Tp=5.0, Tn=5.0)
    on_alpha = torch.tensor([[0.0, 0.0], [0.5, 0.0], [2.0, 0.0], [0.0, 1.0]],
                            dtype=torch.float64)  # 0-2 at exactly alpha = 2
    tie_labels = torch.tensor([0, 0, 1, 1])
    _agree(losses.RankedListLoss(margin=0.5, Tn=1.0, alpha=2.0, normalize=False),
           pml_losses.RankedListLoss(margin=0.5, Tn=1.0, alpha=2.0,
                                     distance=pml_distances.LpDistance(
                                         normalize_embeddings=False)),
           on_alpha, tie_labels)


def test_manifold_logits_are_cosines_to_the_proxies():
    """``logits`` (the class scores of a fitted embedder) are the cosines of the embeddings
    and the proxies."""
    loss, _ = _manifold_pair(0)
    emb, _ = _batch(0, n=7, dim=6)
    loss = loss.double()
    expected = torch.tensor([[float(e @ p / (e.norm() * p.norm())) for p in loss.proxies.data]
                             for e in emb], dtype=torch.float64)
    torch.testing.assert_close(loss.logits(emb), expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("dtype", DTYPES)
def test_angular_and_intra_pair_variance_with_few_pairs_match_pml(dtype):
    """No positive pair (singletons): Angular is a finite zero. Intra-pair variance with one
    positive and one negative pair, two of a kind, or none: PML's loss of the pairs listed
    twice (the same means and mean terms; PML 2.9 returns 0 for a single pair of each kind,
    its off-by-one guard: see tests/test_pml_parity_edge.py)."""
    emb, _ = _batch(6, n=6, dtype=dtype)
    value, grad = _value_and_grad(losses.AngularLoss(), emb, torch.arange(6))
    assert value.item() == 0 and torch.count_nonzero(grad) == 0
    _agree(losses.AngularLoss(), pml_losses.AngularLoss(), emb, torch.arange(6))
    labels = torch.tensor([0, 0, 0, 1, 1, 2])
    for pairs in (([0], [1], [0], [3]), ([0, 1], [1, 2], [0], [3]), ([], [], [], [])):
        indices = tuple(torch.tensor(t, dtype=torch.long) for t in pairs)
        v1, g1 = _value_and_grad(losses.IntraPairVarianceLoss(0.05, 0.1), emb, labels,
                                 indices_tuple=indices)
        v2, g2 = _value_and_grad(pml_losses.IntraPairVarianceLoss(0.05, 0.1), emb, labels,
                                 indices_tuple=tuple(t.repeat(2) for t in indices))
        torch.testing.assert_close(v1, v2.reshape(()), **TOL[dtype])
        torch.testing.assert_close(g1, g2, **TOL[dtype])
    for few in (torch.tensor([0, 0, 1, 2, 3, 4]), torch.arange(6)):  # 2 or 0 positive pairs
        _agree(losses.IntraPairVarianceLoss(), pml_losses.IntraPairVarianceLoss(), emb, few)


@pytest.mark.parametrize("dtype", DTYPES)
def test_intra_pair_variance_of_one_sample_against_a_reference_set(dtype):
    """All pairs of a single sample: none alone (a zero); one positive and one negative pair
    against a reference set (a loss: the positive pair violates its mean's bound by itself;
    PML 2.9 returns 0 there), or two of a kind (a loss). The reference is PML on the
    reference set listed twice (every pair twice: the same means and mean terms)."""
    one, _ = _batch(8, n=1, dtype=dtype)
    value, grad = _value_and_grad(losses.IntraPairVarianceLoss(), one, torch.tensor([0]))
    assert value.item() == 0 and torch.count_nonzero(grad) == 0
    ref, _ = _batch(9, n=4, dtype=dtype)
    ref[0] = -2 * one[0]  # the positive opposite the sample: a cosine of -1, a violation
    for ref_labels in (torch.tensor([0, 1, 5, 5]), torch.tensor([0, 0, 5, 5]),
                       torch.tensor([0, 1, 1, 5])):
        keep = ref_labels != 5
        v1, g1 = _value_and_grad(losses.IntraPairVarianceLoss(0.05, 0.1), one * 3,
                                 torch.tensor([0]), ref_emb=ref[keep],
                                 ref_labels=ref_labels[keep])
        v2, g2 = _value_and_grad(pml_losses.IntraPairVarianceLoss(0.05, 0.1), one * 3,
                                 torch.tensor([0]), ref_emb=ref[keep].repeat(2, 1),
                                 ref_labels=ref_labels[keep].repeat(2))
        assert v1 > 0
        torch.testing.assert_close(v1, v2.reshape(()), **TOL[dtype])
        torch.testing.assert_close(g1, g2, **TOL[dtype])
