"""Pair verification metrics: ROC (TAR against FAR), TAR at FAR, equal error rate and
best-threshold accuracy of similarity scores or distances."""

import numbers
from typing import NamedTuple

import numpy as np
from sklearn.metrics import auc, roc_curve

from .._array_api import to_numpy
from .._base import _best_threshold
from .._docstrings import fill_doc
from ._common import validated

_fill_doc = fill_doc(pairs="""
    scores : array-like of shape (n_pairs,)
        Similarities, or distances with ``greater_is_similar=False``.
    y : array-like of shape (n_pairs,)
        Pair labels in {-1, 1} or {0, 1}.
""", orientation="""
    greater_is_similar : bool, default=True
        False when ``scores`` are distances.
""")


def _validated(**constraints):
    """``validate_params`` with the scores, labels and orientation every function takes."""
    return validated({"scores": ["array-like"], "y": ["array-like"],
                      "greater_is_similar": ["boolean"], **constraints})


class VerificationROC(NamedTuple):
    """ROC of pair verification: false/true accept rates, thresholds and the area under it.

    ``thresholds`` are in the units of the input: a pair is accepted when its score is
    ``>= threshold`` (similarities) or its distance ``<= threshold`` (distances).
    """

    far: np.ndarray
    tar: np.ndarray
    thresholds: np.ndarray
    auc: float


@_validated(drop_intermediate=["boolean"])
@_fill_doc
def verification_roc(scores, y, *, greater_is_similar=True, drop_intermediate=True):
    """ROC curve of pair verification: TAR against FAR over all thresholds, and its AUC.

    The false accept rate (FAR) is the fraction of dissimilar pairs accepted, the true
    accept rate (TAR) the fraction of similar pairs accepted.

    Parameters
    ----------
    scores : array-like of shape (n_pairs,)
        Similarity scores (higher = more similar, e.g. a learner's ``decision_function``)
        or, with ``greater_is_similar=False``, distances.
    y : array-like of shape (n_pairs,)
        1 for similar pairs, -1 or 0 for dissimilar ones (labels in {-1, 1} or {0, 1}).
    {orientation}
    drop_intermediate : bool, default=True
        Drop thresholds that do not change the curve's shape (as scikit-learn's
        ``roc_curve``).

    Returns
    -------
    roc : VerificationROC
        Named tuple ``(far, tar, thresholds, auc)``; ``auc`` equals scikit-learn's
        ``roc_auc_score``.

    Examples
    --------
    >>> from skmetric.metrics import verification_roc
    >>> far, tar, thresholds, area = verification_roc([0.9, 0.8, 0.3, 0.1], [1, -1, 1, -1])
    >>> area
    0.75
    """
    sim, pos = _check_pair_scores(scores, y, greater_is_similar)
    far, tar, thr = roc_curve(pos, sim, drop_intermediate=drop_intermediate)
    thresholds = thr if greater_is_similar else -thr
    return VerificationROC(far, tar, thresholds, float(auc(far, tar)))


@_validated(far=[numbers.Real, "array-like"])  # the range is checked below
@_fill_doc
def tar_at_far(scores, y, far=1e-3, *, greater_is_similar=True):
    """True accept rate at a given false accept rate.

    The highest TAR over the thresholds whose FAR is at most ``far`` (no interpolation
    between operating points, so the value is attainable). A FAR below
    ``1 / n_dissimilar_pairs`` can only be met with no false accept at all.

    Parameters
    ----------
    {pairs}
    far : float or sequence of float in [0, 1], default=1e-3
        Target false accept rate(s).
    {orientation}

    Returns
    -------
    tar : float, or ndarray (one per ``far``) when ``far`` is a sequence

    Examples
    --------
    >>> from skmetric.metrics import tar_at_far
    >>> tar_at_far([0.9, 0.8, 0.3, 0.1], [1, -1, 1, -1], far=[0.0, 0.5])
    array([0.5, 1. ])
    """
    targets = np.asarray(far, dtype=np.float64)
    if targets.ndim > 1 or targets.size == 0 or not np.all((targets >= 0) & (targets <= 1)):
        raise ValueError(f"far must be a number or a sequence of numbers in [0, 1]; got {far!r}.")
    sim, pos = _check_pair_scores(scores, y, greater_is_similar)
    fpr, tpr, _ = roc_curve(pos, sim, drop_intermediate=False)
    # fpr is non-decreasing: the best TAR with FAR <= target is at the last such point.
    last = np.searchsorted(fpr, targets, side="right") - 1
    result = tpr[last]
    return float(result) if targets.ndim == 0 else result


@_validated(return_threshold=["boolean"])
@_fill_doc
def equal_error_rate(scores, y, *, greater_is_similar=True, return_threshold=False):
    """Equal error rate: the error rate where the false accept and false reject rates meet.

    The ROC is interpolated linearly between operating points to find where
    ``FAR = FRR = 1 - TAR``.

    Parameters
    ----------
    {pairs}
    {orientation}
    return_threshold : bool, default=False
        Also return the threshold of the operating point closest to the EER.

    Returns
    -------
    eer : float in [0, 1]
    threshold : float
        Only with ``return_threshold=True``, in the units of ``scores``.

    Examples
    --------
    >>> from skmetric.metrics import equal_error_rate
    >>> equal_error_rate([0.9, 0.8, 0.7, 0.6], [1, -1, 1, -1])
    0.5
    """
    sim, pos = _check_pair_scores(scores, y, greater_is_similar)
    fpr, tpr, thr = roc_curve(pos, sim, drop_intermediate=False)
    gap = fpr - (1.0 - tpr)  # rises from -1 at the first point to +1 at the last
    i = int(np.argmax(gap >= 0))
    t = -gap[i - 1] / (gap[i] - gap[i - 1])
    eer = float(fpr[i - 1] + t * (fpr[i] - fpr[i - 1]))
    if not return_threshold:
        return eer
    near = i if t >= 0.5 or not np.isfinite(thr[i - 1]) else i - 1
    threshold = float(thr[near] if greater_is_similar else -thr[near])
    return eer, threshold


@_validated()
@_fill_doc
def best_threshold_accuracy(scores, y, *, greater_is_similar=True):
    """Best verification accuracy over all thresholds, and that threshold.

    Parameters
    ----------
    {pairs}
    {orientation}

    Returns
    -------
    accuracy : float
        Fraction of pairs classified correctly at the best threshold.
    threshold : float
        Midway between the last accepted and first rejected value: pairs with
        ``score >= threshold`` (or ``distance <= threshold``) are predicted similar.

    Examples
    --------
    >>> from skmetric.metrics import best_threshold_accuracy
    >>> best_threshold_accuracy([0.9, 0.8, 0.3, 0.1], [1, 1, -1, -1])
    (1.0, 0.55)
    """
    sim, pos = _check_pair_scores(scores, y, greater_is_similar)
    dist_thr = _best_threshold(-sim, pos, "accuracy", None, 1.0)
    accuracy = float(np.mean((-sim <= dist_thr) == pos))
    threshold = -dist_thr if greater_is_similar else dist_thr
    return accuracy, float(threshold)


def _check_pair_scores(scores, y, greater_is_similar):
    """Similarities (higher = more similar) as float64 and a boolean "similar" mask."""
    if not isinstance(greater_is_similar, (bool, np.bool_)):
        raise TypeError(
            "greater_is_similar must be True (similarity scores) or False (distances); got "
            f"{greater_is_similar!r}."
        )
    s = to_numpy(scores)
    if s.ndim != 1 or s.shape[0] == 0 or s.dtype.kind not in "biuf":
        raise ValueError(
            f"scores must be a non-empty 1-D numeric array, one per pair; got shape {s.shape} "
            f"and dtype {s.dtype}."
        )
    s = s.astype(np.float64)
    if not np.all(np.isfinite(s)):
        raise ValueError("scores contain NaN or infinity.")
    y = to_numpy(y)
    if y.ndim != 1 or y.shape[0] != s.shape[0]:
        raise ValueError(
            f"y must be 1-D with one label per pair ({s.shape[0]}); got shape {y.shape}."
        )
    if y.dtype.kind not in "biuf":
        raise ValueError(f"y must hold numeric labels in {{-1, 1}} or {{0, 1}}; got {y.dtype}.")
    values = set(np.unique(y).tolist())
    if not (values <= {-1, 1} or values <= {0, 1}):
        raise ValueError(
            f"y must hold labels in {{-1, 1}} or {{0, 1}} (1 = similar pair); found "
            f"{sorted(values)}."
        )
    pos = y == 1
    if pos.all() or not pos.any():
        raise ValueError("y needs both similar (1) and dissimilar (-1 or 0) pairs.")
    return (s if greater_is_similar else -s), pos
