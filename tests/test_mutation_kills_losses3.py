"""Tests that kill mutants of the margin-softmax, proxy and lifted structure losses and of
the losses' shared machinery that survived ``scripts/mutation.py`` (fourth session; see
tests/README.md, "Scores (fourth session)").

The references are pytorch-metric-learning 2.9 (PML) given the same class weights, and the
losses' formulas written out here; values and gradients are compared, in float32 and
float64, with and without a miner's tuples.
"""

import math
import os
import warnings
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pml_losses = pytest.importorskip("pytorch_metric_learning.losses")

from skmetric.deep import losses  # noqa: E402


def _at_angles(w, labels, thetas, seed=0, dtype=torch.float64):
    """Embeddings at angle ``thetas[i]`` to the weight column of their class, of varied norms:
    ``r (cos t w + sin t u)`` with ``u`` a unit vector orthogonal to ``w``."""
    g = torch.Generator().manual_seed(seed)
    w = torch.nn.functional.normalize(w.to(torch.float64), dim=0)[:, labels].T
    u = torch.randn(w.shape, generator=g, dtype=torch.float64)
    u = torch.nn.functional.normalize(u - (u * w).sum(1, keepdim=True) * w, dim=1)
    t = torch.as_tensor(thetas, dtype=torch.float64)[:, None]
    r = 0.5 + 2 * torch.rand(len(labels), 1, generator=g, dtype=torch.float64)
    return (r * (torch.cos(t) * w + torch.sin(t) * u)).to(dtype)


def _grads(loss, emb, labels, tuples=None, params=()):
    emb = emb.clone().requires_grad_(True)
    value = loss(emb, labels, tuples)
    value.backward()
    return value.detach(), emb.grad, [p.grad for p in params]


# --- ArcFace past θ = π - m, and easy_margin ---------------------------------------------

C, D = 4, 6


def _arcface_batch(margin, dtype, seed=0):
    """Targets at angles on both sides of π - m (several past it), other samples random."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(D, C, generator=g, dtype=torch.float64)
    edge = math.pi - margin
    thetas = [0.3, 1.0, edge - 0.2, edge - 0.02, edge + 0.02, edge + 0.15,
              (edge + math.pi) / 2, math.pi - 0.1, 0.7, 2.0, edge + 0.3 * margin, 1.5]
    labels = torch.arange(len(thetas)) % C
    return _at_angles(w, labels, thetas, seed, dtype), labels, w.to(dtype)


def _tuples():
    a = torch.tensor([0, 0, 4, 5, 5, 5, 9])
    return a, (a + 1) % 12, (a + 6) % 12


@pytest.mark.parametrize("margin", [0.5, 1.2])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("mined", [False, True])
@pytest.mark.parametrize("sub_centers", [None, 2])
def test_arcface_past_pi_minus_margin_matches_pml(margin, dtype, mined, sub_centers):
    """Value, embedding and class-weight gradients equal PML's (which also continues the
    target logit as cos θ - m sin m past π - m), with several targets past π - m."""
    emb, labels, w = _arcface_batch(margin, dtype)
    scale = 7.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # margin 1.2 rad warns (degrees?)
        if sub_centers is None:
            ours = losses.ArcFaceLoss(C, D, margin=margin, scale=scale)
            pml = pml_losses.ArcFaceLoss(C, D, margin=math.degrees(margin), scale=scale)
            weights = w
        else:
            ours = losses.SubCenterArcFaceLoss(C, D, margin=margin, scale=scale,
                                               sub_centers=sub_centers)
            pml = pml_losses.SubCenterArcFaceLoss(num_classes=C, embedding_size=D,
                                                  margin=math.degrees(margin),
                                                  scale=scale, sub_centers=sub_centers)
            g = torch.Generator().manual_seed(3)
            weights = torch.repeat_interleave(w, sub_centers, dim=1)
            weights = weights + 0.3 * torch.randn(weights.shape, generator=g).to(dtype)
    ours.W.data = weights.clone()
    pml.W.data = weights.clone()
    tuples = _tuples() if mined else None
    v1, g1, (w1,) = _grads(ours, emb, labels, tuples, [ours.W])
    v2, g2, (w2,) = _grads(pml, emb, labels, tuples, [pml.W])
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-7, atol=1e-9)
    assert v1.dtype == dtype
    torch.testing.assert_close(v1, v2, **tol)
    torch.testing.assert_close(g1, g2, **tol)
    torch.testing.assert_close(w1, w2, **tol)


def _arcface_formula(cos, labels, margin, scale, easy):
    """Cross-entropy of ArcFace's logits from the paper (and insightface's easy_margin)."""
    target = cos.gather(1, labels[:, None])
    theta = torch.acos(target)
    plus = torch.cos(theta + margin)
    if easy:
        logit = torch.where(target > 0, plus, target)
    else:
        logit = torch.where(theta <= math.pi - margin, plus,
                            target - margin * math.sin(margin))
    logits = scale * cos.scatter(1, labels[:, None], logit)
    return torch.nn.functional.cross_entropy(logits, labels)


@pytest.mark.parametrize("margin", [0.5, 1.2])
@pytest.mark.parametrize("easy", [False, True])
def test_arcface_value_and_gradient_follow_the_formula(margin, easy):
    """Including targets past π - m and on both sides of cos θ = 0 (easy_margin)."""
    emb, labels, w = _arcface_batch(margin, torch.float64, seed=1)
    emb = torch.cat([emb, _at_angles(w, labels[:4], [math.pi / 2 - 0.01, math.pi / 2 + 0.01,
                                                      math.pi / 2 - 0.2, math.pi / 2 + 0.2])])
    labels = torch.cat([labels, labels[:4]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ours = losses.ArcFaceLoss(C, D, margin=margin, scale=5.0, easy_margin=easy).double()
    ours.W.data = w.clone()
    v1, g1, _ = _grads(ours, emb, labels)
    e = emb.clone().requires_grad_(True)
    cos = torch.nn.functional.normalize(e, dim=1) @ torch.nn.functional.normalize(w, dim=0)
    v2 = _arcface_formula(cos, labels, margin, 5.0, easy)
    v2.backward()
    torch.testing.assert_close(v1, v2.detach(), rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(g1, e.grad, rtol=1e-7, atol=1e-10)


# --- Shared machinery: miner weights, pair counts, means ----------------------------------

pml_lmu = pytest.importorskip("pytorch_metric_learning.utils.loss_and_miner_utils")


def _miner_outputs():
    """Triplets and pairs with repeated indices, a tuple of one of each, and empty ones."""
    a = torch.tensor([0, 0, 3, 5, 5, 5, 7])
    one = torch.tensor([2])
    empty = torch.tensor([], dtype=torch.long)
    return [(a, (a + 1) % 9, (a + 4) % 9),
            (a, (a + 2) % 9, torch.tensor([1, 1, 8]), torch.tensor([4, 6, 2])),
            (one, one + 1, one + 3), (one, one + 1, one + 2, one + 4),
            (empty, empty, empty), (empty, empty, empty, empty)]


@pytest.mark.parametrize("case", range(6))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("using_ref", [False, True])
def test_miner_weights_equal_pml_convert_to_weights(case, dtype, using_ref):
    """The per-sample weights of a miner's tuples (NCA, FastAP) are PML's, also when only
    the anchors index the batch (a reference set given)."""
    from skmetric.deep.losses._terms import miner_weights

    tuples = _miner_outputs()[case]
    n = 9
    ours = miner_weights(tuples, n, dtype, "cpu", anchors_only=using_ref)
    theirs = pml_lmu.convert_to_weights(tuples, torch.zeros(n), dtype, using_ref=using_ref)
    assert ours.dtype == dtype
    torch.testing.assert_close(ours, theirs, rtol=0, atol=0)
    default = miner_weights(tuples, n, dtype, "cpu")  # FastAP's call: every index counts
    torch.testing.assert_close(default, pml_lmu.convert_to_weights(tuples, torch.zeros(n), dtype))
    assert miner_weights(None, 4, dtype, "cpu").tolist() == [1.0] * 4
    assert miner_weights(None, 4, dtype, "cpu").dtype == dtype


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_pair_counts_count_repeated_pairs(dtype):
    from skmetric.deep.losses._terms import pair_counts

    rows = torch.tensor([0, 2, 2, 0, 2, 1])
    cols = torch.tensor([1, 3, 3, 1, 3, 0])
    counts = pair_counts(rows, cols, (3, 4), dtype)
    expected = torch.zeros(3, 4, dtype=torch.float64)
    for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
        expected[r, c] += 1
    assert counts.dtype == dtype
    torch.testing.assert_close(counts.double(), expected, rtol=0, atol=0)


def test_mean_or_zero_is_a_graph_connected_zero_without_terms():
    from skmetric.deep.losses._base import mean_or_zero

    emb = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    out = mean_or_zero(torch.zeros(0, dtype=torch.float64), emb)
    assert out.item() == 0.0
    out.backward()
    assert torch.equal(emb.grad, torch.zeros_like(emb))
    terms = torch.tensor([1.0, 2.0, 6.0], dtype=torch.float64)
    assert mean_or_zero(terms, emb).item() == 3.0


# --- The per-sample proxy losses: defaults, miner weights, reducers ------------------------

N_CLS, DIM = 5, 6


def _proxy_batch(seed=0, n=14, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    emb = torch.randn(n, DIM, generator=g, dtype=torch.float64) * (
        0.3 + 2 * torch.rand(n, 1, generator=g, dtype=torch.float64))
    labels = torch.arange(n) % N_CLS
    return emb.to(dtype), labels


def _l2_softmax_terms(loss, emb, labels):
    """Per-sample cross-entropy of ``scale x / ||x|| @ W + b`` (Ranjan et al.)."""
    logits = loss.scale * (emb / emb.norm(dim=1, keepdim=True)) @ loss.W
    if loss.b is not None:
        logits = logits + loss.b
    return torch.logsumexp(logits, 1) - logits.gather(1, labels[:, None])[:, 0]


def _normface_terms(loss, emb, labels):
    logits = loss.scale * (emb / emb.norm(dim=1, keepdim=True)) @ (loss.W / loss.W.norm(dim=0))
    return torch.logsumexp(logits, 1) - logits.gather(1, labels[:, None])[:, 0]


def _class_circle_terms(loss, emb, labels):
    """log(1 + sum_n exp(γ α_n (s_n - m)) exp(-γ α_p (s_p - 1 + m))), α constants."""
    cos = (emb / emb.norm(dim=1, keepdim=True)) @ (loss.W / loss.W.norm(dim=0))
    out = []
    for i, y in enumerate(labels.tolist()):
        sp, sn = cos[i, y], torch.cat([cos[i, :y], cos[i, y + 1:]])
        ap = (1 + loss.m - sp).clamp_min(0).detach()
        an = (sn + loss.m).clamp_min(0).detach()
        lp = -loss.gamma * ap * (sp - (1 - loss.m))
        ln = loss.gamma * an * (sn - loss.m)
        out.append(torch.nn.functional.softplus(torch.logsumexp(ln, 0) + lp))
    return torch.stack(out)


PER_SAMPLE = {
    "l2_softmax": (lambda: losses.L2SoftmaxLoss(N_CLS, DIM, scale=3.0), _l2_softmax_terms),
    "l2_softmax_nobias": (lambda: losses.L2SoftmaxLoss(N_CLS, DIM, scale=3.0, bias=False),
                          _l2_softmax_terms),
    "normface": (lambda: losses.NormFaceLoss(N_CLS, DIM, scale=4.0), _normface_terms),
    "class_circle": (lambda: losses.ClassCircleLoss(N_CLS, DIM, m=0.3, gamma=8.0),
                     _class_circle_terms),
}


@pytest.mark.parametrize("name", sorted(PER_SAMPLE))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("mined", [False, True])
def test_per_sample_proxy_losses_weight_mined_samples_as_pml(name, dtype, mined):
    """The loss is the mean of the per-sample terms (the paper's formula written out) times
    PML's miner weights (``convert_to_weights``): value and gradients."""
    make, terms_of = PER_SAMPLE[name]
    torch.manual_seed(0)
    loss = make().to(dtype)
    if getattr(loss, "b", None) is not None:
        loss.b.data = torch.linspace(-1, 1, N_CLS, dtype=dtype)
    emb, labels = _proxy_batch(dtype=dtype)
    a = torch.tensor([0, 0, 3, 5, 5, 5, 9])
    tuples = (a, (a + 5) % 14, (a + 1) % 14) if mined else None
    v1, g1, _ = _grads(loss, emb, labels, tuples)
    e = emb.clone().requires_grad_(True)
    w = pml_lmu.convert_to_weights(tuples, labels, dtype)
    v2 = (terms_of(loss, e, labels) * w).mean()
    v2.backward()
    tol = dict(rtol=1e-4, atol=1e-6) if dtype == torch.float32 else dict(rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(v1, v2.detach(), **tol)
    torch.testing.assert_close(g1, e.grad, **tol)


def test_l2_softmax_without_bias_learns_no_bias():
    with_bias = losses.L2SoftmaxLoss(N_CLS, DIM)
    without = losses.L2SoftmaxLoss(N_CLS, DIM, bias=False)
    assert [n for n, _ in with_bias.named_parameters()] == ["W", "b"]
    assert [n for n, _ in without.named_parameters()] == ["W"]
    assert without.b is None


# Documented defaults (the docstrings' "default=" values; PML's where PML has the loss).
DOCUMENTED = {
    "L2SoftmaxLoss": dict(scale=16.0, bias=True),
    "NormFaceLoss": dict(scale=20.0),  # PML's temperature=0.05
    "ClassCircleLoss": dict(m=0.25, gamma=256.0),
    "SoftTripleLoss": dict(centers_per_class=10, la=20.0, gamma=0.1, margin=0.01),
    "ArcFaceLoss": dict(margin=0.5, scale=64.0, easy_margin=False),
    "SubCenterArcFaceLoss": dict(margin=0.5, scale=64.0, easy_margin=False, sub_centers=3),
    "LargeMarginSoftmaxLoss": dict(margin=4, scale=1.0, lambda_start=1000.0,
                                   lambda_min=5.0, lambda_decay=0.12),
    "SphereFaceLoss": dict(margin=4, scale=1.0, lambda_start=1000.0, lambda_min=5.0,
                           lambda_decay=0.12),
}


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_proxy_loss_defaults_are_the_documented_ones(name):
    """A default-constructed loss computes what the documented defaults give (same
    weights), for the value, the gradient and the training-step state."""
    cls = getattr(losses, name)
    torch.manual_seed(0)
    default = cls(N_CLS, DIM).double()
    torch.manual_seed(0)
    explicit = cls(N_CLS, DIM, **DOCUMENTED[name]).double()
    for attr, value in DOCUMENTED[name].items():
        assert getattr(default, attr, None) in (value, None)  # L2Softmax keeps b, not bias
    emb, labels = _proxy_batch(1)
    for _ in range(2):  # L-Softmax's annealing advances with each training step
        v1, g1, _ = _grads(default, emb, labels)
        v2, g2, _ = _grads(explicit, emb, labels)
        assert v1.item() == v2.item()
        torch.testing.assert_close(g1, g2, rtol=0, atol=0)


class _Recorder(losses.MeanReducer):
    def __init__(self):
        super().__init__()
        self.calls = []

    def forward(self, losses_, indices, kind, embeddings, labels):
        self.calls.append((losses_.detach(), indices, kind, embeddings, labels))
        return super().forward(losses_, indices, kind, embeddings, labels)


@pytest.mark.parametrize("name", sorted(PER_SAMPLE))
def test_a_reducer_gets_each_sample_s_weighted_term_with_its_label(name):
    make, terms_of = PER_SAMPLE[name]
    torch.manual_seed(0)
    loss = make().double()
    rec = _Recorder()
    loss.reducer = rec
    emb, labels = _proxy_batch(2)
    a = torch.tensor([1, 1, 2, 7])
    tuples = (a, (a + 5) % 14, (a + 1) % 14)
    value = loss(emb, labels, tuples)
    ((terms, idx, kind, e, lab),) = rec.calls
    w = pml_lmu.convert_to_weights(tuples, labels, torch.float64)
    assert kind == "element"
    assert torch.equal(idx, torch.arange(len(emb)))
    assert torch.equal(lab, labels)
    assert torch.equal(e, emb)
    torch.testing.assert_close(terms, (terms_of(loss, emb, labels) * w).detach())
    torch.testing.assert_close(value, terms.mean())


@pytest.mark.parametrize("easy", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("sub_centers", [None, 1])
def test_arcface_on_or_opposite_its_class_weight_has_finite_gradients(easy, dtype,
                                                                      sub_centers):
    """cos θ_y exactly 1 or -1 (embeddings on the axis of, or opposite, their class weight):
    acos has an infinite slope there, so θ is taken at cos θ clamped 1e-7 inside [-1, 1]:
    the value is the formula's at θ = 0 or π (to that rounding) and no gradient is NaN."""
    kw = dict(margin=0.5, scale=4.0, easy_margin=easy)
    if sub_centers is None:
        loss = losses.ArcFaceLoss(C, D, **kw)
    else:
        loss = losses.SubCenterArcFaceLoss(C, D, sub_centers=sub_centers, **kw)
    loss = loss.to(dtype)
    loss.W.data = torch.eye(D, C, dtype=dtype)  # class c's weight is the unit vector e_c
    labels = torch.tensor([0, 1, 2, 3, 0, 1])
    emb = torch.eye(D, dtype=dtype)[labels] * torch.tensor([2.0, -3.0, 1.0, -1.0, 0.5, 2.0],
                                                            dtype=dtype)[:, None]
    emb[4:, 4:] = 1.0  # two samples off the axes, for a non-degenerate batch
    value, grad, (w_grad,) = _grads(loss, emb, labels, params=[loss.W])
    assert torch.isfinite(grad).all() and torch.isfinite(w_grad).all()
    cos = torch.nn.functional.normalize(emb.double(), dim=1) @ torch.eye(D, C,
                                                                         dtype=torch.float64)
    expected = _arcface_formula(cos.clamp(-1, 1), labels, 0.5, 4.0, easy)
    # The clamp moves θ = 0 to acos(1 - 1e-7) = 4.5e-4, a logit change of s sin(m) 4.5e-4.
    assert value.item() == pytest.approx(expected.item(), rel=1e-4)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("gamma", [0.1, 0.01])
@pytest.mark.parametrize("mined", [False, True])
def test_soft_triple_with_a_sharp_center_softmax_matches_pml(dtype, gamma, mined):
    """γ = 0.01 puts the logits cos/γ of a class's centers 200 apart at most: in float32
    each row must be shifted by its own class's maximum (exp overflows past 88, and a
    shared shift underflows whole classes)."""
    centers = 3
    ours = losses.SoftTripleLoss(N_CLS, DIM, centers_per_class=centers, gamma=gamma,
                                 la=20.0, margin=0.01)
    pml = pml_losses.SoftTripleLoss(N_CLS, DIM, centers_per_class=centers, gamma=gamma,
                                    la=20, margin=0.01)
    g = torch.Generator().manual_seed(5)
    w = torch.randn(DIM, N_CLS * centers, generator=g, dtype=torch.float64).to(dtype)
    ours.centers.data, pml.fc.data = w.clone(), w.clone()
    emb, labels = _proxy_batch(3, dtype=dtype)
    emb[:3] = w.T[[0, 4, 8]] * 2  # on a center: cos 1 there, far lower elsewhere
    a = torch.tensor([0, 0, 3, 5, 5, 5, 9])
    tuples = (a, (a + 5) % 14, (a + 1) % 14) if mined else None
    v1, g1, (w1,) = _grads(ours, emb, labels, tuples, [ours.centers])
    v2, g2, (w2,) = _grads(pml, emb, labels, tuples, [pml.fc])
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-7, atol=1e-9)
    assert torch.isfinite(v1)
    torch.testing.assert_close(v1, v2, **tol)
    torch.testing.assert_close(g1, g2, **tol)
    torch.testing.assert_close(w1, w2, **tol)


@pytest.mark.parametrize("start", [0.0, 1.0, 3.0])
def test_large_margin_current_lambda_follows_the_schedule(start):
    """λ_t = max(start / (1 + decay t), λ_min), and 0 when start = 0 (no annealing)."""
    loss = losses.SphereFaceLoss(N_CLS, DIM, lambda_start=start, lambda_min=0.5,
                                 lambda_decay=0.5)
    emb, labels = _proxy_batch(4)
    for t in range(4):
        expected = 0.0 if start == 0 else max(start / (1 + 0.5 * t), 0.5)
        assert loss.current_lambda() == pytest.approx(expected, rel=1e-6, abs=0)  # float32
        loss(emb.float(), labels)


def test_mean_nonzero_of_constant_terms_stays_in_the_graph():
    """Terms that do not depend on the embeddings (e.g. constant hinge values): the mean of
    the positive ones, still backward-able with zero gradients, as PML's AvgNonZeroReducer."""
    from skmetric.deep.losses._base import mean_nonzero

    pml_reducers = pytest.importorskip("pytorch_metric_learning.reducers")
    emb = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    terms = torch.tensor([1.0, 0.0, 3.0, 0.0], dtype=torch.float64)
    out = mean_nonzero(terms, emb)
    ref = pml_reducers.AvgNonZeroReducer()(
        {"loss": {"losses": terms, "indices": torch.arange(4), "reduction_type": "element"}},
        emb, torch.zeros(4))
    assert out.item() == ref.item() == 2.0
    out.backward()
    assert torch.equal(emb.grad, torch.zeros_like(emb))
    none = mean_nonzero(torch.zeros(4, dtype=torch.float64), emb)
    assert none.item() == 0.0 and none.requires_grad


def _lifted_batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    emb = torch.randn(8, 4, generator=g, dtype=torch.float64)
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    return emb, labels


_E = torch.tensor([], dtype=torch.long)
LIFTED_TUPLES = {
    "one positive pair, several negatives": (torch.tensor([0]), torch.tensor([1]),
                                             torch.tensor([0, 0, 1]), torch.tensor([2, 5, 7])),
    "several positive pairs, one negative": (torch.tensor([0, 2, 2]), torch.tensor([1, 3, 3]),
                                             torch.tensor([2]), torch.tensor([6])),
    # (4, 5): one negative term in all (the sum of exps is exactly 1 after the shift);
    # (0, 1): none. (With one pair of each kind PML returns 0 whatever they are, skmetric
    # the loss of the pairs: that case is left out.)
    "a pair whose anchors have one negative": (torch.tensor([4, 0]), torch.tensor([5, 1]),
                                               torch.tensor([4]), torch.tensor([1])),
    "negatives only": (_E, _E, torch.tensor([0, 3]), torch.tensor([4, 6])),
    "positives only": (torch.tensor([0, 6]), torch.tensor([1, 7]), _E, _E),
}


@pytest.mark.parametrize("case", sorted(LIFTED_TUPLES))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_lifted_structure_with_few_mined_pairs_matches_pml(case, dtype):
    """Miner outputs with one positive or one negative pair, or none of one kind: value and
    gradient equal PML's (zero, not NaN, without pairs of both kinds)."""
    emb, labels = _lifted_batch()
    emb = emb.to(dtype)
    tuples = LIFTED_TUPLES[case]
    for neg_margin in (1.0, 2.5):
        v1, g1, _ = _grads(losses.LiftedStructureLoss(neg_margin=neg_margin), emb, labels,
                           tuples)
        v2, g2, _ = _grads(pml_losses.LiftedStructureLoss(neg_margin=neg_margin), emb,
                           labels, tuples)
        tol = dict(rtol=1e-5, atol=1e-6) if dtype == torch.float32 else {}
        torch.testing.assert_close(v1, v2, **tol)
        torch.testing.assert_close(g1, g2, **tol)
        if "only" not in case:
            assert v1.item() > 0


@pytest.mark.parametrize("margin", [0.5, 0.3])
def test_arcface_boundaries_are_pml_s_and_insightface_s(margin):
    """At θ = π - m exactly the margin still applies (PML's ``angles <= π - m``: cos π = -1);
    with easy_margin, cos θ = 0 exactly keeps the plain cosine (insightface's ``cos > 0``)."""
    edge = math.pi - margin
    c = torch.tensor([math.cos(edge)], dtype=torch.float64)
    assert torch.acos(c).item() == edge  # the angle round-trips exactly for these margins
    loss = losses.ArcFaceLoss(C, D, margin=margin)
    assert loss.target_logit(c).item() == pytest.approx(-1.0, abs=1e-12)
    pml = pml_losses.ArcFaceLoss(C, D, margin=math.degrees(margin))
    pml.margin = margin  # the same float as ours (degrees round-trip to within an ulp)
    assert pml.modify_cosine_of_target_classes(c).item() == pytest.approx(-1.0, abs=1e-12)
    easy = losses.ArcFaceLoss(C, D, margin=margin, easy_margin=True)
    zero = torch.zeros(1, dtype=torch.float64)
    assert easy.target_logit(zero).item() == 0.0
    assert easy.target_logit(zero + 1e-9).item() == pytest.approx(-math.sin(margin), abs=1e-8)


@pytest.mark.parametrize("cls", ["ArcFaceLoss", "SubCenterArcFaceLoss"])
def test_arcface_degrees_warning_text_threshold_and_caller(cls):
    """Margins of 1 rad or more warn (documented), with the full advice, pointing at the
    line that built the loss."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        getattr(losses, cls)(3, 4, margin=0.999)
        getattr(losses, cls)(3, 4, margin=1.0)
    (w,) = caught
    assert w.category is UserWarning
    assert "skmetric" not in Path(w.filename).parts
    if "MUTANT_UNDER_TEST" not in os.environ:  # mutmut's trampoline adds stack frames
        assert w.filename == __file__
    assert str(w.message) == (
        "ArcFace margin=1.0 is read in radians (57 degrees), far above the usual 0.5 rad "
        "(28.6 degrees). If you meant degrees, pass margin=math.radians(1.0) = 0.0175.")


def test_large_margin_step_counter_and_lambda_floor():
    """The step counter is an integer (a float32 one would stop at 2**24 steps) and λ stops
    at the documented lambda_min = 5 once 1000 / (1 + 0.12 t) falls below it."""
    loss = losses.LargeMarginSoftmaxLoss(N_CLS, DIM)
    assert loss.n_steps.dtype == torch.long
    loss.n_steps.fill_(2**24)
    emb, labels = _proxy_batch(5)
    loss(emb.float(), labels)
    assert int(loss.n_steps) == 2**24 + 1
    loss.n_steps.fill_(1600)  # 1000 / (1 + 0.12 * 1600) = 5.18
    assert loss.current_lambda() == pytest.approx(1000 / (1 + 0.12 * 1600), rel=1e-6)
    loss.n_steps.fill_(1700)
    assert loss.current_lambda() == 5.0


def test_indices_into_a_larger_reference_set_are_accepted():
    """A miner's positives and negatives index ``ref_emb`` (here 12 rows for a batch of 6):
    checked against its size, not the batch's; value and gradient equal PML's."""
    g = torch.Generator().manual_seed(0)
    emb = torch.randn(6, 4, generator=g, dtype=torch.float64)
    ref = torch.randn(12, 4, generator=g, dtype=torch.float64)
    labels, ref_labels = torch.arange(6) % 3, torch.arange(12) % 3
    tuples = (torch.tensor([0, 1, 5]), torch.tensor([9, 10, 11]),
              torch.tensor([0, 2, 4]), torch.tensor([7, 11, 8]))
    results = []
    for loss in (losses.LiftedStructureLoss(), pml_losses.LiftedStructureLoss()):
        e = emb.clone().requires_grad_(True)
        value = loss(e, labels, tuples, ref_emb=ref, ref_labels=ref_labels)
        value.backward()
        results.append((value.detach(), e.grad))
    torch.testing.assert_close(results[0], results[1])
    assert results[0][0].item() > 0


def test_a_loss_of_the_whole_batch_refuses_a_miner_s_tuples():
    emb, labels = _proxy_batch(6)
    a = torch.tensor([0, 1])
    with pytest.raises(ValueError, match="InstanceLoss uses the whole batch: indices_tuple"):
        losses.InstanceLoss()(emb, labels, (a, a + 5, a + 1))


def test_a_self_reduced_loss_hands_its_reducer_the_batch():
    """Losses that reduce themselves (PML's "already_reduced") still pass the batch's
    embeddings and labels to a user's reducer, as PML does."""
    rec = _Recorder()
    loss = losses.HistogramLoss(reducer=rec)
    emb, labels = _proxy_batch(7)
    value = loss(emb, labels)
    ((term, idx, kind, e, lab),) = rec.calls
    assert kind == "already_reduced" and idx is None
    assert torch.equal(e, emb) and torch.equal(lab, labels)
    assert value.item() == term.item()
    assert value.item() == pytest.approx(pml_losses.HistogramLoss()(emb, labels).item(),
                                         rel=1e-5)


def test_base_loss_errors_say_what_was_wrong_and_what_to_do():
    emb, labels = _proxy_batch(6)
    a = torch.tensor([0, 1])
    with pytest.raises(ValueError) as err:
        losses.InstanceLoss()(emb, labels, (a, a + 5, a + 1))
    assert str(err.value) == (
        "InstanceLoss uses the whole batch: indices_tuple (a miner's tuples) is not "
        "supported. Use it without a miner (miner=None in MetricEmbedder).")
    with pytest.raises(ValueError) as err:
        losses.AngularLoss(normalize=False)
    assert str(err.value) == ("AngularLoss is defined on unit-norm embeddings; keep "
                              "normalize=True.")
    with pytest.raises(ValueError) as err:
        losses.CircleLoss(distance="euclidean")
    assert str(err.value) == ("CircleLoss works only with distance in "
                              "['cosine_similarity']; got 'euclidean'.")


def test_an_embedding_regularizer_is_added_as_pml_adds_it():
    pml_regularizers = pytest.importorskip("pytorch_metric_learning.regularizers")
    emb, labels = _lifted_batch(1)
    results = []
    for loss in (losses.LiftedStructureLoss(embedding_regularizer=losses.LpRegularizer(),
                                            embedding_reg_weight=0.5),
                 pml_losses.LiftedStructureLoss(
                     embedding_regularizer=pml_regularizers.LpRegularizer(),
                     embedding_reg_weight=0.5)):
        results.append(_grads(loss, emb * 3, labels)[:2])
    torch.testing.assert_close(results[0], results[1])


def test_a_user_subclass_of_base_loss_gets_the_documented_defaults():
    """BaseLoss's contract: a subclass implements compute_loss; without arguments it works on
    euclidean distances of L2-normalised embeddings."""
    from skmetric.deep.losses._base import BaseLoss

    class SumOfDistances(BaseLoss):
        def compute_loss(self, embeddings, labels, indices_tuple, ref_emb, ref_labels):
            return self.distance_matrix(embeddings, ref_emb).sum()

    loss = SumOfDistances()
    assert loss.distance == "euclidean" and loss.normalize is True
    emb, labels = _proxy_batch(8)
    unit = emb / emb.norm(dim=1, keepdim=True)
    torch.testing.assert_close(loss(emb, labels), torch.cdist(unit, unit).sum())


@pytest.mark.parametrize("name", ["LiftedStructureLoss", "GeneralizedLiftedStructureLoss"])
def test_lifted_losses_store_pml_s_defaults(name):
    loss = getattr(losses, name)()
    assert (loss.distance, loss.normalize, loss.neg_margin, loss.pos_margin) == (
        "euclidean", True, 1.0, 0.0)
    assert repr(loss) == f"{name}(distance='euclidean', normalize=True)"
