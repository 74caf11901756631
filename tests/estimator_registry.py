"""Every public estimator of skmetric, with the instances the conformance checks run on.

A new public estimator joins by being added here; ``test_every_public_estimator_is_registered``
fails for any that is forgotten. Weakly supervised learners fitted on tuples are checked
through their ``*_Supervised`` variants and listed in ``TUPLE_LEARNERS`` for tuple tests.
"""

import skmetric

# class name -> list of instances for parametrize_with_checks (small, fast settings)
ESTIMATORS = {
    "Covariance": [skmetric.Covariance()],
}

# Tuple-input learners: class name -> (tuple_size, factory of a fast instance)
TUPLE_LEARNERS = {}

# (class name, check name) -> reason, for checks an estimator is expected to fail.
EXPECTED_FAILED_CHECKS = {}

# Estimators that need y but accept a single class, with the reason (regression targets, ...).
SINGLE_CLASS_EXEMPT = {}

# Public classes that are not estimators to check (mixins, helpers).
NOT_ESTIMATORS = {
    "Constraints",
    "MahalanobisMixin",
    "PairsClassifierMixin",
    "TripletsClassifierMixin",
    "QuadrupletsClassifierMixin",
}


def all_instances():
    return [est for instances in ESTIMATORS.values() for est in instances]


def expected_failed_checks(estimator):
    name = type(estimator).__name__
    return {check: why for (cls, check), why in EXPECTED_FAILED_CHECKS.items() if cls == name}
