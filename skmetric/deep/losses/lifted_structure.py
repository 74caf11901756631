"""Lifted structure losses: Song et al.'s original form and the generalised form."""

import torch

from .._docstrings import loss_example
from .._params import FINITE
from .._tuples import to_pairs
from ._base import BaseLoss, masked_logsumexp, zero_loss
from ._options import COLUMN_TERMS


class _LiftedStructureBase(BaseLoss):
    """The margins (and reducer rules) both lifted structure losses share."""

    supports_reducer = True
    refuses_class_weights = COLUMN_TERMS  # PML's (n, 1) terms (see _options)

    _parameter_constraints = {"neg_margin": [FINITE], "pos_margin": [FINITE]}

    def __init__(self, neg_margin=1.0, pos_margin=0.0, distance="euclidean", normalize=True):
        super().__init__(distance=distance, normalize=normalize)
        self.neg_margin = neg_margin
        self.pos_margin = pos_margin


@loss_example()
class LiftedStructureLoss(_LiftedStructureBase):
    """Song et al.'s lifted structure loss: each positive pair against all its negatives.

    For a positive pair (i, j), ``J = log(sum_k exp(neg_margin - d(i, k)) +
    sum_l exp(neg_margin - d(j, l))) + d(i, j) - pos_margin`` with k, l running over the
    negative pairs anchored at i and at j; the loss is ``mean(relu(J)^2) / 2`` over the
    positive pairs. The log-sum-exp is a smooth form of hard-negative mining.

    Parameters
    ----------
    neg_margin : float, default=1.0
        The margin negatives should clear.
    pos_margin : float, default=0.0
        Positive distances below this cost nothing.
    distance : {'euclidean', 'sqeuclidean', 'cosine_similarity', 'dot'}, default='euclidean'
    normalize : bool, default=True

    References
    ----------
    Oh Song, Xiang, Jegelka and Savarese, "Deep Metric Learning via Lifted Structured
    Feature Embedding", CVPR 2016.
    """

    def compute_loss(self, embeddings, labels, indices_tuple, ref_emb, ref_labels):
        a1, p, a2, n = to_pairs(indices_tuple, labels, ref_labels)
        if len(a1) == 0 or len(a2) == 0:
            return zero_loss(embeddings)
        mat = self.distance_matrix(embeddings, ref_emb)
        # Per-anchor log-sum-exp over its negative pairs (duplicates count, as listed),
        # computed once per anchor instead of once per positive pair.
        logits = self.dist.margin(self.neg_margin, mat[a2, n])
        n_rows = max(mat.shape)  # anchors index rows, positives columns
        row_max = torch.full((n_rows,), float("-inf"), dtype=mat.dtype, device=mat.device)
        row_max = row_max.scatter_reduce(0, a2, logits.detach(), reduce="amax")
        has_neg = torch.isfinite(row_max)
        row_max = torch.where(has_neg, row_max, torch.zeros_like(row_max))
        sums = torch.zeros(n_rows, dtype=mat.dtype, device=mat.device)
        sums = sums.index_add(0, a2, torch.exp(logits - row_max[a2]))
        # Combine the two anchors' sums; a pair (i, i) counts its negatives once.
        lowest = torch.finfo(mat.dtype).min
        max_a = torch.where(has_neg[a1], row_max[a1], lowest)
        max_p = torch.where(has_neg[p] & (a1 != p), row_max[p], lowest)
        shift = torch.maximum(max_a, max_p)
        both = torch.where(has_neg[a1], sums[a1] * torch.exp(max_a - shift), 0.0)
        both = both + torch.where(max_p > lowest, sums[p] * torch.exp(max_p - shift), 0.0)
        any_neg = both > 0
        neg_term = torch.where(any_neg, torch.log(torch.where(any_neg, both, 1.0)) + shift, 0.0)
        per_pair = torch.relu(neg_term + self.dist.margin(mat[a1, p], self.pos_margin)) ** 2
        if self.reducer is None:
            return (per_pair / 2).mean()
        return self.reduce(per_pair / 2, (a1, p), "pos_pair", embeddings, labels, None)


@loss_example()
class GeneralizedLiftedStructureLoss(_LiftedStructureBase):
    """The generalised lifted structure loss of Hermans et al. (2017), per anchor.

    ``loss_i = relu(log sum_p exp(d(i, p) - pos_margin) + log sum_n exp(neg_margin -
    d(i, n)))``, averaged over all anchors (anchors without positives or negatives
    contribute a zero term for that sum).

    Parameters
    ----------
    neg_margin : float, default=1.0
    pos_margin : float, default=0.0
    distance : {'euclidean', 'sqeuclidean', 'cosine_similarity', 'dot'}, default='euclidean'
    normalize : bool, default=True

    References
    ----------
    Hermans, Beyer and Leibe, "In Defense of the Triplet Loss for Person
    Re-Identification", 2017, eq. (6).
    """

    def compute_loss(self, embeddings, labels, indices_tuple, ref_emb, ref_labels):
        mat, pos, neg = self.matrix_and_masks(embeddings, labels, indices_tuple, ref_emb,
                                              ref_labels)
        pos_term = masked_logsumexp(self.dist.margin(mat, self.pos_margin), pos)
        neg_term = masked_logsumexp(self.dist.margin(self.neg_margin, mat), neg)
        losses = torch.relu(pos_term + neg_term)
        if self.reducer is None:
            return losses.mean()
        anchors = torch.arange(len(embeddings), device=embeddings.device)
        return self.reduce(losses, anchors, "element", embeddings, labels, None)
