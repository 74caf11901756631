"""Batch B miners (issue #17): equal index sets to pytorch-metric-learning 2.9, hand cases."""

import itertools

import pytest

torch = pytest.importorskip("torch")
pml_miners = pytest.importorskip("pytorch_metric_learning.miners")
pml_distances = pytest.importorskip("pytorch_metric_learning.distances")

import math  # noqa: E402

from skmetric.deep.miners import (  # noqa: E402
    MINERS,
    AngularMiner,
    BatchEasyHardMiner,
    HDCMiner,
    PairMarginMiner,
    UniformHistogramMiner,
    get_miner,
)

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)]
PML_DISTANCE = {
    "euclidean": lambda: pml_distances.LpDistance(),
    "sqeuclidean": lambda: pml_distances.LpDistance(normalize_embeddings=False, power=2),
    "cosine_similarity": lambda: pml_distances.CosineSimilarity(),
    "dot": lambda: pml_distances.DotProductSimilarity(normalize_embeddings=False),
}
NORMALIZE = {"euclidean": True, "sqeuclidean": False, "cosine_similarity": True, "dot": False}
STRATEGIES = ["easy", "hard", "semihard", "all"]
VALID_STRATEGIES = [(p, n) for p, n in itertools.product(STRATEGIES, STRATEGIES)
                    if not (p == n == "semihard" or {p, n} == {"semihard", "all"})]


def _batch(seed, n=30, dim=5, n_classes=4, dtype=torch.float64, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    # Unequal norms, so that a miner normalising (or not) when PML doesn't is caught.
    emb = torch.randn(n, dim, generator=g, dtype=torch.float64) * (
        0.2 + 3 * torch.rand(n, 1, generator=g, dtype=torch.float64))
    labels = torch.randint(0, n_classes, (n,), generator=g)
    return emb.to(dtype=dtype, device=device), labels.to(device)


def _assert_same(ours, theirs):
    assert len(ours) == len(theirs)
    for x, y in zip(ours, theirs, strict=True):
        assert x.dtype == torch.long
        assert torch.equal(x, y.to(x.device))


def _both_ways(ours, theirs, device="cpu", dtype=torch.float64, seeds=range(3)):
    """Compare on batches, with and without ref_emb; return the sizes seen."""
    sizes = []
    for seed in seeds:
        emb, labels = _batch(seed, dtype=dtype, device=device)
        ref, ref_labels = _batch(seed + 100, n=20, dtype=dtype, device=device)
        for kwargs in ({}, {"ref_emb": ref, "ref_labels": ref_labels}):
            got = ours(emb, labels, **kwargs)
            _assert_same(got, theirs(emb, labels, **kwargs))
            sizes.append([len(t) for t in got])
    return sizes


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("distance", list(PML_DISTANCE))
def test_pair_margin_miner_matches_pytorch_metric_learning(distance, dtype, device):
    margins = {"euclidean": (0.3, 0.9), "sqeuclidean": (4.0, 12.0),
               "cosine_similarity": (0.5, -0.2), "dot": (2.0, -2.0)}[distance]
    ours = PairMarginMiner(*margins, distance=distance, normalize=NORMALIZE[distance])
    theirs = pml_miners.PairMarginMiner(*margins, distance=PML_DISTANCE[distance]())
    sizes = _both_ways(ours, theirs, device, dtype)
    assert all(0 < s < 30 * 29 for size in sizes for s in size)  # a real selection


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("distance", list(PML_DISTANCE))
@pytest.mark.parametrize("pos_strategy, neg_strategy", VALID_STRATEGIES)
def test_batch_easy_hard_miner_matches_pytorch_metric_learning(pos_strategy, neg_strategy,
                                                               distance, device):
    ours = BatchEasyHardMiner(pos_strategy, neg_strategy, distance=distance,
                              normalize=NORMALIZE[distance])
    theirs = pml_miners.BatchEasyHardMiner(pos_strategy, neg_strategy,
                                           distance=PML_DISTANCE[distance]())
    _both_ways(ours, theirs, device)


@pytest.mark.parametrize("distance", ["euclidean", "cosine_similarity"])
@pytest.mark.parametrize("strategies", [("hard", "easy"), ("semihard", "hard"),
                                        ("easy", "semihard"), ("all", "hard")])
def test_batch_easy_hard_allowed_ranges_match_pytorch_metric_learning(strategies, distance):
    rng = (0.3, 1.2) if distance == "euclidean" else (-0.5, 0.5)
    ours = BatchEasyHardMiner(*strategies, rng, rng, distance=distance)
    theirs = pml_miners.BatchEasyHardMiner(*strategies, rng, rng,
                                           distance=PML_DISTANCE[distance]())
    _both_ways(ours, theirs, dtype=torch.float32)


def test_batch_easy_hard_on_a_hand_computed_batch():
    # Points on a line; anchor 0 (label 0) has positives 1 (d=1), 2 (d=3) and negatives
    # 3 (d=2), 4 (d=5).
    emb = torch.tensor([[0.0], [1.0], [3.0], [2.0], [5.0]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 0, 1, 1])
    easy_hard = BatchEasyHardMiner("easy", "hard", normalize=False)(emb, labels)
    a, p, _, n = (t[0].item() for t in easy_hard)
    assert (a, p, n) == (0, 1, 3)
    hard_easy = BatchEasyHardMiner("hard", "easy", normalize=False)(emb, labels)
    assert (hard_easy[1][0].item(), hard_easy[3][0].item()) == (2, 4)
    # Semi-hard negative: the closest one farther than the chosen (easy) positive d=1: 3.
    assert BatchEasyHardMiner("easy", "semihard", normalize=False)(emb, labels)[3][0] == 3
    # Semi-hard positive: the farthest closer than the hard negative (d=2): 1.
    assert BatchEasyHardMiner("semihard", "hard", normalize=False)(emb, labels)[1][0] == 1
    # Semi-hard is strict: a negative tied with the positive (d=1 for both) is skipped.
    tied = torch.tensor([[0.0], [1.0], [-1.0], [3.0]], dtype=torch.float64)
    out = BatchEasyHardMiner("easy", "semihard", normalize=False)(tied, torch.tensor([0, 0, 1, 1]))
    assert (out[0][0].item(), out[1][0].item(), out[3][0].item()) == (0, 1, 3)


def test_pair_margin_miner_on_a_hand_computed_batch():
    emb = torch.tensor([[0.0], [1.0], [3.0], [3.5]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 1, 0])
    a1, p, a2, n = PairMarginMiner(1.5, 2.5, normalize=False)(emb, labels)
    # Positives farther than 1.5: (0,3), (1,3) and their mirrors; negatives closer than 2.5:
    # (1,2), (3,2) and mirrors.
    assert sorted(zip(a1.tolist(), p.tolist(), strict=True)) == [(0, 3), (1, 3), (3, 0), (3, 1)]
    assert sorted(zip(a2.tolist(), n.tolist(), strict=True)) == [(1, 2), (2, 1), (2, 3), (3, 2)]


def test_registry_names_and_bad_parameters():
    assert MINERS["pair_margin"] is PairMarginMiner
    assert MINERS["batch_easy_hard"] is BatchEasyHardMiner
    assert isinstance(get_miner("BatchEasyHardMiner"), BatchEasyHardMiner)
    with pytest.raises(ValueError, match="both be 'semihard'"):
        BatchEasyHardMiner("semihard", "semihard")
    with pytest.raises(ValueError, match="cannot be combined with 'all'"):
        BatchEasyHardMiner("all", "semihard")
    with pytest.raises(ValueError, match="pos_strategy"):
        BatchEasyHardMiner("hardest", "easy")
    with pytest.raises(ValueError, match="low <= high"):
        BatchEasyHardMiner(allowed_pos_range=(1.0, 0.0))
    with pytest.raises(ValueError, match="pos_margin"):
        PairMarginMiner(pos_margin=float("nan"))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("angle", [math.radians(20), 0.7])
def test_angular_miner_matches_pytorch_metric_learning(angle, dtype, device):
    ours = AngularMiner(angle)
    theirs = pml_miners.AngularMiner(math.degrees(angle))
    sizes = _both_ways(ours, theirs, device, dtype)
    assert all(s > 0 for size in sizes for s in size)


def test_angular_miner_on_a_hand_computed_triplet():
    # a=(0,0), p=(2,0): centre (1,0); n=(1,1): atan(2 / 2) = 45 degrees.
    emb = torch.tensor([[0.0, 0.0], [2.0, 0.0], [1.0, 1.0]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 1])
    a, p, n = AngularMiner(math.radians(44))(emb, labels)
    assert sorted(zip(a.tolist(), p.tolist(), n.tolist(), strict=True)) == [(0, 1, 2), (1, 0, 2)]
    assert len(AngularMiner(math.radians(46))(emb, labels)[0]) == 0


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("distance", list(PML_DISTANCE))
@pytest.mark.parametrize("percentage", [0.3, 1.0])
def test_hdc_miner_matches_pytorch_metric_learning(percentage, distance, dtype, device):
    ours = HDCMiner(percentage, distance=distance, normalize=NORMALIZE[distance])
    theirs = pml_miners.HDCMiner(percentage, distance=PML_DISTANCE[distance]())
    _both_ways(ours, theirs, device, dtype)


def test_hdc_miner_keeps_the_hardest_fraction():
    emb = torch.tensor([[0.0], [1.0], [3.0], [3.5], [10.0]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 0, 1, 1])
    a1, p, a2, n = HDCMiner(0.5, normalize=False)(emb, labels)
    # 8 positive pairs -> the 4 farthest (d=6.5, 6.5, 3, 3), 12 negative -> the 6 closest.
    d = torch.cdist(emb, emb)
    assert len(a1) == 4 and d[a1, p].tolist() == [6.5, 6.5, 3.0, 3.0]
    assert len(a2) == 6 and d[a2, n].max() <= d[labels[:, None] != labels].sort()[0][5]


@pytest.mark.parametrize("distance", ["euclidean", "cosine_similarity", "sqeuclidean"])
@pytest.mark.parametrize("seed", [0, 5])
def test_uniform_histogram_miner_equals_pml_under_the_same_seed(seed, distance):
    ours = UniformHistogramMiner(10, 3, 2, distance=distance, normalize=NORMALIZE[distance],
                                 random_state=seed)
    theirs = pml_miners.UniformHistogramMiner(10, 3, 2, distance=PML_DISTANCE[distance]())
    emb, labels = _batch(seed)
    ref, ref_labels = _batch(seed + 100, n=20)
    for kwargs in ({}, {"ref_emb": ref, "ref_labels": ref_labels}):
        got = ours(emb, labels, **kwargs)
        ours._generator = None  # restart from the seed
        torch.manual_seed(seed)
        _assert_same(got, theirs(emb, labels, **kwargs))


def test_uniform_histogram_miner_draws_evenly_from_each_bin():
    emb, labels = _batch(1, n=40)
    miner = UniformHistogramMiner(num_bins=5, pos_per_bin=50, neg_per_bin=60, random_state=0,
                                  normalize=False)
    a1, p, a2, n = miner(emb, labels)
    d = torch.cdist(emb, emb)
    pos, neg = labels[:, None] == labels, labels[:, None] != labels
    pos.fill_diagonal_(False)
    for (rows, cols), mask, per_bin in (((a1, p), pos, 50), ((a2, n), neg, 60)):
        assert bool(mask[rows, cols].all())
        values, all_values = d[rows, cols], d[mask]
        edges = torch.linspace(all_values.min(), all_values.max(), 6, dtype=d.dtype)
        counts = torch.histc(values, bins=5, min=float(edges[0]), max=float(edges[-1]))
        occupied = torch.histc(all_values, bins=5, min=float(edges[0]),
                               max=float(edges[-1])) > 0
        assert torch.equal(counts[occupied], torch.full((int(occupied.sum()),), per_bin * 1.0,
                                                        dtype=counts.dtype))
    # Seeded: the same pairs again; another seed gives others.
    again = UniformHistogramMiner(5, 50, 60, normalize=False, random_state=0)(emb, labels)
    other = UniformHistogramMiner(5, 50, 60, normalize=False, random_state=1)(emb, labels)
    _assert_same(again, (a1, p, a2, n))
    assert not torch.equal(other[1], p)


def test_uniform_histogram_bins_are_half_open():
    # Distances 1..4 between points on a line; with 3 bins the edges 2 and 3 are
    # distances themselves: each pair belongs to exactly one bin ([1, 2), [2, 3), [3, 4]).
    emb = torch.tensor([[0.0], [1.0], [2.0], [4.0]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 0, 0])
    a1, p, a2, n = UniformHistogramMiner(3, 7, 1, normalize=False, random_state=0)(emb, labels)
    assert len(a2) == 0 and len(a1) == 3 * 7
    d = torch.cdist(emb, emb)[a1, p]
    assert ((d >= 1) & (d < 2)).sum() == 7 and ((d >= 2) & (d < 3)).sum() == 7
    assert ((d >= 3) & (d <= 4)).sum() == 7


def test_batch_b_miner_registry_names():
    assert MINERS["angular"] is AngularMiner
    assert MINERS["hdc"] is HDCMiner
    assert MINERS["uniform_histogram"] is UniformHistogramMiner
    assert isinstance(get_miner("UniformHistogramMiner"), UniformHistogramMiner)
    with pytest.raises(ValueError, match="radians"):
        AngularMiner(angle=20)
    with pytest.raises(ValueError, match="filter_percentage"):
        HDCMiner(filter_percentage=0.0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_uniform_histogram_bins_use_torch_linspace_edges_exactly(dtype):
    # PML bins with torch.linspace, which rounds start + step * i once (a fused multiply-add):
    # edges computed with two roundings move pairs across a bin boundary (found at batch 128
    # by benchmarks/deep_losses.py, 98.6% of tuples equal).
    miner = UniformHistogramMiner(num_bins=100)
    gen = torch.Generator().manual_seed(0)
    for _ in range(200):
        values = (torch.rand(300, generator=gen) * 10 * torch.rand(1, generator=gen)).to(dtype)
        # Values on the edges themselves: a one-ulp error in an edge changes their bin.
        values = torch.cat([values, torch.linspace(values.min(), values.max(), 101,
                                                   dtype=dtype)[1:-1]])
        _, sizes = miner._bins(values)
        edges = torch.linspace(values.min(), values.max(), 101, dtype=dtype)
        expected = torch.bincount(torch.bucketize(values, edges[1:-1], right=True),
                                  minlength=100)
        assert torch.equal(torch.stack(list(sizes)), expected)
