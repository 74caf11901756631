"""Batch B miners (issue #17): equal index sets to pytorch-metric-learning 2.9, hand cases."""

import itertools

import pytest

torch = pytest.importorskip("torch")
pml_miners = pytest.importorskip("pytorch_metric_learning.miners")
pml_distances = pytest.importorskip("pytorch_metric_learning.distances")

from skmetric.deep.miners import (  # noqa: E402
    MINERS,
    BatchEasyHardMiner,
    PairMarginMiner,
    get_miner,
)

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)]
PML_DISTANCE = {
    "euclidean": lambda: pml_distances.LpDistance(),
    "sqeuclidean": lambda: pml_distances.LpDistance(normalize_embeddings=False, power=2),
    "cosine": lambda: pml_distances.CosineSimilarity(),
    "dot": lambda: pml_distances.DotProductSimilarity(normalize_embeddings=False),
}
NORMALIZE = {"euclidean": True, "sqeuclidean": False, "cosine": True, "dot": False}
STRATEGIES = ["easy", "hard", "semihard", "all"]
VALID_STRATEGIES = [(p, n) for p, n in itertools.product(STRATEGIES, STRATEGIES)
                    if not (p == n == "semihard" or {p, n} == {"semihard", "all"})]


def _batch(seed, n=30, dim=5, n_classes=4, dtype=torch.float64, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    emb = torch.randn(n, dim, generator=g, dtype=torch.float64)
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
    margins = (0.3, 0.9) if distance in ("euclidean", "sqeuclidean") else (0.5, -0.2)
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


@pytest.mark.parametrize("distance", ["euclidean", "cosine"])
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
