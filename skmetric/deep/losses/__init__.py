"""Pair-based metric losses and their registry.

Every loss is an ``nn.Module`` called as ``loss(embeddings, labels, indices_tuple=None,
ref_emb=None, ref_labels=None)`` that returns a scalar tensor; ``indices_tuple`` is a
miner's output (pairs or triplets) and None means all valid tuples of the batch.
"""

from .._registry import lookup
from ._base import BaseLoss

# Classification-based (proxy) losses: they own learnable class weights.
from ._proxy_base import BaseProxyLoss  # noqa: E402
from .angular import AngularLoss
from .arcface import ArcFaceLoss, SubCenterArcFaceLoss  # noqa: E402
from .circle import CircleLoss
from .circle_class import ClassCircleLoss  # noqa: E402
from .contrastive import ContrastiveLoss
from .cosface import CosFaceLoss  # noqa: E402
from .cross_batch_memory import CrossBatchMemory  # wrapper: takes a loss object
from .dynamic_soft_margin import DynamicSoftMarginLoss
from .fast_ap import FastAPLoss
from .histogram import HistogramLoss
from .instance import InstanceLoss
from .intra_pair_variance import IntraPairVarianceLoss
from .l2_softmax import L2SoftmaxLoss  # noqa: E402
from .large_margin_softmax import LargeMarginSoftmaxLoss, SphereFaceLoss  # noqa: E402
from .lifted_structure import GeneralizedLiftedStructureLoss, LiftedStructureLoss
from .manifold import ManifoldLoss  # noqa: E402
from .margin import MarginLoss
from .multi_similarity import MultiSimilarityLoss
from .multiple_losses import MultipleLosses  # wrapper: takes loss objects
from .nca import NCALoss
from .normface import NormFaceLoss  # noqa: E402
from .npairs import NPairsLoss
from .ntxent import NTXentLoss
from .p2sgrad import P2SGradLoss  # noqa: E402
from .pnp import PNPLoss
from .proxy_anchor import ProxyAnchorLoss  # noqa: E402
from .proxy_nca import ProxyNCALoss  # noqa: E402
from .ranked_list import RankedListLoss
from .reducers import (
    AvgNonZeroReducer,
    BaseReducer,
    ClassWeightedReducer,
    MeanReducer,
    PerAnchorReducer,
    ThresholdReducer,
)
from .regularizers import (
    BaseRegularizer,
    CenterInvariantRegularizer,
    LpRegularizer,
    RegularFaceRegularizer,
    SparseCentersRegularizer,
    ZeroMeanRegularizer,
)
from .self_supervised import SelfSupervisedLoss  # wrapper: takes a loss object
from .smooth_ap import SmoothAPLoss
from .snr_contrastive import SignalToNoiseRatioContrastiveLoss
from .soft_triple import SoftTripleLoss  # noqa: E402
from .supcon import SupConLoss
from .threshold_consistent_margin import ThresholdConsistentMarginLoss
from .triplet_margin import TripletMarginLoss
from .tuplet_margin import TupletMarginLoss
from .vicreg import VICRegLoss

#: Registered losses by name; ``get_loss`` also accepts case and '-'/'_' variants.
LOSSES = {
    "contrastive": ContrastiveLoss,
    "triplet_margin": TripletMarginLoss,
    "lifted_structure": LiftedStructureLoss,
    "generalized_lifted_structure": GeneralizedLiftedStructureLoss,
    "npairs": NPairsLoss,
    "multi_similarity": MultiSimilarityLoss,
    "margin": MarginLoss,
    "circle": CircleLoss,
    # proxy losses (requires_classes = True)
    "l2_softmax": L2SoftmaxLoss,
    "normface": NormFaceLoss,
    "large_margin_softmax": LargeMarginSoftmaxLoss,
    "sphereface": SphereFaceLoss,
    "cosface": CosFaceLoss,
    "arcface": ArcFaceLoss,
    "subcenter_arcface": SubCenterArcFaceLoss,
    "proxy_nca": ProxyNCALoss,
    "proxy_anchor": ProxyAnchorLoss,
    "soft_triple": SoftTripleLoss,
    "class_circle": ClassCircleLoss,
    "p2sgrad": P2SGradLoss,
    # batch B
    "supcon": SupConLoss,
    "tuplet_margin": TupletMarginLoss,
    "snr_contrastive": SignalToNoiseRatioContrastiveLoss,
    "smooth_ap": SmoothAPLoss,
    "ranked_list": RankedListLoss,
    "pnp": PNPLoss,
    "threshold_consistent_margin": ThresholdConsistentMarginLoss,
    # self-supervised: loss(z1, ref_emb=z2), no labels (MetricEmbedder cannot use it)
    "vicreg": VICRegLoss,
    # batch A: pytorch-metric-learning losses added for issue #17
    "ntxent": NTXentLoss,
    "nca": NCALoss,
    "fast_ap": FastAPLoss,
    "angular": AngularLoss,
    "intra_pair_variance": IntraPairVarianceLoss,
    "instance": InstanceLoss,
    "histogram": HistogramLoss,
    "dynamic_soft_margin": DynamicSoftMarginLoss,
    "manifold": ManifoldLoss,  # a proxy loss (requires_classes)
}

#: Extra names accepted by ``get_loss``.
ALIASES = {"am_softmax": "cosface", "normalized_softmax": "normface",
           "lsoftmax": "large_margin_softmax", "a_softmax": "sphereface",
           "triplet": "triplet_margin", "n_pair": "npairs", "lifted": "lifted_structure",
           "signal_to_noise_ratio_contrastive": "snr_contrastive",
           "supervised_contrastive": "supcon", "tcm": "threshold_consistent_margin",
           "infonce": "ntxent", "nt_xent": "ntxent"}


def get_loss(loss, **params):
    """Return a loss module from a registered name or a module instance.

    Parameters
    ----------
    loss : str or nn.Module
        A name in :data:`LOSSES` or :data:`ALIASES` (case-insensitive; '-', '_' and a
        trailing 'loss' are ignored, so ``'TripletMarginLoss'`` and ``'triplet-margin'``
        both work), or an
        ``nn.Module`` instance, returned as is.
    **params
        Keyword arguments for the loss class (only with a name).

    Returns
    -------
    loss : nn.Module

    Examples
    --------
    >>> from skmetric.deep.losses import get_loss
    >>> get_loss("triplet_margin", margin=0.1).margin
    0.1
    """
    return lookup("loss", loss, params)


__all__ = [
    "ALIASES",
    "LOSSES",
    "AngularLoss",
    "ArcFaceLoss",
    "BaseLoss",
    "BaseProxyLoss",
    "ClassCircleLoss",
    "CosFaceLoss",
    "L2SoftmaxLoss",
    "ManifoldLoss",
    "LargeMarginSoftmaxLoss",
    "NormFaceLoss",
    "P2SGradLoss",
    "PNPLoss",
    "ProxyAnchorLoss",
    "ProxyNCALoss",
    "SoftTripleLoss",
    "SphereFaceLoss",
    "SubCenterArcFaceLoss",
    "CircleLoss",
    "ContrastiveLoss",
    "DynamicSoftMarginLoss",
    "FastAPLoss",
    "GeneralizedLiftedStructureLoss",
    "HistogramLoss",
    "InstanceLoss",
    "IntraPairVarianceLoss",
    "LiftedStructureLoss",
    "MarginLoss",
    "MultiSimilarityLoss",
    "NPairsLoss",
    "ThresholdConsistentMarginLoss",
    "NCALoss",
    "NTXentLoss",
    "TripletMarginLoss",
    "VICRegLoss",
    "RankedListLoss",
    "SignalToNoiseRatioContrastiveLoss",
    "SmoothAPLoss",
    "SupConLoss",
    "TupletMarginLoss",
    "get_loss",
    # wrappers
    "CrossBatchMemory",
    "MultipleLosses",
    "SelfSupervisedLoss",
    # regularizers and reducers
    "BaseRegularizer",
    "CenterInvariantRegularizer",
    "LpRegularizer",
    "RegularFaceRegularizer",
    "SparseCentersRegularizer",
    "ZeroMeanRegularizer",
    "AvgNonZeroReducer",
    "BaseReducer",
    "ClassWeightedReducer",
    "MeanReducer",
    "PerAnchorReducer",
    "ThresholdReducer",
]
