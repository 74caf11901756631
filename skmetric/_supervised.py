"""Shared logic of the learners fitted on class labels.

:class:`LabelledLearnerMixin` gives every such learner (NCA, LMNN, LFDA, RCA_Supervised and
the ``*_Supervised`` variants) its one ``fit(X, y)``, and :func:`validate_labelled`
validates their samples and class labels (:func:`check_class_sizes`: every class large
enough for the neighbours each sample needs). A ``*_Supervised`` learner
(:class:`SupervisedTuplesMixin`) then draws tuples of sample indices from the labels
(same class = similar) and hands the tuples to the weakly supervised algorithm's ``_fit``.
"""

import numbers
import warnings

import numpy as np
from sklearn.utils.multiclass import check_classification_targets

from ._compute._backend import resolve_backend, to_host
from ._constraints import Constraints
from ._docstrings import FIT_X_Y, fill_doc
from ._sklearn_compat import Interval
from ._validation import fit_context, format_labels, unique_labels

# Parameter constraint of every ``*_Supervised`` variant, added to its algorithm's.
N_CONSTRAINTS_CONSTRAINT = {"n_constraints": [Interval(numbers.Integral, 1, None,
                                                       closed="left"), None]}


class LabelledLearnerMixin:
    """Mixin of the learners fitted on samples and class labels: their one ``fit(X, y)``.

    Put it first in the bases. ``fit`` hands the inputs, as given, to the learner's
    ``_fit_samples(X, y)``, which validates them and learns; ``fit`` returns what it
    returns, the learner. A learner with a ``device`` parameter names the array namespaces
    its code supports in ``_namespaces``: ``fit`` then chooses the compute backend from
    ``device`` and the raw ``X`` (a torch tensor: torch, on its device) and calls
    ``_fit_samples(X, y, backend)`` with the inputs moved to the host.
    """

    _requires_y = True
    #: e.g. ``("numpy", "torch")`` for a learner with a ``device`` parameter (see above).
    _namespaces = None

    @fit_context(prefer_skip_nested_validation=True)
    @fill_doc(X_y=FIT_X_Y)
    def fit(self, X, y=None):  # None: scikit-learn's "requires y" error, naming the class
        """Learn the metric from samples and their class labels.

        Parameters
        ----------
        {X_y}

        Returns
        -------
        self : object
        """
        if self._namespaces is None:
            return self._fit_samples(X, y)
        backend = resolve_backend(X, self.device, dtype="float64", namespaces=self._namespaces,
                                  learner=type(self).__name__)
        return self._fit_samples(to_host(X), to_host(y), backend)


class SupervisedTuplesMixin(LabelledLearnerMixin):
    """Mixin of the ``*_Supervised`` variants: fit on ``(X, y)``, learn on drawn tuples.

    Put it first in the bases, e.g. ``class MMC_Supervised(SupervisedTuplesMixin,
    _BaseMMC)``. Its ``fit(X, y)`` validates the samples and labels, then runs
    :meth:`_fit_labelled`, which by default draws ``_tuple_size``-tuples with
    :meth:`_draw_tuples` and calls the algorithm's ``_fit(tuples, tuple_labels)``.
    Override ``_fit_labelled`` when the algorithm takes other arguments.
    """

    #: 2: similar/dissimilar pairs, 3: triplets, 4: quadruplets (see :func:`draw_tuples`).
    _tuple_size = 2

    def _fit_samples(self, X, y):
        X, y = validate_supervised(self, X, y)
        return self._fit_labelled(X, y)

    def _fit_labelled(self, X, y):
        """Learn from validated samples and labels: the algorithm on drawn tuples."""
        return self._fit(*self._draw_tuples(X, y))

    def _draw_tuples(self, X, y):
        """Tuples of samples drawn from the labels: ``(tuples, tuple_labels)``.

        ``tuples`` has shape (n_tuples, ``_tuple_size``, n_features); ``tuple_labels`` is
        +1 / -1 for pairs and None otherwise. ``n_constraints`` tuples are drawn (for
        pairs: of each kind), None meaning ``20 * n_classes**2`` (metric-learn's default),
        silently capped at the number of distinct pairs the labels allow; the draw is
        seeded by ``random_state``.
        """
        n = check_n_constraints(self.n_constraints, y)
        idx, y_tuples = draw_tuples(y, self._tuple_size, n, self.random_state,
                                    warn=self.n_constraints is not None)
        return X[idx], y_tuples


def validate_labelled(estimator, X, y, purpose="", single_class=False):
    """Validate the samples and class labels of a fit: ``(X, classes, codes, counts)``.

    Raises a ValueError when y holds a single class (``purpose`` completes the message,
    e.g. " to form dissimilar constraints"), unless ``single_class`` (a learner that only
    groups samples of one class, such as RCA's chunks). ``codes`` are the labels as indices
    into ``classes``, ``counts`` the class sizes. Sets ``n_features_in_``.
    """
    X, y = estimator._validate_samples(X, y, reset=True, ensure_min_samples=2,
                                       dtype=np.float64)
    # Before scikit-learn's check, which calls mixed int/str labels "continuous" or fails.
    classes, codes, counts = unique_labels(y, return_inverse=True, return_counts=True)
    check_classification_targets(y)
    if classes.size < 2 and not single_class:
        raise ValueError(
            f"{type(estimator).__name__} needs samples of at least two classes{purpose}; "
            f"y holds the single class {format_labels(classes[0])}."
        )
    return X, classes, codes, counts


def validate_supervised(estimator, X, y):
    """Validate samples and class labels of a ``*_Supervised`` fit.

    Raises a ValueError when the labels cannot define constraints: a single class, or no
    class with two samples. Returns ``(X, y)`` as arrays; sets ``n_features_in_``.
    """
    X, classes, codes, counts = validate_labelled(estimator, X, y,
                                                  " to form dissimilar constraints")
    if counts.max() < 2:
        raise ValueError(
            f"{type(estimator).__name__} needs at least one class with two or more samples "
            "to form similar constraints; every class in y has a single sample."
        )
    return X, classes[codes]


def enough_per_class(counts, n_neighbors, n_splits=None):
    """Whether every class (of sizes ``counts``) gives each sample ``n_neighbors`` others of
    its class: ``n_neighbors + 1`` samples in the class, or in the training part of each
    of ``n_splits`` stratified folds (a class of c samples keeps ``c - ceil(c / n_splits)``
    in the smallest)."""
    smallest = int(np.min(counts))
    if n_splits is not None:
        smallest -= -(-smallest // n_splits)
    return smallest >= n_neighbors + 1


def check_class_sizes(learner, classes, counts, n_neighbors, *, parameter=None, why=""):
    """Raise a ValueError unless every class gives each sample ``n_neighbors`` others.

    ``parameter`` names the learner's parameter that sets ``n_neighbors`` (the message
    then suggests lowering it); without one the need is fixed, ``why`` (a clause) says
    what it comes from. The message names the classes that are too small (5 at most)
    and their sizes.
    """
    if enough_per_class(counts, n_neighbors):
        return
    small = np.flatnonzero(counts < n_neighbors + 1)
    shown = ", ".join(str(c) for c in counts[small[:5]])
    more = f" (and {small.size - 5} more)" if small.size > 5 else ""
    if small.size == 1:
        found = f"Class {format_labels(classes[small[0]])} has only {shown} sample(s)"
    else:
        found = (f"Classes {format_labels(classes[small[:5]])}{more} have only {shown} "
                 "sample(s)")
    if parameter is None:
        raise ValueError(f"{found}; {learner} needs at least {n_neighbors + 1} samples per "
                         f"class{why}. Drop the small classes or merge them into others.")
    raise ValueError(
        f"{found}; {learner} with {parameter}={n_neighbors} needs at least {parameter} + 1 = "
        f"{n_neighbors + 1} per class. Lower {parameter} or drop the small classes."
    )


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
