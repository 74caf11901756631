"""Proxy-Anchor loss (Kim et al., 2020)."""

import torch
import torch.nn.functional as F

from ._proxy_base import BaseProxyLoss, cosine_to


class ProxyAnchorLoss(BaseProxyLoss):
    """Each proxy is an anchor: pull its class's samples, push all others, by cosine.

    ``loss = 1/|P⁺| Σ_{p∈P⁺} log(1 + Σ_{x∈X_p⁺} e^{-α(s(x,p) - δ)})
            + 1/|P| Σ_{p∈P} log(1 + Σ_{x∈X_p⁻} e^{α(s(x,p) + δ)})``,
    with P⁺ the proxies of classes present in the batch.

    With a miner, each sample's term inside the sums is weighted by its miner weight
    (pytorch-metric-learning instead adds ``weight - 1`` to the exponent; both are
    identical without a miner, which is the loss's usual use).

    Parameters
    ----------
    num_classes, embedding_size : int
    margin : float, default=0.1
        δ.
    alpha : float, default=32.0
        α, the scale.

    References
    ----------
    .. [1] S. Kim, D. Kim, M. Cho, S. Kwak. "Proxy anchor loss for deep metric learning",
       CVPR 2020.
    """

    def __init__(self, num_classes, embedding_size, margin=0.1, alpha=32.0):
        super().__init__(num_classes, embedding_size)
        if not alpha > 0:
            raise ValueError(f"alpha must be > 0; got {alpha!r}.")
        self.margin = margin
        self.alpha = alpha
        self.proxies = self._new_weights(num_classes, embedding_size,
                                         lambda w: torch.nn.init.kaiming_normal_(w,
                                                                                 mode="fan_out"))

    def logits(self, embeddings):
        return cosine_to(embeddings, self.proxies.T)

    def compute_loss(self, embeddings, labels, weights):
        cos = self.logits(embeddings)  # (n, C)
        pos = F.one_hot(labels, self.num_classes).bool()
        log_w = 0.0 if weights is None else torch.log(weights)[:, None]
        pos_term = _log1p_sum_exp(-self.alpha * (cos - self.margin) + log_w, pos)
        neg_term = _log1p_sum_exp(self.alpha * (cos + self.margin) + log_w, ~pos)
        n_present = pos.any(dim=0).sum().clamp_min(1)
        return pos_term.sum() / n_present + neg_term.sum() / self.num_classes


def _log1p_sum_exp(x, mask):
    """Per column, ``log(1 + Σ_{rows in mask} exp(x))``; 0 for columns with no rows."""
    x = x.masked_fill(~mask, torch.finfo(x.dtype).min)
    lse = torch.logsumexp(x, dim=0)
    return F.softplus(lse).masked_fill(~mask.any(dim=0), 0)
