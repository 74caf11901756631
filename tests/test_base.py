"""The Mahalanobis base API and the tuple bases, on a learner with a known fixed metric."""

import pickle

import numpy as np
import pytest
from sklearn.base import BaseEstimator
from sklearn.neighbors import KNeighborsClassifier

from skmetric import (
    Covariance,
    MahalanobisMixin,
    PairsClassifierMixin,
    QuadrupletsClassifierMixin,
    TripletsClassifierMixin,
)
from skmetric._base import _best_threshold
from skmetric._init import components_from_metric, initialize_components, initialize_metric


class _FixedMetric(MahalanobisMixin, BaseEstimator):
    """Learns nothing: L is given, so every base method has a closed form to check."""

    _parameter_constraints: dict = {"L": ["array-like", None],
                                    "preprocessor": ["array-like", callable, None]}

    def __init__(self, L=None, preprocessor=None):
        self.L = L
        self.preprocessor = preprocessor

    def _set(self, n_features):
        self.n_features_in_ = n_features
        self.components_ = np.eye(n_features) if self.L is None else np.asarray(self.L, float)


class _FixedPairs(PairsClassifierMixin, _FixedMetric):
    def _fit(self, pairs, y):  # PairsClassifierMixin.fit validates, calls this, calibrates
        self._set(pairs.shape[2])


class _FixedTriplets(TripletsClassifierMixin, _FixedMetric):
    def fit(self, triplets):
        self._set(self._prepare_tuples(triplets, reset=True).shape[2])
        return self


class _FixedQuadruplets(QuadrupletsClassifierMixin, _FixedMetric):
    def fit(self, quadruplets):
        self._set(self._prepare_tuples(quadruplets, reset=True).shape[2])
        return self


L = np.array([[2.0, 0.0], [1.0, 1.0]])


def _fitted_pairs_learner():
    pairs = np.array([[[0, 0], [0, 1]], [[0, 0], [3, 0]], [[1, 1], [1, 1.5]], [[0, 0], [0, 4]]])
    y = np.array([1, -1, 1, -1])
    return _FixedPairs(L=L).fit(pairs, y), pairs, y


def test_pair_distance_and_score_match_closed_form():
    learner, pairs, _ = _fitted_pairs_learner()
    expected = np.linalg.norm((pairs[:, 0] - pairs[:, 1]) @ L.T, axis=1)
    np.testing.assert_allclose(learner.pair_distance(pairs), expected)
    np.testing.assert_allclose(learner.pair_score(pairs), -expected)
    np.testing.assert_allclose(learner.get_mahalanobis_matrix(), L.T @ L)


def test_get_metric_is_picklable_detached_and_usable_in_knn(rng):
    learner, pairs, _ = _fitted_pairs_learner()
    metric = pickle.loads(pickle.dumps(learner.get_metric()))
    u, v = np.array([1.0, 2.0]), np.array([-1.0, 0.5])
    d = np.sqrt((u - v) @ L.T @ L @ (u - v))
    assert metric(u, v) == pytest.approx(d)
    assert metric(u, v, squared=True) == pytest.approx(d**2)
    learner.components_ = np.eye(2)  # the metric keeps its own copy
    assert metric(u, v) == pytest.approx(d)
    X = rng.randn(30, 2)
    y = (X[:, 0] > 0).astype(int)
    knn = KNeighborsClassifier(n_neighbors=3, metric=metric, algorithm="brute").fit(X, y)
    assert knn.score(X, y) > 0.8
    with pytest.raises(ValueError, match="1-D vectors of 2 features"):
        metric(np.ones(3), np.ones(3))


def test_pairs_predict_uses_calibrated_distance_threshold():
    learner, pairs, y = _fitted_pairs_learner()
    dist = learner.pair_distance(pairs)
    assert learner.threshold_ > dist[y == 1].max()
    assert learner.threshold_ < dist[y == -1].min()
    np.testing.assert_array_equal(learner.predict(pairs), y)
    assert learner.score(pairs, y) == 1.0
    learner.set_threshold(0.0)
    assert np.all(learner.predict(pairs) == -1)
    with pytest.raises(ValueError, match="finite"):
        learner.set_threshold(np.nan)


@pytest.mark.parametrize("strategy", ["accuracy", "f_beta", "max_tpr", "max_tnr"])
def test_calibrate_threshold_strategies_agree_with_brute_force(strategy, rng):
    dist = np.round(rng.rand(60), 1)  # many ties
    positive = rng.rand(60) < 1 / (1 + np.exp(8 * (dist - 0.5)))
    t = _best_threshold(dist, positive, strategy, min_rate=0.6, beta=2.0)

    def measures(threshold):
        pred = dist <= threshold
        tp, fp = np.sum(pred & positive), np.sum(pred & ~positive)
        fn, tn = np.sum(~pred & positive), np.sum(~pred & ~positive)
        f = 5 * tp / (5 * tp + 4 * fn + fp) if tp else 0.0
        return {"accuracy": (tp + tn) / 60, "f_beta": f, "tpr": tp / (tp + fn),
                "tnr": tn / (tn + fp)}

    candidates = [-1.0, *np.unique(dist)]
    all_m = [measures(c) for c in candidates]
    got = measures(t)
    if strategy in ("accuracy", "f_beta"):
        assert got[strategy] == pytest.approx(max(m[strategy] for m in all_m))
    elif strategy == "max_tpr":
        assert got["tnr"] >= 0.6
        assert got["tpr"] == pytest.approx(max(m["tpr"] for m in all_m if m["tnr"] >= 0.6))
    else:
        assert got["tpr"] >= 0.6
        assert got["tnr"] == pytest.approx(max(m["tnr"] for m in all_m if m["tpr"] >= 0.6))


def test_calibrate_threshold_rejects_bad_options():
    learner, pairs, y = _fitted_pairs_learner()
    with pytest.raises(ValueError, match="strategy must be one of"):
        learner.calibrate_threshold(pairs, y, strategy="best")
    with pytest.raises(ValueError, match="min_rate"):
        learner.calibrate_threshold(pairs, y, strategy="max_tpr")
    with pytest.raises(ValueError, match="beta"):
        learner.calibrate_threshold(pairs, y, strategy="f_beta", beta=0)
    learner.calibrate_threshold(pairs, y, strategy="max_tnr", min_rate=1.0)
    assert np.all(learner.predict(pairs)[y == 1] == 1)


def test_pairs_from_indices_and_preprocessor_match_arrays(rng):
    X = rng.randn(10, 2)
    idx = np.array([[0, 1], [2, 3], [4, 5], [6, 7]])
    y = np.array([1, -1, 1, -1])
    by_array = _FixedPairs(L=L).fit(X[idx], y)
    by_index = _FixedPairs(L=L, preprocessor=X).fit(idx, y)
    by_callable = _FixedPairs(L=L, preprocessor=lambda i: X[i]).fit(idx, y)
    np.testing.assert_allclose(by_index.pair_distance(idx), by_array.pair_distance(X[idx]))
    np.testing.assert_allclose(by_callable.decision_function(idx),
                               by_array.decision_function(X[idx]))
    np.testing.assert_allclose(by_index.transform(np.arange(3)), X[:3] @ L.T)


@pytest.mark.parametrize(
    "pairs, y, match",
    [
        (np.zeros((4, 2)), [1, -1, 1, -1], "3-D array.*pass preprocessor=X"),
        (np.zeros((4, 3, 2)), [1, -1, 1, -1], r"2 samples per tuple"),
        (np.zeros((4, 2, 2, 1)), [1, -1, 1, -1], "3-D array"),
        (np.zeros((0, 2, 2)), [], "Found 0 pairs"),
        (np.full((2, 2, 2), np.nan), [1, -1], "NaN or infinity"),
        (np.zeros((2, 2, 2)), [1, 2], r"\+1 \(similar\) or -1"),
        (np.zeros((2, 2, 2)), [1, -1, 1], "one label per pair"),
        (np.array([[["a", "b"], ["c", "d"]]]), [1], "numeric"),
    ],
)
def test_bad_pairs_are_rejected_clearly(pairs, y, match):
    with pytest.raises((ValueError, TypeError), match=match):
        _FixedPairs().fit(pairs, y)


def test_bad_preprocessor_output_is_rejected_clearly(rng):
    X = rng.randn(5, 2)
    idx = np.array([[0, 1], [2, 3]])
    X_nan = X.copy()
    X_nan[2, 0] = np.inf
    with pytest.raises(ValueError, match="preprocessor's output contains NaN"):
        _FixedPairs(preprocessor=X_nan).fit(idx, [1, -1])
    with pytest.raises(ValueError, match=r"returned shape \(4,\)"):
        _FixedPairs(preprocessor=lambda i: np.ones(len(i))).fit(idx, [1, -1])
    with pytest.raises(ValueError, match="outside"):
        _FixedPairs(preprocessor=X).fit(idx + 4, [1, -1])
    with pytest.raises(TypeError, match="integer indices"):
        _FixedPairs(preprocessor=X).fit(idx.astype(float), [1, -1])
    with pytest.raises(ValueError, match="was fitted with 2 features"):
        _FixedPairs().fit(X[idx], [1, -1]).pair_distance(np.ones((2, 2, 3)))


def test_triplet_and_quadruplet_predictions_follow_distances():
    a, p, n = np.array([0.0, 0.0]), np.array([1.0, 0.0]), np.array([0.0, 1.0])
    triplets = np.array([[a, p, n], [a, n, p]])
    # Under L, d(a, p) = sqrt(5) and d(a, n) = 1.
    learner = _FixedTriplets(L=L).fit(triplets)
    np.testing.assert_allclose(learner.decision_function(triplets),
                               [1 - np.sqrt(5), np.sqrt(5) - 1])
    np.testing.assert_array_equal(learner.predict(triplets), [-1, 1])
    assert learner.score(triplets) == 0.5
    quads = np.array([[a, n, a, p], [a, p, a, n], [a, p, a, p]])
    learner = _FixedQuadruplets(L=L).fit(quads)
    np.testing.assert_array_equal(learner.predict(quads), [1, -1, -1])  # a tie is not satisfied
    assert learner.score(quads) == pytest.approx(1 / 3)


def test_tuple_learner_tags_describe_tuple_input():
    tags = _FixedPairs().__sklearn_tags__()
    assert tags.estimator_type == "classifier" and tags.input_tags.three_d_array
    assert not tags.input_tags.two_d_array
    assert not _FixedTriplets().__sklearn_tags__().target_tags.required


def test_components_from_metric_recovers_metric_and_rejects_non_psd(rng):
    A = rng.randn(4, 4)
    M = A @ A.T
    Lm = components_from_metric(M)
    np.testing.assert_allclose(Lm.T @ Lm, M, atol=1e-10)
    with pytest.raises(ValueError, match="not positive semi-definite"):
        components_from_metric(M - 10 * np.eye(4) * np.abs(M).max())
    with pytest.raises(ValueError, match="not symmetric"):
        components_from_metric(A)


def test_initialisations_have_the_documented_shapes_and_checks(rng):
    X, y = rng.randn(40, 5), np.repeat([0, 1, 2, 3], 10)
    assert initialize_components(3, X, y, "auto").shape == (3, 5)  # lda
    assert initialize_components(4, X, None, "auto").shape == (4, 5)  # pca
    np.testing.assert_array_equal(initialize_components(5, X, y, "auto"), np.eye(5))
    a = initialize_components(2, X, y, "random", random_state=3)
    np.testing.assert_array_equal(a, initialize_components(2, X, y, "random", random_state=3))
    with pytest.raises(ValueError, match="init='lda' needs n_components"):
        initialize_components(4, X, y, "lda")
    with pytest.raises(ValueError, match="init must be one of"):
        initialize_components(2, X, y, "svd")
    with pytest.raises(ValueError, match="expected \\(n_components, n_features\\)"):
        initialize_components(2, X, y, np.eye(3))
    np.testing.assert_allclose(initialize_metric(X, "covariance"), np.linalg.inv(np.cov(X.T)))
    with pytest.raises(ValueError, match="prior must be one of"):
        initialize_metric(X, "ones")


def test_covariance_learns_inverse_covariance_and_whitens(rng):
    X = rng.randn(500, 3) @ np.array([[3.0, 0, 0], [1, 1, 0], [0, 0, 0.1]])
    cov = Covariance().fit(X)
    np.testing.assert_allclose(cov.get_mahalanobis_matrix(), np.linalg.inv(np.cov(X.T)),
                               rtol=1e-8)
    Z = cov.transform(X)
    np.testing.assert_allclose(np.cov(Z.T), np.eye(3), atol=1e-8)
    assert list(cov.get_feature_names_out()) == ["covariance0", "covariance1", "covariance2"]


def test_covariance_handles_constant_features_with_pseudo_inverse(rng):
    X = np.c_[rng.randn(50, 2), np.ones(50)]
    M = Covariance().fit(X).get_mahalanobis_matrix()
    assert np.all(np.isfinite(M))
    np.testing.assert_allclose(M[2], 0, atol=1e-12)
