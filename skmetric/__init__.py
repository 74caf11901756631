"""skmetric: scikit-learn-style metric learning.

Classical Mahalanobis learners, kernel methods, deep embedders (``skmetric.deep``, the
``deep`` extra), GPU-ready distances and evaluation metrics, all usable in scikit-learn's
``Pipeline`` and ``GridSearchCV``.
"""

from . import distances, exceptions, metrics, neighbors
from ._base import (
    MahalanobisMixin,
    PairsClassifierMixin,
    QuadrupletsClassifierMixin,
    TripletsClassifierMixin,
)
from ._constraints import Constraints, wrap_pairs
from .distances import pairwise_distances, pairwise_distances_chunked
from .kernel import KernelPCA, make_kernel_learner
from .metrics import make_pair_scorer, make_retrieval_scorer
from .neighbors import MetricKNeighborsClassifier, kneighbors, radius_neighbors
from .supervised import LFDA, LMNN, MLKR, NCA, RCA, Covariance, RCA_Supervised
from .weakly_supervised import (
    ITML,
    LSML,
    MMC,
    SCML,
    SDML,
    ITML_Supervised,
    LSML_Supervised,
    MMC_Supervised,
    SCML_Supervised,
    SDML_Supervised,
)

__version__ = "0.1.0"

__all__ = [
    "Constraints",
    "Covariance",
    "MetricKNeighborsClassifier",
    "distances",
    "exceptions",
    "kneighbors",
    "neighbors",
    "pairwise_distances",
    "pairwise_distances_chunked",
    "radius_neighbors",
    "ITML",
    "ITML_Supervised",
    "MMC",
    "MMC_Supervised",
    "SDML",
    "SDML_Supervised",
    "KernelPCA",
    "make_kernel_learner",
    "LFDA",
    "LMNN",
    "NCA",
    "LSML",
    "LSML_Supervised",
    "MLKR",
    "RCA",
    "RCA_Supervised",
    "SCML",
    "SCML_Supervised",
    "MahalanobisMixin",
    "PairsClassifierMixin",
    "QuadrupletsClassifierMixin",
    "TripletsClassifierMixin",
    "wrap_pairs",
    "make_pair_scorer",
    "make_retrieval_scorer",
    "metrics",
]
