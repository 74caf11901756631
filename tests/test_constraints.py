"""Constraints generated from labels: validity, distinctness, reproducibility, clear failures."""

import numpy as np
import pytest

from skmetric import Constraints, wrap_pairs

y = np.repeat([0, 1, 2], [5, 6, 7])


def test_positive_negative_pairs_are_valid_distinct_and_reproducible():
    c = Constraints(y)
    a, b, c_, d = c.positive_negative_pairs(40, random_state=0)
    assert len(a) == len(c_) == 40
    assert np.all(y[a] == y[b]) and np.all(a != b)
    assert np.all(y[c_] != y[d])
    assert len({tuple(sorted(p)) for p in zip(a, b, strict=True)}) == 40
    assert len({tuple(sorted(p)) for p in zip(c_, d, strict=True)}) == 40
    again = Constraints(y).positive_negative_pairs(40, random_state=0)
    for x1, x2 in zip((a, b, c_, d), again, strict=True):
        np.testing.assert_array_equal(x1, x2)


def test_all_similar_pairs_returned_with_warning_when_more_are_requested():
    n_possible = 10 + 15 + 21
    with pytest.warns(UserWarning, match=f"Only {n_possible} distinct similar pairs"):
        a, b, _, _ = Constraints(y).positive_negative_pairs(100, random_state=1)
    assert len({tuple(sorted(p)) for p in zip(a, b, strict=True)}) == n_possible
    with pytest.warns(UserWarning):
        a, _, c_, _ = Constraints(y).positive_negative_pairs(100, same_length=True,
                                                              random_state=1)
    assert len(a) == len(c_) == n_possible


def test_pairs_and_wrap_pairs_label_similar_as_plus_one(rng):
    X = rng.randn(len(y), 3)
    idx, labels = Constraints(y).pairs(10, random_state=0)
    assert idx.shape == (20, 2)
    np.testing.assert_array_equal(labels == 1, y[idx[:, 0]] == y[idx[:, 1]])
    pairs, labels2 = wrap_pairs(X, Constraints(y).positive_negative_pairs(10, random_state=0))
    assert pairs.shape == (20, 2, 3)
    np.testing.assert_array_equal(labels, labels2)


def test_unlabeled_samples_take_part_in_no_constraint():
    labels = np.array([0, 0, -1, 1, 1, -1, 0])
    c = Constraints(labels, unlabeled=-1)
    a, b, c_, d = c.positive_negative_pairs(3, random_state=0)
    used = np.concatenate([a, b, c_, d])
    assert not np.isin(used, [2, 5]).any()
    # Without the marker, -1 is an ordinary class (e.g. binary labels in {-1, 1}).
    a, b, _, _ = Constraints(labels).positive_negative_pairs(3, random_state=0)
    assert np.all(labels[a] == labels[b])


def test_triplets_and_quadruplets_respect_classes():
    t = Constraints(y).triplets(50, random_state=0)
    assert t.shape == (50, 3)
    assert np.all(y[t[:, 0]] == y[t[:, 1]]) and np.all(t[:, 0] != t[:, 1])
    assert np.all(y[t[:, 0]] != y[t[:, 2]])
    q = Constraints(y).quadruplets(50, random_state=0)
    assert np.all(y[q[:, 0]] == y[q[:, 1]]) and np.all(y[q[:, 2]] != y[q[:, 3]])


def test_knn_triplets_use_nearest_genuine_and_impostor_neighbours():
    X = np.array([[0.0], [1.0], [3.0], [10.0], [11.5], [13.0]])
    labels = np.array([0, 0, 0, 1, 1, 1])
    t = Constraints(labels).generate_knntriplets(X, k_genuine=1, k_impostor=2)
    assert t.shape == (6 * 1 * 2, 3)
    assert {tuple(r) for r in t if r[0] == 0} == {(0, 1, 3), (0, 1, 4)}
    assert {tuple(r) for r in t if r[0] == 5} == {(5, 4, 2), (5, 4, 1)}
    with pytest.raises(ValueError, match="too few for k_genuine=3"):
        Constraints(labels).generate_knntriplets(X, 3, 1)
    with pytest.raises(ValueError, match="too few for k_impostor=4"):
        Constraints(labels).generate_knntriplets(X, 1, 4)


def test_chunks_are_disjoint_same_class_groups():
    chunks = Constraints(y).chunks(n_chunks=6, chunk_size=2, random_state=0)
    ids = np.unique(chunks[chunks >= 0])
    np.testing.assert_array_equal(ids, np.arange(6))
    for i in ids:
        members = np.flatnonzero(chunks == i)
        assert len(members) == 2 and len(np.unique(y[members])) == 1
    with pytest.raises(ValueError, match="Not enough samples for 9 chunks"):
        Constraints(y).chunks(n_chunks=9, chunk_size=3)


@pytest.mark.parametrize(
    "labels, call, match",
    [
        (np.array([0, 1, 2]), lambda c: c.positive_negative_pairs(2), "single labelled sample"),
        (np.zeros(5), lambda c: c.positive_negative_pairs(2), "single class"),
        (np.zeros(5), lambda c: c.triplets(2), "single class"),
        (y, lambda c: c.positive_negative_pairs(0), "positive integer"),
        (y, lambda c: c.chunks(n_chunks=2.5), "positive integer"),
        (np.array([]), None, "empty"),
    ],
)
def test_impossible_requests_fail_clearly(labels, call, match):
    with pytest.raises(ValueError, match=match):
        call(Constraints(labels))


def _brute_knn_triplets(X, labels, k_genuine, k_impostor):
    """The triplets by definition: full distance matrix, sorted per row (no ties in the data)."""
    d = np.linalg.norm(X[:, None] - X[None], axis=-1)
    out = set()
    for i in range(len(X)):
        same = np.flatnonzero((labels == labels[i]) & (np.arange(len(X)) != i))
        other = np.flatnonzero(labels != labels[i])
        for j in same[np.argsort(d[i, same])][:k_genuine]:
            for l in other[np.argsort(d[i, other])][:k_impostor]:
                out.add((i, int(j), int(l)))
    return out


@pytest.mark.parametrize("labels, k_genuine, k_impostor", [
    (np.arange(40) % 20, 1, 1),                      # every class exactly k_genuine + 1 samples
    (np.repeat([0, 1, 2], [3, 4, 6]), 2, 7),         # smallest class k_genuine + 1; k_impostor =
                                                     # the fewest samples outside a class (13 - 6)
    (np.repeat(["a", "b"], [2, 5]), 1, 2),           # string labels, k_impostor = outsiders of 'b'
])
def test_knn_triplets_at_the_documented_minimum_sizes_match_brute_force(rng, labels, k_genuine,
                                                                        k_impostor):
    X = rng.randn(len(labels), 3)
    t = Constraints(labels).generate_knntriplets(X, k_genuine=k_genuine, k_impostor=k_impostor)
    assert t.shape == (len(labels) * k_genuine * k_impostor, 3)
    assert {tuple(map(int, r)) for r in t} == _brute_knn_triplets(X, labels, k_genuine, k_impostor)


def test_knn_triplets_never_pair_a_sample_with_itself_among_duplicates():
    # Duplicated rows are at distance 0 from each other: the sample itself must still be left out.
    X = np.array([[0.0], [0.0], [0.0], [5.0], [5.0], [5.0]])
    labels = np.array([0, 0, 0, 1, 1, 1])
    t = Constraints(labels).generate_knntriplets(X, k_genuine=2, k_impostor=1)
    assert np.all(t[:, 0] != t[:, 1])
    assert {tuple(r) for r in t if r[0] == 0} == {(0, 1, 3), (0, 2, 3)}


def test_knn_triplets_skip_unlabeled_samples(rng):
    labels = np.array([0, 0, -1, 1, 1, -1])
    X = rng.randn(6, 2)
    t = Constraints(labels, unlabeled=-1).generate_knntriplets(X, k_genuine=1, k_impostor=2)
    assert t.shape == (4 * 1 * 2, 3)
    assert not np.isin(t, [2, 5]).any()


def test_scml_supervised_fits_with_classes_of_exactly_k_genuine_plus_one_samples(rng):
    from skmetric import SCML_Supervised

    labels = np.arange(40) % 20
    X = np.c_[labels + 0.1 * rng.randn(40), 3 * rng.randn(40, 2)]   # only feature 0 informs
    scml = SCML_Supervised(k_genuine=1, k_impostor=1, random_state=0).fit(X, labels)
    M = scml.get_mahalanobis_matrix()
    assert np.all(np.isfinite(M)) and M[0, 0] > 0
    with pytest.raises(ValueError, match=r"Class 0 has 2 labelled samples, too few for "
                                         r"k_genuine=2.*Lower k_genuine to at most 1"):
        SCML_Supervised(k_genuine=2, k_impostor=1).fit(X, labels)


@pytest.mark.parametrize("labels, k_genuine, k_impostor, match", [
    (np.repeat([0, 1], [4, 2]), 2, 1,
     r"^Class 1 has 2 labelled samples, too few for k_genuine=2: each class needs at least "
     r"k_genuine \+ 1 = 3\. Lower k_genuine to at most 1, or drop the classes"),
    (np.array([0, 0, 0, 7]), 1, 1, r"^Class 7 has 1 labelled samples.* Drop the classes"),
    (np.array(["cat"] * 3 + ["dog"] * 5), 1, 4,
     r"^Only 3 labelled samples lie outside class 'dog', too few for k_impostor=4\. Lower "
     r"k_impostor to at most 3\.$"),
])
def test_knn_triplets_too_small_classes_are_named_as_plain_values(labels, k_genuine, k_impostor,
                                                                  match):
    X = np.random.RandomState(0).randn(len(labels), 2)
    with pytest.raises(ValueError, match=match) as info:
        Constraints(labels).generate_knntriplets(X, k_genuine, k_impostor)
    assert "np." not in str(info.value)


def test_knn_triplets_reject_bad_X_clearly():
    labels = np.array([0, 0, 1, 1])
    with pytest.raises(ValueError, match="one row per label"):
        Constraints(labels).generate_knntriplets(np.zeros((3, 2)), 1, 1)
    with pytest.raises(ValueError, match="NaN"):
        Constraints(labels).generate_knntriplets(np.array([[0.0], [1], [np.nan], [3]]), 1, 1)


@pytest.mark.parametrize("labels", [
    np.array([0.0, 0.0, np.nan, np.nan, 1.0, 1.0]),
    np.array(["a", "a", None, "b", "b"], dtype=object),
    np.array([1, 1, float("nan"), 2, 2], dtype=object),
])
def test_missing_labels_are_rejected_not_paired(labels):
    # Before: two NaN-labelled samples were drawn as a similar pair (np.unique groups NaNs).
    with pytest.raises(ValueError, match=r"missing values \(NaN or None\).*unlabeled=-1"):
        Constraints(labels)
    with pytest.raises(ValueError, match="unlabeled=nan cannot mark"):
        Constraints(np.array([0.0, 0.0, 1.0, 1.0]), unlabeled=np.nan)


def test_single_class_message_shows_plain_values():
    with pytest.raises(ValueError, match=r"single class \(\[3\]\)"):
        Constraints(np.full(4, 3)).positive_negative_pairs(2)
