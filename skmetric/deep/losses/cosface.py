"""CosFace / AM-Softmax: an additive cosine margin (Wang et al., 2018)."""

from .._docstrings import loss_example
from .._params import NON_NEGATIVE
from ._margin_softmax import MarginSoftmaxBase


@loss_example()
class CosFaceLoss(MarginSoftmaxBase):
    """Logits ``s (cos θ_y - m)`` for the target class and ``s cos θ_j`` otherwise.

    Also known as AM-Softmax (additive margin softmax); the boundary between classes 1 and
    2 is ``s (cos θ_1 - m - cos θ_2) = 0``.

    Parameters
    ----------
    num_classes, embedding_size : int
    margin : float, default=0.35
        The cosine margin m.
    scale : float, default=64.0
        The scale s.

    References
    ----------
    .. [1] H. Wang et al. "CosFace: large margin cosine loss for deep face recognition",
       CVPR 2018.
    .. [2] F. Wang, J. Cheng, W. Liu, H. Liu. "Additive margin softmax for face
       verification", IEEE SPL 2018.
    """

    _parameter_constraints = {"margin": [NON_NEGATIVE]}

    def __init__(self, num_classes, embedding_size, margin=0.35, scale=64.0):
        super().__init__(num_classes, embedding_size, margin, scale)

    def target_logit(self, cos_target):
        return cos_target - self.margin


#: AM-Softmax is the same loss.
AMSoftmaxLoss = CosFaceLoss
