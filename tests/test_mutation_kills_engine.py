"""Tests written to kill the mutants of the distance engine (skmetric/_compute/_knn.py,
_engine.py, _blocks.py, _numerics.py) and skmetric/neighbors.py that survived their own
tests (issue #22; tests/README.md, "Mutation testing").

References are independent of the engine: scipy's ``cdist`` in float64 and a stable NumPy
sort (ties by the smaller index) for the searches.
"""

import numpy as np
import pytest
from _namespaces import numpy_of, to_namespace
from scipy.spatial.distance import cdist

from skmetric._compute import _knn
from skmetric.neighbors import kneighbors, radius_neighbors

CPU_NAMESPACES = ["numpy", "array_api_strict", "torch"]


def _brute_knn(X, Y, k, metric="euclidean", exclude_self=False):
    """float64 distances of ``cdist`` and a stable sort: ties go to the smaller index."""
    D = cdist(X, Y, metric=metric)
    if exclude_self:
        D[np.arange(len(X)), np.arange(len(X))] = np.inf
    order = np.argsort(D, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(D, order, axis=1), order


def _ties(rng, n, d=2, high=4):
    """Integer points: exact distances, many exact ties and duplicates."""
    return rng.randint(0, high, size=(n, d)).astype(float)


@pytest.mark.parametrize("namespace", CPU_NAMESPACES)
@pytest.mark.parametrize("k", [1, 3, 7])
def test_kneighbors_with_many_columns_equals_brute_force(namespace, k):
    """Enough references that the k-th bound is taken over the minima of column groups
    (n / sqrt(n / k) >= 2k), with exact ties: the same neighbours as brute force."""
    rng = np.random.RandomState(k)
    X, Y = _ties(rng, 37, high=6), _ties(rng, 450, high=6)
    dist, ind = kneighbors(to_namespace(X, namespace), to_namespace(Y, namespace), k)
    ref_d, ref_i = _brute_knn(X, Y, k)
    np.testing.assert_array_equal(numpy_of(ind), ref_i)
    np.testing.assert_allclose(numpy_of(dist), ref_d, rtol=1e-12)
    dist, ind = kneighbors(to_namespace(Y, namespace), n_neighbors=k)  # self excluded
    ref_d, ref_i = _brute_knn(Y, Y, k, exclude_self=True)
    np.testing.assert_array_equal(numpy_of(ind), ref_i)
    np.testing.assert_allclose(numpy_of(dist), ref_d, rtol=1e-12)


@pytest.mark.parametrize("namespace", CPU_NAMESPACES)
@pytest.mark.parametrize("metric", ["sqeuclidean", "cosine"])
def test_kneighbors_other_metrics_equal_brute_force(namespace, metric):
    rng = np.random.RandomState(0)
    X, Y = rng.randn(21, 4), rng.randn(300, 4)
    dist, ind = kneighbors(to_namespace(X, namespace), to_namespace(Y, namespace), 4,
                           metric=metric)
    ref_d, ref_i = _brute_knn(X, Y, 4, metric=metric)
    np.testing.assert_array_equal(numpy_of(ind), ref_i)
    np.testing.assert_allclose(numpy_of(dist), ref_d, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("namespace", ["numpy", "torch"])
def test_sliced_gathers_of_neighbour_coordinates_give_the_same_distances(namespace,
                                                                         monkeypatch):
    """The exact distances of the candidates are computed a few rows (and, for NumPy, a
    few columns) at a time to bound memory: tiny slices must give the same result."""
    rng = np.random.RandomState(1)
    X, Y = _ties(rng, 30, d=3, high=5), _ties(rng, 60, d=3, high=5)
    ref_d, ref_i = _brute_knn(X, Y, 9)
    monkeypatch.setattr(_knn, "_GATHER_BYTES", 3 * 9 * 8 * 4)  # 4 rows per slice
    monkeypatch.setattr(_knn, "_GATHER_BYTES_NUMPY", 3 * 8 * 5)  # 5 neighbours per slice
    for metric, ref in (("euclidean", ref_d), ("sqeuclidean", ref_d ** 2)):
        dist, ind = kneighbors(to_namespace(X, namespace), to_namespace(Y, namespace), 9,
                               metric=metric)
        np.testing.assert_array_equal(numpy_of(ind), ref_i)
        np.testing.assert_allclose(numpy_of(dist), ref, rtol=1e-12)
    cos_d, cos_i = _brute_knn(X + 0.5, Y + 0.5, 9, metric="cosine")
    dist, ind = kneighbors(to_namespace(X + 0.5, namespace), to_namespace(Y + 0.5, namespace),
                           9, metric="cosine")
    np.testing.assert_allclose(numpy_of(dist), cos_d, atol=1e-12)


@pytest.mark.parametrize("namespace", CPU_NAMESPACES)
@pytest.mark.parametrize("sort_results", [True, False])
def test_radius_neighbors_equal_brute_force_on_the_boundary(namespace, sort_results):
    """Distances exactly equal to the radius are inside; sorted by (distance, index) or
    by index; the query's own row is left out when Y is None."""
    rng = np.random.RandomState(2)
    X = _ties(rng, 25, high=4)
    for Y, radius in ((None, 2.0), (_ties(rng, 18, high=4), 1.0),
                      (_ties(rng, 18, high=4), np.sqrt(5.0))):
        dist, ind = radius_neighbors(to_namespace(X, namespace),
                                     None if Y is None else to_namespace(Y, namespace),
                                     radius=radius, sort_results=sort_results, chunk_size=4)
        D = cdist(X, X if Y is None else Y)
        for i, (d, j) in enumerate(zip(dist, ind, strict=True)):
            d, j = numpy_of(d), numpy_of(j)
            expected = np.flatnonzero(D[i] <= radius)
            if Y is None:
                expected = expected[expected != i]
            if sort_results:
                expected = expected[np.argsort(D[i, expected], kind="stable")]
            np.testing.assert_array_equal(j, expected)
            np.testing.assert_allclose(d, D[i, expected], rtol=1e-12)
            assert j.dtype == np.int64


def test_kneighbors_on_numpy_threads_equals_one_thread():
    rng = np.random.RandomState(3)
    X = _ties(rng, 700, d=3, high=5)
    one = kneighbors(X, n_neighbors=6, n_threads=1)
    many = kneighbors(X, n_neighbors=6, n_threads=3)
    ref_d, ref_i = _brute_knn(X, X, 6, exclude_self=True)
    for got in (one, many):
        np.testing.assert_array_equal(got[1], ref_i)
        np.testing.assert_allclose(got[0], ref_d, rtol=1e-12)


@pytest.mark.parametrize("namespace", CPU_NAMESPACES)
def test_radius_rows_with_long_runs_of_ties_are_sorted_stably(namespace):
    """Rows of 60 neighbours with only a few distinct distances: a sort that is not stable
    (NumPy's default for more than 16 entries) would not keep ties in index order."""
    rng = np.random.RandomState(4)
    X = _ties(rng, 60, high=3)
    dist, ind = radius_neighbors(to_namespace(X, namespace), radius=10.0)
    D = cdist(X, X)
    for i in range(0, 60, 7):
        expected = np.array([j for j in np.argsort(D[i], kind="stable") if j != i])
        np.testing.assert_array_equal(numpy_of(ind[i]), expected)


@pytest.mark.parametrize("namespace", CPU_NAMESPACES)
def test_cosine_radius_keeps_distances_equal_to_the_radius(namespace):
    """Orthogonal integer vectors are at cosine distance exactly 1: radius=1 keeps them."""
    X = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0], [-1.0, 0.0]])
    _, ind = radius_neighbors(to_namespace(X, namespace), radius=1.0, metric="cosine")
    assert [numpy_of(i).tolist() for i in ind] == [[2, 1], [0, 2, 3], [0, 1], [1]]


def test_callable_radius_uses_the_callables_values_as_they_are():
    """A callable's distances are exact by definition: a value a hair above the radius is
    out, one equal to it is in (no round-off slack for callables)."""
    def metric(A, B):
        return np.abs(A[:, :1] - B[:, 0][None, :]) * (1 + 1e-12)

    X = np.array([[0.0], [1.0], [2.0 / (1 + 1e-12)]])
    _, ind = radius_neighbors(X, radius=1.0, metric=metric)
    assert [i.tolist() for i in ind] == [[], [2], [1]]


@pytest.mark.parametrize("call", [
    lambda X: kneighbors(X, n_neighbors=2, chunk_size=0),
    lambda X: kneighbors(X, n_neighbors=2, working_memory=-1.0),
    lambda X: radius_neighbors(X, radius=1.0, chunk_size=0),
    lambda X: radius_neighbors(X, radius=1.0, working_memory=-1.0),
])
def test_block_options_reach_the_search_when_parameter_validation_is_skipped(call):
    """With scikit-learn's validation off, the engine still refuses bad block options:
    they reach the search (a dropped argument would silently use the default)."""
    import sklearn

    X = np.arange(12.0).reshape(6, 2)
    with sklearn.config_context(skip_parameter_validation=True), pytest.raises(
            ValueError, match="must be a positive"):
        call(X)


@pytest.mark.parametrize("namespace", CPU_NAMESPACES)
def test_radius_zero_finds_duplicates_and_empty_rows_keep_the_dtype(namespace):
    X = np.array([[0.0, 1.0], [2.0, 2.0], [0.0, 1.0], [5.0, 5.0]], dtype=np.float32)
    dist, ind = radius_neighbors(to_namespace(X, namespace), radius=0.0)
    assert [numpy_of(i).tolist() for i in ind] == [[2], [], [0], []]
    for d in dist:
        assert numpy_of(d).dtype == np.float32
        assert np.all(numpy_of(d) == 0)


def test_callable_radius_on_torch():
    torch = pytest.importorskip("torch")
    X = torch.tensor([[0.0], [1.0], [3.0]], dtype=torch.float64)
    dist, ind = radius_neighbors(X, radius=2.0, metric=lambda A, B: torch.cdist(A, B))
    assert [i.tolist() for i in ind] == [[1], [0, 2], [1]]
    assert [d.tolist() for d in dist] == [[1.0], [1.0, 2.0], [2.0]]
