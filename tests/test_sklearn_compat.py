"""scikit-learn conformance of every public estimator (see estimator_registry.py)."""

import inspect

from estimator_registry import (
    ESTIMATORS,
    NOT_ESTIMATORS,
    TUPLE_LEARNERS,
    all_instances,
    expected_failed_checks,
)
from sklearn.base import BaseEstimator
from sklearn.utils.estimator_checks import parametrize_with_checks

import skmetric


def _public_estimator_classes():
    modules = [skmetric]
    try:
        import skmetric.deep as deep  # noqa: F401

        modules.append(deep)
    except ImportError:
        pass
    found = {}
    for module in modules:
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if inspect.isclass(obj) and issubclass(obj, BaseEstimator):
                found[name] = obj
    return found


def test_every_public_estimator_is_registered():
    classes = _public_estimator_classes()
    missing = set(classes) - set(ESTIMATORS) - set(TUPLE_LEARNERS) - NOT_ESTIMATORS
    assert not missing, f"register these in tests/estimator_registry.py: {sorted(missing)}"
    assert "Covariance" in classes


@parametrize_with_checks(all_instances(), expected_failed_checks=expected_failed_checks)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
