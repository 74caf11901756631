"""Every registered estimator rejects bad input with a clear error, not a deep traceback."""

import numpy as np
import pytest
from estimator_registry import SINGLE_CLASS_EXEMPT, all_instances
from sklearn.base import clone
from sklearn.utils import get_tags


def _ids(estimators):
    return [type(e).__name__ for e in estimators]


ESTIMATORS = all_instances()


def _data(n=40, d=4, n_classes=2, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, d)
    y = np.arange(n) % n_classes
    return X, y


def _fit(estimator, X, y):
    est = clone(estimator)
    if get_tags(est).target_tags.required:
        return est.fit(X, y)
    return est.fit(X)


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=_ids(ESTIMATORS))
@pytest.mark.parametrize("value, match", [(np.nan, "NaN"), (np.inf, "infinity")])
def test_non_finite_X_is_rejected(estimator, value, match):
    X, y = _data()
    X[3, 1] = value
    with pytest.raises(ValueError, match=match):
        _fit(estimator, X, y)


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=_ids(ESTIMATORS))
def test_one_dimensional_X_is_rejected(estimator):
    X, y = _data()
    with pytest.raises(ValueError, match="2D array"):
        _fit(estimator, X[:, 0], y)


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=_ids(ESTIMATORS))
def test_mismatched_y_is_rejected(estimator):
    if not get_tags(estimator).target_tags.required:
        pytest.skip("unsupervised")
    X, y = _data()
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        clone(estimator).fit(X, y[:-3])


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=_ids(ESTIMATORS))
def test_single_class_is_rejected(estimator):
    name = type(estimator).__name__
    if not get_tags(estimator).target_tags.required or name in SINGLE_CLASS_EXEMPT:
        pytest.skip("needs no classes")
    X, _ = _data()
    with pytest.raises(ValueError, match=r"(?i)class"):
        clone(estimator).fit(X, np.zeros(len(X), dtype=int))


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=_ids(ESTIMATORS))
def test_transform_rejects_wrong_feature_count(estimator):
    if not hasattr(estimator, "transform"):
        pytest.skip("no transform")
    X, y = _data()
    est = _fit(estimator, X, y)
    with pytest.raises(ValueError, match="features"):
        est.transform(X[:, :3])
