"""skmetric.distances and the namespace-aware methods of the Mahalanobis learners."""

import tracemalloc

import numpy as np
import pytest
from _namespaces import NAMESPACES, assert_in_namespace, numpy_of, to_namespace
from numpy.testing import assert_allclose, assert_array_equal
from scipy.spatial.distance import cdist

from skmetric import Covariance
from skmetric.distances import pairwise_distances, pairwise_distances_chunked

DTYPES = [np.float32, np.float64]


def _tol(dtype):
    return {"rtol": 1e-4, "atol": 1e-4} if dtype == np.float32 else {"rtol": 1e-10,
                                                                       "atol": 1e-10}


@pytest.fixture
def data(rng):
    A = rng.standard_normal((5, 5))
    return {
        "X": rng.standard_normal((23, 5)),
        "Y": rng.standard_normal((17, 5)) + 0.5,
        "M": A @ A.T + 0.1 * np.eye(5),
        "L": rng.standard_normal((3, 5)),
    }


def _metric_cases(data):
    """(metric, kwargs for skmetric, the same distance by scipy's cdist)."""
    L = data["L"]
    return [
        ("euclidean", {}, lambda X, Y: cdist(X, Y)),
        ("sqeuclidean", {}, lambda X, Y: cdist(X, Y, "sqeuclidean")),
        ("cosine", {}, lambda X, Y: cdist(X, Y, "cosine")),
        ("mahalanobis", {"M": data["M"]}, lambda X, Y: cdist(X, Y, "mahalanobis", VI=data["M"])),
        ("mahalanobis", {"L": L}, lambda X, Y: cdist(X, Y, "mahalanobis", VI=L.T @ L)),
    ]


@pytest.mark.parametrize("namespace", NAMESPACES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_pairwise_distances_match_cdist_and_keep_namespace_device_dtype(namespace, dtype, data):
    X, Y = data["X"].astype(dtype), data["Y"].astype(dtype)
    Xn, Yn = to_namespace(X, namespace), to_namespace(Y, namespace)
    for metric, kwargs, reference in _metric_cases(data):
        for other, ref in ((Yn, reference(X, Y)), (None, reference(X, X))):
            D = pairwise_distances(Xn, other, metric, **kwargs)
            assert_in_namespace(D, Xn)
            assert D.dtype == Xn.dtype, metric
            assert_allclose(numpy_of(D), ref, **_tol(dtype), err_msg=metric)
        D = numpy_of(pairwise_distances(Xn, metric=metric, **kwargs))
        # Y=None: exact zeros on the diagonal and a symmetric matrix.
        assert_array_equal(np.diag(D), 0)
        assert_allclose(D, D.T, **_tol(dtype))
        assert D.min() >= 0


@pytest.mark.parametrize("namespace", NAMESPACES)
def test_chunk_size_and_working_memory_do_not_change_the_result(namespace, data, rng):
    X = to_namespace(rng.standard_normal((61, 7)), namespace)
    Y = to_namespace(rng.standard_normal((45, 7)), namespace)
    for metric in ("euclidean", "cosine"):
        for other in (Y, None):
            # The BLAS may sum in another order for another block height: equal to round-off.
            full = numpy_of(pairwise_distances(X, other, metric, chunk_size=1000))
            for kwargs in ({"chunk_size": 1}, {"chunk_size": 7}, {"chunk_size": 60},
                           {"working_memory": 0.001}, {"n_threads": 1}, {"n_threads": 3}):
                D = numpy_of(pairwise_distances(X, other, metric, **kwargs))
                assert_allclose(D, full, rtol=1e-13, atol=1e-13, err_msg=str(kwargs))
            blocks = list(pairwise_distances_chunked(X, other, metric, chunk_size=20))
            assert [b.shape[0] for b in blocks] == [20, 20, 20, 1]
            for b in blocks:
                assert_in_namespace(b, X)
            stacked = np.concatenate([numpy_of(b) for b in blocks])
            assert_allclose(stacked, full, rtol=1e-13, atol=1e-13)


def test_extra_memory_is_set_by_the_block_not_by_n_squared(rng):
    X = rng.standard_normal((2000, 8))
    out_bytes = X.shape[0] ** 2 * 8
    chunks = pairwise_distances_chunked(X, chunk_size=50)
    tracemalloc.start()
    for block in chunks:
        assert block.shape == (50, 2000)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < out_bytes / 5  # a few 50-row blocks, far from the 32 MB matrix
    tracemalloc.start()
    D = pairwise_distances(X, chunk_size=50, n_threads=1)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert D.shape == (2000, 2000)
    assert peak < out_bytes * 1.2  # the output plus small blocks


def test_mahalanobis_from_M_equals_from_L_and_integers_become_float64(data):
    X = np.round(data["X"] * 10).astype(np.int64)
    L = data["L"]
    D_M = pairwise_distances(X, metric="mahalanobis", M=L.T @ L)
    D_L = pairwise_distances(X, metric="mahalanobis", L=L)
    assert D_M.dtype == np.float64
    assert_allclose(D_M, D_L, rtol=1e-8, atol=1e-8)
    assert_allclose(D_L, pairwise_distances(X @ L.T), rtol=1e-10, atol=1e-10)


def test_cosine_zero_vector_is_at_distance_one_and_callable_metric_is_used():
    X = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    D = pairwise_distances(X, X[1:], "cosine")
    assert_allclose(D, [[1, 1], [0, 1], [1, 0]], atol=1e-12)
    manhattan = lambda A, B: np.abs(A[:, None, :] - B[None, :, :]).sum(axis=2)  # noqa: E731
    assert_allclose(pairwise_distances(X, metric=manhattan, chunk_size=2), cdist(X, X, "cityblock"))


def test_bad_inputs_raise_clear_errors(data):
    X, Y, M, L = data["X"], data["Y"], data["M"], data["L"]
    bad = X.copy()
    bad[3, 1] = np.nan
    cases = [
        (lambda: pairwise_distances(X, Y[:, :4]), ValueError, "features"),
        (lambda: pairwise_distances(bad), ValueError, "NaN"),
        (lambda: pairwise_distances(X, np.full_like(Y, np.inf)), ValueError, "infinity"),
        (lambda: pairwise_distances(X, metric="manhattan"), ValueError, "Unknown metric"),
        (lambda: pairwise_distances(X, metric="mahalanobis"), ValueError, "neither"),
        (lambda: pairwise_distances(X, metric="mahalanobis", M=M, L=L), ValueError, "both"),
        (lambda: pairwise_distances(X, metric="mahalanobis", M=M[:4, :4]), ValueError, "shape"),
        (lambda: pairwise_distances(X, metric="mahalanobis", M=-M), ValueError, "semi-definite"),
        (lambda: pairwise_distances(X, metric="mahalanobis", M=M + np.triu(M)), ValueError,
         "symmetric"),
        (lambda: pairwise_distances(X, metric="mahalanobis", L=L[:, :4]), ValueError, "L has"),
        (lambda: pairwise_distances(X, M=M), ValueError, "only used with"),
        (lambda: pairwise_distances(X[0]), ValueError, "2-D"),
        (lambda: pairwise_distances(X[:0]), ValueError, "at least 1 sample"),
        (lambda: pairwise_distances(X, chunk_size=0), ValueError, "chunk_size"),
        (lambda: pairwise_distances(X, working_memory=-1), ValueError, "working_memory"),
        (lambda: pairwise_distances(X, chunk_size=2, working_memory=1), ValueError, "not both"),
        (lambda: pairwise_distances(X, n_threads=0), ValueError, "n_threads"),
        (lambda: pairwise_distances(X + 1j), ValueError, "Complex"),
        (lambda: pairwise_distances([["a", "b"]]), TypeError, "numeric"),
    ]
    for call, error, match in cases:
        with pytest.raises(error, match=match):
            call()


def test_sparse_and_mixed_namespaces_are_refused(data):
    torch = pytest.importorskip("torch")
    import scipy.sparse as sp

    with pytest.raises(TypeError, match="toarray"):
        pairwise_distances(sp.csr_matrix(data["X"]))
    with pytest.raises(TypeError, match="same array library"):
        pairwise_distances(data["X"], torch.as_tensor(data["Y"]))


@pytest.mark.parametrize("namespace", NAMESPACES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_learner_transform_pair_distance_get_metric_keep_namespace(namespace, dtype, data):
    X = data["X"].astype(dtype)
    cov = Covariance().fit(data["X"])
    Xn = to_namespace(X, namespace)
    Z = cov.transform(Xn)
    assert_in_namespace(Z, Xn)
    if namespace != "numpy":  # the NumPy path validates (and computes) in float64
        assert Z.dtype == Xn.dtype
    assert_allclose(numpy_of(Z), cov.transform(X), **_tol(dtype))
    pairs = np.stack([X[:10], X[10:20]], axis=1)
    pn = to_namespace(pairs, namespace)
    d = cov.pair_distance(pn)
    assert_in_namespace(d, pn)
    assert_allclose(numpy_of(d), cov.pair_distance(pairs), **_tol(dtype))
    metric = cov.get_metric()
    value = metric(Xn[0, :], Xn[1, :])
    if namespace != "numpy":  # NumPy vectors give a Python float
        assert_in_namespace(value, Xn)
    assert_allclose(float(numpy_of(value)), metric(X[0], X[1]), **_tol(dtype))
    assert_allclose(float(numpy_of(metric(Xn[0, :], Xn[1, :], squared=True))),
                    metric(X[0], X[1]) ** 2, **_tol(dtype))
    with pytest.raises(ValueError, match="features"):
        cov.transform(Xn[:, :3])
    with pytest.raises(ValueError, match="features"):
        cov.pair_distance(pn[:, :, :3])


def test_covariance_device_cpu_matches_numpy_and_bad_device_is_refused(rng):
    pytest.importorskip("torch")
    X = rng.standard_normal((300, 6)) @ rng.standard_normal((6, 6))
    M_np = Covariance().fit(X).get_mahalanobis_matrix()
    M_torch = Covariance(device="cpu").fit(X).get_mahalanobis_matrix()
    assert_allclose(M_torch, M_np, rtol=1e-5, atol=1e-5 * np.abs(M_np).max())
    with pytest.raises(ValueError, match="device"):
        Covariance(device="gpu").fit(X)


@pytest.mark.gpu
def test_covariance_device_cuda_matches_numpy(rng):
    X = rng.standard_normal((300, 6)) @ rng.standard_normal((6, 6))
    M_np = Covariance().fit(X).get_mahalanobis_matrix()
    for dev in ("cuda", "auto"):
        M_gpu = Covariance(device=dev).fit(X).get_mahalanobis_matrix()
        assert_allclose(M_gpu, M_np, rtol=1e-5, atol=1e-5 * np.abs(M_np).max())
