"""Neighbourhood components analysis as a batch loss (Goldberger et al., 2005)."""

import torch

from .._docstrings import loss_example
from .._params import POSITIVE
from ._base import BaseLoss, zero_loss
from ._terms import miner_weights


@loss_example()
class NCALoss(BaseLoss):
    """Maximise each sample's probability of picking a same-class neighbour by softmax.

    ``p_ij = softmax_j(-softmax_scale * d(x_i, x_j))`` over the reference samples (the
    batch, minus ``i`` itself), and ``loss_i = -log sum_{j: y_j = y_i} p_ij``, averaged over
    the samples whose probability is not zero. A miner's tuples only weight the samples
    (by how often they occur, relative to the most frequent), as in
    pytorch-metric-learning. The classical estimator is :class:`skmetric.NCA`; this is its
    loss for embedding networks.

    Parameters
    ----------
    softmax_scale : float, default=1.0
        Inverse temperature of the softmax.
    distance : {'sqeuclidean', 'euclidean', 'cosine_similarity', 'dot'}, default='sqeuclidean'
        Distances are negated to serve as logits (as in the paper: squared Euclidean).
    normalize : bool, default=True

    Notes
    -----
    When no sample has a same-class neighbour, the loss is a (differentiable) zero where
    pytorch-metric-learning returns NaN (the mean of no terms).

    References
    ----------
    Goldberger, Roweis, Hinton and Salakhutdinov, "Neighbourhood Components Analysis",
    NeurIPS 2005.
    """

    supports_reducer = True  # per-sample ("element") terms, as in PML

    _parameter_constraints = {"softmax_scale": [POSITIVE]}

    def __init__(self, softmax_scale=1.0, distance="sqeuclidean", normalize=True):
        super().__init__(distance=distance, normalize=normalize)
        self.softmax_scale = softmax_scale

    def compute_loss(self, embeddings, labels, indices_tuple, ref_emb, ref_labels):
        if len(embeddings) <= 1:
            return zero_loss(embeddings)
        weights = miner_weights(indices_tuple, len(embeddings), embeddings.dtype,
                                embeddings.device, anchors_only=ref_emb is not None)
        # scale times the similarity, or minus the distance: one pass over the matrix
        sign = 1.0 if self.dist.is_similarity else -1.0
        logits = self.distance_matrix(embeddings, ref_emb) * (sign * self.softmax_scale)
        if ref_emb is None:  # i is not its own neighbour (in place: the product is fresh)
            logits.fill_diagonal_(torch.finfo(logits.dtype).min)
        # (the diagonal of `same` needs no clearing: its probability is 0)
        same = labels[:, None] == (labels if ref_labels is None else ref_labels)[None, :]
        prob = torch.where(same, torch.softmax(logits, dim=1), 0.0).sum(1)
        nonzero = prob != 0
        # Terms with prob 0 are -log(1) = 0: clamping the count keeps PML's zero, sync-free.
        losses = -torch.log(torch.where(nonzero, prob, 1.0)) * weights
        if self.reducer is None:
            return losses.sum() / nonzero.sum().clamp(min=1)
        # PML's terms: the samples with a non-zero probability of a same-class neighbour
        kept = torch.arange(len(embeddings), device=embeddings.device)[nonzero]
        return self.reduce(losses[nonzero], kept, "element", embeddings, labels, None)
