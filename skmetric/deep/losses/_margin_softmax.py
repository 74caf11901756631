"""Shared machinery of the angular-margin softmax losses (L-Softmax, SphereFace, CosFace,
ArcFace): cosines to the class weights, a margin on the target class, a scale."""

import torch.nn.functional as F

from .._params import POSITIVE
from ._proxy_base import BaseProxyLoss, cosine_to


class MarginSoftmaxBase(BaseProxyLoss):
    """Cross-entropy on ``scale_logits(cos θ with the target's cosine replaced)``.

    Subclasses define :meth:`target_logit` (the margin applied to the target class's
    cosine) and may override :meth:`class_cosines` and :meth:`scale_logits`.
    """

    supports_reducer = True  # per-sample ("element") terms, as in PML

    _parameter_constraints = {"scale": [POSITIVE]}

    def __init__(self, num_classes, embedding_size, margin, scale, n_weights=None):
        super().__init__(num_classes, embedding_size)
        self.margin = margin
        self.scale = scale
        self.W = self._new_weights(embedding_size, n_weights or num_classes)

    def class_cosines(self, embeddings):
        return cosine_to(embeddings, self.W)

    def scale_logits(self, logits, embeddings):
        return self.scale * logits

    def target_logit(self, cos_target):
        raise NotImplementedError

    def logits(self, embeddings):
        return self.scale_logits(self.class_cosines(embeddings), embeddings)

    def margin_logits(self, embeddings, labels):
        """Logits with the margin on each sample's target class (the training logits)."""
        cos = self.class_cosines(embeddings)
        column = labels[:, None]
        target = self.target_logit(cos.gather(1, column).clamp(-1, 1))
        return self.scale_logits(cos.scatter(1, column, target), embeddings)

    def compute_loss(self, embeddings, labels, weights):
        losses = F.cross_entropy(self.margin_logits(embeddings, labels), labels,
                                 reduction="none")
        return self.reduce_elements(losses, weights, embeddings, labels)
