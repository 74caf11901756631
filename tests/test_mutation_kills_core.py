"""Tests written to kill the mutants of skmetric/neighbors.py and of the distance engine's
core (skmetric/_compute/_engine.py, _blocks.py, _numerics.py, _arrays.py) that survived
their own tests (issue #22; tests/README.md, "Scores (fourth session)").

References are independent of the engine: scikit-learn's ``KNeighborsClassifier`` and
``NearestNeighbors``, scipy's ``cdist`` in float64 with a stable sort (ties by the smaller
index), and hand-computed cases; the namespace-generic code runs on NumPy,
array-api-strict and torch (CPU).
"""

import functools
import os
import re
import sys
import threading
import time

import numpy as np
import pytest
import scipy.sparse as sp
import sklearn
from _namespaces import numpy_of, to_namespace
from array_api_compat import array_namespace
from numpy.testing import assert_allclose, assert_array_equal
from scipy.spatial.distance import cdist
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors
from test_mutation_kills_engine import _brute_knn  # float64 cdist, ties by index
from threadpoolctl import threadpool_info, threadpool_limits

from skmetric._compute import _numerics as num
from skmetric._compute._arrays import check_input, check_inputs
from skmetric._compute._blocks import chunk_rows, map_blocks, n_threads_for, set_diagonal
from skmetric.distances import pairwise_distances
from skmetric.neighbors import MetricKNeighborsClassifier, kneighbors, radius_neighbors

CPU_NAMESPACES = ["numpy", "array_api_strict", "torch"]


def _raises(error, message, call):
    """``call()`` raises ``error`` whose text is exactly ``message``."""
    with pytest.raises(error) as info:
        call()
    assert str(info.value) == message


# ------------------------------------------------------------------ skmetric/neighbors.py


def test_every_available_reference_can_be_asked_for_and_one_more_is_refused():
    """k = the number of references available works (with and without the query itself
    excluded) and equals brute force; k + 1 is refused with the full message."""
    rng = np.random.RandomState(0)
    X, Y = rng.standard_normal((7, 3)), rng.standard_normal((5, 3))
    for args, k, exclude in (((X, Y), 5, False), ((X,), 6, True), ((X, X), 7, False),
                             ((X, X), 6, True)):
        dist, ind = kneighbors(*args, n_neighbors=k, exclude_self=exclude)
        d_ref, i_ref = _brute_knn(X, args[-1], k, exclude_self=exclude)
        assert_array_equal(ind, i_ref)
        assert_allclose(dist, d_ref, rtol=1e-12)
    _raises(ValueError, "n_neighbors=6 exceeds the 5 references available; lower n_neighbors.",
            lambda: kneighbors(X, Y, 6))
    _raises(ValueError, "n_neighbors=7 exceeds the 6 references available (the query itself "
            "excluded); lower n_neighbors.", lambda: kneighbors(X, n_neighbors=7))


def test_faiss_options_without_the_faiss_backend_are_refused():
    X = np.arange(12.0).reshape(6, 2)
    message = "index and index_params are FAISS options; pass backend='faiss'."
    for kwargs in ({"index": "ivf"}, {"index_params": {"nlist": 2}},
                   {"index": "hnsw", "index_params": {"M": 4}, "backend": "brute"}):
        _raises(ValueError, message, lambda kw=kwargs: kneighbors(X, n_neighbors=2, **kw))
    # An empty dict is no option at all.
    assert_array_equal(kneighbors(X, n_neighbors=2, index_params={})[1],
                       _brute_knn(X, X, 2, exclude_self=True)[1])


def test_return_distance_false_returns_the_indices_alone():
    rng = np.random.RandomState(1)
    X, Y = rng.standard_normal((6, 2)), rng.standard_normal((9, 2))
    ind = kneighbors(X, Y, 3, return_distance=False)
    assert isinstance(ind, np.ndarray)
    assert_array_equal(ind, _brute_knn(X, Y, 3)[1])
    rad = radius_neighbors(X, Y, 1.5, return_distance=False)
    D = cdist(X, Y)
    assert isinstance(rad, list) and len(rad) == 6
    for q, i in enumerate(rad):
        assert_array_equal(np.sort(i), np.flatnonzero(D[q] <= 1.5))


@pytest.mark.parametrize("radius", [np.inf, float("inf"), np.nan])
def test_a_radius_that_is_not_finite_is_refused_with_its_value(radius):
    """scikit-learn's parameter validation refuses it first; with that validation off
    (``skip_parameter_validation``) the function's own check must."""
    X = np.arange(6.0).reshape(3, 2)
    with pytest.raises(ValueError, match="'radius' parameter of radius_neighbors"):
        radius_neighbors(X, radius=radius)
    with sklearn.config_context(skip_parameter_validation=True):
        _raises(ValueError, f"radius must be a finite number >= 0; got {radius!r}.",
                lambda: radius_neighbors(X, radius=radius))


class _Float32Map(TransformerMixin, BaseEstimator):
    """A fixed linear map whose ``transform`` returns float32 (as a torch-backed learner
    may): the classifier must still search its space in float64."""

    def fit(self, X, y=None):
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X):
        return (np.asarray(X) * [1.0, 3.0]).astype(np.float32)


def test_classifier_searches_the_learned_space_in_float64_and_passes_its_options():
    rng = np.random.RandomState(2)
    X = rng.standard_normal((40, 2))
    y = (X[:, 1] > 0).astype(int)
    Q = rng.standard_normal((7, 2))
    clf = MetricKNeighborsClassifier(4, metric_learner=_Float32Map(), chunk_size=3).fit(X, y)
    assert clf.n_samples_fit_ == 40 and clf.n_features_in_ == 2
    Z = (X * [1.0, 3.0]).astype(np.float32).astype(np.float64)
    ZQ = (Q * [1.0, 3.0]).astype(np.float32).astype(np.float64)
    dist, ind = clf.kneighbors(Q, n_neighbors=6)
    ref = NearestNeighbors(n_neighbors=6, algorithm="brute").fit(Z)
    d_ref, i_ref = ref.kneighbors(ZQ)
    assert dist.dtype == np.float64
    assert_array_equal(ind, i_ref)
    assert_allclose(dist, d_ref, rtol=1e-13)
    # Of the training set itself: each sample leaves itself out, as scikit-learn does.
    d_self, i_self = clf.kneighbors()
    d_ref, i_ref = ref.kneighbors(n_neighbors=4)
    assert_array_equal(i_self, i_ref)
    assert_allclose(d_self, d_ref, rtol=1e-13)
    assert_array_equal(clf.kneighbors(Q, return_distance=False), ind[:, :4])


def test_classifier_reaches_the_faiss_backend_it_is_given(monkeypatch):
    X = np.arange(20.0).reshape(10, 2)
    y = np.arange(10) % 2
    monkeypatch.setitem(sys.modules, "faiss", None)  # makes `import faiss` fail
    clf = MetricKNeighborsClassifier(3, backend="faiss").fit(X, y)
    with pytest.raises(ImportError, match=r"pip install 'skmetric\[faiss\]'"):
        clf.predict(X)


def test_distance_weights_with_exact_matches_equal_sklearn():
    """Queries equal to training samples (duplicated with other labels): the exact
    matches share the vote, the others get none; other queries vote by 1 / distance."""
    rng = np.random.RandomState(3)
    X = rng.standard_normal((30, 2))
    X[10:13] = X[0]  # four copies of X[0], two of X[1]: fewer than k, so no tie at k
    X[13] = X[1]
    y = rng.randint(0, 3, size=30)
    y[[0, 10, 11, 12, 1, 13]] = [0, 1, 1, 2, 2, 2]
    Q = np.vstack([X[:10], rng.standard_normal((5, 2))])
    ours = MetricKNeighborsClassifier(5, weights="distance").fit(X, y)
    ref = KNeighborsClassifier(5, weights="distance", algorithm="brute").fit(X, y)
    proba = ours.predict_proba(Q)
    assert_allclose(proba, ref.predict_proba(Q), atol=1e-12)
    assert_array_equal(ours.predict(Q), ref.predict(Q))
    assert_allclose(proba[:2], [[0.25, 0.5, 0.25], [0.0, 0.0, 1.0]])
    D = cdist(Q[:10], X)
    for q in range(10):  # hand check: the share of each class among the exact matches
        exact = y[D[q] == 0]
        assert_allclose(proba[q], np.bincount(exact, minlength=3) / exact.size, atol=1e-12)


def test_classifier_ties_go_to_the_first_class_and_labels_are_kept():
    X = np.array([[0.0], [1.0], [3.0], [4.0]])
    y = np.array(["b", "a", "b", "a"])
    clf = MetricKNeighborsClassifier(2).fit(X, y)
    assert_array_equal(clf.classes_, ["a", "b"])
    # 2.0 is as close to 1 (a) as to 3 (b); 0.5 has 0 (b) and 1 (a): ties -> "a".
    assert_array_equal(clf.predict([[2.0], [0.5], [-5.0]]), ["a", "a", "a"])
    assert_allclose(clf.predict_proba([[2.0], [-5.0], [3.6]]),
                    [[0.5, 0.5], [0.5, 0.5], [0.5, 0.5]])
    assert_array_equal(MetricKNeighborsClassifier(1).fit(X, y).predict([[3.4], [0.4]]),
                       ["b", "b"])


def test_classifier_checks_the_feature_count_of_queries_against_fit():
    X = np.arange(24.0).reshape(6, 4)
    clf = MetricKNeighborsClassifier(2).fit(X, np.arange(6) % 2)
    with pytest.raises(ValueError, match="X has 3 features, but MetricKNeighborsClassifier "
                                         "is expecting 4 features as input"):
        clf.predict(X[:, :3])
    assert clf.n_features_in_ == 4


# ------------------------------------------------------------ skmetric/_compute/_engine.py


def test_engine_errors_say_what_was_wrong_in_full():
    X = np.arange(12.0).reshape(4, 3)
    metrics = "('euclidean', 'sqeuclidean', 'cosine', 'mahalanobis')"
    cases = [
        (ValueError, f"Unknown metric 'l1'; choose one of {metrics} or pass a callable.",
         lambda: pairwise_distances(X, metric="l1")),
        (ValueError, "M and L are only used with metric='mahalanobis'; got "
         "metric='cosine'.", lambda: pairwise_distances(X, metric="cosine", L=np.eye(3))),
        (ValueError, "M and L are only used with metric='mahalanobis'.",
         lambda: pairwise_distances(X, metric=lambda A, B: cdist(A, B), M=np.eye(3))),
        (ValueError, "metric='mahalanobis' needs exactly one of M (the PSD matrix) and L "
         "(the linear map with M = L.T @ L, e.g. a learner's components_); got neither.",
         lambda: pairwise_distances(X, metric="mahalanobis")),
        (ValueError, "metric='mahalanobis' needs exactly one of M (the PSD matrix) and L "
         "(the linear map with M = L.T @ L, e.g. a learner's components_); got both.",
         lambda: pairwise_distances(X, metric="mahalanobis", M=np.eye(3), L=np.eye(3))),
        (ValueError, "M has shape (2, 2); expected (n_features, n_features) = (3, 3).",
         lambda: pairwise_distances(X, metric="mahalanobis", M=np.eye(2))),
        (ValueError, "exclude_self=True with Y given means query i is reference i, which "
         "needs as many queries as references; got 4 and 3.",
         lambda: kneighbors(X, X[:3], 2, exclude_self=True)),
    ]
    for error, message, call in cases:
        _raises(error, message, call)
    with sklearn.config_context(skip_parameter_validation=True):
        _raises(TypeError, "exclude_self must be True, False or None; got 'yes'.",
                lambda: kneighbors(X, X, 2, exclude_self="yes"))
    with pytest.raises(ValueError, match=re.escape("L has shape (3, 2); expected 3 features")):
        pairwise_distances(X, metric="mahalanobis", L=np.ones((3, 2)))


def test_exclude_self_accepts_numpy_booleans_and_is_false_for_another_reference_set():
    rng = np.random.RandomState(4)
    X = rng.randint(0, 3, size=(8, 2)).astype(float)  # duplicates: exact zero distances
    for flag in (np.True_, True):
        assert_array_equal(kneighbors(X, X, 3, exclude_self=flag)[1],
                           _brute_knn(X, X, 3, exclude_self=True)[1])
    for flag in (np.False_, False, None):
        assert_array_equal(kneighbors(X, X.copy(), 3, exclude_self=flag)[1],
                           _brute_knn(X, X, 3)[1])
    # A square Y that is not X, with exclude_self=True, leaves out reference i for query i.
    Y = rng.randint(0, 3, size=(8, 2)).astype(float)
    assert_array_equal(kneighbors(X, Y, 3, exclude_self=True)[1],
                       _brute_knn(X, Y, 3, exclude_self=True)[1])


@pytest.mark.parametrize("namespace", CPU_NAMESPACES)
def test_mahalanobis_from_M_and_L_in_float32_equals_the_mapped_float64_brute_force(namespace):
    """L of another size (2 x 3) and M = Lᵀ L (PSD of rank 2): the float32 data's
    distances equal Euclidean distances of X Lᵀ computed in float64, in float32."""
    rng = np.random.RandomState(5)
    X = rng.standard_normal((9, 3)).astype(np.float32)
    Y = rng.standard_normal((11, 3)).astype(np.float32)
    L = rng.standard_normal((2, 3))
    ref = cdist(X.astype(np.float64) @ L.T, Y.astype(np.float64) @ L.T)
    Xn, Yn = to_namespace(X, namespace), to_namespace(Y, namespace)
    for kwargs in ({"L": L}, {"M": L.T @ L}, {"L": L.tolist()}):
        D = pairwise_distances(Xn, Yn, metric="mahalanobis", **kwargs)
        assert str(D.dtype).endswith("float32")
        assert_allclose(numpy_of(D), ref, rtol=2e-5, atol=2e-5)
        dist, ind = kneighbors(Xn, Yn, 4, metric="mahalanobis", **kwargs)
        assert_array_equal(numpy_of(ind), np.argsort(ref, axis=1, kind="stable")[:, :4])


@pytest.mark.parametrize("namespace", CPU_NAMESPACES)
def test_callable_metric_errors_in_full(namespace):
    """The NaN rows are numbered in X (the block's start added), at most five named."""
    X = to_namespace(np.arange(16.0).reshape(8, 2), namespace)  # X[i, 0] = 2 i

    def nan_at(*rows):
        def metric(A, B):
            A, B = numpy_of(A), numpy_of(B)
            D = cdist(A, B)
            D[np.isin(A[:, 0] / 2, rows)] = np.nan
            return to_namespace(D, namespace)
        return metric

    def message(metric, rows):
        return (f"The metric callable {metric.__qualname__} returned NaN distances for rows "
                f"{rows} of X; it must return a number (inf allowed) for every pair.")

    m = nan_at(1, 4)
    _raises(ValueError, message(m, [1, 4]), lambda: pairwise_distances(X, metric=m))
    m = nan_at(5)
    _raises(ValueError, message(m, [5]),
            lambda: pairwise_distances(X, metric=m, chunk_size=3))
    m = nan_at(0, 1, 2, 3, 5, 6, 7)
    _raises(ValueError, message(m, [0, 1, 2, 3, 5]), lambda: pairwise_distances(X, metric=m))
    # A callable without a __qualname__ (a partial, an instance) is named by its repr.
    partial = functools.partial(nan_at(3))
    assert not hasattr(partial, "__qualname__")
    _raises(ValueError, f"The metric callable {partial!r} returned NaN distances for rows [3] "
            "of X; it must return a number (inf allowed) for every pair.",
            lambda: pairwise_distances(X, metric=partial))

    def ragged(A, B):  # no array can hold it
        return [[1.0], [1.0, 2.0]]

    def scalar(A, B):
        return to_namespace(np.float64(1.0), namespace)

    def complex_values(A, B):
        return np.ones((A.shape[0], B.shape[0]), dtype=complex)

    _raises(TypeError, f"The metric callable {ragged.__qualname__} returned a list; it must "
            "return an array of distances in the namespace of its inputs.",
            lambda: pairwise_distances(X, metric=ragged))
    _raises(ValueError, f"The metric callable {scalar.__qualname__} returned shape () for a "
            "block of 3 rows of X against 8 rows of Y; it must return the (3, 8) matrix D "
            "with D[i, j] the distance of X_block[i] to Y[j].",
            lambda: pairwise_distances(X, metric=scalar, chunk_size=3))
    if namespace == "numpy":
        _raises(TypeError, f"The metric callable {complex_values.__qualname__} returned "
                "dtype complex128; it must return real distances.",
                lambda: pairwise_distances(X, metric=complex_values))


# ------------------------------------------------------------ skmetric/_compute/_arrays.py


def test_array_checks_name_what_was_wrong_in_full():
    X = np.arange(6.0).reshape(3, 2)
    cases = [
        (ValueError, "Expected a 2-D array for Q of shape (n_samples, n_features); got 1 "
         "dimension(s), shape (6,). Reshape with Q.reshape(-1, 1) for a single feature or "
         "Q.reshape(1, -1) for a single sample.", lambda: check_input(X.ravel(), "Q")),
        (ValueError, "Expected a 2-D array for X of shape (n_samples, n_features); got 0 "
         "dimension(s), shape (). Reshape with X.reshape(-1, 1) for a single feature or "
         "X.reshape(1, -1) for a single sample.", lambda: check_input(np.float64(1.0))),
        (ValueError, "Expected a 3-D array for E, features along its last axis; got 2 "
         "dimension(s), shape (3, 2).", lambda: check_input(X, "E", ndim=3)),
        (ValueError, "Expected a at least 1-D array for E, features along its last axis; got "
         "0 dimension(s), shape ().", lambda: check_input(np.float64(2.0), "E", ndim=None)),
        (ValueError, "E is empty (shape (3, 0)); at least 1 sample and 1 feature are "
         "required.", lambda: check_input(X[:, :0], "E")),
        (ValueError, "E has shape (3, 2); expected 4 features along its last axis.",
         lambda: check_input(X, "E", n_features=4)),
        (ValueError, "E has 2 features, but Tool was fitted with 4 features; pass samples "
         "with the features seen in fit.", lambda: check_input(X, "E", n_features=4,
                                                              owner="Tool")),
        (ValueError, "E has 5 features, but Tool was fitted with 4 features; pass samples "
         "with the features seen in fit.", lambda: check_input(np.ones((2, 3, 5)), "E", ndim=3,
                                                              n_features=4, owner="Tool")),
        (ValueError, "E has shape (2, 3, 5); expected 4 features along its last axis.",
         lambda: check_input(np.ones((2, 3, 5)), "E", ndim=None, n_features=4)),
        (ValueError, "Complex data is not supported (E has dtype complex128); pass "
         "real-valued arrays.", lambda: check_input(X + 1j, "E")),
        (TypeError, "E must be numeric; got dtype <U1.", lambda: check_input([["a"]], "E")),
        (TypeError, "E is a sparse matrix; skmetric needs dense arrays. Call E.toarray() "
         "first.", lambda: check_input(sp.eye(2, format="csr"), "E")),
        (ValueError, "E contains NaN or infinity. Remove or impute those values (e.g. with "
         "sklearn.impute.SimpleImputer) first.", lambda: check_input(np.full((3, 2), np.nan), "E")),
        (ValueError, "P has 2 features but R has 3; both must have the same number of "
         "features.", lambda: check_inputs(X, np.ones((2, 3)), names=("P", "R"))),
        (ValueError, "Complex data is not supported (R has dtype complex128); pass "
         "real-valued arrays.", lambda: check_inputs(X, X + 1j, names=("P", "R"))),
        (ValueError, "R contains NaN or infinity. Remove or impute those values (e.g. with "
         "sklearn.impute.SimpleImputer) first.",
         lambda: check_inputs(X, np.full((3, 2), np.inf), names=("P", "R"))),
    ]
    for error, message, call in cases:
        _raises(error, message, call)


def test_arrays_of_any_dimension_and_numeric_strings():
    v = check_input(np.arange(3), "v", ndim=None, n_features=3)
    assert v.dtype == np.float64 and v.shape == (3,)
    T = check_input(np.ones((2, 3, 4), dtype=np.float32), ndim=3, n_features=4)
    assert T.dtype == np.float32 and T.shape == (2, 3, 4)
    # Text that holds numbers is read as float64, as np.asarray(...).astype(float) does.
    assert_array_equal(check_input([["1.5", "2"]]), [[1.5, 2.0]])
    # A list of Python numbers of mixed types is read as numbers; an object array is not.
    assert_array_equal(check_input([[1, 2.5], [True, 0]]), [[1.0, 2.5], [1.0, 0.0]])
    _raises(TypeError, "X must be numeric; got dtype object.",
            lambda: check_input(np.array([[1, 2]], dtype=object)))


def test_libraries_and_devices_must_match_in_full():
    torch = pytest.importorskip("torch")
    X = np.ones((3, 2))
    _raises(TypeError, "P and R must come from the same array library (e.g. both NumPy or "
            "both torch); got P a numpy.ndarray and R a torch.Tensor. Convert one of them.",
            lambda: check_inputs(X, torch.ones(3, 2), names=("P", "R")))
    meta = torch.ones(3, 2, device="meta")
    _raises(TypeError, "P and R must live on the same device; got P on cpu and R on meta. "
            "Move one of them, e.g. Y.to(X.device) for torch.",
            lambda: check_inputs(torch.ones(3, 2), meta, names=("P", "R")))
    # float32 with float64 and with integers (from one library) give float64.
    A, B, xp = check_inputs(torch.ones(3, 2), torch.ones(2, 2, dtype=torch.float64))
    assert A.dtype == B.dtype == torch.float64
    A, B, xp = check_inputs(torch.ones(3, 2), torch.ones(2, 2, dtype=torch.int32))
    assert A.dtype == B.dtype == torch.float64
    A, B, xp = check_inputs(torch.ones(3, 2), torch.ones(2, 2))
    assert A.dtype == B.dtype == torch.float32
    A, B, xp = check_inputs(torch.ones(3, 2, dtype=torch.bool), None)
    assert A.dtype == torch.float64 and B is None


# ------------------------------------------------------------ skmetric/_compute/_blocks.py


def test_rows_per_block_from_chunk_size_or_working_memory():
    """Hand-computed: rows = MiB * 2**20 // (n_cols * itemsize), within [1, n_rows]."""
    assert chunk_rows(100, 1000, 8, 7, None) == 7
    assert chunk_rows(5, 1000, 8, 7, None) == 5
    assert chunk_rows(100, 1000, 8, 1, None) == 1
    assert chunk_rows(100, 2**17, 8, None, 2.0) == 2  # 2 MiB / 1 MiB per row
    assert chunk_rows(100, 2**17, 4, None, 2.0) == 4
    assert chunk_rows(100, 2**17, 8, None, 0.5) == 1  # at least one row
    assert chunk_rows(3, 2**10, 8, None, 64) == 3
    assert chunk_rows(10**6, 2**17, 8, None, None, default_mib=5) == 5
    with sklearn.config_context(working_memory=3):
        assert chunk_rows(10**6, 2**17, 8, None, None) == 3
        assert chunk_rows(10**6, 2**17, 8, None, None, default_mib=6) == 6
        assert chunk_rows(10**6, 2**17, 8, None, 1) == 1
    for bad in (0, -1, True, 2.5, "3", np.float64(2.0)):
        _raises(ValueError, f"chunk_size must be a positive int or None; got {bad!r}.",
                lambda b=bad: chunk_rows(10, 10, 8, b, None))
    assert chunk_rows(10, 10, 8, np.int64(4), None) == 4
    for bad in (0, 0.0, -1.0, True, "3", np.nan):
        _raises(ValueError, "working_memory must be a positive number of MiB or None; got "
                f"{bad!r}.", lambda b=bad: chunk_rows(10, 10, 8, None, b))
    _raises(ValueError, "Give chunk_size or working_memory, not both.",
            lambda: chunk_rows(10, 10, 8, 2, 1.0))


def test_threads_per_block_and_their_blas_limit():
    assert n_threads_for(None, 10**6) == (os.cpu_count() or 1)
    assert n_threads_for(4, 3) == 3
    assert n_threads_for(2, 10) == 2
    assert n_threads_for(np.int64(3), 10) == 3
    assert n_threads_for(5, 0) == 1
    for bad in (0, -2, True, 1.5):
        _raises(ValueError, f"n_threads must be a positive int or None; got {bad!r}.",
                lambda b=bad: n_threads_for(b, 4))

    def blas_threads():
        return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]

    def work(s, e):
        return (s, e, blas_threads())

    # Two BLAS threads outside the pool (where the BLAS allows: else the check is weaker).
    with threadpool_limits(2, user_api="blas"):
        out = map_blocks(work, 3, 14, 4, 3)
    assert [(s, e) for s, e, _ in out] == [(3, 7), (7, 11), (11, 14)]
    assert all(t == 1 for *_, threads in out for t in threads)
    # At most n_threads threads share the blocks (each block waits a little, so a pool
    # of more workers would start more).
    idents = map_blocks(lambda s, e: (time.sleep(0.02), threading.get_ident())[1], 0, 16, 1, 2)
    assert len(idents) == 16 and len(set(idents)) <= 2
    # One thread: every block runs in the caller's own thread (no pool, no BLAS limit).
    one = map_blocks(lambda s, e: (s, e, threading.current_thread()), 0, 5, 2, 1)
    assert one == [(0, 2, threading.main_thread()), (2, 4, threading.main_thread()),
                   (4, 5, threading.main_thread())]


@pytest.mark.parametrize("namespace", CPU_NAMESPACES)
def test_set_diagonal_marks_the_queries_own_columns_in_any_block(namespace):
    for rows, cols, start in ((3, 8, 2), (4, 5, 3), (4, 5, 0), (2, 3, 3), (6, 4, 1)):
        D = np.arange(float(rows * cols)).reshape(rows, cols)
        expected = D.copy()
        for i in range(rows):
            if start + i < cols:
                expected[i, start + i] = -1.0
        out = set_diagonal(check_input(to_namespace(D, namespace)), start, -1.0,
                           _namespace_of(namespace))
        assert_array_equal(numpy_of(out), expected, err_msg=str((rows, cols, start)))


def _namespace_of(name):
    return array_namespace(to_namespace(np.ones(1), name))


# ---------------------------------------------------------- skmetric/_compute/_numerics.py


def test_power_of_two_scaling_is_exact_and_only_outside_the_safe_range():
    """Hand-computed exponents: 0 inside [2**-255, 2**255] (float64) or [2**-31, 2**31]
    (float32), else -e with the peak = m * 2**e, m in [0.5, 1)."""
    xp = _namespace_of("numpy")
    for peak, itemsize, e in ((2.0**255, 8, 0), (2.0**-255, 8, 0), (2.0**256, 8, -257),
                              (0.75 * 2.0**-256, 8, 256), (0.0, 8, 0), (1e300, 8, -997),
                              (2.0**31, 4, 0), (2.0**-31, 4, 0), (2.0**32, 4, -33),
                              (2.0**-33, 4, 32)):
        A = np.array([[peak / 4, -peak], [0.0, peak / 2]])
        assert num.safe_exponent([A], xp, itemsize) == e, (peak, itemsize)
        assert num.safe_exponent([A / 8, A], xp, itemsize) == e
        assert num.safe_exponent([A, A / 8], xp, itemsize) == e
    # Exact steps through the whole range, in place or not, and inf only on overflow.
    tiny = np.array([2.0**-1070, 3 * 2.0**-1000])
    big = num.times_pow2(tiny.copy(), 2000, xp)
    assert_array_equal(big, [2.0**930, 3 * 2.0**1000])
    assert_array_equal(num.times_pow2(big, -2000, xp), tiny)
    A = np.array([2.0**1000, 1.0])
    with np.errstate(over="raise"):
        out = num.times_pow2(A, 30, xp, inplace=True)
    assert out is A and A[0] == np.inf and A[1] == 2.0**30
    B = np.array([2.0**-100, 2.0**60], dtype=np.float32)
    with np.errstate(over="ignore"):
        assert_array_equal(num.times_pow2(B, 160, xp),
                           np.array([2.0**60, np.inf], dtype=np.float32))
    B = np.array([2.0**-120], dtype=np.float32)
    C = num.times_pow2(B, 240, xp)
    assert C is not B and C.dtype == np.float32 and C[0] == np.float32(2.0**120)
    assert B[0] == np.float32(2.0**-120)


@pytest.mark.parametrize("namespace", CPU_NAMESPACES)
def test_row_norms_and_unit_rows_at_any_magnitude(namespace):
    xp = _namespace_of(namespace)
    X = np.array([[3e300, 4e300], [0.0, 0.0], [3e-310, -4e-310], [1.0, 2.0]])
    n = numpy_of(num.row_norms(to_namespace(X, namespace), xp))
    assert_allclose(n, [5e300, 0.0, 5e-310, np.sqrt(5.0)], rtol=1e-12)
    U = numpy_of(num.unit_rows(to_namespace(X, namespace), xp))
    assert_allclose(U, [[0.6, 0.8], [0.0, 0.0], [0.6, -0.8], [1 / 5**0.5, 2 / 5**0.5]],
                    rtol=1e-12)
    sq = num.row_sq_norms(to_namespace(X[3:], namespace), xp, namespace == "numpy")
    assert_allclose(numpy_of(sq), [5.0])
    D = np.array([[0.0, 4.0], [2.25, 0.0]])
    assert_array_equal(numpy_of(num.safe_sqrt(to_namespace(D, namespace), xp)),
                       [[0.0, 2.0], [1.5, 0.0]])


def test_safe_sqrt_has_subgradient_zero_at_zero_and_constants_leave_the_graph():
    torch = pytest.importorskip("torch")
    xp = _namespace_of("torch")
    D = torch.tensor([0.0, 4.0], dtype=torch.float64, requires_grad=True)
    num.safe_sqrt(D, xp).sum().backward()
    assert_array_equal(D.grad.numpy(), [0.0, 0.25])
    a = torch.tensor(2.0, requires_grad=True) * 3
    assert not num.constant(a, xp).requires_grad and num.constant(a, xp).item() == 6.0
    assert type(num.scalar(a, xp)) is float and num.scalar(a, xp) == 6.0
    assert num.constant(np.float64(2.0), _namespace_of("numpy")) == 2.0


def test_classifier_defaults_are_scikit_learns():
    """Default-constructed, the classifier is scikit-learn's default KNeighborsClassifier
    (5 neighbours, uniform votes) on the raw features, with the exact search."""
    ours = MetricKNeighborsClassifier()
    assert ours.get_params() == {"n_neighbors": 5, "metric_learner": None,
                                 "weights": "uniform", "backend": "auto", "chunk_size": None}
    rng = np.random.RandomState(6)
    X, y = rng.standard_normal((60, 3)), rng.randint(0, 3, size=60)
    Q = rng.standard_normal((25, 3))
    ours.fit(X, y)
    ref = KNeighborsClassifier(algorithm="brute").fit(X, y)
    assert_allclose(ours.predict_proba(Q), ref.predict_proba(Q), atol=1e-12)
    assert ours.kneighbors(Q)[1].shape == (25, 5)
    assert_array_equal(ours.kneighbors(Q)[1], ref.kneighbors(Q)[1])


def test_radius_neighbors_default_radius_metric_maps_and_self_exclusion():
    """The default radius is scikit-learn's (1.0); M and L reach the search; exclude_self
    leaves out reference i for query i (the default when Y is None), else keeps it."""
    rng = np.random.RandomState(7)
    X = rng.randint(0, 3, size=(12, 2)).astype(float) * 0.5  # distances on the radius
    Y = rng.randint(0, 3, size=(12, 2)).astype(float) * 0.5
    ref = NearestNeighbors(algorithm="brute").fit(Y)
    dist, ind = radius_neighbors(X, Y)
    d_ref, i_ref = ref.radius_neighbors(X, sort_results=True)
    for q in range(12):
        assert_array_equal(np.sort(ind[q]), np.sort(i_ref[q]))
        assert_allclose(np.sort(dist[q]), np.sort(d_ref[q]))
    L = np.array([[2.0, 0.0], [1.0, 1.0], [0.0, 3.0]])
    for kwargs in ({"L": L}, {"M": L.T @ L}):
        D = cdist(X @ L.T, Y @ L.T)
        ind = radius_neighbors(X, Y, 2.0, metric="mahalanobis", return_distance=False,
                               **kwargs)
        for q in range(12):
            assert_array_equal(np.sort(ind[q]), np.flatnonzero(D[q] <= 2.0))
    D = cdist(X, X)
    for exclude, Yarg in ((None, None), (True, X), (False, None), (False, X)):
        ind = radius_neighbors(X, Yarg, 1.0, exclude_self=exclude, return_distance=False)
        for q in range(12):
            expected = np.flatnonzero(D[q] <= 1.0)
            if exclude is not False and (exclude or Yarg is None):
                expected = expected[expected != q]
            assert_array_equal(np.sort(ind[q]), expected, err_msg=str((exclude, q)))


def test_classifier_block_size_reaches_the_search_and_votes_raise_no_warning():
    X = np.arange(20.0).reshape(10, 2)
    y = np.arange(10) % 2
    clf = MetricKNeighborsClassifier(3, chunk_size=4)
    assert clf.get_params()["chunk_size"] == 4
    with sklearn.config_context(skip_parameter_validation=True):
        bad = MetricKNeighborsClassifier(3, chunk_size=0).fit(X, y)
        with pytest.raises(ValueError, match="chunk_size must be a positive int"):
            bad.predict(X)
    # Exact matches (distance 0) under 'distance' weights: no division warning.
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        proba = MetricKNeighborsClassifier(3, weights="distance").fit(X, y).predict_proba(X)
    assert_array_equal(proba, np.eye(2)[y])


def test_pairwise_distances_on_numpy_default_blocks_equal_cdist():
    """600 x 1000 in float64 with no block option: the cache-sized blocks (a whole number
    of rows, 524 here) cover every row once."""
    rng = np.random.RandomState(8)
    X, Y = rng.standard_normal((600, 3)), rng.standard_normal((1000, 3))
    assert_allclose(pairwise_distances(X, Y), cdist(X, Y), rtol=1e-12, atol=1e-12)
    assert_allclose(pairwise_distances(X, Y, metric="cosine"), cdist(X, Y, "cosine"),
                    rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("namespace", ["numpy", "torch"])
def test_a_callables_distances_come_back_in_the_datas_dtype(namespace):
    """float32 data and a callable that returns float64 (or integers): the distances are
    in float32, the data's dtype, equal to the rounded values."""
    X = np.arange(8.0).reshape(4, 2).astype(np.float32)

    def metric(A, B):
        return to_namespace(cdist(numpy_of(A), numpy_of(B)) / 3, namespace)

    def counts(A, B):
        return to_namespace((cdist(numpy_of(A), numpy_of(B)) > 3).astype(np.int64), namespace)

    D = pairwise_distances(to_namespace(X, namespace), metric=metric)
    assert str(D.dtype).endswith("float32")
    assert_array_equal(numpy_of(D), (cdist(X, X) / 3).astype(np.float32))
    C = pairwise_distances(to_namespace(X, namespace), metric=counts)
    assert str(C.dtype).endswith("float32")
    assert_array_equal(numpy_of(C), (cdist(X, X) > 3).astype(np.float32))


@pytest.mark.parametrize("namespace", CPU_NAMESPACES)
def test_many_cancelled_pairs_are_recomputed_in_slices(namespace):
    """Two tight clusters far apart (mean at the origin, so no centring helps): every
    within-cluster distance cancels in the expansion and is recomputed from the
    coordinates, 1,800 pairs of 1,024 features, more than one slice of gathered
    differences (1,024 pairs). They must equal cdist's."""
    rng = np.random.RandomState(9)
    d = 1024
    c = rng.standard_normal(d) * 1e3
    X = np.vstack([c + rng.standard_normal((30, d)), -c + rng.standard_normal((30, d))])
    Y = np.vstack([c + rng.standard_normal((30, d)), -c + rng.standard_normal((30, d))])
    D = numpy_of(pairwise_distances(to_namespace(X, namespace), to_namespace(Y, namespace)))
    assert_allclose(D, cdist(X, Y), rtol=1e-10)


@pytest.mark.parametrize("namespace", CPU_NAMESPACES)
@pytest.mark.parametrize("scale", [1e-150, 1e100])
def test_squared_distances_at_scaled_magnitudes_come_back_in_the_datas_units(namespace,
                                                                              scale):
    """Data scaled by a power of two inside the engine (magnitudes outside 2**±255):
    squared distances are scaled back by twice the exponent, distances by once."""
    rng = np.random.RandomState(10)
    X, Y = rng.standard_normal((5, 3)), rng.standard_normal((4, 3))
    ref = cdist(X, Y)
    Xs, Ys = to_namespace(X * scale, namespace), to_namespace(Y * scale, namespace)
    assert_allclose(numpy_of(pairwise_distances(Xs, Ys, metric="sqeuclidean")),
                    ref**2 * scale**2, rtol=1e-12)
    assert_allclose(numpy_of(pairwise_distances(Xs, Ys)), ref * scale, rtol=1e-12)
    dist, ind = kneighbors(Xs, Ys, 2, metric="sqeuclidean")
    assert_allclose(numpy_of(dist), np.sort(ref, axis=1)[:, :2] ** 2 * scale**2, rtol=1e-12)


@pytest.mark.parametrize("namespace", CPU_NAMESPACES)
def test_cosine_distances_stay_within_zero_and_two(namespace):
    """A row against its own copy, and against its negation: the unit rows' products
    round to just above 1 for some rows, so the distances must be clipped to [0, 2]
    (scikit-learn's cosine_distances clips the same way); scipy's values are the
    reference within round-off."""
    rng = np.random.RandomState(11)
    X = rng.standard_normal((200, 7))
    for Y, exact in ((X.copy(), 0.0), (-X, 2.0)):
        D = numpy_of(pairwise_distances(to_namespace(X, namespace), to_namespace(Y, namespace),
                                        metric="cosine"))
        assert D.min() >= 0.0 and D.max() <= 2.0
        assert_allclose(np.diag(D), exact, atol=1e-15)
        assert_allclose(D, np.clip(cdist(X, Y, "cosine"), 0, 2), atol=1e-14)


def test_kneighbors_defaults_are_scikit_learns():
    """Five neighbours by default (scikit-learn's NearestNeighbors), the query itself
    excluded when Y is None as in NearestNeighbors.kneighbors()."""
    rng = np.random.RandomState(12)
    X = rng.standard_normal((30, 3))
    dist, ind = kneighbors(X)
    d_ref, i_ref = NearestNeighbors(algorithm="brute").fit(X).kneighbors()
    assert ind.shape == (30, 5)
    assert_array_equal(ind, i_ref)
    assert_allclose(dist, d_ref, rtol=1e-12)
