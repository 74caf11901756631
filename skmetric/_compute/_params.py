"""Parameter constraints of the public functions, for scikit-learn's ``validate_params``.

Arrays are "array-like" (torch, CuPy and array-api-strict arrays are: they have a shape);
their content is checked by :mod:`skmetric._compute._arrays`. Counts and budgets refuse
booleans, which scikit-learn's ``Interval`` would take for 0 and 1.
"""

import numbers

import numpy as np

from .._sklearn_compat import Interval

__all__ = ["ARRAY", "ARRAY_OR_NONE", "BLOCKS", "COUNT", "COUNT_OR_NONE", "METRIC_ARRAYS",
           "NON_NEGATIVE"]


class _NumberInterval(Interval):
    """scikit-learn's ``Interval`` that does not take a bool for a number."""

    def is_satisfied_by(self, val):
        return not isinstance(val, bool | np.bool_) and super().is_satisfied_by(val)


#: Samples: sparse matrices pass here so that the array checker refuses them with its
#: message (call .toarray()), not with "must be an array-like".
ARRAY = ["array-like", "sparse matrix"]
ARRAY_OR_NONE = [*ARRAY, None]
COUNT = _NumberInterval(numbers.Integral, 1, None, closed="left")
COUNT_OR_NONE = [COUNT, None]
NON_NEGATIVE = _NumberInterval(numbers.Real, 0, None, closed="left")
_POSITIVE = _NumberInterval(numbers.Real, 0, None, closed="neither")

#: The distance and its Mahalanobis matrix or map; the engine checks the metric's name.
METRIC_ARRAYS = {
    "metric": [str, callable],
    "M": ["array-like", None],
    "L": ["array-like", None],
}
#: The blocks of rows of the engine.
BLOCKS = {
    "chunk_size": COUNT_OR_NONE,
    "working_memory": [_POSITIVE, None],
}
