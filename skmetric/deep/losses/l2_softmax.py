"""L2-constrained softmax (Ranjan et al., 2017)."""

import torch
import torch.nn.functional as F
from torch import nn

from .._docstrings import loss_example
from .._params import POSITIVE
from ._proxy_base import BaseProxyLoss


@loss_example()
class L2SoftmaxLoss(BaseProxyLoss):
    """Softmax cross-entropy on L2-normalised features rescaled to norm ``scale`` (α).

    ``logits = scale * x / ||x|| @ W + b``: the features lie on a hypersphere of radius α,
    the class weights W and bias b are free.

    Parameters
    ----------
    num_classes, embedding_size : int
    scale : float, default=16.0
        The feature norm α of the paper.
    bias : bool, default=True
        Learn a per-class bias.

    References
    ----------
    .. [1] R. Ranjan, C. D. Castillo, R. Chellappa. "L2-constrained softmax loss for
       discriminative face verification", arXiv:1703.09507, 2017.
    """

    supports_reducer = True  # per-sample ("element") terms, as in PML

    _parameter_constraints = {"scale": [POSITIVE], "bias": ["boolean"]}

    def __init__(self, num_classes, embedding_size, scale=16.0, bias=True):
        super().__init__(num_classes, embedding_size)
        self.scale = scale
        self.W = self._new_weights(embedding_size, num_classes)
        self.b = nn.Parameter(torch.zeros(num_classes)) if bias else None

    def logits(self, embeddings):
        out = self.scale * F.normalize(embeddings, dim=1) @ self.W
        return out if self.b is None else out + self.b

    def compute_loss(self, embeddings, labels, weights):
        losses = F.cross_entropy(self.logits(embeddings), labels, reduction="none")
        return self.reduce_elements(losses, weights, embeddings, labels)
