"""Lifted-structure miner: the positive pairs and the negatives of their anchors."""


from .. import _sync
from .._params import FINITE
from .._tuples import label_masks
from ._base import BaseMiner


class LiftedMiner(BaseMiner):
    """Every positive pair, and the negative pairs anchored at a sample that has a positive.

    This is the tuple set of Song et al.'s lifted structure loss, whose log-sum-exp over
    these negatives is a smooth form of hard-negative mining. With ``neg_margin`` set, only
    the negatives closer than it (those with a non-zero hinge, ``d(a, n) < neg_margin``)
    are kept: a hard cut of the smooth one.

    Parameters
    ----------
    neg_margin : float or None, default=None
        Keep only the negatives closer than this (farther ones would cost the loss
        nothing); None keeps them all.
    distance : {'euclidean', 'sqeuclidean', 'cosine_similarity', 'dot'}, default='euclidean'
        The distance ``neg_margin`` applies to (unused without it).
    normalize : bool, default=True

    References
    ----------
    Oh Song, Xiang, Jegelka and Savarese, "Deep Metric Learning via Lifted Structured
    Feature Embedding", CVPR 2016.

    Examples
    --------
    >>> import torch
    >>> from skmetric.deep.miners import LiftedMiner
    >>> a1, p, a2, n = LiftedMiner()(torch.randn(6, 4), torch.tensor([0, 0, 1, 1, 2, 3]))
    >>> len(a1), len(a2)
    (4, 16)
    """

    output = "pairs"

    _parameter_constraints = {"neg_margin": [None, FINITE]}

    def __init__(self, neg_margin=None, distance="euclidean", normalize=True):
        super().__init__(distance=distance, normalize=normalize)
        self.neg_margin = neg_margin

    def mine(self, embeddings, labels, ref_emb, ref_labels):
        pos, neg = label_masks(labels, ref_labels)
        neg = neg & pos.any(1, keepdim=True)
        if self.neg_margin is not None:
            mat = self.dist(embeddings, ref_emb)
            neg &= self.dist.margin(self.neg_margin, mat) > 0
        return _sync.where(pos, neg)  # one sync: the two lengths
