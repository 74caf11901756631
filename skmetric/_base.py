"""Base classes of the Mahalanobis learners and of the learners fitted on tuples.

A Mahalanobis learner learns a linear map ``components_`` (L, shape (n_components,
n_features)); the distance between x and x' is ``||L (x - x')||`` and the matrix of the
metric is ``M = L.T @ L``. Weakly supervised learners are fitted on tuples of samples:
pairs labelled +1 (similar) / -1 (dissimilar), triplets (anchor, positive, negative) or
quadruplets (a, b, c, d) meaning "a and b are closer than c and d".
"""

import numbers

import numpy as np
from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.metrics import roc_auc_score
from sklearn.utils import ClassifierTags
from sklearn.utils.validation import check_is_fitted, validate_data

from ._array_api import device, foreign_namespace
from ._compute._arrays import check_input
from ._compute._numerics import row_norms
from ._docstrings import FIT_PAIRS, FIT_PAIRS_END, fill_doc
from ._keywords import KeywordCheckMixin
from ._persistence import VersionedStateMixin
from ._validation import (
    _TUPLE_NAMES,
    apply_preprocessor,
    check_pair_labels,
    check_tuples,
    fit_context,
    fit_scale,
)


class _MahalanobisMetric:
    """Picklable distance function ``d(u, v) = ||L (u - v)||`` (see ``get_metric``)."""

    def __init__(self, components):
        self.components = components

    def __call__(self, u, v, squared=False):
        xp = foreign_namespace(u)
        if xp is None:
            u = np.asarray(u, dtype=np.float64)
            v = np.asarray(v, dtype=np.float64)
        shapes = tuple(u.shape), tuple(getattr(v, "shape", np.shape(v)))
        if shapes != ((self.components.shape[1],),) * 2:
            raise ValueError(
                "The metric compares two 1-D vectors of "
                f"{self.components.shape[1]} features; got shapes {shapes[0]} and {shapes[1]}."
            )
        if xp is not None:
            # torch / CuPy vectors: computed in their namespace, a 0-d array returned.
            t = (u - v) @ _components_in(self.components, u, xp).T
            return xp.sum(t * t) if squared else row_norms(t[None, :], xp)[0]
        t = self.components @ (u - v)
        return float(t @ t) if squared else float(row_norms(t[None, :], np)[0])


class MahalanobisMixin(VersionedStateMixin, KeywordCheckMixin, ClassNamePrefixFeaturesOutMixin,
                       TransformerMixin):
    """Methods shared by every learner of a linear map ``components_``.

    Subclasses set ``components_`` in ``fit``; this mixin provides ``transform``,
    ``get_mahalanobis_matrix``, ``get_metric``, ``pair_distance`` and ``pair_score``.
    """

    def _validate_samples(self, X, y="no_validation", *, reset, **check_params):
        """``validate_data`` that first resolves index arrays through ``preprocessor``.

        ``y=None`` is passed on, so a learner whose tags require y gets scikit-learn's
        "requires y to be passed" error. With ``reset=True`` (fitting), samples of extreme
        magnitude are rescaled or refused (see :meth:`_rescale_for_fit`).
        """
        preprocessor = getattr(self, "preprocessor", None)
        # Samples are 2-D: a 1-D X holds indices into the preprocessor (anything but
        # integers is refused there, by name, rather than as "Expected 2D array").
        if preprocessor is not None and np.ndim(X) == 1:
            X = apply_preprocessor(preprocessor, np.asarray(X), what="X")
        out = validate_data(self, X, y, reset=reset, **check_params)
        if not reset:
            return out
        if isinstance(out, tuple):
            return (self._rescale_for_fit(out[0]),) + out[1:]
        return self._rescale_for_fit(out)

    #: True for learners that can be fitted exactly on the samples divided by a power of
    #: two ``c`` and map back: the scale-equivariant ones (their map on ``s * X`` is their
    #: map on ``X`` divided by ``s``), and ITML, which expresses its prior in the new units.
    _rescalable = False

    def _rescale_for_fit(self, X):
        """The training samples, divided by a power of two when of extreme magnitude.

        Only ``_rescalable`` learners are rescaled (they divide their map by the same
        factor, with :meth:`_unscale`); the others raise a ValueError there (see
        :func:`skmetric._validation.fit_scale`).
        """
        self._fit_scale = fit_scale(X, type(self).__name__, rescalable=self._rescalable)
        return X if self._fit_scale == 1.0 else X / self._fit_scale

    def _unscale(self, components):
        """The map of the original samples from that of the rescaled ones."""
        return components / getattr(self, "_fit_scale", 1.0)

    #: Learners fitted on labelled samples set this; their tags then say y is required.
    _requires_y = False

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = self._requires_y
        return tags

    @property
    def _n_features_out(self):
        return self.components_.shape[0]

    def transform(self, X):
        """Map samples into the learned space: ``X @ components_.T``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples (or 1-D indices into ``preprocessor``).

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_components)
            A torch / CuPy array on the input's device for such input.
        """
        check_is_fitted(self, "components_")
        xp = foreign_namespace(X)
        if xp is not None:
            return self._transform_foreign(X, xp, X.ndim - 1)
        X = self._validate_samples(X, reset=False)
        return X @ self.components_.T

    def _transform_foreign(self, X, xp, feature_axis):
        """``X @ components_.T`` for a torch / CuPy / Array API array, in its namespace
        and on its device (the NumPy path validates through ``validate_data`` instead)."""
        X = check_input(X, "X", n_features=self.n_features_in_, owner=type(self).__name__,
                        ndim=feature_axis + 1)
        return X @ _components_in(self.components_, X, xp).T

    def get_mahalanobis_matrix(self):
        """The learned Mahalanobis matrix ``M = L.T @ L``, shape (n_features, n_features)."""
        check_is_fitted(self, "components_")
        return self.components_.T @ self.components_

    def get_metric(self):
        """A picklable callable ``metric(u, v, squared=False)`` on two 1-D samples.

        Usable as ``KNeighborsClassifier(metric=learner.get_metric())``; it is detached
        from the learner, so refitting the learner does not change it. Given torch or
        CuPy vectors it computes in their namespace and returns a 0-d array of it.
        """
        check_is_fitted(self, "components_")
        return _MahalanobisMetric(self.components_.copy())

    def pair_distance(self, pairs):
        """Learned distance between the two samples of each pair.

        Parameters
        ----------
        pairs : array-like of shape (n_pairs, 2, n_features) or (n_pairs, 2)
            Pairs of samples, or pairs of indices into ``preprocessor``.

        Returns
        -------
        distances : ndarray of shape (n_pairs,)
            In the input's namespace and device for torch / CuPy pairs of features.
        """
        check_is_fitted(self, "components_")
        xp = foreign_namespace(pairs)
        if xp is not None and pairs.ndim == 3 and pairs.shape[1] == 2:
            diff = self._transform_foreign(pairs[:, 0, :] - pairs[:, 1, :], xp, 1)
            return row_norms(diff, xp)
        pairs = check_tuples(pairs, 2, self._preprocessor(), n_features=self.n_features_in_)
        diff = (pairs[:, 0] - pairs[:, 1]) @ self.components_.T
        return row_norms(diff, np)

    def pair_score(self, pairs):
        """Similarity of each pair: the negated learned distance (higher is more similar)."""
        return -self.pair_distance(pairs)

    @property
    def score_pairs(self):
        """Not provided: metric-learn's deprecated ``score_pairs``; accessing it raises an
        AttributeError that names :meth:`pair_distance` and :meth:`pair_score`."""
        # Its values were distances (lower = more similar), not pair_score's negated
        # ones: a plain rename to pair_score would silently flip every comparison.
        raise AttributeError(
            f"{type(self).__name__} has no score_pairs (deprecated in metric-learn 0.7). It "
            "returned distances: use pair_distance(pairs) for the same values, or "
            "pair_score(pairs), their negatives (higher = more similar).")

    def _preprocessor(self):
        return getattr(self, "preprocessor", None)


def _components_in(components, X, xp):
    """The NumPy matrix ``components`` in the namespace, device and dtype of ``X``."""
    return xp.astype(xp.asarray(components, device=device(X)), X.dtype)


class _TupleLearnerMixin:
    """Input handling of learners fitted on tuples of ``_tuple_size`` samples."""

    _tuple_size = None

    def _prepare_tuples(self, tuples, *, reset):
        if reset:
            self._refuse_samples(tuples)
        n_features = None if reset else self.n_features_in_
        arr = check_tuples(tuples, self._tuple_size, self._preprocessor(), n_features=n_features)
        if reset:
            self.n_features_in_ = arr.shape[2]
            arr = self._rescale_for_fit(arr)
        return arr

    def _refuse_samples(self, tuples):
        """A 2-D array of features (samples, not tuples) given to ``fit``: name the
        ``*_Supervised`` variant that learns from samples and class labels."""
        if self._preprocessor() is not None or np.ndim(tuples) != 2:
            return
        name = type(self).__name__
        n = self._tuple_size
        kind = _TUPLE_NAMES[n]
        raise ValueError(
            f"{name} is fitted on {kind}: a 3-D array of shape (n_{kind}, {n}, n_features), "
            f"or (n_{kind}, {n}) indices into the samples X if you pass preprocessor=X; got a "
            f"2-D array of shape {np.shape(tuples)}. To learn from samples X and class "
            f"labels y, use {name}_Supervised().fit(X, y), which draws the {kind} from "
            "the labels."
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        tags.target_tags.required = self._tuple_size == 2
        return tags


class PairsClassifierMixin(_TupleLearnerMixin):
    """Learners fitted on labelled pairs; they also classify pairs as similar or not.

    A pair is predicted similar when its learned distance is at most ``threshold_``, which
    ``fit`` calibrates on the training pairs and ``calibrate_threshold`` re-calibrates.
    Labels may be given as +1 / -1 (metric-learn's convention) or as 1 / 0 or booleans (that
    of :mod:`skmetric.metrics`); ``predict`` answers in the convention of the labels given to
    ``fit``, its ``classes_`` (dissimilar first), as scikit-learn's classifiers do, so that
    scorers such as 'accuracy' compare like with like. ``fit`` runs the learner's
    ``_fit(pairs, y)`` on the validated pairs, whose labels are then +1 / -1.
    """

    _tuple_size = 2
    #: (dissimilar, similar) as ``predict`` returns them; ``fit`` sets them from its labels.
    classes_ = np.array([-1, 1])

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.estimator_type = "classifier"
        tags.classifier_tags = ClassifierTags()
        tags.transformer_tags = None
        return tags

    def _prepare_pairs(self, pairs, y, *, reset=True):
        pairs = self._prepare_tuples(pairs, reset=reset)
        y, classes = check_pair_labels(y, pairs.shape[0], return_classes=True)
        if reset:
            self.classes_ = classes
        return pairs, y

    @fit_context(prefer_skip_nested_validation=True)
    @fill_doc(pairs_y=FIT_PAIRS, end=FIT_PAIRS_END)
    def fit(self, pairs, y, calibration_params=None):
        """Learn the metric from labelled pairs, then calibrate ``threshold_`` on them.

        Parameters
        ----------
        {pairs_y}
        {end}
        """
        return self._fit_pairs(pairs, y, calibration_params)

    def _fit_pairs(self, pairs, y, calibration_params, **fit_params):
        """``fit``'s outline: validate the pairs, labels and ``calibration_params`` (before
        the possibly long fit), run ``_fit(pairs, y, **fit_params)``, calibrate."""
        pairs, y = self._prepare_pairs(pairs, y)
        calibration = _calibration_options(calibration_params, y)
        self._fit(pairs, y, **fit_params)
        return self.calibrate_threshold(pairs, y, **calibration)

    def decision_function(self, pairs):
        """Pair scores (negated distances): the higher, the more similar."""
        return self.pair_score(pairs)

    def predict(self, pairs):
        """``classes_[1]`` (similar: +1, or 1 / True for such labels given to ``fit``) for
        pairs whose learned distance is at most ``threshold_``, else ``classes_[0]``."""
        check_is_fitted(self, "threshold_")
        similar = -self.decision_function(pairs) <= self.threshold_
        return np.where(similar, self.classes_[1], self.classes_[0])

    def score(self, pairs, y):
        """Area under the ROC curve of the pair scores against labels in {-1, +1} or {0, 1}."""
        y = check_pair_labels(y, np.asarray(pairs).shape[0])
        if np.unique(y).size < 2:
            raise ValueError("score needs both similar (+1) and dissimilar (-1) pairs.")
        return roc_auc_score(y, self.decision_function(pairs))

    def set_threshold(self, threshold):
        """Set the distance threshold below which pairs are predicted similar."""
        if not isinstance(threshold, numbers.Real) or isinstance(threshold, bool):
            raise TypeError(f"threshold must be a real number (a distance); got {threshold!r}.")
        if not np.isfinite(threshold):
            raise ValueError(f"threshold must be a finite number; got {threshold!r}.")
        self.threshold_ = float(threshold)
        return self

    def calibrate_threshold(self, pairs_valid, y_valid, strategy="accuracy", min_rate=None,
                            beta=1.0):
        """Choose ``threshold_`` on validation pairs.

        Parameters
        ----------
        pairs_valid : array-like of shape (n_pairs, 2, n_features) or (n_pairs, 2)
            Validation pairs.
        y_valid : array-like of shape (n_pairs,)
            Labels in {-1, +1}, or {0, 1} with 0 for dissimilar.
        strategy : {'accuracy', 'f_beta', 'max_tpr', 'max_tnr'}, default='accuracy'
            'accuracy' and 'f_beta' maximise that measure; 'max_tpr' maximises the true
            positive rate while the true negative rate is at least ``min_rate``, and
            'max_tnr' the converse; these two need both similar and dissimilar pairs.
        min_rate : float in [0, 1], default=None
            Required for 'max_tpr' and 'max_tnr'.
        beta : float, default=1.0
            The beta of the F-score for 'f_beta'.

        Returns
        -------
        self : object
        """
        _check_calibration(strategy, min_rate, beta)
        dist = -self.decision_function(pairs_valid)
        y = check_pair_labels(y_valid, dist.shape[0])
        _check_rate_labels(strategy, y)
        self.threshold_ = _best_threshold(dist, y == 1, strategy, min_rate, beta)
        return self


_CALIBRATION_DEFAULTS = {"strategy": "accuracy", "min_rate": None, "beta": 1.0}


def _calibration_options(calibration_params, y):
    """``fit``'s ``calibration_params`` as keyword arguments of ``calibrate_threshold``,
    checked with the fit's labels ``y`` before the (possibly long) fit runs."""
    params = {} if calibration_params is None else calibration_params
    if not isinstance(params, dict):
        raise TypeError("calibration_params must be a dict of calibrate_threshold's options "
                        f"('strategy', 'min_rate', 'beta'); got {params!r}.")
    unknown = sorted(map(repr, set(params) - set(_CALIBRATION_DEFAULTS)))
    if unknown:
        raise ValueError(f"calibration_params has unknown key(s) {', '.join(unknown)}; "
                         "calibrate_threshold's options are 'strategy', 'min_rate' and 'beta'.")
    options = {**_CALIBRATION_DEFAULTS, **params}
    _check_calibration(**options)
    _check_rate_labels(options["strategy"], y)
    return options


def _check_calibration(strategy, min_rate, beta):
    """Raise a ValueError naming a bad strategy, ``min_rate`` or ``beta``."""
    strategies = ("accuracy", "f_beta", "max_tpr", "max_tnr")
    if strategy not in strategies:
        raise ValueError(f"strategy must be one of {strategies}; got {strategy!r}.")
    if strategy in ("max_tpr", "max_tnr") and not (_is_real(min_rate) and 0 <= min_rate <= 1):
        raise ValueError(f"strategy={strategy!r} needs min_rate in [0, 1]; got {min_rate!r}.")
    if strategy == "f_beta" and not (_is_real(beta) and 0 < beta < np.inf):
        raise ValueError(f"beta must be a finite number > 0; got {beta!r}.")


def _check_rate_labels(strategy, y):
    """'max_tpr' and 'max_tnr' bound the rate of one kind of pairs: both must be present.

    A rate of pairs that are not there is undefined: max_tnr on dissimilar pairs only said
    "No threshold reaches min_rate", max_tpr on similar pairs only took every pair as
    similar.
    """
    if strategy in ("max_tpr", "max_tnr") and np.unique(y).size < 2:
        only = "similar (+1)" if y[0] == 1 else "dissimilar (-1)"
        raise ValueError(
            f"strategy={strategy!r} needs both similar and dissimilar pairs "
            f"(it bounds one rate and maximises the other); found only {only} pairs. "
            "Add pairs of the other kind, or use strategy='accuracy' or 'f_beta'."
        )


def _is_real(value):
    """Whether ``value`` is a real number (not a bool, a string or None)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _best_threshold(dist, positive, strategy, min_rate, beta):
    """Distance threshold maximising ``strategy``; pairs with ``dist <= t`` are positive."""
    order = np.argsort(dist, kind="stable")
    d, pos = dist[order], positive[order]
    # Candidate k predicts the k closest pairs positive; k only at ends of runs of ties.
    last_of_run = np.r_[d[1:] != d[:-1], True]
    tp = np.r_[0, np.cumsum(pos)[last_of_run]]
    fp = np.r_[0, np.cumsum(~pos)[last_of_run]]
    n_pos, n_neg = pos.sum(), (~pos).sum()
    tpr = tp / max(n_pos, 1)
    tnr = 1 - fp / max(n_neg, 1)
    if strategy == "accuracy":
        objective = (tp + n_neg - fp) / d.size
    elif strategy == "f_beta":
        b2 = beta**2
        denom = (1 + b2) * tp + b2 * (n_pos - tp) + fp
        objective = np.where(denom > 0, (1 + b2) * tp / np.maximum(denom, 1e-300), 0.0)
    elif strategy == "max_tpr":
        objective = np.where(tnr >= min_rate, tpr, -np.inf)
    else:
        objective = np.where(tpr >= min_rate, tnr, -np.inf)
    if not np.isfinite(objective).any():
        raise ValueError(f"No threshold reaches min_rate={min_rate} for strategy={strategy!r}.")
    best = int(np.argmax(objective))
    values = d[last_of_run]
    # Place the threshold midway between the last accepted and first rejected distance.
    if best == 0:
        return float(values[0] - max(1.0, abs(values[0])) * 1e-6)
    if best == values.size:
        return float(values[-1] + max(1.0, abs(values[-1])) * 1e-6)
    lo, hi = values[best - 1], values[best]
    mid = lo / 2 + hi / 2  # halves first: no overflow
    # Adjacent floats: the midpoint rounds to one of them; the first rejected value must
    # not be the threshold, the last accepted one can.
    return float(mid if lo <= mid < hi else lo)


class TripletsClassifierMixin(_TupleLearnerMixin):
    """Learners fitted on triplets (anchor, positive, negative).

    A triplet is satisfied (+1) when the anchor is closer to the positive than to the
    negative in the learned metric, else -1.
    """

    _tuple_size = 3

    def decision_function(self, triplets):
        """``d(anchor, negative) - d(anchor, positive)``: positive when satisfied."""
        check_is_fitted(self, "components_")
        t = self._prepare_tuples(triplets, reset=False)
        return self.pair_distance(t[:, [0, 2]]) - self.pair_distance(t[:, [0, 1]])

    def predict(self, triplets):
        """+1 for satisfied triplets, -1 otherwise (ties count as not satisfied)."""
        return np.where(self.decision_function(triplets) > 0, 1, -1)

    def score(self, triplets, y=None):
        """Fraction of triplets satisfied by the learned metric."""
        return float(np.mean(self.predict(triplets) == 1))


class QuadrupletsClassifierMixin(_TupleLearnerMixin):
    """Learners fitted on quadruplets (a, b, c, d) meaning ``d(a, b) < d(c, d)``."""

    _tuple_size = 4

    def decision_function(self, quadruplets):
        """``d(c, d) - d(a, b)``: positive when the quadruplet's constraint holds."""
        check_is_fitted(self, "components_")
        q = self._prepare_tuples(quadruplets, reset=False)
        return self.pair_distance(q[:, 2:]) - self.pair_distance(q[:, :2])

    def predict(self, quadruplets):
        """+1 for quadruplets whose constraint holds, -1 otherwise (ties count as not)."""
        return np.where(self.decision_function(quadruplets) > 0, 1, -1)

    def score(self, quadruplets, y=None):
        """Fraction of quadruplets whose constraint holds in the learned metric."""
        return float(np.mean(self.predict(quadruplets) == 1))
