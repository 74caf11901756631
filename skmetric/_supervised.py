"""Shared logic of the ``*_Supervised`` variants of the weakly supervised learners.

A ``*_Supervised`` learner is fitted on samples ``X`` and class labels ``y``: it validates
them, draws tuples of sample indices from the labels (same class = similar) and hands the
tuples to the weakly supervised algorithm's ``_fit``.
"""

import numbers
import warnings

import numpy as np
from sklearn.utils.multiclass import check_classification_targets

from ._constraints import Constraints
from ._sklearn_compat import Interval
from ._validation import format_labels

_TUPLE_NAMES = {2: "pairs", 3: "triplets", 4: "quadruplets"}

# Parameter constraint of every ``*_Supervised`` variant, added to its algorithm's.
N_CONSTRAINTS_CONSTRAINT = {"n_constraints": [Interval(numbers.Integral, 1, None,
                                                       closed="left"), None]}


class SupervisedTuplesMixin:
    """Mixin of the ``*_Supervised`` variants: fit on ``(X, y)``, learn on drawn tuples.

    Put it first in the bases, e.g. ``class ITML_Supervised(SupervisedTuplesMixin,
    _BaseITML)``, and call :meth:`_supervised_tuples` at the start of ``fit``.
    """

    _requires_y = True

    def _supervised_tuples(self, X, y, tuple_size, n_constraints, random_state=None):
        """Validate ``X, y`` and draw labelled tuples from the labels.

        Parameters
        ----------
        X, y : array-like
            Samples (or 1-D indices into ``preprocessor``) and their class labels.
        tuple_size : {2, 3, 4}
            2: similar/dissimilar pairs (``Constraints.pairs``); 3: random triplets
            (anchor, positive, negative); 4: quadruplets (a, b, c, d) with a, b of one
            class and c, d of different classes.
        n_constraints : int or None
            Number of tuples to draw (for pairs: of each kind). None means
            ``20 * n_classes**2`` (metric-learn's default), silently capped at the number
            of distinct pairs the labels allow.
        random_state : int, RandomState instance or None
            Seeds the draw (pass the estimator's ``random_state``).

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
            The validated samples (sets ``n_features_in_``).
        tuples : ndarray of shape (n_tuples, tuple_size, n_features)
            The drawn tuples of samples.
        y_tuples : ndarray of shape (n_tuples,) or None
            +1 / -1 pair labels for ``tuple_size == 2``, else None.
        """
        X, y = validate_supervised(self, X, y)
        n = check_n_constraints(n_constraints, y)
        idx, y_tuples = draw_tuples(y, tuple_size, n, random_state,
                                    warn=n_constraints is not None)
        return X, X[idx], y_tuples


def validate_supervised(estimator, X, y):
    """Validate samples and class labels of a ``*_Supervised`` fit.

    Raises a ValueError when the labels cannot define constraints: a single class, or no
    class with two samples. Returns ``(X, y)`` as arrays; sets ``n_features_in_``.
    """
    X, y = estimator._validate_samples(X, y, reset=True, ensure_min_samples=2,
                                       dtype=np.float64)
    check_classification_targets(y)
    classes, counts = np.unique(y, return_counts=True)
    name = type(estimator).__name__
    if classes.size < 2:
        raise ValueError(
            f"{name} needs samples of at least two classes to form dissimilar constraints; "
            f"y holds the single class {format_labels(classes[0])}."
        )
    if counts.max() < 2:
        raise ValueError(
            f"{name} needs at least one class with two or more samples to form similar "
            "constraints; every class in y has a single sample."
        )
    return X, y


def check_n_constraints(n_constraints, y):
    """The number of constraints to draw: ``n_constraints``, or ``20 * n_classes**2``."""
    if n_constraints is None:
        return 20 * np.unique(y).size ** 2
    if (isinstance(n_constraints, bool) or not isinstance(n_constraints, numbers.Integral)
            or n_constraints < 1):
        raise ValueError(
            f"n_constraints must be a positive integer or None; got {n_constraints!r}."
        )
    return int(n_constraints)


def draw_tuples(y, tuple_size, n_constraints, random_state=None, warn=True):
    """Index tuples drawn from class labels: ``(indices, labels or None)``.

    ``indices`` has shape (n_tuples, tuple_size). Only pairs carry labels (+1 similar, -1
    dissimilar). With ``warn=False`` the warning that fewer distinct pairs exist than
    requested is silenced (used for the default count).
    """
    constraints = Constraints(y)
    if tuple_size == 2:
        with warnings.catch_warnings():
            if not warn:
                warnings.simplefilter("ignore", UserWarning)
            return constraints.pairs(n_constraints, random_state=random_state)
    if tuple_size == 3:
        return constraints.triplets(n_constraints, random_state=random_state), None
    if tuple_size == 4:
        return constraints.quadruplets(n_constraints, random_state=random_state), None
    raise ValueError(f"tuple_size must be 2, 3 or 4; got {tuple_size!r}.")
