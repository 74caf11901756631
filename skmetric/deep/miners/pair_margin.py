"""Pair margin miner: the positive and negative pairs that violate their margins."""


from .. import _sync
from .._params import FINITE
from ._base import BaseMiner


class PairMarginMiner(BaseMiner):
    """Positive pairs farther than ``pos_margin`` and negative pairs closer than ``neg_margin``.

    For a similarity the comparisons flip: positives with ``s < pos_margin`` and negatives
    with ``s > neg_margin``. Pairs are returned in row-major order.

    Parameters
    ----------
    pos_margin : float, default=0.2
        The positive pairs beyond it (less similar, for a similarity) are mined.
    neg_margin : float, default=0.8
        The negative pairs within it (more similar, for a similarity) are mined.
    distance : {'euclidean', 'sqeuclidean', 'cosine_similarity', 'dot'}, default='euclidean'
    normalize : bool, default=True

    References
    ----------
    pytorch-metric-learning's ``PairMarginMiner``; the selection rule of the contrastive
    loss (Hadsell, Chopra and LeCun, CVPR 2006) used as a miner.

    Examples
    --------
    >>> import torch
    >>> from skmetric.deep.miners import PairMarginMiner
    >>> a1, p, a2, n = PairMarginMiner(0.2, 0.8)(torch.randn(8, 4),
    ...                                          torch.tensor([0, 0, 1, 1, 2, 2, 3, 3]))
    >>> a1.dtype
    torch.int64
    """

    output = "pairs"

    _parameter_constraints = {"pos_margin": [FINITE], "neg_margin": [FINITE]}

    def __init__(self, pos_margin=0.2, neg_margin=0.8, distance="euclidean", normalize=True):
        super().__init__(distance=distance, normalize=normalize)
        self.pos_margin = pos_margin
        self.neg_margin = neg_margin

    def mine(self, embeddings, labels, ref_emb, ref_labels):
        mat, pos, neg = self.matrix_and_masks(embeddings, labels, ref_emb, ref_labels)
        # margin(x, y) > 0 means x is farther than y, for distances and similarities alike.
        hard_pos = pos & (self.dist.margin(mat, self.pos_margin) > 0)
        hard_neg = neg & (self.dist.margin(self.neg_margin, mat) > 0)
        return _sync.where(hard_pos, hard_neg)  # one sync: the two lengths
