"""Behaviour shared by every learner fitted on tuples (TUPLE_LEARNERS in estimator_registry).

Each registered learner gets: a PSD property test over random inputs, equivalent tuple
input forms, clear errors for bad tuples, cross-validation over tuples, pickling and cloning.
"""

import pickle
import warnings

import numpy as np
import pytest
from _tuple_scores import cv_tuple_scores, tuple_score
from estimator_registry import TUPLE_LEARNERS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, KFold

from skmetric import Constraints

NAMES = sorted(TUPLE_LEARNERS)


def _dataset(n=36, d=3, n_classes=3, seed=0, scale=1.0):
    """Blobs whose class means differ, plus label-independent noise."""
    rng = np.random.RandomState(seed)
    y = np.arange(n) % n_classes
    X = scale * (rng.randn(n, d) + 2.0 * rng.randn(n_classes, d)[y])
    return X, y


def _index_tuples(tuple_size, y, n_tuples, seed=0):
    """Index tuples of the learner's kind, and pair labels (None beyond pairs)."""
    c = Constraints(y)
    if tuple_size == 2:
        return c.pairs(n_tuples, random_state=seed)
    if tuple_size == 3:
        return c.triplets(n_tuples, random_state=seed), None
    return c.quadruplets(n_tuples, random_state=seed), None


def _fit(learner, tuples, labels):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings of the fast settings
        if labels is None:
            return learner.fit(tuples)
        return learner.fit(tuples, labels)


def _make(name, **params):
    tuple_size, factory = TUPLE_LEARNERS[name]
    return tuple_size, factory().set_params(**params)


@pytest.mark.parametrize("name", NAMES)
def test_learned_matrix_is_symmetric_psd_on_random_inputs(name):
    tuple_size, _ = TUPLE_LEARNERS[name]

    @settings(max_examples=6, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow])
    @given(seed=st.integers(0, 2**16), d=st.integers(1, 4),
           scale=st.sampled_from([1e-2, 1.0, 30.0]))
    def check(seed, d, scale):
        X, y = _dataset(n=24, d=d, seed=seed, scale=scale)
        idx, labels = _index_tuples(tuple_size, y, 30, seed=seed)
        learner = _fit(_make(name)[1], X[idx], labels)
        M = learner.get_mahalanobis_matrix()
        assert M.shape == (d, d)
        assert np.all(np.isfinite(M))
        np.testing.assert_allclose(M, M.T, rtol=1e-7, atol=1e-10 * max(np.abs(M).max(), 1))
        assert np.linalg.eigvalsh(M).min() >= -1e-8 * max(np.abs(M).max(), 1e-300)

    check()


@pytest.mark.parametrize("name", NAMES)
def test_samples_indices_and_callable_preprocessor_give_the_same_fit(name):
    tuple_size, learner = _make(name)
    X, y = _dataset()
    idx, labels = _index_tuples(tuple_size, y, 40)
    by_samples = _fit(clone(learner), X[idx], labels)
    by_array = _fit(clone(learner).set_params(preprocessor=X), idx, labels)
    by_callable = _fit(clone(learner).set_params(preprocessor=lambda i: X[i]), idx, labels)
    for other in (by_array, by_callable):
        np.testing.assert_allclose(other.components_, by_samples.components_, atol=1e-10)
        np.testing.assert_allclose(other.decision_function(idx),
                                   by_samples.decision_function(X[idx]), atol=1e-10)
        np.testing.assert_array_equal(other.predict(idx), by_samples.predict(X[idx]))
    assert by_samples.n_features_in_ == X.shape[1]


@pytest.mark.parametrize("name", NAMES)
def test_bad_tuples_are_rejected_clearly(name):
    tuple_size, learner = _make(name)
    X, y = _dataset()
    idx, labels = _index_tuples(tuple_size, y, 20)
    wrong = np.concatenate([idx, idx[:, :1]], axis=1)  # one sample too many per tuple
    with pytest.raises(ValueError, match=f"{tuple_size} samples per tuple"):
        _fit(clone(learner), X[wrong], labels)
    with pytest.raises(ValueError, match="pass preprocessor=X"):
        _fit(clone(learner), idx, labels)
    nan_tuples = X[idx].copy()
    nan_tuples[3, 1, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        _fit(clone(learner), nan_tuples, labels)
    with pytest.raises(ValueError, match="outside"):
        _fit(clone(learner).set_params(preprocessor=X), idx + len(X), labels)
    fitted = _fit(clone(learner), X[idx], labels)
    with pytest.raises(ValueError, match="features"):
        fitted.predict(X[idx][:, :, :2])
    if tuple_size == 2:
        with pytest.raises(ValueError, match=r"\+1 \(similar\) or -1 \(dissimilar\)"):
            _fit(clone(learner), X[idx], np.where(labels == 1, 1, 2))
        with pytest.raises(ValueError, match="one label per pair"):
            _fit(clone(learner), X[idx], labels[:-2])


@pytest.mark.parametrize("name", NAMES)
def test_grid_search_cross_validates_over_tuples(name):
    tuple_size, learner = _make(name, preprocessor=None)
    X, y = _dataset(n=45, seed=1)
    idx, labels = _index_tuples(tuple_size, y, 60)
    cv = KFold(3, shuffle=True, random_state=0)
    search = GridSearchCV(clone(learner).set_params(preprocessor=X),
                          {"random_state": [0, 1]}, cv=cv)
    _fit(search, idx, labels)
    # Each candidate's score is the learner's tuple score (AUC for pairs, else accuracy),
    # recomputed here from components_ on the same folds of the same tuples given as samples.
    expected = cv_tuple_scores(learner, X[idx], labels, search.cv_results_["params"], cv)
    np.testing.assert_allclose(search.cv_results_["mean_test_score"], expected, rtol=1e-10)
    assert search.best_index_ == np.argmax(expected)  # ties go to the first candidate
    assert expected.max() > 0.75  # far above chance: the blobs are well apart
    # The refit learner is fitted on every tuple with the best parameters.
    refit = _fit(clone(learner).set_params(**search.best_params_), X[idx], labels)
    np.testing.assert_allclose(search.best_estimator_.components_, refit.components_,
                               rtol=1e-8, atol=1e-10)
    score = search.score(idx, labels) if labels is not None else search.score(idx)
    assert score == pytest.approx(tuple_score(refit.components_, X[idx], labels), rel=1e-10)


@pytest.mark.parametrize("name", NAMES)
def test_pickle_and_clone_round_trip(name):
    tuple_size, learner = _make(name)
    X, y = _dataset()
    idx, labels = _index_tuples(tuple_size, y, 40)
    fitted = _fit(clone(learner), X[idx], labels)
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.components_, fitted.components_)
    np.testing.assert_array_equal(restored.decision_function(X[idx]),
                                  fitted.decision_function(X[idx]))
    fresh = clone(fitted)
    assert not hasattr(fresh, "components_")
    assert fresh.get_params().keys() == fitted.get_params().keys()
    refitted = _fit(fresh, X[idx], labels)
    np.testing.assert_allclose(refitted.components_, fitted.components_, atol=1e-12)
