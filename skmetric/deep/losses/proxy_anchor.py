"""Proxy-Anchor loss (Kim et al., 2020)."""

import math

import torch
import torch.nn.functional as F

from .._docstrings import loss_example
from .._params import FINITE, POSITIVE
from ._options import reduce_terms
from ._proxy_base import BaseProxyLoss, cosine_to


@loss_example()
class ProxyAnchorLoss(BaseProxyLoss):
    """Each proxy is an anchor: pull its class's samples, push all others, by cosine.

    The loss, with P⁺ the proxies of classes present in the batch, is::

        loss = 1/|P⁺| Σ_{p∈P⁺} log(1 + Σ_{x∈X_p⁺} e^{-α(s(x,p) - δ)})
             + 1/|P| Σ_{p∈P} log(1 + Σ_{x∈X_p⁻} e^{α(s(x,p) + δ)})

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

    supports_reducer = True  # one "element" term per proxy, as in PML
    #: PML indexes its terms by proxy, and its ClassWeightedReducer reads labels[proxy]
    #: (the label of sample number `proxy`), which weighs no class: refused (see _options).
    refuses_class_weights = ("pytorch-metric-learning's terms are one per proxy and its "
                             "class weights are read from labels[proxy index], the label of "
                             "an unrelated sample.")

    _parameter_constraints = {"margin": [FINITE], "alpha": [POSITIVE]}

    def __init__(self, num_classes, embedding_size, margin=0.1, alpha=32.0):
        super().__init__(num_classes, embedding_size)
        self.margin = margin
        self.alpha = alpha
        self.proxies = self._new_weights(num_classes, embedding_size,
                                         lambda w: torch.nn.init.kaiming_normal_(w,
                                                                                 mode="fan_out"))

    def logits(self, embeddings):
        return cosine_to(embeddings, self.proxies.T)

    def compute_loss(self, embeddings, labels, weights):
        # Proxies as rows, (C, n): the sums over samples then run along contiguous memory.
        cos = cosine_to(self.proxies, embeddings.T)
        pos = F.one_hot(labels, self.num_classes).T.bool()
        z = torch.where(pos, -self.alpha * (cos - self.margin), self.alpha * (cos + self.margin))
        if weights is not None:
            z = z + torch.log(weights)[None, :]
        # |alpha (cos -+ margin)| <= alpha (1 + |margin|); log(weights) <= 0 only lowers z.
        pos_term, neg_term = _log1p_sum_exp(z, pos, self.alpha * (1 + abs(self.margin)) + 1e-3)
        if self.reducer is None:
            n_present = pos.any(dim=1).sum().clamp_min(1)
            return pos_term.sum() / n_present + neg_term.sum() / self.num_classes
        # PML's terms: one per proxy ("element" terms indexed by the proxies), each reduced.
        proxies = torch.arange(self.num_classes, device=embeddings.device)
        return sum(reduce_terms(self, term, proxies, "element", embeddings, labels, None)
                   for term in (pos_term, neg_term))


def _log1p_sum_exp(z, mask, z_max):
    """Per row, ``log(1 + Σ exp(z))`` over the columns in ``mask`` and over the others.

    ``z <= z_max``; while that cannot overflow exp, one exp serves both sums (rows with no
    columns give log 1 = 0); otherwise two masked log-sum-exps. The choice is made from
    the bound, not from z's values (reading them would be a host sync).
    """
    bound = float(torch.finfo(z.dtype).max) ** 0.5
    if z_max < math.log(bound):
        e = torch.exp(z)
        zero = torch.zeros((), dtype=z.dtype, device=z.device)
        return (torch.log1p(torch.where(mask, e, zero).sum(dim=1)),
                torch.log1p(torch.where(mask, zero, e).sum(dim=1)))
    lowest = torch.finfo(z.dtype).min
    terms = []
    for m in (mask, ~mask):
        lse = torch.logsumexp(z.masked_fill(~m, lowest), dim=1)
        terms.append(F.softplus(lse).masked_fill(~m.any(dim=1), 0))
    return tuple(terms)
