"""Checks shared by the retrieval and clustering metrics."""

import numbers

import numpy as np

from .._array_api import to_numpy
from .._sklearn_compat import validate_params
from .._validation import label_kind


def validated(constraints):
    """``validate_params(constraints)`` that also leaves the constraints on the function
    (as ``_parameter_constraints``), for the scorers to check their arguments when they are
    made rather than in every fold of a cross-validation."""
    def decorate(func):
        wrapped = validate_params(constraints, prefer_skip_nested_validation=True)(func)
        wrapped._parameter_constraints = constraints
        return wrapped
    return decorate


def check_k(k, name):
    if not isinstance(k, numbers.Integral) or isinstance(k, bool) or k < 1:
        raise ValueError(f"{name} must be an integer >= 1; got {k!r}.")


def labels_as_numpy(labels, n, name, what):
    labels = to_numpy(labels)
    if labels.ndim != 1 or labels.shape[0] != n:
        raise ValueError(
            f"{name} must be 1-D with one label per row of {what} ({n}); got shape "
            f"{labels.shape}."
        )
    if _has_missing(labels):
        raise ValueError(f"{name} contains missing labels (NaN or None); every sample needs "
                         "a label: drop the unlabelled samples (and their rows) first.")
    return labels


def check_same_label_kind(query_labels, reference_labels):
    """Refuse string labels on one side and numbers on the other: concatenated, the
    numbers would become strings (1 -> '1' but 1.0 -> '1.0'), matching by accident."""
    kinds = [label_kind(query_labels), label_kind(reference_labels)]
    if None not in kinds and kinds[0] != kinds[1]:
        raise TypeError(
            f"query_labels are {kinds[0]} and reference_labels {kinds[1]}: they cannot "
            "name the same classes. Give both the same type, e.g. labels.astype(str) on "
            "both."
        )


def _has_missing(labels):
    """Whether a label is NaN, or, among object labels (e.g. pandas' strings), None, NaN
    or pandas.NA: np.unique would otherwise fail comparing them with the others."""
    if labels.dtype.kind == "f":
        return bool(np.isnan(labels).any())
    return labels.dtype.kind == "O" and any(_is_missing(v) for v in labels.tolist())


def _is_missing(value):
    if value is None:
        return True
    try:
        return not bool(value == value)  # NaN is the value unequal to itself
    except TypeError:  # pandas.NA: its comparisons are NA, whose truth is undefined
        return True
