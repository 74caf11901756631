"""Deep metric learning with torch (the ``deep`` extra): losses, miners, embedders."""

from .._optional import import_optional

import_optional("torch", feature="skmetric.deep")
import_optional("skorch", feature="skmetric.deep")

from . import datasets, distributed, losses, miners, networks  # noqa: E402
from ._embedder import MetricEmbedder  # noqa: E402
from ._probabilistic import ProbabilisticEmbedder  # noqa: E402
from ._sampler import ClassBalancedBatchSampler  # noqa: E402
from .distributed import (  # noqa: E402
    DistributedMetricEmbedder,
    DistributedProbabilisticEmbedder,
)
from .networks import MLP, SmallCNN  # noqa: E402

__all__ = [
    "MLP",
    "ClassBalancedBatchSampler",
    "DistributedMetricEmbedder",
    "DistributedProbabilisticEmbedder",
    "MetricEmbedder",
    "ProbabilisticEmbedder",
    "SmallCNN",
    "datasets",
    "distributed",
    "losses",
    "miners",
    "networks",
]
