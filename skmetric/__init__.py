"""skmetric: scikit-learn-style metric learning.

Classical Mahalanobis learners, kernel methods, deep embedders (``skmetric.deep``, the
``deep`` extra), GPU-ready distances and evaluation metrics, all usable in scikit-learn's
``Pipeline`` and ``GridSearchCV``.
"""

from ._base import (
    MahalanobisMixin,
    PairsClassifierMixin,
    QuadrupletsClassifierMixin,
    TripletsClassifierMixin,
)
from ._constraints import Constraints, wrap_pairs
from ._covariance import Covariance

__version__ = "0.1.0"

__all__ = [
    "Constraints",
    "Covariance",
    "MahalanobisMixin",
    "PairsClassifierMixin",
    "QuadrupletsClassifierMixin",
    "TripletsClassifierMixin",
    "wrap_pairs",
]
