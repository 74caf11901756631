"""Circle loss in its class-level form (Sun et al., 2020)."""

import torch
import torch.nn.functional as F

from .._docstrings import loss_example
from .._params import FINITE, POSITIVE
from ._proxy_base import BaseProxyLoss, cosine_to


@loss_example()
class ClassCircleLoss(BaseProxyLoss):
    """Circle loss with class weights as the positives and negatives of each sample.

    With s_p = cos θ_y and s_n = cos θ_j (j ≠ y), self-paced weights
    ``α_p = [1 + m - s_p]_+`` and ``α_n = [s_n + m]_+`` (constants in the gradient, as in
    the paper) and margins Δ_p = 1 - m, Δ_n = m:
    ``loss = log(1 + Σ_j exp(γ α_n (s_n - Δ_n)) · exp(-γ α_p (s_p - Δ_p)))``.

    Parameters
    ----------
    num_classes, embedding_size : int
    m : float, default=0.25
        The relaxation margin.
    gamma : float, default=256.0
        The scale γ.

    References
    ----------
    .. [1] Y. Sun et al. "Circle loss: a unified perspective of pair similarity
       optimization", CVPR 2020 (Eq. 1 with class-level labels).
    """

    supports_reducer = True  # per-sample ("element") terms, as in PML

    _parameter_constraints = {"m": [FINITE], "gamma": [POSITIVE]}

    def __init__(self, num_classes, embedding_size, m=0.25, gamma=256.0):
        super().__init__(num_classes, embedding_size)
        self.m, self.gamma = m, gamma
        self.W = self._new_weights(embedding_size, num_classes)

    def logits(self, embeddings):
        return cosine_to(embeddings, self.W)

    def compute_loss(self, embeddings, labels, weights):
        cos = self.logits(embeddings)
        is_target = F.one_hot(labels, self.num_classes).bool()
        alpha = torch.where(is_target, 1 + self.m - cos, cos + self.m).clamp_min(0).detach()
        # In cos's dtype: torch.where of two Python floats would round the margins to float32.
        delta = torch.full_like(cos, self.m).masked_fill(is_target, 1 - self.m)
        # Cross-entropy with the target logit γα_p(s_p - Δ_p) against γα_n(s_n - Δ_n).
        logits = self.gamma * alpha * (cos - delta)
        losses = F.cross_entropy(logits, labels, reduction="none")
        return self.reduce_elements(losses, weights, embeddings, labels)
