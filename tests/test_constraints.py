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
