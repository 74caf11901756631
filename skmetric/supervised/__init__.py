"""Learners fitted on samples and their labels: class labels (NCA, LMNN, LFDA,
RCA_Supervised), regression targets (MLKR), chunks (RCA) or none (Covariance).

Each estimator is also importable from the package root (``from skmetric import NCA``).
"""

from ._covariance import Covariance
from ._lfda import LFDA
from ._lmnn import LMNN
from ._mlkr import MLKR
from ._nca import NCA
from ._rca import RCA, RCA_Supervised

__all__ = ["Covariance", "LFDA", "LMNN", "MLKR", "NCA", "RCA", "RCA_Supervised"]
