"""Deep metric learning with torch (the ``deep`` extra): losses, miners, embedders."""

from .._optional import import_optional

import_optional("torch", feature="skmetric.deep")
import_optional("skorch", feature="skmetric.deep")

from . import datasets, losses, miners, networks  # noqa: E402
from ._embedder import MetricEmbedder  # noqa: E402
from ._probabilistic import ProbabilisticEmbedder  # noqa: E402
from ._sampler import ClassBalancedBatchSampler  # noqa: E402
from .losses import CrossBatchMemory, MultipleLosses, SelfSupervisedLoss  # noqa: E402
from .networks import MLP, SmallCNN  # noqa: E402

__all__ = [
    "MLP",
    "ClassBalancedBatchSampler",
    "CrossBatchMemory",
    "MetricEmbedder",
    "MultipleLosses",
    "ProbabilisticEmbedder",
    "SelfSupervisedLoss",
    "SmallCNN",
    "datasets",
    "losses",
    "miners",
    "networks",
]
