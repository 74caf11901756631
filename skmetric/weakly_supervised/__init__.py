"""Learners fitted on tuples of samples (pairs, triplets, quadruplets), each with a
``*_Supervised`` variant that draws the tuples from class labels.

Each estimator is also importable from the package root (``from skmetric import ITML``).
"""

from ._itml import ITML, ITML_Supervised
from ._lsml import LSML, LSML_Supervised
from ._mmc import MMC, MMC_Supervised
from ._scml import SCML, SCML_Supervised
from ._sdml import SDML, SDML_Supervised

__all__ = ["ITML", "ITML_Supervised", "LSML", "LSML_Supervised", "MMC", "MMC_Supervised",
           "SCML", "SCML_Supervised", "SDML", "SDML_Supervised"]
