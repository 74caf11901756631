"""Tests that kill mutants of skmetric/deep/miners/ that survived ``scripts/mutation.py``.

References are independent: brute force over every pair of a NumPy distance matrix (the
deterministic miners), pytorch-metric-learning 2.9's miner on the same batch, and for the
random miners the invariants every draw must satisfy (validity against the reference
labels, the number of draws per anchor, reproducibility from ``random_state`` alone).
"""


import numpy as np
import pytest

torch = pytest.importorskip("torch")
pml_miners = pytest.importorskip("pytorch_metric_learning.miners")
pml_distances = pytest.importorskip("pytorch_metric_learning.distances")

from skmetric.deep.miners import (  # noqa: E402
    AllTuplesMiner,
    BatchEasyHardMiner,
    DistanceWeightedMiner,
    LiftedMiner,
    NPairsMiner,
    PairMarginMiner,
    RandomMiner,
    UniformHistogramMiner,
)


def _batch(seed, n=14, dim=4, n_classes=4, grid=False):
    """Embeddings of unequal norms (normalising matters), or integer points (exact ties)."""
    g = torch.Generator().manual_seed(seed)
    if grid:
        emb = torch.randint(-2, 3, (n, dim), generator=g).double()
    else:
        emb = torch.randn(n, dim, generator=g, dtype=torch.float64) * (
            0.2 + 3 * torch.rand(n, 1, generator=g, dtype=torch.float64))
    labels = torch.randint(0, n_classes, (n,), generator=g)
    return emb, labels


def _reference_set(seed):
    """A reference set of another size, with a class (3) it lacks and one (2) held once."""
    g = torch.Generator().manual_seed(seed + 50)
    ref = torch.randn(9, 4, generator=g, dtype=torch.float64) * 2
    ref_labels = torch.tensor([0, 0, 0, 1, 1, 2, 4, 4, 0])
    return ref, ref_labels


def _np_matrix(emb, ref, distance, normalize):
    """The miner's distance written out in NumPy: (n, m) distances or similarities."""
    x, y = emb.numpy(), ref.numpy()
    if normalize:
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
        y = y / np.linalg.norm(y, axis=1, keepdims=True)
    if distance in ("dot", "cosine_similarity"):
        return x @ y.T
    sq = ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)
    return sq if distance == "sqeuclidean" else np.sqrt(sq)


def _np_masks(labels, ref_labels=None):
    """Positive and negative pair masks; no self-pairs when the batch is its own reference."""
    lab = labels.numpy()
    ref = lab if ref_labels is None else ref_labels.numpy()
    pos = lab[:, None] == ref[None, :]
    if ref_labels is None:
        np.fill_diagonal(pos, False)
    return pos, lab[:, None] != ref[None, :]


def _pairs(mask):
    return {(int(i), int(j)) for i, j in zip(*np.nonzero(mask), strict=True)}


def _as_pair_sets(tup):
    a1, p, a2, n = (t.tolist() for t in tup)
    return set(zip(a1, p, strict=True)), set(zip(a2, n, strict=True))


def _row_major(tup):
    """Pairs come in row-major order, without duplicates."""
    for a, b in (tup[:2], tup[2:]):
        keys = (a * 1000 + b).tolist()
        assert keys == sorted(set(keys))


def _with_and_without_reference(seed, **batch):
    emb, labels = _batch(seed, **batch)
    ref, ref_labels = _reference_set(seed)
    yield emb, labels, {}, None
    yield emb, labels, {"ref_emb": ref, "ref_labels": ref_labels}, ref


# --- LiftedMiner ------------------------------------------------------------------------

LIFTED_CASES = [  # (kwargs, distance, normalize) as the brute force computes them
    ({"neg_margin": 1.1}, "euclidean", True),  # the defaults: normalised Euclidean
    ({"neg_margin": 3.0, "normalize": False}, "euclidean", False),
    ({"neg_margin": 2.0, "distance": "sqeuclidean", "normalize": False}, "sqeuclidean", False),
    ({"neg_margin": 0.1, "distance": "dot", "normalize": False}, "dot", False),
    ({"neg_margin": 0.2, "distance": "cosine_similarity"}, "cosine_similarity", True),
    ({}, None, None),
]


@pytest.mark.parametrize("kwargs, distance, normalize", LIFTED_CASES)
def test_lifted_miner_matches_brute_force_with_and_without_a_reference_set(
        kwargs, distance, normalize):
    """Every positive pair; the negatives of anchors that have a positive, closer than
    ``neg_margin`` (a similarity above it), against the reference set when one is given."""
    miner = LiftedMiner(**kwargs)
    for seed in range(3):
        for emb, labels, ref_kwargs, ref in _with_and_without_reference(seed):
            pos, neg = _np_masks(labels, ref_kwargs.get("ref_labels"))
            neg &= pos.any(1, keepdims=True)
            if distance is not None:
                mat = _np_matrix(emb, emb if ref is None else ref, distance, normalize)
                neg &= (mat > kwargs["neg_margin"]) if distance in ("dot", "cosine_similarity") \
                    else (mat < kwargs["neg_margin"])
            got = miner(emb, labels, **ref_kwargs)
            assert _as_pair_sets(got) == (_pairs(pos), _pairs(neg))
            _row_major(got)
            if distance is not None and ref is None:
                assert 0 < neg.sum() < (~pos).sum() - len(labels)  # the margin cut some


def test_lifted_miner_margin_is_strict_at_exact_ties():
    """A negative exactly at ``neg_margin`` has a zero hinge: it is not kept."""
    emb = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [3.0, 0.0], [0.0, 1.0]])
    labels = torch.tensor([0, 0, 1, 1, 2])
    miner = LiftedMiner(neg_margin=4.0, distance="sqeuclidean", normalize=False)
    _, negs = _as_pair_sets(miner(emb, labels))
    # From anchor 0: sample 2 at exactly 4 (dropped), 4 at 1 (kept), 3 at 9 (dropped).
    assert {n for a, n in negs if a == 0} == {4}
    # From anchor 1: sample 2 at 5, 3 at exactly 4 (both dropped), 4 at 2 (kept).
    assert {n for a, n in negs if a == 1} == {4}
    sim = LiftedMiner(neg_margin=0.0, distance="dot", normalize=False)
    _, negs = _as_pair_sets(sim(emb, labels))
    assert {n for a, n in negs if a == 0} == set()  # every dot product with 0 is exactly 0


# --- RandomMiner and AllTuplesMiner -------------------------------------------------------

def _check_random_tuples(tup, labels, ref_labels, k, output):
    """Every draw valid against the reference labels, and ``k`` draws per eligible anchor."""
    pos, neg = _np_masks(labels, ref_labels)
    has_pos, has_neg = pos.any(1), neg.any(1)
    if output == "triplets":
        a, p, n = (t.numpy() for t in tup)
        expected = np.repeat(np.flatnonzero(has_pos & has_neg), k)
        assert np.array_equal(a, expected)
        assert pos[a, p].all() and neg[a, n].all()
        return
    a1, p, a2, n = (t.numpy() for t in tup)
    assert np.array_equal(a1, np.repeat(np.flatnonzero(has_pos), k))
    assert np.array_equal(a2, np.repeat(np.flatnonzero(has_neg), k))
    assert pos[a1, p].all() and neg[a2, n].all()


@pytest.mark.parametrize("output", ["triplets", "pairs"])
@pytest.mark.parametrize("k", [1, 3])
def test_random_miner_draws_valid_tuples_from_the_reference_set(output, k):
    for seed in range(3):
        for emb, labels, ref_kwargs, _ in _with_and_without_reference(seed):
            miner = RandomMiner(output, tuples_per_anchor=k, random_state=seed)
            tup = miner(emb, labels, **ref_kwargs)
            _check_random_tuples(tup, labels, ref_kwargs.get("ref_labels"), k, output)
            if ref_kwargs:  # indices point into the 9-sample reference set
                assert max(int(t.max()) for t in tup[1::2 if output == "pairs" else 1]) < 9


def test_random_miner_default_is_one_triplet_per_anchor():
    emb, labels = _batch(1)
    tup = RandomMiner(random_state=0)(emb, labels)
    _check_random_tuples(tup, labels, None, 1, "triplets")


@pytest.mark.parametrize("output", ["triplets", "pairs"])
def test_random_miner_draws_depend_on_random_state_only(output):
    """The draws come from the miner's own generator: the global seed does not change
    them, and a different ``random_state`` does."""
    emb, labels = _batch(0, n=30)
    runs = []
    for global_seed, state in ((1, 7), (2, 7), (1, 8)):
        torch.manual_seed(global_seed)
        runs.append(RandomMiner(output, tuples_per_anchor=4, random_state=state)(emb, labels))
    assert all(torch.equal(x, y) for x, y in zip(runs[0], runs[1], strict=True))
    for i in range(1, len(runs[0]), 2 if output == "pairs" else 1):  # the drawn columns
        assert not torch.equal(runs[0][i], runs[2][i])


@pytest.mark.parametrize("kwargs, size", [({}, 4), ({"output": "triplets"}, 3)])
def test_all_tuples_miner_matches_brute_force_with_a_reference_set(kwargs, size):
    """The default output is pairs; tuples are taken against the reference labels."""
    for emb, labels, ref_kwargs, _ in _with_and_without_reference(4):
        pos, neg = _np_masks(labels, ref_kwargs.get("ref_labels"))
        got = AllTuplesMiner(**kwargs)(emb, labels, **ref_kwargs)
        assert len(got) == size
        if size == 4:
            assert _as_pair_sets(got) == (_pairs(pos), _pairs(neg))
            _row_major(got)
        else:
            expected = [(a, p, n) for a, p in sorted(_pairs(pos))
                        for n in np.flatnonzero(neg[a])]
            assert list(zip(*(t.tolist() for t in got), strict=True)) == expected


# --- NPairsMiner --------------------------------------------------------------------------

def test_npairs_miner_pairs_are_the_first_two_of_each_class_in_the_seeded_permutation():
    """With ``random_state=s`` each class's pair is its first two members in the order of
    ``torch.randperm(n)`` from a CPU generator seeded with s: a definition that does not
    depend on how (or on which device) the labels are sorted. Negatives pair each anchor
    with every other class's positive, in row-major order."""
    for seed in range(3):
        labels = torch.randint(0, 5, (64,), generator=torch.Generator().manual_seed(seed))
        labels[labels == 4] = 5  # label values need not be contiguous
        labels[0] = 9  # a class of one sample has no pair
        emb = torch.randn(64, 3)
        perm = torch.randperm(64, generator=torch.Generator().manual_seed(seed)).tolist()
        members = {}
        for i in perm:
            members.setdefault(int(labels[i]), []).append(i)
        pairs = [members[c][:2] for c in sorted(members) if len(members[c]) > 1]
        a1, p, a2, n = NPairsMiner(random_state=seed)(emb, labels)
        assert [[x, y] for x, y in zip(a1.tolist(), p.tolist(), strict=True)] == pairs
        expected = [(pairs[i][0], pairs[j][1]) for i in range(len(pairs))
                    for j in range(len(pairs)) if i != j]
        assert list(zip(a2.tolist(), n.tolist(), strict=True)) == expected


@pytest.mark.parametrize("labels, n_pairs", [([0, 0, 1, 2], 1), ([0, 1, 2, 3], 0)])
def test_npairs_miner_with_one_or_no_class_with_a_pair_has_no_negatives(labels, n_pairs):
    a1, p, a2, n = NPairsMiner(random_state=0)(torch.randn(4, 3), torch.tensor(labels))
    assert len(a1) == len(p) == n_pairs
    assert len(a2) == len(n) == 0


def test_npairs_miner_refuses_a_reference_set_by_name():
    emb, labels = _batch(0)
    with pytest.raises(ValueError, match="^NPairsMiner does not support ref_emb; pass only "
                                         "the batch"):
        NPairsMiner()(emb, labels, emb, labels)


# --- DistanceWeightedMiner ----------------------------------------------------------------

def _unit(v):
    v = torch.tensor(v, dtype=torch.float64)
    return v / v.norm(dim=1, keepdim=True)


def test_distance_weighted_defaults_are_pml_s():
    ours, theirs = DistanceWeightedMiner(), pml_miners.DistanceWeightedMiner()
    assert (ours.cutoff, ours.nonzero_loss_cutoff) == (theirs.cutoff, theirs.nonzero_loss_cutoff)


def test_distance_weighted_miner_draws_only_negatives_inside_the_cutoff():
    """One triplet per positive pair of each anchor that has a negative closer than
    ``nonzero_loss_cutoff`` (default 1.4); negatives are drawn only among those. Class 1
    (near -x) is farther than 1.4 from everything else: its anchors get no triplet."""
    emb = _unit([[1, 0.05, 0], [1, -0.05, 0.02], [-1, 0.03, 0], [-1, -0.02, 0.04],
                 [0.6, 0.8, 0], [0.62, 0.78, 0.05], [0.1, 0.2, 1]]) * torch.tensor(
        [[1.0], [3.0], [0.5], [2.0], [1.0], [4.0], [1.0]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 3])
    d = _np_matrix(emb, emb, "euclidean", True)
    pos, neg = _np_masks(labels)
    for kwargs, cut in (({}, 1.4), ({"nonzero_loss_cutoff": 1.9}, 1.9)):
        valid = neg & (d < cut)
        expected = sorted(_pairs(pos & valid.any(1, keepdims=True)))
        for seed in range(10):
            a, p, n = DistanceWeightedMiner(random_state=seed, **kwargs)(emb, labels)
            assert list(zip(a.tolist(), p.tolist(), strict=True)) == expected
            assert valid[a.numpy(), n.numpy()].all()
        assert ({2, 3} <= set(a.tolist())) == (cut > 1.8)


def test_distance_weighted_miner_with_a_reference_set():
    """Positives and negatives are taken in the reference set, by its labels, and weighed by
    the distances to it."""
    emb, labels = _batch(3, n=12, dim=3)
    ref, ref_labels = _reference_set(3)
    ref = ref[:, :3]
    d = _np_matrix(emb, ref, "euclidean", True)
    pos, neg = _np_masks(labels, ref_labels)
    valid = neg & (d < 1.4)
    expected = sorted(_pairs(pos & valid.any(1, keepdims=True)))
    assert len(expected) > 5
    for seed in range(5):
        a, p, n = DistanceWeightedMiner(random_state=seed)(emb, labels, ref, ref_labels)
        assert list(zip(a.tolist(), p.tolist(), strict=True)) == expected
        assert valid[a.numpy(), n.numpy()].all()


def _rotated(axis, other, dist, dim):
    """The unit vector at Euclidean distance ``dist`` from basis vector ``axis``, turned
    towards basis vector ``other``."""
    t = 2 * np.arcsin(dist / 2)
    v = np.zeros(dim)
    v[axis], v[other] = np.cos(t), np.sin(t)
    return v


def test_distance_weighted_miner_in_float32_high_dimension():
    """In 256 dimensions the log-weights of two rows differ by about 150: each row must be
    shifted by its own maximum, or a row underflows to zero weights (float32) and the
    draw falls on an invalid negative."""
    dim = 256
    points = [np.eye(dim)[0], _rotated(0, 1, 0.1, dim),  # class 0
              np.eye(dim)[2], _rotated(2, 3, 0.1, dim),  # class 1
              _rotated(0, 4, 1.25, dim),  # class 2: the only negative of class 0 in reach
              _rotated(2, 5, 0.55, dim)]  # class 3: the only negative of class 1 in reach
    emb = torch.tensor(np.array(points), dtype=torch.float32) * 3
    labels = torch.tensor([0, 0, 1, 1, 2, 3])
    for seed in range(5):
        a, p, n = DistanceWeightedMiner(random_state=seed)(emb, labels)
        assert list(zip(a.tolist(), p.tolist(), n.tolist(), strict=True)) == [
            (0, 1, 4), (1, 0, 4), (2, 3, 5), (3, 2, 5)]


def test_distance_weighted_negative_exactly_at_the_cutoff_is_never_drawn():
    emb = _unit([[1, 0, 0], [1, 0.1, 0], [0, 1, 0], [0.8, 0.6, 0]])
    labels = torch.tensor([0, 0, 1, 2])
    cut = float(DistanceWeightedMiner().dist(emb)[0, 2])  # the miner's own d(0, 2)
    for seed in range(10):
        a, _, n = DistanceWeightedMiner(nonzero_loss_cutoff=cut, random_state=seed)(
            emb, labels)
        assert n[a == 0].tolist() == [3]


# --- PairMarginMiner ----------------------------------------------------------------------

def _pml_pairs(miner, emb, labels, **kwargs):
    return _as_pair_sets(miner(emb, labels, **kwargs))


def test_pair_margin_miner_defaults_match_pml():
    for seed in range(3):
        emb, labels = _batch(seed, n=20)
        assert _as_pair_sets(PairMarginMiner()(emb, labels)) == _pml_pairs(
            pml_miners.PairMarginMiner(), emb, labels)


@pytest.mark.parametrize("distance", ["sqeuclidean", "dot"])
def test_pair_margin_miner_margins_are_strict_at_exact_ties(distance):
    """Integer embeddings: many pairs sit exactly on a margin; neither side keeps them
    (PML's strict comparisons)."""
    emb, labels = _batch(5, n=24, dim=3, grid=True)
    mat = _np_matrix(emb, emb, distance, False)
    pml_dist = (pml_distances.LpDistance(normalize_embeddings=False, power=2)
                if distance == "sqeuclidean" else
                pml_distances.DotProductSimilarity(normalize_embeddings=False))
    pos, neg = _np_masks(labels)
    for margin in (1.0, 2.0, 3.0):
        assert (pos & (mat == margin)).any() and (neg & (mat == margin)).any()
        ours = PairMarginMiner(margin, margin, distance=distance, normalize=False)
        theirs = pml_miners.PairMarginMiner(margin, margin, distance=pml_dist)
        assert _as_pair_sets(ours(emb, labels)) == _pml_pairs(theirs, emb, labels)


# --- BatchEasyHardMiner -------------------------------------------------------------------

PML_DIST = {"sqeuclidean": lambda: pml_distances.LpDistance(normalize_embeddings=False,
                                                            power=2),
            "euclidean": lambda: pml_distances.LpDistance()}


def _same_as_pml(ours, theirs, emb, labels):
    got, expected = ours(emb, labels), theirs(emb, labels)
    assert len(got) == 4
    for x, y in zip(got, expected, strict=True):
        assert torch.equal(x, y)


def test_batch_easy_hard_defaults_match_pml():
    """Defaults: easy positives, semi-hard negatives, normalised Euclidean distance."""
    for seed in range(3):
        emb, labels = _batch(seed, n=20)
        _same_as_pml(BatchEasyHardMiner(), pml_miners.BatchEasyHardMiner(), emb, labels)


@pytest.mark.parametrize("strategies", [("semihard", "easy"), ("semihard", "hard"),
                                        ("easy", "semihard"), ("hard", "semihard")])
def test_batch_easy_hard_semihard_at_exact_ties_matches_pml(strategies):
    """Integer embeddings: a positive exactly as far as the chosen negative is not
    semi-hard (strict inequalities, as PML's)."""
    for seed in range(4):
        emb, labels = _batch(seed, n=24, dim=2, grid=True)
        _same_as_pml(BatchEasyHardMiner(*strategies, distance="sqeuclidean", normalize=False),
                     pml_miners.BatchEasyHardMiner(*strategies,
                                                   distance=PML_DIST["sqeuclidean"]()),
                     emb, labels)


@pytest.mark.parametrize("strategies", [("hard", "easy"), ("easy", "hard"), ("hard", "all"),
                                        ("all", "easy")])
def test_batch_easy_hard_ranges_are_inclusive_and_ignored_by_all(strategies):
    """``allowed_*_range`` bounds are inclusive (integer distances sit on them) and the
    'all' strategy ignores its range, as PML does."""
    for seed in range(4):
        emb, labels = _batch(seed, n=24, dim=2, grid=True)
        rng = (2.0, 5.0)
        _same_as_pml(BatchEasyHardMiner(*strategies, rng, rng, distance="sqeuclidean",
                                        normalize=False),
                     pml_miners.BatchEasyHardMiner(*strategies, rng, rng,
                                                   distance=PML_DIST["sqeuclidean"]()),
                     emb, labels)


def test_batch_easy_hard_argument_errors_name_the_argument():
    with pytest.raises(ValueError, match="^pos_strategy and neg_strategy cannot both be "
                                         "'semihard'; make one of them 'easy' or 'hard'"):
        BatchEasyHardMiner("semihard", "semihard")
    for name in ("allowed_pos_range", "allowed_neg_range"):
        with pytest.raises(ValueError, match=f"^{name} must be \\(low, high\\)"):
            BatchEasyHardMiner(**{name: (1.0, 0.5)})
        BatchEasyHardMiner(**{name: (0.5, 0.5)})  # low == high is a valid range


# --- UniformHistogramMiner ----------------------------------------------------------------

def test_uniform_histogram_defaults_equal_pml_under_the_same_seed():
    for seed in range(2):
        emb, labels = _batch(seed, n=40)
        got = UniformHistogramMiner(random_state=seed)(emb, labels)
        torch.manual_seed(seed)
        expected = pml_miners.UniformHistogramMiner()(emb, labels)
        for x, y in zip(got, expected, strict=True):
            assert torch.equal(x, y)


def test_batch_easy_hard_range_bounds_are_inclusive_on_a_hand_computed_batch():
    """1-D points, squared distances from sample 0: positives at 1 and 4, negatives at 9
    and 100. The hardest positive within [1, 4] is at 4, the hardest negative within
    [9, 100] at 9: both on a bound."""
    emb = torch.tensor([[0.0], [1.0], [2.0], [3.0], [10.0]])
    labels = torch.tensor([0, 0, 0, 1, 1])
    kwargs = dict(allowed_pos_range=(1.0, 4.0), allowed_neg_range=(9.0, 100.0),
                  distance="sqeuclidean", normalize=False)
    a1, p, a2, n = BatchEasyHardMiner("hard", "hard", **kwargs)(emb, labels)
    assert (p[a1 == 0].tolist(), n[a2 == 0].tolist()) == ([2], [3])
    theirs = pml_miners.BatchEasyHardMiner("hard", "hard", kwargs["allowed_pos_range"],
                                           kwargs["allowed_neg_range"],
                                           distance=PML_DIST["sqeuclidean"]())
    _same_as_pml(BatchEasyHardMiner("hard", "hard", **kwargs), theirs, emb, labels)
