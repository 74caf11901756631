"""Tests written to kill the mutants of the exact k-NN search (skmetric/_compute/_knn.py:
``kneighbors``, ``_kth_upper_bound``, ``_nearest_candidates``, the ranking and the exact
distances of the candidates) that survived the earlier tests (issue #22; tests/README.md,
"Scores (fourth session): k-NN search").

Every reference is independent of the engine: float64 distances from ``cdist`` (or written
out by hand) and a stable sort, so ties go to the smaller index.
"""

import numpy as np
import pytest
from _namespaces import numpy_of, to_namespace
from scipy.spatial.distance import cdist

from skmetric._compute import _knn
from skmetric._compute._engine import prepare
from skmetric._compute._numerics import unit_rows
from skmetric.neighbors import kneighbors

CPU_NAMESPACES = ["numpy", "array_api_strict", "torch"]
F32_EPS = float(np.finfo(np.float32).eps)


def _brute(D, k, exclude_self=False):
    """The k smallest entries of each row of the float64 matrix D, ties by the smaller
    column: (distances, indices)."""
    D = np.array(D, dtype=np.float64)
    if exclude_self:
        D[np.arange(len(D)), np.arange(len(D))] = np.inf
    order = np.argsort(D, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(D, order, axis=1), order


def _assert_knn(got, ref, rtol=1e-12, atol=0.0):
    dist, ind = numpy_of(got[0]), numpy_of(got[1])
    assert ind.dtype == np.int64
    np.testing.assert_array_equal(ind, ref[1])
    np.testing.assert_allclose(dist, ref[0], rtol=rtol, atol=atol)


def _tied_points(rng, n, d=2, high=3):
    """Integer points on a small grid: many duplicates and exact ties of distance."""
    return rng.randint(0, high, size=(n, d)).astype(np.float64)


@pytest.mark.parametrize("namespace", CPU_NAMESPACES)
@pytest.mark.parametrize("chunk_size", [None, 1, 4])
def test_every_k_up_to_n_with_ties_and_duplicates_equals_brute_force(namespace, chunk_size):
    """k = 1, 2, 5 and k = n (every reference) on a grid with many duplicates, in blocks
    of 1, 4 or all rows; X[0] is Y[0], so query 0's nearest is reference 0 (column 0 of
    the flattened candidate mask), and the rows' candidate counts differ."""
    rng = np.random.RandomState(0)
    Y = _tied_points(rng, 70)
    X = np.vstack([Y[:1], _tied_points(rng, 9), Y[5:6] + 0.5])
    D = cdist(X, Y)
    for k in (1, 2, 5, len(Y)):
        got = kneighbors(to_namespace(X, namespace), to_namespace(Y, namespace), k,
                         chunk_size=chunk_size)
        _assert_knn(got, _brute(D, k))
        assert numpy_of(got[1])[0, 0] == 0


@pytest.mark.parametrize("namespace", CPU_NAMESPACES)
def test_k_equal_to_the_available_references_with_self_excluded(namespace):
    """Searching X among itself with k = n - 1 (every other point), in blocks of 3 rows:
    reference i is never query i's neighbour, duplicates of it are, ties by index."""
    rng = np.random.RandomState(1)
    X = _tied_points(rng, 40)
    for k in (1, len(X) - 1):
        got = kneighbors(to_namespace(X, namespace), n_neighbors=k, chunk_size=3)
        _assert_knn(got, _brute(cdist(X, X), k, exclude_self=True))


@pytest.mark.parametrize("namespace", CPU_NAMESPACES)
@pytest.mark.parametrize(("n", "k"), [(500, 10), (2000, 20), (1000, 1)])
def test_column_group_bound_with_fewer_columns_per_group_than_k(namespace, n, k):
    """n >= 4k, so the k-th bound is taken over the minima of n / sqrt(n / k) column groups;
    for k = 10, 20 each group has fewer columns than k (n < k³), so the minima must be taken
    across the groups' columns, not within them."""
    rng = np.random.RandomState(n + k)
    X, Y = _tied_points(rng, 13, d=3, high=8), _tied_points(rng, n, d=3, high=8)
    got = kneighbors(to_namespace(X, namespace), to_namespace(Y, namespace), k,
                     chunk_size=5)
    _assert_knn(got, _brute(cdist(X, Y), k))


@pytest.mark.parametrize("namespace", CPU_NAMESPACES)
def test_query_ranges_and_blocks_give_the_rows_of_the_whole_search(namespace):
    """``Prepared.kneighbors(start=, stop=)`` (as the retrieval metrics call it) returns the
    rows start:stop of the whole search, for any block size, also with self excluded."""
    rng = np.random.RandomState(2)
    X = _tied_points(rng, 30)
    ref = _brute(cdist(X, X), 4, exclude_self=True)
    prep = prepare(to_namespace(X, namespace))
    for start, stop, chunk in ((0, 30, None), (7, 19, None), (7, 19, 2), (7, 19, 6),
                               (29, 30, 1), (3, 30, 5)):
        got = prep.kneighbors(4, start=start, stop=stop, exclude_self=True, chunk_size=chunk)
        _assert_knn(got, (ref[0][start:stop], ref[1][start:stop]))


@pytest.mark.parametrize("namespace", CPU_NAMESPACES)
def test_float32_far_from_the_origin_equals_float64_brute_force(namespace):
    """float32 points near 1000 with a spread of a few units, on a grid of 1/8: distances
    from the coordinates are exact in float32 (exact differences, small sums), while the
    ranking (centred on an inexact mean) carries round-off; the band above the k-th bound
    must keep every tied reference a candidate, so the float32 search equals float64 brute
    force on the same values, ties by index, with the distances the float32 roots of exact
    squares (within an ulp: torch's root is not always correctly rounded)."""
    rng = np.random.RandomState(3)
    X32 = (1000 + rng.randint(0, 24, size=(60, 3)) / 8).astype(np.float32)
    Y32 = (1000 + rng.randint(0, 24, size=(250, 3)) / 8).astype(np.float32)
    D = cdist(X32.astype(np.float64), Y32.astype(np.float64))
    for k in (1, 6, 250):
        for chunk in (None, 7):
            got = kneighbors(to_namespace(X32, namespace), to_namespace(Y32, namespace), k,
                             chunk_size=chunk)
            assert numpy_of(got[0]).dtype == np.float32
            ref_d, ref_i = _brute(D, k)
            _assert_knn(got, (ref_d.astype(np.float32), ref_i), rtol=F32_EPS)
    got = kneighbors(to_namespace(Y32, namespace), n_neighbors=8, chunk_size=16)
    ref_d, ref_i = _brute(cdist(Y32.astype(np.float64), Y32.astype(np.float64)), 8,
                          exclude_self=True)
    _assert_knn(got, (ref_d.astype(np.float32), ref_i), rtol=F32_EPS)


@pytest.mark.parametrize("namespace", CPU_NAMESPACES)
@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean"])
def test_scaled_coordinates_are_mapped_back_to_the_data_units(namespace, metric):
    """Coordinates of 2**300 or 2**-300 (outside the range where squared norms are safe,
    so the engine scales them by a power of two): the candidates' distances are mapped
    back exactly, squared ones by twice the exponent."""
    rng = np.random.RandomState(4)
    X, Y = _tied_points(rng, 12, d=3, high=5), _tied_points(rng, 50, d=3, high=5)
    power = 2 if metric == "sqeuclidean" else 1
    for scale in (2.0 ** 300, 2.0 ** -300):
        D = cdist(X, Y) ** power  # small integers (or their roots): exact
        got = kneighbors(to_namespace(X * scale, namespace), to_namespace(Y * scale, namespace),
                         5, metric=metric, chunk_size=5)
        ref_d, ref_i = _brute(D, 5)
        _assert_knn(got, (ref_d * scale ** power, ref_i))


@pytest.mark.parametrize("namespace", CPU_NAMESPACES)
def test_cosine_neighbours_of_antipodal_points_stay_within_two(namespace):
    """Cosine distances lie in [0, 2]: for unit rows whose computed squared norm exceeds 1
    by two ulps, 1 - x·x rounds below 0 and the antipode's 1 + x·x above 2; both must be
    clipped. The rows are those where either summation order (einsum, pairwise) rounds up."""
    rng = np.random.RandomState(5)
    X = rng.randn(2000, 16)
    U = unit_rows(X, np)
    over = (1 + np.einsum("ij,ij->i", U, U) > 2) | (1 + np.sum(U * U, axis=1) > 2)
    Xq = X[over]
    m = len(Xq)
    assert m >= 20
    Y = np.vstack([-Xq, Xq])  # each query's antipode, then the query itself
    got = kneighbors(to_namespace(Xq, namespace), to_namespace(Y, namespace), len(Y),
                     metric="cosine")
    dist, ind = numpy_of(got[0]), numpy_of(got[1])
    assert dist.min() >= 0.0 and dist.max() <= 2.0
    np.testing.assert_allclose(dist[:, 0], 0.0, rtol=0, atol=1e-15)
    np.testing.assert_allclose(dist[:, -1], 2.0, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(ind[:, 0], m + np.arange(m))  # itself first
    np.testing.assert_array_equal(ind[:, -1], np.arange(m))  # the antipode last


@pytest.mark.parametrize("namespace", CPU_NAMESPACES)
def test_cosine_ties_and_float32_equal_brute_force(namespace):
    """Integer directions with duplicates (equal cosine distances up to the rows' own
    rounding): the order equals cdist's on the unit rows, in float64 and float32."""
    rng = np.random.RandomState(6)
    X = rng.randint(-2, 3, size=(15, 3)).astype(np.float64)
    Y = rng.randint(-2, 3, size=(90, 3)).astype(np.float64)
    X, Y = X[np.abs(X).sum(axis=1) > 0], Y[np.abs(Y).sum(axis=1) > 0]  # no zero rows
    D = cdist(X, Y, "cosine")
    D[np.abs(D) < 1e-12] = 0.0
    for dtype, tol in ((np.float64, 1e-12), (np.float32, 2e-6)):
        got = kneighbors(to_namespace(X.astype(dtype), namespace),
                         to_namespace(Y.astype(dtype), namespace), 7, metric="cosine",
                         chunk_size=4)
        assert numpy_of(got[0]).dtype == dtype
        np.testing.assert_allclose(numpy_of(got[0]), _brute(D, 7)[0], atol=tol)


@pytest.mark.parametrize("namespace", ["numpy", "torch"])
def test_callable_metric_neighbours_are_its_values_ranked(namespace):
    """A callable's values are the distances as they are (no round-off band, no
    recomputation): the k smallest per row, ties by index, across blocks, with self
    excluded when searching X among itself."""
    rng = np.random.RandomState(7)
    X, Y = _tied_points(rng, 17, high=4), _tied_points(rng, 45, high=4)

    def manhattan(A, B):
        return (A[:, None, :] - B[None, :, :]).abs().sum(-1) if namespace == "torch" else \
            np.abs(A[:, None, :] - B[None, :, :]).sum(-1)

    D = cdist(X, Y, "cityblock")
    for k in (1, 4, len(Y)):
        got = kneighbors(to_namespace(X, namespace), to_namespace(Y, namespace), k,
                         metric=manhattan, chunk_size=5)
        _assert_knn(got, _brute(D, k))
    got = kneighbors(to_namespace(Y, namespace), n_neighbors=6, metric=manhattan,
                     chunk_size=8)
    _assert_knn(got, _brute(cdist(Y, Y, "cityblock"), 6, exclude_self=True))


@pytest.mark.parametrize("namespace", CPU_NAMESPACES)
@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean", "cosine"])
def test_candidate_distances_in_slices_of_a_few_rows(namespace, metric, monkeypatch):
    """The exact distances of given candidates, computed a slice at a time to bound the
    gathered (rows, k, d) coordinates (``gather_bytes``; NumPy: ``_GATHER_BYTES_NUMPY``,
    by rows and, when a row's neighbours exceed it, by columns): every slice size, with a
    short last slice, gives the distances of cdist (1 - cos for cosine)."""
    rng = np.random.RandomState(8)
    X, Y = rng.randn(11, 4) + 0.2, rng.randn(30, 4) + 0.2
    ind = np.stack([rng.permutation(30)[:9] for _ in range(11)])
    ref = np.take_along_axis(cdist(X, Y, metric), ind, axis=1)
    prep = prepare(to_namespace(X, namespace), to_namespace(Y, namespace), metric)
    row_bytes = 4 * prep.itemsize
    for rows, cols in ((1, 9), (2, 9), (3, 9), (11, 9), (50, 9), (1, 2), (1, 4), (2, 4)):
        monkeypatch.setattr(_knn, "_GATHER_BYTES_NUMPY", rows * cols * row_bytes)
        got = _knn._neighbor_distances(prep, prep.X[2:, :], to_namespace(ind[2:], namespace),
                                       None, gather_bytes=rows * 9 * row_bytes)
        np.testing.assert_allclose(numpy_of(got), ref[2:], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("namespace", CPU_NAMESPACES)
def test_wide_rows_of_tied_candidates_are_sorted_stably(namespace):
    """Hundreds of candidates per row at a handful of distinct distances (an unstable sort
    of more than 16 values reorders equal keys): neighbours ordered by index within each
    run of equal distances."""
    rng = np.random.RandomState(9)
    Y = _tied_points(rng, 600, high=2)  # 4 positions, 150 copies each
    X = np.array([[0.0, 0.0], [0.5, 0.5], [1.0, 0.0]])
    got = kneighbors(to_namespace(X, namespace), to_namespace(Y, namespace), 400)
    _assert_knn(got, _brute(cdist(X, Y), 400))
