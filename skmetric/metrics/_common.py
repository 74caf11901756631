"""Checks shared by the retrieval and clustering metrics."""

import numbers

import numpy as np

from .._array_api import to_numpy


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
    if labels.dtype.kind == "f" and np.isnan(labels).any():
        raise ValueError(f"{name} contains NaN; every sample needs a label: drop the "
                         "unlabelled samples (and their rows) first.")
    return labels
