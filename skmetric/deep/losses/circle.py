"""Circle loss (Sun et al., 2020), pair-based form."""

import torch
import torch.nn.functional as F

from .._docstrings import loss_example
from .._params import FINITE, POSITIVE
from ._base import BaseLoss, masked_logsumexp, mean_nonzero
from ._options import COLUMN_TERMS


@loss_example()
class CircleLoss(BaseLoss):
    """Re-weight each similarity by its distance from its optimum, on a circular boundary.

    With cosine similarities s, ``loss_i = softplus(log sum_n exp(gamma a_n (s_n - m)) +
    log sum_p exp(-gamma a_p (s_p - 1 + m)))`` where ``a_p = relu(1 + m - s_p)`` and
    ``a_n = relu(s_n + m)`` are constants (no gradient); averaged over the anchors that
    have a positive and a negative and a non-zero loss.

    Parameters
    ----------
    m : float, default=0.4
        The relaxation margin.
    gamma : float, default=80.0
        The scale.
    distance : {'cosine_similarity'}, default='cosine_similarity'
        Circle loss is defined on cosine similarities only.
    normalize : bool, default=True
        Ignored (cosine always normalises); kept for a uniform signature.

    References
    ----------
    Sun, Cheng, Zhang, Zhang, Zheng, Wang and Wei, "Circle Loss: A Unified Perspective of
    Pair Similarity Optimization", CVPR 2020.
    """

    supports_reducer = True  # per-sample ("element") terms, as in PML
    refuses_class_weights = COLUMN_TERMS  # PML's (n, 1) terms (see _options)

    allowed_distances = ("cosine_similarity",)

    _parameter_constraints = {"m": [FINITE], "gamma": [POSITIVE]}

    def __init__(self, m=0.4, gamma=80.0, distance="cosine_similarity", normalize=True):
        super().__init__(distance=distance, normalize=normalize)
        self.m = m
        self.gamma = gamma

    def compute_loss(self, embeddings, labels, indices_tuple, ref_emb, ref_labels):
        sim, pos, neg = self.matrix_and_masks(embeddings, labels, indices_tuple, ref_emb,
                                              ref_labels)
        weight_p = torch.relu(1 + self.m - sim.detach())
        weight_n = torch.relu(sim.detach() + self.m)
        logits_p = -self.gamma * weight_p * (sim - (1 - self.m))
        logits_n = self.gamma * weight_n * (sim - self.m)
        losses = F.softplus(masked_logsumexp(logits_p, pos) + masked_logsumexp(logits_n, neg))
        losses = torch.where(pos.any(1) & neg.any(1), losses, 0.0)
        if self.reducer is None:
            return mean_nonzero(losses, embeddings)
        anchors = torch.arange(len(embeddings), device=embeddings.device)
        return self.reduce(losses, anchors, "element", embeddings, labels, mean_nonzero)
