"""NormFace: normalised softmax (Wang et al., 2017)."""

import torch.nn.functional as F

from .._docstrings import loss_example
from .._params import POSITIVE, PMLName, reciprocal
from ._proxy_base import BaseProxyLoss


@loss_example()
class NormFaceLoss(BaseProxyLoss):
    """Softmax cross-entropy on scaled cosine similarities: ``logits = s · cos θ_j``.

    Features and class weights are both L2-normalised; pytorch-metric-learning calls this
    NormalizedSoftmaxLoss with ``temperature = 1 / scale``.

    Parameters
    ----------
    num_classes, embedding_size : int
    scale : float, default=20.0
        The scale s of the paper; pytorch-metric-learning's ``temperature=t`` is accepted
        too, as ``scale=1 / t`` (its default, 0.05, is this one).

    References
    ----------
    .. [1] F. Wang, X. Xiang, J. Cheng, A. L. Yuille. "NormFace: L2 hypersphere embedding
       for face verification", ACM MM 2017.
    """

    supports_reducer = True  # per-sample ("element") terms, as in PML

    _parameter_constraints = {"scale": [POSITIVE]}
    pml_names = {"temperature": PMLName("scale", reciprocal, [POSITIVE])}

    def __init__(self, num_classes, embedding_size, scale=20.0):
        super().__init__(num_classes, embedding_size)
        self.scale = scale
        self.W = self._new_weights(embedding_size, num_classes)

    def logits(self, embeddings):
        # Scaling the (d, C) normalised weights is cheaper than scaling the (n, C) logits.
        return F.normalize(embeddings, dim=1) @ (self.scale * F.normalize(self.W, dim=0))

    def compute_loss(self, embeddings, labels, weights):
        losses = F.cross_entropy(self.logits(embeddings), labels, reduction="none")
        return self.reduce_elements(losses, weights, embeddings, labels)
