"""Batch A of pytorch-metric-learning's losses: NT-Xent, NCA, FastAP, Angular, intra-pair
variance, instance, histogram, dynamic soft margin and manifold losses.

Each loss is compared with pytorch-metric-learning 2.9 in value and gradient, on float32 and
float64, with and without a miner's pairs or triplets, and with reference embeddings where
pytorch-metric-learning supports them; hand-computed cases and finite differences check
the formulas independently.
"""

import math

import pytest

torch = pytest.importorskip("torch")
pml_losses = pytest.importorskip("pytorch_metric_learning.losses")
pml_distances = pytest.importorskip("pytorch_metric_learning.distances")
pml_miners = pytest.importorskip("pytorch_metric_learning.miners")

from _loss_agreement import mined as _mined  # noqa: E402
from _loss_agreement import value_and_grad as _value_and_grad  # noqa: E402

from skmetric.deep.losses import (  # noqa: E402
    ALIASES,
    LOSSES,
    AngularLoss,
    DynamicSoftMarginLoss,
    FastAPLoss,
    HistogramLoss,
    InstanceLoss,
    IntraPairVarianceLoss,
    ManifoldLoss,
    NCALoss,
    NTXentLoss,
    get_loss,
)

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)]
DTYPES = [torch.float32, torch.float64]
# float32 sums in a different order differ in the last bits
TOL = {torch.float32: dict(rtol=1e-4, atol=1e-5), torch.float64: dict(rtol=1e-7, atol=1e-9)}
# pytorch-metric-learning's histogram places values in bins through a float32 product
# (long * float), so its float64 densities and gradients are off by ~1e-7; skmetric's
# are not.
# Its manifold loss inverts a matrix in float32 whatever the input's dtype.
LOOSER = {"histogram": {torch.float64: dict(rtol=1e-6, atol=1e-6)},
          "manifold": {torch.float64: dict(rtol=1e-5, atol=1e-7)}}


def _pml_distance(distance, normalize=True):
    return {
        "euclidean": lambda: pml_distances.LpDistance(normalize_embeddings=normalize),
        "sqeuclidean": lambda: pml_distances.LpDistance(normalize_embeddings=normalize,
                                                        power=2),
        "cosine_similarity": lambda: pml_distances.CosineSimilarity(),
        "dot": lambda: pml_distances.DotProductSimilarity(normalize_embeddings=normalize),
    }[distance]()


def _batch(seed, n=24, dim=5, n_classes=4, dtype=torch.float64, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    emb = torch.randn(n, dim, generator=g, dtype=torch.float64)
    labels = torch.randint(0, n_classes, (n,), generator=g)
    return emb.to(dtype=dtype, device=device), labels.to(device)




def _assert_agree(ours, theirs, emb, labels, name="", **kwargs):
    v1, g1 = _value_and_grad(ours, emb, labels, **kwargs)
    v2, g2 = _value_and_grad(theirs, emb, labels, **kwargs)
    assert v1.ndim == 0 and v1.dtype == emb.dtype
    tol = LOOSER.get(name.split("_")[0], {}).get(emb.dtype, TOL[emb.dtype])
    torch.testing.assert_close(v1, v2.to(v1.dtype), **tol)
    torch.testing.assert_close(g1, g2, **tol)
    return v1


# (ours, theirs) built from a distance name; the distances each is compared under; whether
# pytorch-metric-learning supports miners and reference embeddings for it.
CASES = {
    "ntxent": (
        lambda d: NTXentLoss(temperature=0.2, distance=d),
        lambda d: pml_losses.NTXentLoss(temperature=0.2, distance=_pml_distance(d)),
        ["cosine_similarity", "euclidean", "sqeuclidean"], True, True,
    ),
    "ntxent_cold": (
        lambda d: NTXentLoss(distance=d),
        lambda d: pml_losses.NTXentLoss(distance=_pml_distance(d)),
        ["cosine_similarity"], True, True,
    ),
    "nca": (
        lambda d: NCALoss(distance=d),
        lambda d: pml_losses.NCALoss(distance=_pml_distance(d)),
        ["sqeuclidean", "cosine_similarity"], True, True,
    ),
    "nca_scaled": (
        lambda d: NCALoss(softmax_scale=3.0, distance=d, normalize=False),
        lambda d: pml_losses.NCALoss(softmax_scale=3.0, distance=_pml_distance(d, False)),
        ["euclidean"], True, True,
    ),
    "fast_ap": (
        lambda d: FastAPLoss(distance=d),
        lambda d: pml_losses.FastAPLoss(distance=_pml_distance(d)),
        ["sqeuclidean", "euclidean"], True, False,
    ),
    "fast_ap_fine": (
        lambda d: FastAPLoss(num_bins=25, distance=d),
        lambda d: pml_losses.FastAPLoss(num_bins=25, distance=_pml_distance(d)),
        ["euclidean"], True, False,
    ),
    "angular": (
        lambda d: AngularLoss(),
        lambda d: pml_losses.AngularLoss(),
        ["euclidean"], True, True,
    ),
    "angular_wide": (
        lambda d: AngularLoss(alpha=55.0),
        lambda d: pml_losses.AngularLoss(alpha=55),
        ["euclidean"], True, True,
    ),
    "intra_pair_variance": (
        lambda d: IntraPairVarianceLoss(distance=d),
        lambda d: pml_losses.IntraPairVarianceLoss(distance=_pml_distance(d)),
        ["cosine_similarity", "euclidean"], True, True,
    ),
    "intra_pair_variance_eps": (
        lambda d: IntraPairVarianceLoss(0.05, 0.2, distance=d),
        lambda d: pml_losses.IntraPairVarianceLoss(0.05, 0.2, distance=_pml_distance(d)),
        ["cosine_similarity", "sqeuclidean"], True, True,
    ),
    "instance": (
        lambda d: InstanceLoss(),
        lambda d: pml_losses.InstanceLoss(),
        ["cosine_similarity"], False, False,
    ),
    "instance_cool": (
        lambda d: InstanceLoss(gamma=5.0),
        lambda d: pml_losses.InstanceLoss(gamma=5),
        ["cosine_similarity"], False, False,
    ),
    "histogram": (
        lambda d: HistogramLoss(),
        lambda d: pml_losses.HistogramLoss(),
        ["cosine_similarity"], True, False,
    ),
    "histogram_coarse": (
        lambda d: HistogramLoss(n_bins=8),
        lambda d: pml_losses.HistogramLoss(n_bins=8),
        ["cosine_similarity"], True, False,
    ),
}
PARAMS = [(name, d) for name, case in CASES.items() for d in case[2]]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mined", [None, "triplets", "pairs"])
@pytest.mark.parametrize("name, distance", PARAMS)
def test_value_and_gradient_match_pytorch_metric_learning(name, distance, mined, dtype, device):
    make_ours, make_theirs, _, with_miner, _ = CASES[name]
    if mined and not with_miner:
        pytest.skip("pytorch-metric-learning accepts no miner for this loss")
    values = []
    for seed in range(3):
        emb, labels = _batch(seed, dtype=dtype, device=device)
        indices = _mined(emb, labels, mined)
        ours, theirs = make_ours(distance).to(device), make_theirs(distance).to(device)
        values.append(_assert_agree(ours, theirs, emb, labels, name, indices_tuple=indices))
    assert any(v > 0 for v in values)  # the comparison is not between zeros


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", [n for n, case in CASES.items() if case[4]])
def test_reference_embeddings_match_pytorch_metric_learning(name, dtype):
    make_ours, make_theirs, distances, _, _ = CASES[name]
    emb, labels = _batch(7, n=10, dtype=dtype)
    ref, ref_labels = _batch(8, n=30, dtype=dtype)
    miner = pml_miners.TripletMarginMiner(0.3, type_of_triplets="all")
    for indices in (None, miner(emb, labels, ref, ref_labels)):
        _assert_agree(make_ours(distances[0]), make_theirs(distances[0]), emb, labels, name,
                      indices_tuple=indices, ref_emb=ref, ref_labels=ref_labels)


# ---------------------------------------------------------------- NT-Xent
def test_ntxent_on_a_hand_computed_batch():
    # Four 2-d unit vectors at angles 0, 60, 180, 240 degrees; labels 0, 0, 1, 1.
    angles = torch.tensor([0.0, 60.0, 180.0, 240.0], dtype=torch.float64).deg2rad()
    emb = torch.stack([angles.cos(), angles.sin()], 1)
    labels = torch.tensor([0, 0, 1, 1])
    t = 0.5
    # Anchor 0: positive 1 (cos 60 = .5), negatives 2 (cos 180 = -1) and 3 (cos 240 = -.5).
    # Every anchor sees the same cosines by symmetry.
    term = -math.log(math.exp(0.5 / t) / (math.exp(0.5 / t) + math.exp(-1 / t)
                                          + math.exp(-0.5 / t)))
    assert NTXentLoss(temperature=t)(emb, labels).item() == pytest.approx(term)
    # A miner's negative pair listed twice counts twice.
    pairs = (torch.tensor([0]), torch.tensor([1]), torch.tensor([0, 0]), torch.tensor([2, 2]))
    twice = -math.log(math.exp(1) / (math.exp(1) + 2 * math.exp(-2)))
    assert NTXentLoss(temperature=t)(emb, labels, pairs).item() == pytest.approx(twice)
    # InfoNCE is the same loss.
    assert type(get_loss("InfoNCE")) is NTXentLoss is LOSSES[ALIASES["infonce"]]


# ---------------------------------------------------------------- NCA
def test_nca_on_a_hand_computed_batch():
    emb = torch.tensor([[0.0], [1.0], [3.0]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 1])
    loss = NCALoss(normalize=False)
    # Squared distances: d01 = 1, d02 = 9, d12 = 4. Sample 2 has no neighbour of its class:
    # p = 0, so it is left out of the mean.
    p0 = math.exp(-1) / (math.exp(-1) + math.exp(-9))
    p1 = math.exp(-1) / (math.exp(-1) + math.exp(-4))
    assert loss(emb, labels).item() == pytest.approx(-(math.log(p0) + math.log(p1)) / 2)
    # A miner's triplet (0, 1, 2) weighs samples 0, 1 and 2 equally: weight 1 each.
    triplet = (torch.tensor([0]), torch.tensor([1]), torch.tensor([2]))
    assert loss(emb, labels, triplet).item() == pytest.approx(loss(emb, labels).item())
    # Pairs (0, 1) twice and (1, 2): sample 0 occurs twice, 1 three times, 2 once.
    pairs = (torch.tensor([0, 0]), torch.tensor([1, 1]), torch.tensor([1]), torch.tensor([2]))
    # counts: 0 -> 2, 1 -> 3, 2 -> 1: weights 2/3, 1, 1/3
    expected = -(2 / 3 * math.log(p0) + math.log(p1)) / 2
    assert loss(emb, labels, pairs).item() == pytest.approx(expected)
    # Without any same-class neighbour the loss is 0, not NaN (pytorch-metric-learning: NaN).
    emb.requires_grad_(True)
    zero = loss(emb, torch.tensor([0, 1, 2]))
    zero.backward()
    assert zero.item() == 0 and torch.equal(emb.grad, torch.zeros_like(emb))


# ---------------------------------------------------------------- FastAP
def test_fast_ap_on_a_hand_computed_batch():
    # Unit vectors in 1-d: +1, +1, -1. Euclidean distances 0 (same point) or 2; with 2
    # bins the nodes are 0, 1, 2. Anchor 0: positive 1 at node 0, negative 2 at node 2:
    # h+ = (1, 0, 0), H+ = (1, 1, 1), H = (1, 1, 2): AP = 1. Anchor 2 has no positive.
    emb = torch.tensor([[1.0], [1.0], [-1.0]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 1])
    assert FastAPLoss(num_bins=2, distance="euclidean")(emb, labels).item() == 0
    # Swap the labels of 1 and 2: anchor 0's positive is at node 2 behind its negative:
    # h+ = (0, 0, 1), H+ = (0, 0, 1), H = (1, 1, 2): AP = 1/2; anchor 2 likewise.
    labels = torch.tensor([0, 1, 0])
    assert FastAPLoss(num_bins=2, distance="euclidean")(emb, labels).item() == 0.5
    with pytest.raises(ValueError, match="keep normalize=True"):
        FastAPLoss(normalize=False)
    with pytest.raises(ValueError, match="only with distance"):
        FastAPLoss(distance="cosine_similarity")
    with pytest.raises(ValueError, match="ref_emb is not supported"):
        FastAPLoss()(emb, labels, ref_emb=emb, ref_labels=labels)


# ---------------------------------------------------------------- Angular
def test_angular_loss_on_a_hand_computed_batch():
    # a = (1, 0), p = (0, 1) (normalised), negative x = (1, 1) (not normalised, as in PML).
    emb = torch.tensor([[2.0, 0.0], [0.0, 3.0], [1.0, 1.0]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 1])
    t2 = math.tan(math.radians(45.0)) ** 2  # 1
    f = 4 * t2 * 2 - 2 * (1 + t2) * 0  # (a + p) . x = 2, a . p = 0
    pair = (torch.tensor([0]), torch.tensor([1]), torch.tensor([0]), torch.tensor([2]))
    loss = AngularLoss(alpha=45.0)
    assert loss(emb, labels, pair).item() == pytest.approx(math.log1p(math.exp(f)))
    # All pairs: (0, 1) and (1, 0) give the same term.
    assert loss(emb, labels).item() == pytest.approx(math.log1p(math.exp(f)))
    with pytest.raises(ValueError, match=r"'alpha' .* AngularLoss .* range \(0.0, 90.0\)"):
        AngularLoss(alpha=90)
    with pytest.raises(ValueError, match="keep normalize=True"):
        AngularLoss(normalize=False)


# ---------------------------------------------------------------- intra-pair variance
def test_intra_pair_variance_on_a_hand_computed_batch():
    # On a line, unnormalised, Euclidean: positive distances 1 (pairs 0-1) and 3 (2-3),
    # negatives 2, 5, 1, 4 (0-2, 0-3, 1-2, 1-3), each pair in both orders.
    emb = torch.tensor([[0.0], [1.0], [2.0], [5.0]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 1, 1])
    loss = IntraPairVarianceLoss(pos_eps=0.0, neg_eps=0.5, distance="euclidean",
                                 normalize=False)
    # positives: mean 2, relu(d - 2)^2 = 0, 1 (twice each) -> 0.5; negatives: mean 3,
    # relu(1.5 - d)^2 = 0, 0, 0.25, 0 -> 0.0625.
    assert loss(emb, labels).item() == pytest.approx(0.5 + 0.0625)
    # With a similarity the positives must not fall below (1 - eps) times their mean.
    sims = IntraPairVarianceLoss(pos_eps=0.0, neg_eps=0.0, distance="dot", normalize=False)
    # dot products: positives 0 and 10 (mean 5): relu(5 - s)^2 = 25, 0 -> 12.5;
    # negatives 0, 0, 2, 5 (mean 1.75): relu(s - 1.75)^2 = 0, 0, 0.0625, 10.5625 -> 2.65625
    assert sims(emb, labels).item() == pytest.approx(12.5 + 2.65625)


# ---------------------------------------------------------------- instance
def test_instance_loss_targets_the_rank_of_each_label():
    emb = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], dtype=torch.float64)
    labels = torch.tensor([7, 3, 7])  # ranks 1, 0, 1
    cos = torch.nn.functional.normalize(emb) @ torch.nn.functional.normalize(emb).T
    expected = torch.nn.functional.cross_entropy(2.0 * cos, torch.tensor([1, 0, 1]))
    assert InstanceLoss(gamma=2.0)(emb, labels).item() == pytest.approx(expected.item())
    with pytest.raises(ValueError, match="miner=None"):
        InstanceLoss()(emb, labels, (torch.tensor([0]), torch.tensor([2]), torch.tensor([1])))
    with pytest.raises(ValueError, match="only with distance"):
        InstanceLoss(distance="euclidean")


# ---------------------------------------------------------------- histogram
def test_histogram_loss_on_a_hand_computed_batch():
    # 2-d unit vectors: cos(0, 1) = 1 (positives), cos(0, 2) = cos(1, 2) = 0 (negatives).
    # With 2 bins (nodes -1, 0, 1): p+ = (0, 0, 1) and p- = (0, 1, 0): loss = 0 (every
    # positive is more similar than every negative). Swap the roles: p+ at 0, p- at 1:
    # loss = p-_2 * (p+_0 + p+_1 + p+_2) = 1.
    emb = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    assert HistogramLoss(n_bins=2)(emb, torch.tensor([0, 0, 1])).item() == 0
    assert HistogramLoss(n_bins=2)(emb, torch.tensor([0, 1, 0])).item() == pytest.approx(1)
    # A similarity of 1 between positives (same point) stays in the histogram; a mid-bin
    # value splits between its two nodes.
    assert HistogramLoss(delta=1.0).bin_width == 1.0 == HistogramLoss(n_bins=2).bin_width
    with pytest.raises(ValueError, match="delta = 2 / n_bins"):
        HistogramLoss(n_bins=10, delta=0.5)


# ---------------------------------------------------------------- dynamic soft margin
class _PMLFixedHistogram(pml_losses.DynamicSoftMarginLoss):
    """pytorch-metric-learning's loss with its histogram taken out of the autograd graph."""

    def update_histogram(self, data):
        super().update_histogram(data.detach())


def _clustered(seed, n=24, dim=5, n_classes=4, dtype=torch.float64, ref=False):
    # pytorch-metric-learning fails for d(a, p) - d(a, n) >= 1.6: keep classes apart.
    g = torch.Generator().manual_seed(seed)
    centers = torch.eye(dim, dtype=torch.float64)[:n_classes] * 3
    labels = torch.arange(n) % n_classes if not ref else torch.randint(0, n_classes, (n,),
                                                                        generator=g)
    emb = centers[labels] + torch.randn(n, dim, generator=g, dtype=torch.float64)
    return emb.to(dtype), labels


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mined", [None, "triplets", "pairs"])
@pytest.mark.parametrize("distance", ["euclidean", "sqeuclidean"])
def test_dynamic_soft_margin_matches_pytorch_metric_learning_over_batches(distance, mined,
                                                                          dtype):
    # pytorch-metric-learning also fails below min_val: cover squared distances' range
    kwargs = dict(min_val=-3.0 if distance == "euclidean" else -4.5, num_bins=12,
                  momentum=0.3)
    ours = DynamicSoftMarginLoss(**kwargs, distance=distance)
    theirs = pml_losses.DynamicSoftMarginLoss(**kwargs, distance=_pml_distance(distance))
    fixed = _PMLFixedHistogram(**kwargs, distance=_pml_distance(distance))
    for seed in range(3):  # the running histogram carries over from batch to batch
        emb, labels = _clustered(seed, dtype=dtype)
        indices = _mined(emb, labels, mined)
        with torch.no_grad():  # its backward fails from the second batch on
            value = theirs(emb, labels, indices_tuple=indices)
        v1 = _assert_agree(ours, fixed, emb, labels, indices_tuple=indices)
        torch.testing.assert_close(v1, value, **TOL[dtype])
        torch.testing.assert_close(ours.hist_, theirs.hist_.detach(), **TOL[dtype])
        assert v1 != 0 and not ours.hist_.requires_grad
    # reference embeddings
    emb, labels = _clustered(5, n=8, dtype=dtype)
    ref, ref_labels = _clustered(6, n=20, dtype=dtype, ref=True)
    _assert_agree(ours, fixed, emb, labels, ref_emb=ref, ref_labels=ref_labels)
    torch.testing.assert_close(ours.hist_, fixed.hist_, **TOL[dtype])


def test_dynamic_soft_margin_on_a_hand_computed_batch():
    # 1-d unit vectors +1, +1, -1 (labels 0, 0, 1): triplets (0, 1, 2) and (1, 0, 2), each
    # with x = d(a, p) - d(a, n) = 0 - 2 = -2 = min_val: node 0, so CDF = 1: loss = -2.
    emb = torch.tensor([[1.0], [1.0], [-1.0]], dtype=torch.float64)
    loss = DynamicSoftMarginLoss()
    assert loss(emb, torch.tensor([0, 0, 1])).item() == -2
    assert loss.hist_.tolist() == [1.0] + [0.0] * 9
    # Labels 0, 1, 0: triplets (0, 2, 1) with x = 2 - 0 = 2, past the last node (1.6): it
    # lands on the last node (pytorch-metric-learning fails), and (2, 0, 1) with x = 0
    # (node 5). With momentum 0.01 the histogram is (0.99, 0.01, 0.01) / 1.01 at nodes 0, 5,
    # 9, so CDF(2) = 1 and the loss is (1 * 2 + CDF(0) * 0) / 2 = 1.
    assert loss(emb, torch.tensor([0, 1, 0])).item() == pytest.approx(1)
    torch.testing.assert_close(loss.hist_[[0, 5, 9]],
                               torch.tensor([0.99, 0.01, 0.01], dtype=torch.float64) / 1.01)
    assert "hist_" in loss.state_dict()
    with pytest.raises(ValueError, match="keep normalize=True"):
        DynamicSoftMarginLoss(normalize=False)
    with pytest.raises(ValueError, match="'min_val' parameter"):
        DynamicSoftMarginLoss(min_val=0.0)


# ---------------------------------------------------------------- finite differences
@pytest.mark.parametrize("make", [
    lambda: NTXentLoss(temperature=0.5),
    lambda: NTXentLoss(temperature=0.5, distance="sqeuclidean"),
    lambda: NCALoss(softmax_scale=2.0),
    lambda: AngularLoss(),
    lambda: IntraPairVarianceLoss(0.1, 0.1),
    lambda: InstanceLoss(gamma=3.0),
], ids=["ntxent", "ntxent_sq", "nca", "angular", "intra_pair_variance", "instance"])
def test_gradient_matches_finite_differences(make):
    emb, labels = _batch(11, n=10, dim=3, n_classes=3)
    emb.requires_grad_(True)
    loss = make()
    assert torch.autograd.gradcheck(lambda e: loss(e, labels), (emb,), eps=1e-6, atol=1e-5)


def test_every_batch_a_loss_is_registered_by_name():
    names = {"ntxent": NTXentLoss, "nca": NCALoss, "fast_ap": FastAPLoss,
             "angular": AngularLoss, "intra_pair_variance": IntraPairVarianceLoss,
             "instance": InstanceLoss, "histogram": HistogramLoss,
             "dynamic_soft_margin": DynamicSoftMarginLoss}
    for name, cls in names.items():
        assert LOSSES[name] is cls and not cls.requires_classes
        assert type(get_loss(cls.__name__)) is cls  # 'NTXentLoss', 'FastAPLoss', ...
    assert type(get_loss("nt-xent")) is NTXentLoss


# ---------------------------------------------------------------- manifold
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("lambda_c, alpha", [(1.0, 0.8), (0.3, 0.5), (0.0, 0.9)])
def test_manifold_loss_matches_pytorch_metric_learning_with_labels_as_meta_classes(
        lambda_c, alpha, dtype):
    for seed in range(2):
        emb, labels = _batch(seed, n=20, dim=6, n_classes=5, dtype=dtype)
        torch.manual_seed(seed)  # pytorch-metric-learning draws its proxies globally
        theirs = pml_losses.ManifoldLoss(l=6, K=5, lambdaC=lambda_c, alpha=alpha,
                                         margin=0.01).to(dtype)
        ours = ManifoldLoss(5, 6, lambda_c=lambda_c, alpha=alpha, margin=0.01)
        with torch.no_grad():
            ours.proxies.copy_(theirs.proxies)
        e1, e2 = emb.clone().requires_grad_(True), emb.clone().requires_grad_(True)
        v1 = ours(e1, labels)
        v2 = theirs(e2, None, labels)  # pytorch-metric-learning: meta-classes as indices
        v1.backward()
        v2.backward()
        assert v1 > 0 and v1.dtype == dtype
        tol = LOOSER["manifold"].get(dtype, TOL[dtype])
        torch.testing.assert_close(v1, v2.reshape(()), **tol)
        torch.testing.assert_close(e1.grad, e2.grad, **tol)
        torch.testing.assert_close(ours.proxies.grad, theirs.proxies.grad, **tol)


def test_manifold_loss_on_a_hand_computed_case_and_its_errors():
    # One sample on its own proxy and a second proxy orthogonal to both: the random walk
    # ranks the own proxy first by far, so no term is non-negative and the loss is 0.
    loss = ManifoldLoss(2, 2, margin=0.0)
    with torch.no_grad():
        loss.proxies.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    emb = torch.tensor([[1.0, 0.0]])
    assert loss(emb, torch.tensor([0])).item() == 0
    # Assigned to the other proxy instead, every term is positive.
    assert loss(emb, torch.tensor([1])).item() > 0
    assert LOSSES["manifold"] is ManifoldLoss and ManifoldLoss.requires_classes
    with pytest.raises(ValueError, match="miner=None"):
        loss(emb, torch.tensor([0]), (torch.tensor([0]), torch.tensor([0]), torch.tensor([0])))
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        loss(emb, torch.tensor([2]))


def test_embedder_trains_losses_defined_for_some_distances_only():
    np = pytest.importorskip("numpy")
    pytest.importorskip("skorch")
    from skmetric.deep import MetricEmbedder

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(32, 5)).astype("float32"), np.repeat(np.arange(4), 8)
    fast = dict(max_epochs=1, batch_size=16, samples_per_class=4, embedding_dim=4,
                random_state=0, verbose=0)
    # The embedder's distance (cosine) is not forced onto a Euclidean-only loss ...
    emb = MetricEmbedder(loss="fast_ap", **fast).fit(X, y)
    assert emb.loss_.distance == "sqeuclidean"
    assert MetricEmbedder(loss="instance", miner=None, **fast).fit(X, y).loss_.distance == \
        "cosine_similarity"
    # ... but one asked for explicitly is still checked.
    with pytest.raises(ValueError, match="FastAPLoss works only with distance"):
        MetricEmbedder(loss="fast_ap", loss__distance="cosine_similarity", **fast).fit(X, y)
