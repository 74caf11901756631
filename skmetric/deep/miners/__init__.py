"""Miners: pick the informative pairs or triplets of a batch for a loss.

A miner is called as ``miner(embeddings, labels, ref_emb=None, ref_labels=None)`` and
returns 1-D ``torch.long`` index tensors, pairs ``(a1, p, a2, n)`` or triplets
``(a, p, n)`` as its ``output`` attribute says; every loss accepts both formats.
"""

from .._registry import lookup
from ._base import BaseMiner
from .angular import AngularMiner
from .batch_easy_hard import BatchEasyHardMiner
from .batch_hard import BatchHardMiner
from .distance_weighted import DistanceWeightedMiner
from .hdc import HDCMiner
from .lifted import LiftedMiner
from .multi_similarity import MultiSimilarityMiner
from .npairs import NPairsMiner
from .pair_margin import PairMarginMiner
from .random import AllTuplesMiner, RandomMiner
from .triplet_margin import (
    EasyTripletMiner,
    HardTripletMiner,
    SemihardTripletMiner,
    TripletMarginMiner,
)
from .uniform_histogram import UniformHistogramMiner

#: Registered miners by name; ``get_miner`` also accepts case and '-'/'_' variants.
MINERS = {
    "all": AllTuplesMiner,
    "random": RandomMiner,
    "triplet_margin": TripletMarginMiner,
    "hard": HardTripletMiner,
    "semihard": SemihardTripletMiner,
    "easy": EasyTripletMiner,
    "batch_hard": BatchHardMiner,
    "distance_weighted": DistanceWeightedMiner,
    "multi_similarity": MultiSimilarityMiner,
    "npairs": NPairsMiner,
    "lifted": LiftedMiner,
    # batch B
    "pair_margin": PairMarginMiner,
    "batch_easy_hard": BatchEasyHardMiner,
    "angular": AngularMiner,
    "hdc": HDCMiner,
    "uniform_histogram": UniformHistogramMiner,
}

#: Extra names accepted by ``get_miner``.
ALIASES = {
    "uniform": "random",
    "semi_hard": "semihard",
    "hard_triplet": "hard",
    "semihard_triplet": "semihard",
    "easy_triplet": "easy",
    "n_pairs": "npairs",
    "lifted_structure": "lifted",
}


def get_miner(miner, **params):
    """Return a miner from a registered name, a miner object, or None.

    Parameters
    ----------
    miner : str, callable or None
        A name in :data:`MINERS` or :data:`ALIASES` (case-insensitive; '-', '_' and a
        trailing 'miner' are ignored), any callable with the miner signature (returned as
        is), or None (no mining: the loss uses all tuples; returns None).
    **params
        Keyword arguments for the miner class (only with a name).

    Examples
    --------
    >>> from skmetric.deep.miners import get_miner
    >>> get_miner("semihard", margin=0.1).type_of_triplets
    'semihard'
    """
    return lookup("miner", miner, params, optional=True)


__all__ = [
    "ALIASES",
    "MINERS",
    "AllTuplesMiner",
    "AngularMiner",
    "BaseMiner",
    "BatchEasyHardMiner",
    "BatchHardMiner",
    "DistanceWeightedMiner",
    "EasyTripletMiner",
    "HDCMiner",
    "HardTripletMiner",
    "LiftedMiner",
    "MultiSimilarityMiner",
    "NPairsMiner",
    "PairMarginMiner",
    "RandomMiner",
    "SemihardTripletMiner",
    "TripletMarginMiner",
    "UniformHistogramMiner",
    "get_miner",
]
