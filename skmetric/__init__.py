"""skmetric: scikit-learn-style metric learning.

Classical Mahalanobis learners, kernel methods, deep embedders (``skmetric.deep``, the
``deep`` extra), GPU-ready distances and evaluation metrics, all usable in scikit-learn's
``Pipeline`` and ``GridSearchCV``.
"""

from . import distances, metrics, neighbors
from ._base import (
    MahalanobisMixin,
    PairsClassifierMixin,
    QuadrupletsClassifierMixin,
    TripletsClassifierMixin,
)
from ._constraints import Constraints, wrap_pairs
from ._covariance import Covariance
from ._itml import ITML, ITML_Supervised
from ._kernel_learning import make_kernel_learner
from ._kernel_pca import KernelPCA
from ._lfda import LFDA
from ._lmnn import LMNN
from ._lsml import LSML, LSML_Supervised
from ._mlkr import MLKR
from ._mmc import MMC, MMC_Supervised
from ._nca import NCA
from ._rca import RCA, RCA_Supervised
from ._scml import SCML, SCML_Supervised
from ._sdml import SDML, SDML_Supervised
from .distances import pairwise_distances
from .metrics import make_pair_scorer, make_retrieval_scorer
from .neighbors import MetricKNeighborsClassifier, kneighbors, radius_neighbors

__version__ = "0.1.0"

__all__ = [
    "Constraints",
    "Covariance",
    "MetricKNeighborsClassifier",
    "distances",
    "kneighbors",
    "neighbors",
    "pairwise_distances",
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
