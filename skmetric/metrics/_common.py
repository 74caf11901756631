"""Checks shared by the retrieval and clustering metrics."""

import numbers
import sys
from pathlib import Path

import numpy as np
import sklearn

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
        raise ValueError(f"{name} contains NaN.")
    return labels


# Code between the user and a warning: skmetric itself and scikit-learn (its parameter
# validation wraps the public metrics; its scorers and searches call them).
_INTERNAL = (str(Path(__file__).resolve().parents[1]), str(Path(sklearn.__file__).parent))


def user_stacklevel():
    """``stacklevel`` for a ``warnings.warn`` made by the caller of this function, such that
    the warning points at the first frame outside skmetric and scikit-learn: the user's
    line, whichever public function (and how many private ones) led there. (Python 3.12's
    ``skip_file_prefixes`` does this; 3.11 does not have it.)"""
    frame, level = sys._getframe(1), 1
    while frame.f_back is not None and str(Path(frame.f_code.co_filename).resolve()).startswith(
            _INTERNAL):
        frame, level = frame.f_back, level + 1
    return level
