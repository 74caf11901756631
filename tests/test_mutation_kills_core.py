"""Tests written to kill the mutants of skmetric/neighbors.py and of the distance engine's
core (skmetric/_compute/_engine.py, _blocks.py, _numerics.py, _arrays.py) that survived
their own tests (issue #22; tests/README.md, "Scores (fourth session)").

References are independent of the engine: scikit-learn's ``KNeighborsClassifier`` and
``NearestNeighbors``, scipy's ``cdist`` in float64 with a stable sort (ties by the smaller
index), and hand-computed cases; the namespace-generic code runs on NumPy,
array-api-strict and torch (CPU).
"""

import re
import sys

import numpy as np
import pytest
import sklearn
from _namespaces import numpy_of, to_namespace
from numpy.testing import assert_allclose, assert_array_equal
from scipy.spatial.distance import cdist
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors

from skmetric.neighbors import MetricKNeighborsClassifier, kneighbors, radius_neighbors

CPU_NAMESPACES = ["numpy", "array_api_strict", "torch"]


def _brute_knn(X, Y, k, metric="euclidean", exclude_self=False):
    """float64 distances of ``cdist`` and a stable sort: ties go to the smaller index."""
    D = cdist(X, Y, metric=metric)
    if exclude_self:
        D[np.arange(len(X)), np.arange(len(X))] = np.inf
    order = np.argsort(D, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(D, order, axis=1), order


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
    from skmetric.distances import pairwise_distances

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
    from skmetric.distances import pairwise_distances

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
    from skmetric.distances import pairwise_distances

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
