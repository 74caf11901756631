"""The private scikit-learn APIs that skmetric uses, imported in this one place.

scikit-learn's parameter validation (``Interval``, ``StrOptions``, ``validate_params``...)
and ``_fit_context`` are private: a release may move or change them without notice. Every
skmetric module imports them from here, so that such a change is absorbed once, and
``tests/test_compat_bounds.py`` checks that the installed scikit-learn provides them and
that no other module reaches into scikit-learn's private modules.

``pyproject.toml`` bounds scikit-learn to the releases this was tested with (1.6 to 1.9);
their versions of these APIs are identical, so none needs a fallback. When a release
moves one, import it here from both places (``try``/``except ImportError``).
"""

from sklearn.base import _fit_context
from sklearn.utils._param_validation import (
    HasMethods,
    Interval,
    InvalidParameterError,
    Options,
    StrOptions,
    validate_parameter_constraints,
    validate_params,
)

__all__ = [
    "HasMethods",
    "Interval",
    "InvalidParameterError",
    "Options",
    "StrOptions",
    "_fit_context",
    "validate_parameter_constraints",
    "validate_params",
]
