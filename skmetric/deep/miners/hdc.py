"""Hard-aware deeply cascaded (HDC) miner (Yuan et al., 2017)."""

import math
from numbers import Real

import torch

from ..._sklearn_compat import Interval
from .. import _sync
from .._tuples import label_masks
from ._base import BaseMiner


class HDCMiner(BaseMiner):
    """The hardest ``filter_percentage`` of the positive pairs and of the negative pairs.

    Keeps the ``ceil(filter_percentage * n_pos)`` farthest positive pairs and the
    ``ceil(filter_percentage * n_neg)`` closest negative pairs (for a similarity: the
    least and most similar), hardest first, as ``torch.topk`` orders them. Cascading
    several with decreasing percentages gives the paper's cascade of harder and harder
    pairs.

    Parameters
    ----------
    filter_percentage : float in (0, 1], default=0.5
    distance : {'euclidean', 'sqeuclidean', 'cosine_similarity', 'dot'}, default='euclidean'
    normalize : bool, default=True

    References
    ----------
    Yuan, Yang and Zhang, "Hard-Aware Deeply Cascaded Embedding", ICCV 2017.

    Examples
    --------
    >>> import torch
    >>> from skmetric.deep.miners import HDCMiner
    >>> a1, p, a2, n = HDCMiner(0.5)(torch.randn(8, 4), torch.tensor([0, 0, 1, 1, 2, 2, 3, 3]))
    >>> len(a1), len(a2)
    (4, 24)
    """

    output = "pairs"

    _parameter_constraints = {"filter_percentage": [Interval(Real, 0, 1, closed="right")]}

    def __init__(self, filter_percentage=0.5, distance="euclidean", normalize=True):
        super().__init__(distance=distance, normalize=normalize)
        self.filter_percentage = filter_percentage

    def mine(self, embeddings, labels, ref_emb, ref_labels):
        mat = self.dist(embeddings, ref_emb)
        pos, neg = label_masks(labels, ref_labels)
        farthest = not self.dist.is_similarity
        a1, p, a2, n = _sync.where(pos, neg)  # one sync: the two lengths
        return (*self._hardest(mat, a1, p, largest=farthest),
                *self._hardest(mat, a2, n, largest=not farthest))

    def _hardest(self, mat, rows, cols, largest):
        if len(rows) == 0:
            return rows, cols
        k = math.ceil(self.filter_percentage * len(rows))
        idx = torch.topk(mat[rows, cols], k=k, largest=largest).indices
        return rows[idx], cols[idx]
