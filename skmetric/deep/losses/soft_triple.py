"""SoftTriple loss (Qian et al., 2019)."""

from numbers import Integral

import torch
import torch.nn.functional as F

from ..._sklearn_compat import Interval
from .._docstrings import loss_example
from .._params import FINITE, POSITIVE
from ._proxy_base import BaseProxyLoss, cosine_to


@loss_example()
class SoftTripleLoss(BaseProxyLoss):
    """Softmax over classes with K centers each: a class's similarity is a softmax-weighted
    mix of the sample's cosines to its centers, ``S_c = Σ_k softmax(cos/γ)_k cos_k``; then
    cross-entropy of ``λ (S - δ·onehot)``.

    Parameters
    ----------
    num_classes, embedding_size : int
    centers_per_class : int, default=10
        K.
    la : float, default=20.0
        λ, the scale of the class similarities.
    gamma : float, default=0.1
        γ, the temperature of the softmax over a class's centers.
    margin : float, default=0.01
        δ.

    References
    ----------
    .. [1] Q. Qian, L. Shang, B. Sun, J. Hu, H. Li, R. Jin. "SoftTriple loss: deep metric
       learning without triplet sampling", ICCV 2019.
    """

    supports_reducer = True  # per-sample ("element") terms, as in PML

    _parameter_constraints = {
        "centers_per_class": [Interval(Integral, 1, None, closed="left")],
        "la": [POSITIVE],
        "gamma": [POSITIVE],
        "margin": [FINITE],
    }

    def __init__(self, num_classes, embedding_size, centers_per_class=10, la=20.0,
                 gamma=0.1, margin=0.01):
        super().__init__(num_classes, embedding_size)
        self.centers_per_class = int(centers_per_class)
        self.la, self.gamma, self.margin = la, gamma, margin
        self.centers = self._new_weights(embedding_size, num_classes * centers_per_class)

    def logits(self, embeddings):
        cos = cosine_to(embeddings, self.centers).view(-1, self.num_classes,
                                                       self.centers_per_class)
        # The softmax over each class's centers, written out: torch's softmax over a short
        # last axis (K = 10) is several times slower on the CPU. The shift is a constant,
        # so detaching it leaves the gradient exact.
        z = cos / self.gamma
        w = torch.exp(z - z.amax(dim=2, keepdim=True).detach())
        return (w * cos).sum(dim=2) / w.sum(dim=2)

    def compute_loss(self, embeddings, labels, weights):
        sim = self.logits(embeddings)
        column = labels[:, None]
        sim = sim.scatter(1, column, sim.gather(1, column) - self.margin)  # margin on target
        losses = F.cross_entropy(self.la * sim, labels, reduction="none")
        return self.reduce_elements(losses, weights, embeddings, labels)
