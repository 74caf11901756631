"""Batch-hard miner (Hermans et al., 2017)."""


from .. import _sync
from ._base import BaseMiner


class BatchHardMiner(BaseMiner):
    """For each anchor, its farthest positive and its closest negative: one triplet per anchor.

    Anchors without a positive or a negative in the batch are skipped.

    Parameters
    ----------
    distance : {'euclidean', 'sqeuclidean', 'cosine_similarity', 'dot'}, default='euclidean'
    normalize : bool, default=True

    References
    ----------
    Hermans, Beyer and Leibe, "In Defense of the Triplet Loss for Person
    Re-Identification", 2017.

    Examples
    --------
    >>> import torch
    >>> from skmetric.deep.miners import BatchHardMiner
    >>> a, p, n = BatchHardMiner()(torch.randn(8, 4), torch.tensor([0, 0, 1, 1, 2, 2, 3, 3]))
    >>> len(a)
    8
    """

    output = "triplets"

    def mine(self, embeddings, labels, ref_emb, ref_labels):
        mat, pos, neg = self.matrix_and_masks(embeddings, labels, ref_emb, ref_labels)
        # "Farther" is larger for distances and smaller for similarities: work on its sign.
        far = -mat if self.dist.is_similarity else mat
        p = far.masked_fill(~pos, float("-inf")).argmax(1)
        n = far.masked_fill(~neg, float("inf")).argmin(1)
        (a,) = _sync.where(pos.any(1) & neg.any(1))
        return a, p[a], n[a]
