"""Instance loss (Zheng et al., 2020)."""

import torch
import torch.nn.functional as F

from .._docstrings import loss_example
from .._params import POSITIVE
from ._base import BaseLoss, mean_or_zero


@loss_example()
class InstanceLoss(BaseLoss):
    """Cross-entropy of the scaled cosine similarities of the batch, one class per label.

    The logits of sample i are ``gamma * cos(x_i, x_j)`` over the batch samples j, and its
    target is the rank of its label among the batch's distinct labels, exactly as in
    pytorch-metric-learning; the losses are averaged over the batch. Miners and reference
    embeddings are not supported.

    Parameters
    ----------
    gamma : float, default=64.0
        Scale of the cosine logits.
    distance : 'cosine_similarity'
    normalize : True

    References
    ----------
    Zheng, Zheng, Garrett, Yang, Xu and Shen, "Dual-Path Convolutional Image-Text
    Embeddings with Instance Loss", ACM TOMM 2020.
    """

    supports_reducer = True  # per-sample ("element") terms, as in PML

    allowed_distances = ("cosine_similarity",)
    takes_indices_tuple = takes_ref_emb = False  # it compares the whole batch with itself
    _parameter_constraints = {"gamma": [POSITIVE]}

    def __init__(self, gamma=64.0, distance="cosine_similarity", normalize=True):
        super().__init__(distance=distance, normalize=normalize)
        self.gamma = gamma

    def compute_loss(self, embeddings, labels, indices_tuple, ref_emb, ref_labels):
        targets = dense_ranks(labels)
        # gamma * cos: scaling the (n, d) unit vectors on one side costs d/n of scaling the
        # (n, n) matrix, forward and backward
        unit = F.normalize(embeddings, p=2, dim=1)  # (its only distance is the cosine)
        logits = (self.gamma * unit) @ unit.T
        if self.reducer is None:
            return F.cross_entropy(logits, targets)
        losses = F.cross_entropy(logits, targets, reduction="none")
        anchors = torch.arange(len(embeddings), device=embeddings.device)
        return self.reduce(losses, anchors, "element", embeddings, labels, mean_or_zero)


def dense_ranks(labels):
    """``torch.unique(labels, return_inverse=True)[1]`` without a host sync: each label's
    rank among the distinct labels."""
    sorted_labels, order = torch.sort(labels, stable=True)
    new = torch.ones_like(sorted_labels, dtype=torch.long)
    new[1:] = (sorted_labels[1:] != sorted_labels[:-1]).long()
    return torch.empty_like(order).scatter_(0, order, torch.cumsum(new, 0) - 1)
