"""Contrastive loss (Hadsell et al., 2006)."""

import torch

from .._docstrings import loss_example
from .._params import FINITE
from .._tuples import label_masks, to_pairs
from ._base import BaseLoss, mean_nonzero


@loss_example(neg_margin=1.0)
class ContrastiveLoss(BaseLoss):
    """Pull positive pairs within ``pos_margin``, push negative pairs beyond ``neg_margin``.

    ``loss = mean+[relu(d(a1, p) - pos_margin)] + mean+[relu(neg_margin - d(a2, n))]`` where
    ``mean+`` averages over the pairs with a non-zero loss (for a similarity the signs flip).

    Parameters
    ----------
    pos_margin : float, default=0.0
        Positive pairs closer than this cost nothing.
    neg_margin : float, default=1.0
        Negative pairs farther than this cost nothing.
    distance : {'euclidean', 'sqeuclidean', 'cosine_similarity', 'dot'}, default='euclidean'
        The pairwise distance.
    normalize : bool, default=True
        L2-normalise the embeddings first.
    reducer : reducer, default=None
        Reduces the positive and the negative pair terms (each, then adds them); None is
        the mean of the non-zero ones (``AvgNonZeroReducer``).

    References
    ----------
    Hadsell, Chopra and LeCun, "Dimensionality Reduction by Learning an Invariant
    Mapping", CVPR 2006.
    """

    supports_reducer = True

    _parameter_constraints = {"pos_margin": [FINITE], "neg_margin": [FINITE]}

    def __init__(self, pos_margin=0.0, neg_margin=1.0, distance="euclidean", normalize=True):
        super().__init__(distance=distance, normalize=normalize)
        self.pos_margin = pos_margin
        self.neg_margin = neg_margin

    def compute_loss(self, embeddings, labels, indices_tuple, ref_emb, ref_labels):
        mat = self.distance_matrix(embeddings, ref_emb)
        if indices_tuple is None and self.reducer is None:
            # All pairs, masked in place: no index lists (whose length is a host sync).
            pos, neg = label_masks(labels, ref_labels)
            # Two fresh (n, n) tensors per kind of pair: the margin's (made a hinge in place)
            # and the masked one; every (n, n) temporary is a page-faulted allocation.
            pos_loss = torch.where(pos, self.dist.margin(mat, self.pos_margin).relu_(), 0.0)
            neg_loss = torch.where(neg, self.dist.margin(self.neg_margin, mat).relu_(), 0.0)
            return (mean_nonzero(pos_loss, embeddings, nonnegative=True)
                    + mean_nonzero(neg_loss, embeddings, nonnegative=True))
        a1, p, a2, n = to_pairs(indices_tuple, labels, ref_labels)
        pos_loss = torch.relu(self.dist.margin(mat[a1, p], self.pos_margin))
        neg_loss = torch.relu(self.dist.margin(self.neg_margin, mat[a2, n]))
        return (self.reduce(pos_loss, (a1, p), "pos_pair", embeddings, labels, mean_nonzero)
                + self.reduce(neg_loss, (a2, n), "neg_pair", embeddings, labels, mean_nonzero))
