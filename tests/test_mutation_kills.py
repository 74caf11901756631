"""Tests written to kill mutants that survived ``scripts/mutation.py`` (see tests/README.md).

Each test checks a behaviour that the module's own test file left open: mining against a
separate reference set, anchors with no or exactly one negative, and the float-rounding
and equal-value edge cases of the triplet miner's binary search. References are brute
force over every pair or triplet, computed from the same distance matrix.
"""

import numpy as np
import pytest
import torch

from skmetric.deep.miners import BatchHardMiner, TripletMarginMiner
from skmetric.deep.miners.triplet_margin import _count_at_most

TYPES = ("all", "hard", "semihard", "easy")


def _masks(labels, ref_labels):
    pos = labels[:, None] == ref_labels[None, :]
    return pos, ~pos


def _brute_triplets(far, pos, neg, kind, margin):
    """Every (a, p, n) selected by ``kind``, with t = far[a, n] - far[a, p]."""
    out = set()
    for a in range(far.shape[0]):
        for p in np.flatnonzero(pos[a]):
            for n in np.flatnonzero(neg[a]):
                t = far[a, n] - far[a, p]
                keep = {"all": t <= margin, "hard": t <= min(margin, 0.0),
                        "semihard": 0 < t <= margin, "easy": t > margin}[kind]
                if keep:
                    out.add((a, int(p), int(n)))
    return out


def _as_set(indices):
    return set(zip(*(t.tolist() for t in indices), strict=True))


def _cross_batch(seed, n=9, m=13, dim=3, grid=False):
    """A batch and a separate reference set. Anchor labels 0..3; the reference has no
    class 3 at all, one sample of class 2 and several of 0 and 1, so some anchors have no
    positive, and every anchor of class 2 has exactly ... one positive; labels 4 anchors
    would have all-negative references."""
    g = torch.Generator().manual_seed(seed)
    if grid:  # integer coordinates: many exactly equal distances
        emb = torch.randint(0, 3, (n, dim), generator=g).float()
        ref = torch.randint(0, 3, (m, dim), generator=g).float()
    else:
        emb, ref = torch.randn(n, dim, generator=g), torch.randn(m, dim, generator=g)
    labels = torch.tensor([0, 1, 2, 3, 0, 1, 2, 0, 1])[:n]
    ref_labels = torch.tensor([0, 0, 0, 1, 1, 1, 1, 2, 0, 1, 0, 1, 0])[:m]
    return emb, labels, ref, ref_labels


@pytest.mark.parametrize("kind", TYPES)
@pytest.mark.parametrize("grid", [False, True])
def test_triplet_miner_against_a_reference_set_matches_brute_force(kind, grid):
    for seed in range(4):
        emb, labels, ref, ref_labels = _cross_batch(seed, grid=grid)
        miner = TripletMarginMiner(margin=1.0 if grid else 0.3, type_of_triplets=kind,
                                   distance="sqeuclidean" if grid else "euclidean",
                                   normalize=not grid)
        far = miner.dist(emb, ref).numpy()
        pos, neg = _masks(labels.numpy(), ref_labels.numpy())
        expected = _brute_triplets(far, pos, neg, kind, miner.margin)
        got = miner(emb, labels, ref, ref_labels)
        assert _as_set(got) == expected
        assert len(got[0]) == len(expected)  # no duplicates


def test_triplet_miner_anchor_with_exactly_one_negative_is_mined():
    # The reference holds one sample of another class: every anchor has one negative.
    emb = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    ref = torch.tensor([[0.1, 0.0], [0.2, 0.0], [5.0, 0.0]])
    labels, ref_labels = torch.tensor([0, 0]), torch.tensor([0, 0, 1])
    a, p, n = TripletMarginMiner(margin=100.0, normalize=False)(emb, labels, ref, ref_labels)
    assert set(zip(a.tolist(), p.tolist(), n.tolist(), strict=True)) == {
        (0, 0, 2), (0, 1, 2), (1, 0, 2), (1, 1, 2)}


@pytest.mark.parametrize("kind", TYPES)
def test_triplet_miner_without_positive_pairs_mines_nothing(kind):
    emb = torch.randn(5, 3, generator=torch.Generator().manual_seed(0))
    a, p, n = TripletMarginMiner(type_of_triplets=kind)(emb, torch.arange(5))
    assert len(a) == len(p) == len(n) == 0
    assert a.dtype == torch.long


def _rounding_edge(dtype, above, rng):
    """(ap, limit, x) with x on the wrong side of ap + limit after rounding: ``x - ap <=
    limit`` is False but ``x <= fl(ap + limit)`` (above=False), or the reverse."""
    for _ in range(100000):
        ap = torch.tensor(rng.uniform(0.01, 4.0), dtype=dtype)
        limit = torch.tensor(rng.uniform(-0.5, 0.5), dtype=dtype)
        x = ap + limit
        for step in (-1, 0, 1):
            y = torch.nextafter(x, torch.tensor(np.inf, dtype=dtype)) if step > 0 else (
                torch.nextafter(x, torch.tensor(-np.inf, dtype=dtype)) if step < 0 else x)
            exact = bool(y - ap <= limit)
            searched = bool(y <= ap + limit)
            if exact != searched and exact == above:
                return float(ap), float(limit), float(y)
    raise AssertionError("no rounding edge found")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("above", [False, True])
def test_count_at_most_is_exact_at_rounding_edges_and_long_runs(dtype, above):
    """The binary search on ap + limit must end where ``neg_far - ap <= limit`` does,
    also when a run of equal values longer than the fix-up steps sits on the boundary."""
    rng = np.random.default_rng(0)
    ap, limit, x = _rounding_edge(dtype, above, rng)
    for run_length in (1, 3, 9):
        row = sorted([x] * run_length + [x - 1.0, x - 0.5, x + 0.5, x + 1.0])
        inf = [float("inf")] * 2
        neg_far = torch.tensor([row + inf, [x - 2.0] * len(row) + inf], dtype=dtype)
        n_neg = torch.tensor([len(row), len(row)])
        a = torch.tensor([0, 0, 1])
        ap_t = torch.tensor([ap, ap - 1.0, ap], dtype=dtype)
        got = _count_at_most(neg_far, a, ap_t, limit, n_neg)
        expected = [int((neg_far[i, :len(row)] - ap_t[j] <= limit).sum())
                    for j, i in enumerate(a.tolist())]
        assert got.tolist() == expected


def test_count_at_most_random_grid_values_match_brute_force():
    rng = np.random.default_rng(1)
    for _ in range(30):
        n, m = 4, 12
        vals = rng.integers(0, 6, size=(n, m)) * 0.1
        n_neg = torch.tensor(rng.integers(0, m + 1, size=n))
        neg_far = torch.full((n, m), float("inf"), dtype=torch.float32)
        for i in range(n):
            neg_far[i, :n_neg[i]] = torch.tensor(np.sort(vals[i, :n_neg[i]]),
                                                 dtype=torch.float32)
        # Anchors come sorted (torch.where on the positive mask), as the miner passes them.
        a = torch.tensor(np.sort(rng.integers(0, n, size=10)))
        ap = torch.tensor(rng.integers(0, 6, size=10) * 0.1, dtype=torch.float32)
        for limit in (0.0, 0.2, -0.1):
            got = _count_at_most(neg_far, a, ap, limit, n_neg)
            expected = [int((neg_far[i, :n_neg[i]] - ap[j] <= limit).sum())
                        for j, i in enumerate(a.tolist())]
            assert got.tolist() == expected


def test_batch_hard_against_a_reference_set_matches_brute_force():
    for seed in range(4):
        emb, labels, ref, ref_labels = _cross_batch(seed)
        miner = BatchHardMiner()
        far = miner.dist(emb, ref).numpy()
        pos, neg = _masks(labels.numpy(), ref_labels.numpy())
        anchors = [i for i in range(len(emb)) if pos[i].any() and neg[i].any()]
        a, p, n = miner(emb, labels, ref, ref_labels)
        assert a.tolist() == anchors
        for i, pi, ni in zip(a.tolist(), p.tolist(), n.tolist(), strict=True):
            assert far[i, pi] == far[i][pos[i]].max() and pos[i, pi]
            assert far[i, ni] == far[i][neg[i]].min() and neg[i, ni]


def test_batch_hard_skips_anchors_whose_reference_has_no_negative():
    # Anchor 0 (class 0) sees only positives, anchor 1 (class 1) only negatives.
    emb = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    ref = torch.tensor([[0.0, 2.0], [2.0, 1.0], [1.0, 1.0]])
    a, p, n = BatchHardMiner()(emb, torch.tensor([0, 1]), ref, torch.tensor([0, 0, 0]))
    assert len(a) == len(p) == len(n) == 0


def _pml_pairs(pml_miner, emb, labels, ref=None, ref_labels=None):
    out = pml_miner(emb, labels, ref, ref_labels) if ref is not None else pml_miner(emb, labels)
    return _pair_sets(out)


def _pair_sets(indices):
    a1, p, a2, n = (t.tolist() for t in indices)
    return set(zip(a1, p, strict=True)), set(zip(a2, n, strict=True))


def test_multi_similarity_miner_defaults_match_pml():
    pml_miners = pytest.importorskip("pytorch_metric_learning.miners")
    from skmetric.deep.miners import MultiSimilarityMiner

    g = torch.Generator().manual_seed(0)
    emb = torch.randn(24, 4, generator=g) * torch.rand(24, 1, generator=g)  # norms vary
    labels = torch.arange(6).repeat_interleave(4)
    ours = _pair_sets(MultiSimilarityMiner()(emb, labels))
    assert ours == _pml_pairs(pml_miners.MultiSimilarityMiner(), emb, labels)
    assert ours[0] and ours[1]


@pytest.mark.parametrize("cross", [False, True])
def test_multi_similarity_miner_ties_and_reference_set_match_pml(cross):
    """Integer embeddings and dot products: closeness equal to the threshold exactly, which
    PML (and the paper's strict inequalities) leaves out; unnormalised, so ``normalize``
    must reach the distance."""
    pml_miners = pytest.importorskip("pytorch_metric_learning.miners")
    from pytorch_metric_learning.distances import DotProductSimilarity

    from skmetric.deep.miners import MultiSimilarityMiner

    for seed in range(4):
        emb, labels, ref, ref_labels = _cross_batch(seed, grid=True)
        if not cross:
            ref = ref_labels = None
        ours = MultiSimilarityMiner(epsilon=1.0, distance="dot", normalize=False)
        pml = pml_miners.MultiSimilarityMiner(
            epsilon=1.0, distance=DotProductSimilarity(normalize_embeddings=False))
        assert _pair_sets(ours(emb, labels, ref, ref_labels)) == _pml_pairs(
            pml, emb, labels, ref, ref_labels)


def _defaults_batch(seed=0, spread=0.3):
    g = torch.Generator().manual_seed(seed)
    # Varied norms (normalisation matters); positives at ``spread`` from each other: small
    # (a non-zero positive margin matters) or about as far as negatives (triplets violate).
    base = torch.randn(8, 5, generator=g)
    emb = torch.cat([base, base + spread * torch.randn(8, 5, generator=g)])
    emb = emb * (0.2 + 3 * torch.rand(16, 1, generator=g))
    return emb, torch.arange(8).repeat(2)


@pytest.mark.parametrize("name, spread", [("ContrastiveLoss", 0.3),
                                          ("TripletMarginLoss", 1.0)])
def test_loss_defaults_match_pml(name, spread):
    """Default margins, distance and normalisation are PML's: same value, same gradient."""
    pml_losses = pytest.importorskip("pytorch_metric_learning.losses")
    from skmetric.deep import losses

    emb, labels = _defaults_batch(spread=spread)
    values, grads = [], []
    for loss in (getattr(losses, name)(), getattr(pml_losses, name)()):
        e = emb.clone().requires_grad_(True)
        value = loss(e, labels)
        value.backward()
        values.append(value.item())
        grads.append(e.grad)
    assert values[0] == pytest.approx(values[1], rel=1e-5)
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-4, atol=1e-6)
    assert values[0] > 0


def test_triplet_loss_samples_per_anchor_only_without_given_tuples():
    from skmetric.deep.losses import TripletMarginLoss

    emb, labels = _defaults_batch(1, spread=1.0)
    given = TripletMarginMiner(margin=1.0)(emb, labels)
    # Mined tuples are used as given, whatever triplets_per_anchor says.
    assert TripletMarginLoss(triplets_per_anchor=1, random_state=0)(
        emb, labels, given).item() == pytest.approx(TripletMarginLoss()(emb, labels,
                                                                        given).item())
    # Without them, one random triplet per anchor: the value depends on the draw.
    drawn = {round(TripletMarginLoss(triplets_per_anchor=1, random_state=seed)(
        emb, labels).item(), 6) for seed in range(6)}
    assert len(drawn) > 1
    with pytest.raises(ValueError, match=r"triplets_per_anchor.*range \[1, inf\)"):
        TripletMarginLoss(triplets_per_anchor=0)


def test_triplet_loss_samples_from_the_reference_set():
    """Each anchor has one positive and one negative in the reference, so the one triplet
    drawn per anchor is known: the loss has a closed form."""
    from skmetric.deep.losses import TripletMarginLoss

    emb = torch.tensor([[0.0, 0.0], [3.0, 0.0]])
    ref = torch.tensor([[1.0, 0.0], [1.5, 0.0]])
    labels, ref_labels = torch.tensor([0, 1]), torch.tensor([0, 1])
    loss = TripletMarginLoss(margin=0.7, triplets_per_anchor=1, normalize=False,
                             random_state=0)
    # anchor 0: d(a, p) = 1.0, d(a, n) = 1.5; anchor 1: d(a, p) = 1.5, d(a, n) = 2.0, so
    # the hinges are 1.0 - 1.5 + 0.7 = 0.2 and 1.5 - 2.0 + 0.7 = 0.2.
    value = loss(emb, labels, ref_emb=ref, ref_labels=ref_labels).item()
    assert value == pytest.approx(0.2)


@pytest.mark.parametrize("kind", ["hard", "semihard", "easy"])
def test_triplet_miner_shortcuts_pass_every_argument(kind):
    from skmetric.deep.miners import EasyTripletMiner, HardTripletMiner, SemihardTripletMiner

    cls = {"hard": HardTripletMiner, "semihard": SemihardTripletMiner,
           "easy": EasyTripletMiner}[kind]
    emb, labels = _defaults_batch(2, spread=1.0)
    assert _as_set(cls()(emb, labels)) == _as_set(
        TripletMarginMiner(0.2, kind)(emb, labels))
    # Unnormalised squared distances span [0, 100+]: a different distance, normalisation or
    # margin changes which triplets qualify.
    args = dict(distance="sqeuclidean", normalize=False)
    got = _as_set(cls(margin=-0.5 if kind == "hard" else 3.0, **args)(emb, labels))
    assert got == _as_set(TripletMarginMiner(-0.5 if kind == "hard" else 3.0, kind, **args)(
        emb, labels))
    assert got != _as_set(TripletMarginMiner(0.2, kind)(emb, labels))


def test_triplet_miner_defaults_match_pml():
    pml_miners = pytest.importorskip("pytorch_metric_learning.miners")

    emb, labels = _defaults_batch(3, spread=1.0)
    for kind in TYPES:
        ours = _as_set(TripletMarginMiner(type_of_triplets=kind)(emb, labels))
        ref = _as_set(pml_miners.TripletMarginMiner(type_of_triplets=kind)(emb, labels))
        assert ours == ref and ours, kind


def test_nca_tol_reaches_the_optimiser():
    """A loose tolerance stops L-BFGS earlier than a tight one (tol is passed to it)."""
    from sklearn.datasets import load_iris

    from skmetric import NCA

    X, y = load_iris(return_X_y=True)
    loose = NCA(tol=1e-1, max_iter=200, random_state=0).fit(X, y)
    tight = NCA(tol=1e-12, max_iter=200, random_state=0).fit(X, y)
    assert 1 <= loose.n_iter_ < tight.n_iter_


def test_nca_verbose_reports_each_iteration(capsys):
    from sklearn.datasets import load_iris

    from skmetric import NCA

    X, y = load_iris(return_X_y=True)
    # prior_strength=0: one L-BFGS run, whose iterations are the only lines printed.
    nca = NCA(max_iter=5, verbose=1, random_state=0, prior_strength=0).fit(X, y)
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split() == ["[NCA]", "iter", "objective", "elapsed", "(s)"]
    iters = [line.split()[1] for line in lines[1:] if "/" in line.split()[1]]
    assert iters == [f"{i}/{nca.max_iter}" for i in range(1, nca.n_iter_ + 1)]
