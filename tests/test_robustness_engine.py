"""Robustness of the distance engine (issue #16, #14, #22): magnitudes from 1e-150 to
1e300, offsets, float32 cancellation, callable metrics, torch autograd, and the users of
the engine (k-NN classifier, FAISS backend, KernelPCA's RBF kernel).

References are independent of the engine: ``math.dist`` (overflow-free, accurate) per
pair, scipy's ``cdist`` and ``torch.cdist``.
"""

import math
import re

import numpy as np
import pytest
from _namespaces import numpy_of, to_namespace
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from scipy.spatial.distance import cdist

from skmetric import KernelPCA, MetricKNeighborsClassifier
from skmetric.distances import pairwise_distances, pairwise_distances_chunked
from skmetric.neighbors import kneighbors, radius_neighbors

CPU_NAMESPACES = ["numpy", "array_api_strict", "torch"]
# The documented guarantee: relative error of a distance at most sqrt(eps) of its dtype.
GUARANTEE = {np.float64: np.finfo(np.float64).eps ** 0.5,
             np.float32: np.finfo(np.float32).eps ** 0.5}


@pytest.fixture
def issue_data():
    X = np.random.RandomState(0).randn(40, 4)
    return X, np.arange(40) % 2


def _math_dist(A, B):
    """Euclidean distances by ``math.dist`` on the float64 values of A and B."""
    A, B = np.asarray(A, dtype=np.float64), np.asarray(B, dtype=np.float64)
    return np.array([[math.dist(a, b) for b in B] for a in A])


def _assert_relative(D, ref, rtol):
    """|D - ref| <= rtol * ref entrywise (so a zero reference needs an exact 0)."""
    D = np.asarray(D, dtype=np.float64)
    assert np.all(np.isfinite(D))
    err = np.abs(D - ref)
    worst = np.unravel_index(np.argmax(err - rtol * ref), ref.shape)
    assert np.all(err <= rtol * ref), (worst, D[worst], ref[worst])


def _assert_exact_knn(dist, ind, ref, k, exclude_self, rtol):
    """k-NN against the full reference matrix: valid distinct indices (the query itself
    left out when asked), ascending distances that are the references' distances of the
    returned indices and the k smallest of each row, ties by the smaller index."""
    dist, ind = np.asarray(dist, dtype=np.float64), np.asarray(ind)
    n_q = ref.shape[0]
    assert dist.shape == ind.shape == (n_q, k)
    ref = ref.copy()
    if exclude_self:
        assert not np.any(ind == np.arange(n_q)[:, None])
        np.fill_diagonal(ref, np.inf)
    assert all(len(set(row)) == k for row in ind.tolist())
    assert np.all(np.diff(dist, axis=1) >= 0)
    _assert_relative(dist, np.take_along_axis(ref, ind, axis=1), rtol)
    _assert_relative(dist, np.sort(ref, axis=1)[:, :k], rtol)
    tied = dist[:, 1:] == dist[:, :-1]
    assert np.all(ind[:, 1:][tied] > ind[:, :-1][tied])


# -- the reports of issue #16 ------------------------------------------------------------

@pytest.mark.parametrize("namespace", CPU_NAMESPACES)
@pytest.mark.parametrize("scale", [1e-150, 1e154, 1e160, 1e300])
def test_kneighbors_and_pairwise_distances_are_scale_equivariant(issue_data, namespace,
                                                                 scale):
    X = issue_data[0]
    Xs = to_namespace(X * scale, namespace)
    dist, ind = kneighbors(X, n_neighbors=3)
    dist_s, ind_s = kneighbors(Xs, n_neighbors=3)
    assert_array_equal(numpy_of(ind_s), ind)  # was [1, 1, 1] with inf at 1e154
    assert_allclose(numpy_of(dist_s) / scale, dist, rtol=1e-13)
    D = numpy_of(pairwise_distances(Xs))  # had NaN entries at 1e160
    assert_allclose(D / scale, cdist(X, X), rtol=1e-13, atol=0)
    assert np.all(np.diag(D) == 0)
    # Y given: no ZeroDivisionError, the query itself first at distance 0.
    dist_y, ind_y = kneighbors(Xs, to_namespace(X * scale, namespace), n_neighbors=3)
    assert_array_equal(numpy_of(ind_y)[:, 0], np.arange(40))
    assert_array_equal(numpy_of(ind_y)[:, 1:], ind[:, :2])
    assert np.all(numpy_of(dist_y)[:, 0] == 0)


@pytest.mark.parametrize("scale", [1e-150, 1e154, 1e300])
def test_radius_neighbors_and_chunks_are_scale_equivariant(issue_data, scale):
    X = issue_data[0]
    radius = float(np.median(cdist(X, X)))
    _, ind = radius_neighbors(X, radius=radius)
    dist_s, ind_s = radius_neighbors(X * scale, radius=radius * scale)
    assert [i.tolist() for i in ind_s] == [i.tolist() for i in ind]
    blocks = np.concatenate(list(pairwise_distances_chunked(X * scale, chunk_size=7)))
    assert_allclose(blocks / scale, cdist(X, X), rtol=1e-13)


@pytest.mark.parametrize("scale", [1e154, 1e300])
def test_squared_distances_overflow_only_where_the_true_value_does(issue_data, scale):
    X = issue_data[0]
    D2 = pairwise_distances(X * scale, metric="sqeuclidean")
    with np.errstate(over="ignore"):  # inf where it exceeds the largest float
        ref = cdist(X, X, "sqeuclidean") * scale * scale
    assert_array_equal(np.isinf(D2), np.isinf(ref))
    finite = np.isfinite(ref) & (ref > 0)
    assert_allclose(D2[finite], ref[finite], rtol=1e-12)


@pytest.mark.parametrize("scale", [1e-200, 1e200])
def test_cosine_and_mahalanobis_at_extreme_magnitudes(issue_data, scale):
    X = issue_data[0]
    L = np.random.RandomState(1).randn(3, 4)
    assert_allclose(pairwise_distances(X * scale, metric="cosine"), cdist(X, X, "cosine"),
                    atol=1e-12)
    D = pairwise_distances(X * scale, metric="mahalanobis", L=L)
    assert_allclose(D / scale, cdist(X @ L.T, X @ L.T), rtol=1e-12, atol=0)


def test_metric_kneighbors_classifier_on_huge_magnitudes(issue_data):
    X, y = issue_data
    ref = MetricKNeighborsClassifier(3).fit(X, y)
    for scale in (1e160, 1e300):  # ZeroDivisionError before
        clf = MetricKNeighborsClassifier(3).fit(X * scale, y)
        assert_array_equal(clf.predict(X * scale), ref.predict(X))
        assert_array_equal(clf.kneighbors(X * scale)[1], ref.kneighbors(X)[1])


@pytest.mark.parametrize("params", [{}, {"n_components": 2}, {"device": "cpu"},
                                    {"n_landmarks": 10, "random_state": 0}])
@pytest.mark.parametrize("scale", [1e150, 1e300])
def test_kernel_pca_rbf_identity_kernel_is_a_clear_error(issue_data, params, scale):
    # Points 1e150 apart: exp(-gamma d²) is 0 for every pair, the kernel the identity.
    with pytest.raises(ValueError, match="RBF kernel of these samples is the identity.*"
                                         "Scale the data"):
        KernelPCA(kernel="rbf", **params).fit(issue_data[0] * scale)


@pytest.mark.parametrize("device", [None, "cpu"])
def test_kernel_pca_rbf_is_computed_right_where_d_squared_overflows(issue_data, device):
    # ||x - y||² ~ 1e310 overflows, gamma ||x - y||² ~ 10 does not: the kernel is that of
    # X with gamma * 1e310, which scikit-learn's own expansion turns into NaN.
    X = issue_data[0]
    far = KernelPCA(3, kernel="rbf", gamma=1e-309, device=device).fit(X * 1e155 + 1e160)
    near = KernelPCA(3, kernel="rbf", gamma=1e-309 * 1e155 * 1e155).fit(X)
    assert_allclose(far.eigenvalues_, near.eigenvalues_, rtol=1e-8)


# -- float32 cancellation (#16, #14) -----------------------------------------------------

@pytest.mark.parametrize("namespace", CPU_NAMESPACES)
def test_float32_offset_data_matches_float64(issue_data, namespace):
    A = (issue_data[0] + 1000).astype(np.float32)
    ref = cdist(A.astype(np.float64), A.astype(np.float64))
    D = numpy_of(pairwise_distances(to_namespace(A, namespace)))
    assert D.dtype == np.float32
    assert np.abs(D - ref).max() < 2e-6  # was 0.7 off on distances of about 2.5
    dist, ind = kneighbors(to_namespace(A, namespace), n_neighbors=3)
    _assert_exact_knn(numpy_of(dist), numpy_of(ind), ref, 3, True, rtol=1e-4)


@pytest.mark.parametrize("namespace", CPU_NAMESPACES)
def test_float32_knn_of_spread_data_needs_the_round_off_band(namespace):
    """Two clusters 2,000 apart: the mean is near the origin, so centring does not help,
    and the float32 ranking's round-off (~0.5 in squared distance) exceeds the gaps
    between neighbours. Only the band above the k-th bound keeps the true neighbours
    among the candidates (without it 15-20% of the indices are wrong, distances 0.3 off)."""
    rng = np.random.RandomState(0)
    A = np.concatenate([rng.randn(150, 8) + 1000, rng.randn(150, 8) - 1000])
    A = A.astype(np.float32)
    ref = cdist(A.astype(np.float64), A.astype(np.float64))
    dist, ind = kneighbors(to_namespace(A, namespace), n_neighbors=5)
    _assert_exact_knn(numpy_of(dist), numpy_of(ind), ref, 5, True, rtol=1e-5)
    dist_1, ind_1 = kneighbors(to_namespace(A, namespace), n_neighbors=5, chunk_size=1)
    assert_array_equal(numpy_of(ind_1), numpy_of(ind))
    assert_array_equal(numpy_of(dist_1), numpy_of(dist))
    D = numpy_of(pairwise_distances(to_namespace(A, namespace)))
    _assert_relative(D, ref, GUARANTEE[np.float32])


def test_duplicates_far_from_the_origin_are_at_distance_zero():
    rng = np.random.RandomState(0)
    X = rng.randn(30, 6) * 1e-3 + 1e4
    Y = np.concatenate([X[:5], rng.randn(5, 6) + 1e4])
    D = pairwise_distances(X, Y)
    assert_array_equal(D[np.arange(5), np.arange(5)], 0.0)
    _assert_relative(D, _math_dist(X, Y), GUARANTEE[np.float64])


# -- the guarantees as properties over magnitudes, offsets, dtypes and namespaces ----------

@st.composite
def _families(draw):
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    exp_range = (-150, 300) if dtype == np.float64 else (-30, 30)
    seed = draw(st.integers(0, 2**16))
    n, m, d = draw(st.integers(2, 9)), draw(st.integers(2, 9)), draw(st.integers(1, 5))
    scale = 10.0 ** draw(st.integers(*exp_range))
    offset = draw(st.sampled_from([0.0, 1.0, 1e3] + ([1e6] if dtype == np.float64 else [])))
    rng = np.random.RandomState(seed)
    X = rng.randn(n, d) * scale + offset * scale
    Y = rng.randn(m, d) * scale + offset * scale
    if draw(st.booleans()):
        Y[0] = X[-1]  # an exact duplicate across X and Y
    namespace = draw(st.sampled_from(CPU_NAMESPACES))
    return X.astype(dtype), Y.astype(dtype), dtype, namespace


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(case=_families())
def test_pairwise_distances_relative_error_guarantee(case):
    X, Y, dtype, namespace = case
    ref = _math_dist(X, Y)
    D = pairwise_distances(to_namespace(X, namespace), to_namespace(Y, namespace))
    assert numpy_of(D).dtype == dtype
    _assert_relative(numpy_of(D), ref, GUARANTEE[dtype])
    D_self = numpy_of(pairwise_distances(to_namespace(X, namespace)))
    _assert_relative(D_self, _math_dist(X, X), GUARANTEE[dtype])


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(case=_families(), k=st.integers(1, 3))
def test_kneighbors_exact_at_any_magnitude_and_offset(case, k):
    X, Y, dtype, namespace = case
    rtol = 1e-5 if dtype == np.float32 else 1e-13
    Xn, Yn = to_namespace(X, namespace), to_namespace(Y, namespace)
    k_y = min(k, Y.shape[0])
    dist, ind = kneighbors(Xn, Yn, n_neighbors=k_y)
    _assert_exact_knn(numpy_of(dist), numpy_of(ind), _math_dist(X, Y), k_y, False, rtol)
    k_x = min(k, X.shape[0] - 1)
    dist, ind = kneighbors(Xn, n_neighbors=k_x)
    _assert_exact_knn(numpy_of(dist), numpy_of(ind), _math_dist(X, X), k_x, True, rtol)
    dist_1, ind_1 = kneighbors(Xn, n_neighbors=k_x, chunk_size=1)
    assert_array_equal(numpy_of(ind_1), numpy_of(ind))
    assert_array_equal(numpy_of(dist_1), numpy_of(dist))


# -- callable metrics ------------------------------------------------------------------

def _wrong_shape(A, B):
    return np.zeros((A.shape[0], B.shape[0] + 1))


def _nan_rows(A, B):
    D = cdist(A, B)
    D[A[:, 0] > 1.0] = np.nan
    return D


@pytest.mark.parametrize("call", [
    lambda X, metric: pairwise_distances(X, metric=metric),
    lambda X, metric: kneighbors(X, n_neighbors=2, metric=metric),
    lambda X, metric: radius_neighbors(X, radius=1.0, metric=metric),
])
def test_callable_metric_with_wrong_output_is_a_clear_error(issue_data, call):
    X = issue_data[0]
    with pytest.raises(ValueError, match=r"_wrong_shape returned shape \(40, 41\).*"
                                         r"must return the \(40, 40\) matrix"):
        call(X, _wrong_shape)
    bad_rows = np.flatnonzero(X[:, 0] > 1.0)[:5].tolist()
    with pytest.raises(ValueError, match="_nan_rows returned NaN distances for rows "
                                         + re.escape(str(bad_rows))):
        call(X, _nan_rows)
    with pytest.raises(TypeError, match="returned dtype complex"):
        call(X, lambda A, B: cdist(A, B) + 0j)


def test_callable_metric_values_pass_through(issue_data):
    X = issue_data[0]

    def manhattan(A, B):
        return cdist(A, B, "cityblock")

    assert_allclose(pairwise_distances(X, metric=manhattan), cdist(X, X, "cityblock"))
    dist, ind = kneighbors(X, n_neighbors=3, metric=manhattan)
    _assert_exact_knn(dist, ind, cdist(X, X, "cityblock"), 3, True, rtol=1e-15)


# -- torch autograd --------------------------------------------------------------------

@pytest.fixture
def torch_pair():
    torch = pytest.importorskip("torch")
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(6, 3, dtype=torch.float64, generator=gen)
    Y = torch.randn(5, 3, dtype=torch.float64, generator=gen)
    Y[2] = X[1]  # a zero distance between X[1] and Y[2]
    return torch, X.requires_grad_(True), Y.requires_grad_(True)


@pytest.mark.parametrize("metric,kwargs", [("euclidean", {}), ("sqeuclidean", {}),
                                           ("cosine", {}),
                                           ("mahalanobis", {"L": np.diag([2.0, 1.0, 0.5])})])
def test_pairwise_distances_gradcheck(torch_pair, metric, kwargs):
    torch, X, Y = torch_pair
    assert torch.autograd.gradcheck(
        lambda a, b: pairwise_distances(a, b, metric=metric, **kwargs), (X, Y))
    assert torch.autograd.gradcheck(
        lambda a: pairwise_distances(a, metric=metric, chunk_size=4, **kwargs), (X,))


def test_pairwise_distances_gradient_equals_torch_cdist(torch_pair):
    torch, X, Y = torch_pair
    weights = torch.rand(6, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    (pairwise_distances(X, Y) * weights).sum().backward()
    ours = X.grad.clone(), Y.grad.clone()
    X.grad, Y.grad = None, None
    (torch.cdist(X, Y) * weights).sum().backward()
    # finite (0) subgradient at the zero distance, as torch.cdist; NaN before.
    torch.testing.assert_close(ours[0], X.grad)
    torch.testing.assert_close(ours[1], Y.grad)
    X.grad = None
    pairwise_distances(X).sum().backward()  # an in-place modification error before
    assert torch.all(torch.isfinite(X.grad))


def test_kneighbors_distances_are_differentiable(torch_pair):
    torch, X, Y = torch_pair
    assert torch.autograd.gradcheck(lambda a, b: kneighbors(a, b, n_neighbors=2)[0], (X, Y))
    assert torch.autograd.gradcheck(lambda a: kneighbors(a, n_neighbors=2)[0], (X,))


def test_offset_data_is_centred_so_the_expansion_serves_almost_every_entry(monkeypatch):
    """Centring on the references' mean is what keeps offset data on the fast matrix
    product: only the few closest pairs are sent to the direct (x - y) computation. Without
    it, the results stay right (those entries are recomputed) but every entry is slow."""
    from skmetric._compute._engine import Prepared as _Prepared

    direct_sq, sent = _Prepared.direct_sq, []

    def counting(self, rows, cols):
        sent.append(rows.shape[0])
        return direct_sq(self, rows, cols)

    monkeypatch.setattr(_Prepared, "direct_sq", counting)
    X = np.random.RandomState(0).randn(200, 4)
    for A in ((X + 1000).astype(np.float32), X + 1e8, (X * 1e25 - 1e28).astype(np.float32)):
        sent.clear()
        D = pairwise_distances(A)
        _assert_relative(D, cdist(A.astype(np.float64), A.astype(np.float64)),
                         GUARANTEE[A.dtype.type])
        assert sum(sent) < 0.01 * A.shape[0] ** 2


@pytest.mark.parametrize("scale,offset,dtype", [(1e154, 0.0, np.float64),
                                                (1e50, 0.0, np.float64),
                                                (1e-200, 0.0, np.float64),
                                                (1.0, 1000.0, np.float32)])
def test_faiss_backend_at_any_magnitude_and_offset(issue_data, scale, offset, dtype):
    """FAISS computes in float32: it gets the engine's centred coordinates, scaled into
    float32's range, and its distances come back in the data's units."""
    pytest.importorskip("faiss")
    A = (issue_data[0] * scale + offset).astype(dtype)
    A_before = A.copy()
    ref = _math_dist(A, A)
    dist, ind = kneighbors(A, n_neighbors=3, backend="faiss")
    assert dist.dtype == dtype
    _assert_exact_knn(dist, ind, ref, 3, True, rtol=1e-5)
    assert_array_equal(A, A_before)  # the caller's array is never scaled in place
    dist_y, ind_y = kneighbors(A[:10], A, n_neighbors=3, backend="faiss")
    _assert_exact_knn(dist_y, ind_y, ref[:10], 3, False, rtol=1e-5)
