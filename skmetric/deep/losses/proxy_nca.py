"""ProxyNCA (Movshovitz-Attias et al., 2017)."""

import torch
import torch.nn.functional as F

from .._docstrings import loss_example
from .._params import POSITIVE
from ._proxy_base import BaseProxyLoss


@loss_example()
class ProxyNCALoss(BaseProxyLoss):
    """NCA against one learnable proxy per class: ``-log softmax(-s·d²(x, p_c))[y]``.

    Embeddings and proxies are L2-normalised and compared by squared Euclidean distance;
    samples whose target probability underflows to zero are left out, and with a miner
    only the anchors of its tuples are weighted (both as pytorch-metric-learning does).

    Parameters
    ----------
    num_classes, embedding_size : int
    softmax_scale : float, default=1.0
        The scale s of the negative squared distances (an inverse temperature).

    References
    ----------
    .. [1] Y. Movshovitz-Attias, A. Toshev, T. Leung, S. Ioffe, S. Singh. "No fuss distance
       metric learning using proxies", ICCV 2017.
    """

    supports_reducer = True  # per-sample ("element") terms, as in PML

    weights_from_anchors = True

    _parameter_constraints = {"softmax_scale": [POSITIVE]}

    def __init__(self, num_classes, embedding_size, softmax_scale=1.0):
        super().__init__(num_classes, embedding_size)
        self.softmax_scale = softmax_scale
        self.proxies = self._new_weights(num_classes, embedding_size)

    def logits(self, embeddings):
        # Squared distance of unit vectors: ||a - b||² = 2 - 2 a·b (no cdist needed).
        cos = F.normalize(embeddings, dim=1) @ F.normalize(self.proxies, dim=1).T
        return -self.softmax_scale * (2 - 2 * cos).clamp_min(0)

    def compute_loss(self, embeddings, labels, weights):
        logits = self.logits(embeddings)
        log_p = F.log_softmax(logits, dim=1).gather(1, labels[:, None])[:, 0]
        # A target probability that underflows to zero as a softmax (PML's test; the stable
        # log-softmax itself never reaches -inf) drops out of the mean (masked on the
        # device; 0 when every one did).
        keep = F.softmax(logits, dim=1).gather(1, labels[:, None])[:, 0] != 0
        if self.reducer is None:
            losses = torch.where(keep, -log_p, 0.0)
            if weights is not None:
                losses = losses * weights
            return losses.sum() / keep.sum().clamp(min=1)
        if not bool(keep.all()):  # a reducer takes PML's terms by index (a sync)
            if not bool(keep.any()):
                return (embeddings * 0).sum()
            log_p = log_p[keep]
            weights = None if weights is None else weights[keep]
            return self.reduce_elements(-log_p, weights, embeddings, labels, keep)
        return self.reduce_elements(-log_p, weights, embeddings, labels)
