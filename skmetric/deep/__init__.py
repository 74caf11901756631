"""Deep metric learning with torch (the ``deep`` extra): losses, miners, embedders."""

from .._optional import import_optional

import_optional("torch", feature="skmetric.deep")
import_optional("skorch", feature="skmetric.deep")

from . import datasets, distributed, losses, miners, networks, trunks  # noqa: E402
from ._embedder import MetricEmbedder  # noqa: E402
from ._probabilistic import ProbabilisticEmbedder  # noqa: E402
from ._sampler import ClassBalancedBatchSampler  # noqa: E402
from .distributed import (  # noqa: E402
    DistributedMetricEmbedder,
    DistributedProbabilisticEmbedder,
)
from .losses import (  # noqa: E402
    AvgNonZeroReducer,
    CenterInvariantRegularizer,
    ClassWeightedReducer,
    CrossBatchMemory,
    LpRegularizer,
    MeanReducer,
    MultipleLosses,
    PerAnchorReducer,
    RegularFaceRegularizer,
    SelfSupervisedLoss,
    SparseCentersRegularizer,
    ThresholdReducer,
    ZeroMeanRegularizer,
)
from .networks import MLP, SmallCNN  # noqa: E402
from .trunks import ImageTrunk, build_trunk  # noqa: E402

trunks.declare_missing_torchvision_ops()  # a CUDA torchvision next to a CPU torch imports

__all__ = [
    "AvgNonZeroReducer",
    "CenterInvariantRegularizer",
    "ClassWeightedReducer",
    "LpRegularizer",
    "MeanReducer",
    "PerAnchorReducer",
    "RegularFaceRegularizer",
    "SparseCentersRegularizer",
    "ThresholdReducer",
    "ZeroMeanRegularizer",
    "MLP",
    "ClassBalancedBatchSampler",
    "DistributedMetricEmbedder",
    "DistributedProbabilisticEmbedder",
    "CrossBatchMemory",
    "ImageTrunk",
    "MetricEmbedder",
    "MultipleLosses",
    "ProbabilisticEmbedder",
    "SelfSupervisedLoss",
    "SmallCNN",
    "build_trunk",
    "datasets",
    "distributed",
    "losses",
    "miners",
    "networks",
    "trunks",
]
