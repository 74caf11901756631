"""Deep miners: agreement with pytorch-metric-learning, hand cases, randomness, errors."""

import inspect

import pytest

torch = pytest.importorskip("torch")
pml_miners = pytest.importorskip("pytorch_metric_learning.miners")
pml_distances = pytest.importorskip("pytorch_metric_learning.distances")
pml_lmu = pytest.importorskip("pytorch_metric_learning.utils.loss_and_miner_utils")

from skmetric.deep import _tuples  # noqa: E402
from skmetric.deep.losses import TripletMarginLoss  # noqa: E402
from skmetric.deep.miners import (  # noqa: E402
    ALIASES,
    MINERS,
    AllTuplesMiner,
    BatchHardMiner,
    DistanceWeightedMiner,
    LiftedMiner,
    MultiSimilarityMiner,
    NPairsMiner,
    RandomMiner,
    TripletMarginMiner,
    get_miner,
)
from skmetric.deep.miners.distance_weighted import negative_weights  # noqa: E402

PML_DISTANCE = {
    "euclidean": pml_distances.LpDistance,
    "sqeuclidean": lambda: pml_distances.LpDistance(power=2),
    "cosine_similarity": pml_distances.CosineSimilarity,
}


def _batch(seed, n=48, dim=5, n_classes=6, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    emb = torch.randn(n, dim, generator=g, dtype=dtype)
    labels = torch.randint(0, n_classes, (n,), generator=g)
    return emb, labels


def _as_set(indices):
    if len(indices) == 4:
        return (set(zip(indices[0].tolist(), indices[1].tolist(), strict=True)),
                set(zip(indices[2].tolist(), indices[3].tolist(), strict=True)))
    return set(zip(*(t.tolist() for t in indices), strict=True))


def _assert_same_tuples(ours, theirs):
    assert len(ours) == len(theirs)
    assert all(t.dtype == torch.long for t in ours)
    # Same multiset size and same set: no duplicates lost or added.
    assert [len(t) for t in ours] == [len(t) for t in theirs]
    assert _as_set(ours) == _as_set(theirs)


@pytest.mark.parametrize("kind", ["all", "hard", "semihard", "easy"])
@pytest.mark.parametrize("distance", ["euclidean", "sqeuclidean", "cosine_similarity"])
def test_triplet_margin_miner_matches_pytorch_metric_learning(kind, distance):
    margin = 0.1 if distance == "cosine_similarity" else 0.2
    ours = TripletMarginMiner(margin, kind, distance=distance)
    theirs = pml_miners.TripletMarginMiner(margin, kind, distance=PML_DISTANCE[distance]())
    for seed in range(2):
        emb, labels = _batch(seed)
        _assert_same_tuples(ours(emb, labels), theirs(emb, labels))
    ref, ref_labels = _batch(9, n=30)
    _assert_same_tuples(ours(emb, labels, ref, ref_labels), theirs(emb, labels, ref, ref_labels))


def test_triplet_miner_aliases_are_the_three_types():
    emb, labels = _batch(1)
    for name in ("hard", "semihard", "easy"):
        miner = get_miner(name, margin=0.3)
        assert miner.type_of_triplets == name
        expected = pml_miners.TripletMarginMiner(0.3, name)(emb, labels)
        _assert_same_tuples(miner(emb, labels), expected)


def test_triplet_miner_definitions_on_a_hand_computed_batch():
    # On a line (no normalisation): d(0,1)=1, d(0,2)=1.5, d(0,3)=0.8 (label 1) ...
    emb = torch.tensor([[0.0], [1.0], [1.5], [-0.8]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 1, 1])
    mine = {kind: _as_set(TripletMarginMiner(1.0, kind, normalize=False)(emb, labels))
            for kind in ("hard", "semihard", "easy")}
    # Anchor 0, positive 1 (d=1): negative 3 at 0.8 is hard, negative 2 at 1.5 semi-hard.
    assert (0, 1, 3) in mine["hard"] and (0, 1, 2) in mine["semihard"]
    # Anchor 3, positive 2 (d=2.3): negative 1 at 1.8 hard; anchor 2, positive 3 (d=2.3):
    # negative 1 at 0.5 hard, negative 0 at 1.5 hard. Anchor 1, positive 0 (d=1):
    # negative 2 at 0.5 hard, negative 3 at 1.8 semi-hard.
    assert mine["hard"] == {(0, 1, 3), (1, 0, 2), (2, 3, 0), (2, 3, 1), (3, 2, 0), (3, 2, 1)}
    assert mine["semihard"] == {(0, 1, 2), (1, 0, 3)}
    assert mine["easy"] == set()


@pytest.mark.parametrize("distance", ["euclidean", "cosine_similarity"])
def test_batch_hard_miner_matches_pytorch_metric_learning(distance):
    emb, labels = _batch(2)
    labels[0] = 99  # an anchor without positives is skipped
    ours = BatchHardMiner(distance=distance)(emb, labels)
    theirs = pml_miners.BatchHardMiner(distance=PML_DISTANCE[distance]())(emb, labels)
    _assert_same_tuples(ours, theirs)
    assert 0 not in ours[0].tolist()


@pytest.mark.parametrize("distance", ["cosine_similarity", "euclidean"])
def test_multi_similarity_miner_matches_pytorch_metric_learning(distance):
    epsilon = 0.1 if distance == "cosine_similarity" else 0.3
    ours = MultiSimilarityMiner(epsilon, distance=distance)
    theirs = pml_miners.MultiSimilarityMiner(epsilon, distance=PML_DISTANCE[distance]())
    assert ours.output == "pairs"
    for seed in range(3):
        emb, labels = _batch(seed)
        _assert_same_tuples(ours(emb, labels), theirs(emb, labels))


def test_distance_weighted_weights_match_pytorch_metric_learning(monkeypatch):
    emb, labels = _batch(4, n=64, dim=8)
    captured = {}
    original = pml_lmu.get_random_triplet_indices

    def capture(labels, ref_labels=None, t_per_anchor=None, weights=None):
        captured["weights"] = weights
        return original(labels, ref_labels, t_per_anchor, weights)

    monkeypatch.setattr(pml_miners.distance_weighted_miner.lmu, "get_random_triplet_indices",
                        capture)
    pml_miners.DistanceWeightedMiner(0.5, 1.4)(emb, labels)
    theirs = captured["weights"]
    pos, neg = _tuples.label_masks(labels)
    mat = torch.cdist(*(torch.nn.functional.normalize(emb, dim=1),) * 2)
    ours, valid = negative_weights(mat, neg, emb.shape[1], 0.5, 1.4)
    rows = torch.isfinite(theirs).all(1)
    assert rows.sum() > 40
    torch.testing.assert_close(ours[rows], theirs[rows], rtol=1e-5, atol=1e-8)


def test_distance_weighted_miner_samples_by_its_weights():
    emb, labels = _batch(6, n=32, dim=4, n_classes=4)
    miner = DistanceWeightedMiner(0.5, 1.4, random_state=0)
    pos, neg = _tuples.label_masks(labels)
    mat = torch.cdist(*(torch.nn.functional.normalize(emb, dim=1),) * 2)
    weights, valid = negative_weights(mat, neg, emb.shape[1], 0.5, 1.4)
    counts = torch.zeros_like(weights)
    for _ in range(60):
        a, p, n = miner(emb, labels)
        assert (labels[a] == labels[p]).all() and (labels[a] != labels[n]).all()
        assert (a != p).all() and valid[a, n].all()
        counts.index_put_((a, n), torch.ones(len(a), dtype=counts.dtype), accumulate=True)
    freq = counts / counts.sum(1, keepdim=True).clamp_min(1)
    rows = counts.sum(1) > 0
    # About 60 * (class size - 1) draws per anchor: frequencies within a few percent.
    assert (freq[rows] - weights[rows]).abs().max() < 0.12
    same = DistanceWeightedMiner(random_state=3)(emb, labels)
    assert all(torch.equal(x, y) for x, y in zip(same, DistanceWeightedMiner(
        random_state=3)(emb, labels), strict=True))


def test_random_miner_draws_uniform_valid_tuples_like_pytorch_metric_learning():
    emb, labels = _batch(8, n=40, n_classes=4)
    pos, neg = _tuples.label_masks(labels)
    a, p, n = RandomMiner(tuples_per_anchor=300, random_state=0)(emb, labels)
    ref_a, _, _ = pml_lmu.get_random_triplet_indices(labels, t_per_anchor=300)
    assert sorted(a.tolist()) == sorted(ref_a.tolist())  # same anchors, same counts
    assert pos[a, p].all() and neg[a, n].all()
    # Uniform over an anchor's positives: each one gets about 300 / n_pos draws.
    anchor = int(a[0])
    counts = torch.bincount(p[a == anchor], minlength=len(labels))[pos[anchor]].double()
    assert counts.min() > 0.5 * counts.mean() and counts.max() < 1.5 * counts.mean()
    a1, p1, a2, n2 = RandomMiner("pairs", tuples_per_anchor=2, random_state=0)(emb, labels)
    assert pos[a1, p1].all() and neg[a2, n2].all() and len(a2) == 2 * len(labels)


def test_npairs_miner_returns_one_random_pair_per_class():
    labels = torch.tensor([0, 0, 0, 1, 1, 2, 3, 3, 3, 3])
    emb = torch.randn(10, 4)
    seen = set()
    for seed in range(20):
        a1, p, a2, n = NPairsMiner(random_state=seed)(emb, labels)
        assert sorted(labels[a1].tolist()) == [0, 1, 3]  # class 2 has a single sample
        assert (labels[a1] == labels[p]).all() and (a1 != p).all()
        assert len(a2) == 6 and (labels[a2] != labels[n]).all()
        assert set(n.tolist()) <= set(p.tolist())
        seen.add(tuple(sorted(a1.tolist())))
    assert len(seen) > 1  # the pairs change with the seed


def test_lifted_miner_keeps_positives_and_the_negatives_of_their_anchors():
    emb = torch.tensor([[0.0, 1.0], [0.0, 1.1], [1.0, 0.0], [-1.0, 0.0], [0.0, -1.0]])
    labels = torch.tensor([0, 0, 1, 2, 3])
    a1, p, a2, n = LiftedMiner()(emb, labels)
    assert _as_set((a1, p, a2, n)) == ({(0, 1), (1, 0)},
                                       {(i, j) for i in (0, 1) for j in (2, 3, 4)})
    # With a margin, only the negatives closer than it are kept (2 and 3 at sqrt(2)).
    _, _, a2, n = LiftedMiner(neg_margin=1.5)(emb, labels)
    assert set(n.tolist()) == {2, 3}


def test_all_tuples_miner_equals_what_losses_use_without_a_miner():
    emb, labels = _batch(3, n=20)
    _assert_same_tuples(AllTuplesMiner("triplets")(emb, labels),
                        pml_lmu.get_all_triplets_indices(labels))
    _assert_same_tuples(AllTuplesMiner("pairs")(emb, labels), pml_lmu.get_all_pairs_indices(labels))
    loss = TripletMarginLoss(0.2)
    all_pairs = AllTuplesMiner("pairs")(emb, labels)
    assert torch.allclose(loss(emb, labels), loss(emb, labels, all_pairs))


def test_pairs_to_triplets_matches_pytorch_metric_learning_conversion():
    emb, labels = _batch(5, n=30)
    pairs = pml_miners.MultiSimilarityMiner(0.2)(emb, labels)
    ours = _tuples.pairs_to_triplets(pairs, len(labels))
    theirs = pml_lmu.convert_to_triplets(pairs, labels)
    assert all(torch.equal(x, y) for x, y in zip(ours, theirs, strict=True))  # same order


def _seeded(cls):
    return cls(random_state=0) if "random_state" in inspect.signature(cls).parameters else cls()


def test_every_miner_returns_its_documented_format_and_the_same_tuples_in_float32():
    emb64, labels = _batch(0)
    for name, cls in MINERS.items():
        emb = emb64.float().requires_grad_(True)
        miner = _seeded(cls)
        out = miner(emb, labels)
        assert len(out) == (4 if miner.output == "pairs" else 3), name
        assert all(t.dtype == torch.long and not t.requires_grad for t in out), name
        assert out[0].numel() > 0, name
        # Pairs (a1, p, a2, n) / triplets (a, p, n): positives share the anchor's label and
        # are not the anchor itself; negatives do not share it.
        a1, p, a2, n = out if len(out) == 4 else (out[0], out[1], out[0], out[2])
        assert torch.all(labels[a1] == labels[p]) and torch.all(a1 != p), name
        assert torch.all(labels[a2] != labels[n]), name
        # float32 mines exactly what float64 does (compared with PML above).
        assert _as_set(out) == _as_set(_seeded(cls)(emb64, labels)), name
        loss = TripletMarginLoss()(emb, labels, out)
        loss.backward()
        assert torch.isfinite(emb.grad).all(), name
        assert (emb.grad.abs().sum() > 0) == (loss > 0), name  # easy triplets: no loss


def test_get_miner_accepts_names_aliases_objects_and_none():
    assert get_miner(None) is None
    assert isinstance(get_miner("BatchHardMiner"), BatchHardMiner)
    assert isinstance(get_miner("multi-similarity", epsilon=0.2), MultiSimilarityMiner)
    for alias, name in ALIASES.items():
        assert type(get_miner(alias)) is MINERS[name]
    miner = BatchHardMiner()
    assert get_miner(miner) is miner
    with pytest.raises(ValueError, match="Valid names.*batch_hard"):
        get_miner("hardest")
    with pytest.raises(ValueError, match="only be given with a miner name"):
        get_miner(miner, epsilon=1.0)
    with pytest.raises(TypeError, match="callable"):
        get_miner(1.5)


def test_miners_reject_bad_input_with_clear_errors():
    miner = TripletMarginMiner()
    emb, labels = _batch(0, n=6)
    with pytest.raises(ValueError, match="one label per embedding"):
        miner(emb, labels[:4])
    with pytest.raises(ValueError, match="must be 2-D"):
        miner(emb[:, 0], labels)
    with pytest.raises(ValueError, match="NaN or infinity"):
        miner(emb * float("nan"), labels)
    with pytest.raises(ValueError, match="type_of_triplets"):
        TripletMarginMiner(type_of_triplets="hardest")
    with pytest.raises(ValueError, match="output"):
        RandomMiner(output="quadruplets")
    with pytest.raises(ValueError, match="ref_emb"):
        NPairsMiner()(emb, labels, emb, labels)


def test_triplet_margin_miner_is_exact_with_ties_and_duplicates():
    # Many identical embeddings make runs of equal distances at the margin boundary.
    g = torch.Generator().manual_seed(0)
    base = torch.randn(6, 3, generator=g, dtype=torch.float64)
    emb = base[torch.randint(0, 6, (40,), generator=g)]
    labels = torch.randint(0, 4, (40,), generator=g)
    for kind in ("all", "hard", "semihard", "easy"):
        for margin in (0.0, 0.2):
            ours = TripletMarginMiner(margin, kind)(emb, labels)
            theirs = pml_miners.TripletMarginMiner(margin, type_of_triplets=kind)(emb, labels)
            _assert_same_tuples(ours, theirs)
