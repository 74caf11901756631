"""Multi-similarity miner (Wang et al., 2019)."""


from .. import _sync
from .._params import FINITE
from ._base import BaseMiner


class MultiSimilarityMiner(BaseMiner):
    """Pairs that are hard relative to the anchor's other pairs.

    A positive pair is kept if it is less similar than the anchor's most similar negative
    plus ``epsilon``; a negative pair if it is more similar than the anchor's least similar
    positive minus ``epsilon``. (With a distance, "similar" means "close".)

    Parameters
    ----------
    epsilon : float, default=0.1
        The slack of both comparisons: larger keeps more pairs.
    distance : {'cosine_similarity', 'dot', 'euclidean', 'sqeuclidean'}, default='cosine_similarity'
        What "similar" means (with a distance: close).
    normalize : bool, default=True

    References
    ----------
    Wang, Han, Huang, Dong and Scott, "Multi-Similarity Loss with General Pair Weighting
    for Deep Metric Learning", CVPR 2019.

    Examples
    --------
    >>> import torch
    >>> from skmetric.deep.miners import MultiSimilarityMiner
    >>> len(MultiSimilarityMiner()(torch.randn(8, 4), torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])))
    4
    """

    output = "pairs"

    _parameter_constraints = {"epsilon": [FINITE]}

    def __init__(self, epsilon=0.1, distance="cosine_similarity", normalize=True):
        super().__init__(distance=distance, normalize=normalize)
        self.epsilon = epsilon

    def mine(self, embeddings, labels, ref_emb, ref_labels):
        mat, pos, neg = self.matrix_and_masks(embeddings, labels, ref_emb, ref_labels)
        # Work on "closeness" c (similarity, or minus the distance): larger is more similar.
        c = mat if self.dist.is_similarity else -mat
        closest_neg = c.masked_fill(~neg, float("-inf")).amax(1, keepdim=True)
        farthest_pos = c.masked_fill(~pos, float("inf")).amin(1, keepdim=True)
        # One sync: the two lengths.
        return _sync.where(pos & (c - self.epsilon < closest_neg),
                           neg & (c + self.epsilon > farthest_pos))
