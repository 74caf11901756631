"""skmetric.neighbors: exact and FAISS k-NN, radius search, the k-NN classifier."""

import sys

import numpy as np
import pytest
from _namespaces import NAMESPACES, assert_in_namespace, numpy_of, to_namespace
from numpy.testing import assert_allclose, assert_array_equal
from scipy.spatial.distance import cdist
from sklearn.datasets import load_iris, make_blobs
from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors
from sklearn.pipeline import make_pipeline

from skmetric import Covariance
from skmetric.neighbors import MetricKNeighborsClassifier, kneighbors, radius_neighbors

DTYPES = [np.float32, np.float64]


def _reference_kneighbors(X, Y, k, exclude_self, metric="euclidean", **kw):
    """Brute force with exact (distance, index) order: the documented tie-breaking."""
    D = cdist(X, Y, metric, **kw)
    if exclude_self:
        np.fill_diagonal(D, np.inf)
    cols = np.broadcast_to(np.arange(D.shape[1]), D.shape)
    ind = np.lexsort((cols, D), axis=1)[:, :k]
    return np.take_along_axis(D, ind, axis=1), ind


@pytest.mark.parametrize("namespace", NAMESPACES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_kneighbors_matches_sklearn_nearest_neighbors(namespace, dtype, rng):
    X = rng.standard_normal((120, 6)).astype(dtype)
    Y = rng.standard_normal((700, 6)).astype(dtype)
    tol = {"rtol": 1e-4, "atol": 1e-4} if dtype == np.float32 else {"rtol": 1e-10,
                                                                      "atol": 1e-10}
    Xn, Yn = to_namespace(X, namespace), to_namespace(Y, namespace)
    L = rng.standard_normal((4, 6))
    for metric, kwargs, sk_X, sk_Y, sk_metric in [
        ("euclidean", {}, X, Y, "euclidean"),
        ("cosine", {}, X, Y, "cosine"),
        ("mahalanobis", {"L": L}, X @ L.T, Y @ L.T, "euclidean"),
    ]:
        nn = NearestNeighbors(n_neighbors=7, algorithm="brute", metric=sk_metric)
        d_ref, i_ref = nn.fit(sk_Y.astype(np.float64)).kneighbors(sk_X.astype(np.float64))
        dist, ind = kneighbors(Xn, Yn, 7, metric=metric, **kwargs)
        assert_in_namespace(dist, Xn)
        assert_in_namespace(ind, Xn)
        assert dist.dtype == Xn.dtype
        assert_array_equal(numpy_of(ind), i_ref, err_msg=metric)
        assert_allclose(numpy_of(dist), d_ref, **tol, err_msg=metric)
        # Y=None searches X among itself without each query's own index.
        d_ref, i_ref = nn.fit(sk_X.astype(np.float64)).kneighbors()
        dist, ind = kneighbors(Xn, n_neighbors=7, metric=metric, **kwargs)
        assert_array_equal(numpy_of(ind), i_ref, err_msg=metric)
        assert_allclose(numpy_of(dist), d_ref, **tol, err_msg=metric)
    sq, _ = kneighbors(Xn, Yn, 3, metric="sqeuclidean")
    eu, _ = kneighbors(Xn, Yn, 3)
    assert_allclose(numpy_of(sq), numpy_of(eu) ** 2, **tol)


@pytest.mark.parametrize("namespace", NAMESPACES)
def test_ties_go_to_the_smaller_index_and_duplicates_are_not_self(namespace):
    # Integer grid points: many exactly equal distances, and every point twice.
    grid = np.stack(np.meshgrid(np.arange(12), np.arange(12)), -1).reshape(-1, 2)
    X = np.concatenate([grid, grid]).astype(np.float64)  # 288 points, n_groups path too
    Xn = to_namespace(X, namespace)
    # k large against n: the bound on the k-th comes from the whole row, not group minima.
    for k, exclude in ((1, True), (6, True), (9, False), (100, False), (287, True)):
        d_ref, i_ref = _reference_kneighbors(X, X, k, exclude)
        dist, ind = kneighbors(Xn, n_neighbors=k, exclude_self=exclude)
        assert_array_equal(numpy_of(ind), i_ref)
        assert_allclose(numpy_of(dist), d_ref, atol=1e-12)
    dist, ind = kneighbors(Xn, n_neighbors=1)
    # The nearest neighbour of a point is its duplicate, at distance exactly 0.
    assert_array_equal(numpy_of(ind)[:, 0], np.r_[np.arange(144, 288), np.arange(144)])
    assert_array_equal(numpy_of(dist), 0)


@pytest.mark.parametrize("namespace", NAMESPACES)
def test_block_sizes_and_threads_give_identical_neighbours(namespace, rng):
    X, _ = make_blobs(600, n_features=5, centers=6, random_state=0)
    X = np.round(X * 4) / 4  # exactly representable: many exact ties
    Xn = to_namespace(X, namespace)
    d0, i0 = (numpy_of(a) for a in kneighbors(Xn, n_neighbors=10, chunk_size=600))
    for kwargs in ({"chunk_size": 1}, {"chunk_size": 37}, {"working_memory": 0.05},
                   {"n_threads": 1}, {"n_threads": 4, "chunk_size": 50}):
        d, i = kneighbors(Xn, n_neighbors=10, **kwargs)
        assert_array_equal(numpy_of(i), i0, err_msg=str(kwargs))
        assert_array_equal(numpy_of(d), d0, err_msg=str(kwargs))
    d_ref, i_ref = _reference_kneighbors(X, X, 10, True)
    assert_array_equal(i0, i_ref)
    ind_only = kneighbors(Xn, n_neighbors=10, return_distance=False)
    assert_array_equal(numpy_of(ind_only), i0)


@pytest.mark.parametrize("namespace", NAMESPACES)
def test_many_neighbours_in_float32_do_not_depend_on_blocks(namespace, rng):
    # k in the hundreds in float32: the ranking's round-off puts many references within
    # the band of each row's k-th, and all of them are settled on exact distances.
    X, _ = make_blobs(1500, n_features=16, centers=15, random_state=0)
    X = X.astype(np.float32)
    Xn = to_namespace(X, namespace)
    d0, i0 = (numpy_of(a) for a in kneighbors(Xn, n_neighbors=300, chunk_size=1500))
    for kwargs in ({"chunk_size": 7}, {"chunk_size": 401}, {"n_threads": 2}):
        d, i = kneighbors(Xn, n_neighbors=300, **kwargs)
        assert_array_equal(numpy_of(i), i0, err_msg=str(kwargs))
        assert_array_equal(numpy_of(d), d0, err_msg=str(kwargs))
    d_ref, _ = _reference_kneighbors(X.astype(np.float64), X.astype(np.float64), 300, True)
    assert_allclose(d0, d_ref, rtol=1e-5, atol=1e-5)
    assert np.all(np.diff(d0, axis=1) >= 0)


def test_all_references_and_sorted_ascending(rng):
    X, Y = rng.standard_normal((9, 3)), rng.standard_normal((5, 3))
    dist, ind = kneighbors(X, Y, n_neighbors=5)
    assert_array_equal(np.sort(ind, axis=1), np.broadcast_to(np.arange(5), (9, 5)))
    assert np.all(np.diff(dist, axis=1) >= 0)
    # exclude_self=True with Y given: query i is reference i.
    dist, ind = kneighbors(X, X.copy(), n_neighbors=2, exclude_self=True)
    assert not np.any(ind == np.arange(9)[:, None])


@pytest.mark.parametrize("namespace", NAMESPACES)
def test_radius_neighbors_match_sklearn(namespace, rng):
    X, Y = rng.standard_normal((40, 3)), rng.standard_normal((150, 3))
    Xn, Yn = to_namespace(X, namespace), to_namespace(Y, namespace)
    nn = NearestNeighbors(radius=1.1).fit(Y)
    d_ref, i_ref = nn.radius_neighbors(X, sort_results=True)
    dist, ind = radius_neighbors(Xn, Yn, 1.1, chunk_size=16)
    assert len(dist) == len(ind) == 40
    assert sum(len(numpy_of(i)) for i in ind) > 40
    for d, i, dr, ir in zip(dist, ind, d_ref, i_ref, strict=True):
        assert_in_namespace(i, Xn)
        assert_array_equal(numpy_of(i), ir)
        assert_allclose(numpy_of(d), dr, rtol=1e-10, atol=1e-10)
    # Y=None leaves each query out; unsorted results come by index.
    ind = radius_neighbors(Xn, radius=1.5, sort_results=False, return_distance=False)
    D = cdist(X, X)
    for q, i in enumerate(ind):
        expected = np.flatnonzero(D[q] <= 1.5)
        assert_array_equal(numpy_of(i), expected[expected != q])


def test_bad_inputs_raise_clear_errors(rng):
    X, Y = rng.standard_normal((10, 3)), rng.standard_normal((6, 3))
    cases = [
        (lambda: kneighbors(X, Y, 7), ValueError, "exceeds the 6"),
        (lambda: kneighbors(X, n_neighbors=10), ValueError, "itself excluded"),
        (lambda: kneighbors(X, Y, 0), ValueError,
         r"'n_neighbors' parameter of kneighbors must be an int in the range \[1, inf\)"),
        (lambda: kneighbors(X, Y, True), ValueError, "'n_neighbors' parameter"),
        (lambda: kneighbors(X, Y[:, :2]), ValueError, "features"),
        (lambda: kneighbors(np.full_like(X, np.nan), Y), ValueError, "NaN"),
        (lambda: kneighbors(X, Y, metric="l1"), ValueError, "Unknown metric"),
        (lambda: kneighbors(X, Y, metric="mahalanobis", M=-np.eye(3)), ValueError,
         "semi-definite"),
        (lambda: kneighbors(X, Y, metric="mahalanobis", M=np.eye(3), L=np.eye(3)),
         ValueError, "both"),
        (lambda: kneighbors(X, Y, backend="annoy"), ValueError, "backend"),
        (lambda: kneighbors(X, Y, index="ivf"), ValueError, "backend='faiss'"),
        (lambda: kneighbors(X, Y, 2, exclude_self=True), ValueError, "as many queries"),
        (lambda: kneighbors(X, Y, 2, exclude_self="yes"), TypeError, "exclude_self"),
        (lambda: radius_neighbors(X, Y, -1.0), ValueError, "radius"),
        (lambda: radius_neighbors(X, Y, np.nan), ValueError, "radius"),
    ]
    for call, error, match in cases:
        with pytest.raises(error, match=match):
            call()


def test_faiss_flat_agrees_with_brute_force_on_every_metric(rng):
    pytest.importorskip("faiss")
    torch = pytest.importorskip("torch")
    X = rng.standard_normal((300, 8)).astype(np.float32)
    Y = rng.standard_normal((500, 8)).astype(np.float32)
    L = rng.standard_normal((8, 8))
    for metric, kwargs in (("euclidean", {}), ("sqeuclidean", {}), ("cosine", {}),
                           ("mahalanobis", {"L": L})):
        for other in (Y, None):
            d_ref, i_ref = kneighbors(X, other, 5, metric=metric, **kwargs)
            dist, ind = kneighbors(X, other, 5, metric=metric, backend="faiss", **kwargs)
            assert dist.dtype == np.float32 and ind.dtype == np.int64
            assert_array_equal(ind, i_ref, err_msg=metric)
            assert_allclose(dist, d_ref, rtol=1e-3, atol=1e-3, err_msg=metric)
    dist, ind = kneighbors(torch.as_tensor(X), n_neighbors=3, backend="faiss")
    assert isinstance(dist, torch.Tensor) and isinstance(ind, torch.Tensor)
    assert_array_equal(ind.numpy(), kneighbors(X, n_neighbors=3)[1])


@pytest.mark.parametrize("index, params", [("ivf", {"nlist": 16, "nprobe": 4}),
                                           ("hnsw", {"M": 16, "ef_search": 64})])
def test_faiss_approximate_indexes_have_high_recall(index, params):
    pytest.importorskip("faiss")
    X, _ = make_blobs(3000, n_features=16, centers=20, random_state=0)
    X = X.astype(np.float32)
    _, exact = kneighbors(X, n_neighbors=10)
    _, approx = kneighbors(X, n_neighbors=10, backend="faiss", index=index, index_params=params)
    recall = np.mean([len(np.intersect1d(a, e)) / 10 for a, e in zip(approx, exact, strict=True)])
    assert recall > 0.9
    assert not np.any(approx == np.arange(3000)[:, None])  # the query itself is excluded
    with pytest.raises(ValueError, match="Unknown index_params"):
        kneighbors(X, n_neighbors=3, backend="faiss", index=index, index_params={"bad": 1})


def test_missing_faiss_names_the_extra_to_install(monkeypatch, rng):
    monkeypatch.setitem(sys.modules, "faiss", None)  # makes `import faiss` fail
    with pytest.raises(ImportError, match=r"pip install 'skmetric\[faiss\]'"):
        kneighbors(rng.standard_normal((5, 2)), n_neighbors=2, backend="faiss")


@pytest.mark.parametrize("weights", ["uniform", "distance"])
def test_classifier_equals_learner_then_sklearn_knn(weights):
    X, y = load_iris(return_X_y=True)
    X_train, y_train, X_test = X[::2], y[::2], X[1::2] + 0.05
    ours = MetricKNeighborsClassifier(5, metric_learner=Covariance(), weights=weights)
    ref = make_pipeline(Covariance(), KNeighborsClassifier(5, weights=weights))
    ours.fit(X_train, y_train)
    ref.fit(X_train, y_train)
    assert_allclose(ours.predict_proba(X_test), ref.predict_proba(X_test), atol=1e-10)
    assert_array_equal(ours.predict(X_test), ref.predict(X_test))
    if weights == "distance":  # a training point itself (distance 0) takes the whole vote
        assert ours.score(X_train, y_train) == 1.0
    dist, ind = ours.kneighbors()
    assert not np.any(ind == np.arange(X_train.shape[0])[:, None])
    with pytest.raises(ValueError, match="exceeds"):
        MetricKNeighborsClassifier(100).fit(X_train[:20], y_train[:20]).predict(X_test)


def test_classifier_with_faiss_backend_and_string_labels():
    pytest.importorskip("faiss")
    X, y = make_blobs(300, n_features=4, centers=3, random_state=1)
    labels = np.array(["a", "b", "c"])[y]
    brute = MetricKNeighborsClassifier(3).fit(X, labels)
    fast = MetricKNeighborsClassifier(3, backend="faiss").fit(X, labels)
    assert_array_equal(fast.predict(X), brute.predict(X))
    assert set(brute.predict(X)) <= {"a", "b", "c"}


def test_exact_distances_of_many_wide_neighbours_stay_in_bounded_memory():
    # MAP@R asks for k = R neighbours (hundreds) of wide embeddings: the gathered
    # (rows, k, d) coordinates must be processed a few rows at a time, not all at once.
    import tracemalloc

    rng = np.random.RandomState(0)
    X = rng.rand(600, 300)
    tracemalloc.start()
    dist, ind = kneighbors(X, n_neighbors=500)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    # Two threads of 64 MiB ranking blocks plus 32 MiB gathers; gathering whole blocks at
    # once took over 2 GB here.
    assert peak < 400 * 2**20
    expected = np.sort(np.linalg.norm(X[:, None, :] - X[None, :, :], axis=2), axis=1)[:, 1:501]
    np.testing.assert_allclose(dist, expected, rtol=1e-10)
