"""ArcFace: an additive angular margin (Deng et al., 2019), and its sub-center variant."""

import math
from numbers import Integral

import torch

from ..._sklearn_compat import Interval
from ..._warn import warn_user
from .._docstrings import loss_example
from .._params import RADIANS
from ._margin_softmax import MarginSoftmaxBase


@loss_example()
class ArcFaceLoss(MarginSoftmaxBase):
    """Logits ``s cos(θ_y + m)`` for the target class and ``s cos θ_j`` otherwise.

    Where θ_y + m would pass π, ``cos(θ + m)`` stops decreasing; the target logit then
    continues as ``cos θ_y - m sin m`` so the loss stays monotone in θ_y. With
    ``easy_margin=True`` the margin applies only where cos θ_y > 0 (insightface's option).

    Parameters
    ----------
    num_classes, embedding_size : int
    margin : float, default=0.5
        The angular margin m, in radians, in [0, π) (pytorch-metric-learning takes
        degrees: its 28.6 is 0.5 here). Margins of 1 radian (57°) or more warn, as they
        are more likely degrees than a real margin.
    scale : float, default=64.0
        The scale s.
    easy_margin : bool, default=False

    References
    ----------
    .. [1] J. Deng, J. Guo, N. Xue, S. Zafeiriou. "ArcFace: additive angular margin loss
       for deep face recognition", CVPR 2019.
    """

    _parameter_constraints = {"margin": [RADIANS], "easy_margin": ["boolean"]}

    def __init__(self, num_classes, embedding_size, margin=0.5, scale=64.0,
                 easy_margin=False):
        super().__init__(num_classes, embedding_size, _warn_if_degrees(margin), scale)
        self.easy_margin = easy_margin

    def target_logit(self, cos_target):
        theta = torch.acos(cos_target.clamp(-1 + 1e-7, 1 - 1e-7))
        with_margin = torch.cos(theta + self.margin)
        if self.easy_margin:
            return torch.where(cos_target > 0, with_margin, cos_target)
        return torch.where(theta <= math.pi - self.margin, with_margin,
                           cos_target - self.margin * math.sin(self.margin))


@loss_example()
class SubCenterArcFaceLoss(ArcFaceLoss):
    """ArcFace with K sub-centers per class: a sample's cosine to a class is its largest
    cosine to that class's sub-centers, so noisy samples can gather around a sub-center.

    Parameters
    ----------
    num_classes, embedding_size : int
    margin, scale, easy_margin
        As in :class:`ArcFaceLoss`.
    sub_centers : int, default=3
        K; the class weights W have ``num_classes * sub_centers`` columns, class-major.

    References
    ----------
    .. [1] J. Deng, J. Guo, T. Liu, M. Gong, S. Zafeiriou. "Sub-center ArcFace: boosting
       face recognition by large-scale noisy web faces", ECCV 2020.
    """

    _parameter_constraints = {"sub_centers": [Interval(Integral, 1, None, closed="left")]}

    def __init__(self, num_classes, embedding_size, margin=0.5, scale=64.0,
                 easy_margin=False, sub_centers=3):
        sub_centers = int(sub_centers)
        MarginSoftmaxBase.__init__(self, num_classes, embedding_size,
                                   _warn_if_degrees(margin), scale,
                                   n_weights=num_classes * sub_centers)
        self.easy_margin = easy_margin
        self.sub_centers = sub_centers

    def class_cosines(self, embeddings):
        cos = super().class_cosines(embeddings)
        return cos.view(-1, self.num_classes, self.sub_centers).max(dim=2).values


#: Margins from here on (57°) are far above ArcFace's usual 0.5 rad (28.6°).
_LARGE_RADIANS = 1.0


def _warn_if_degrees(margin):
    if margin >= _LARGE_RADIANS:
        warn_user(
            f"ArcFace margin={margin} is read in radians ({math.degrees(margin):.0f} degrees), "
            "far above the usual 0.5 rad (28.6 degrees). If you meant degrees, pass "
            f"margin=math.radians({margin}) = {math.radians(margin):.4f}.")
    return margin
