"""Large-margin softmax (L-Softmax, Liu et al. 2016) and A-Softmax (SphereFace, 2017)."""

import math
from numbers import Integral

import torch

from ..._sklearn_compat import Interval
from .._docstrings import loss_example
from .._params import NON_NEGATIVE
from ._margin_softmax import MarginSoftmaxBase


def _chebyshev_cos_multiple(c, m):
    """cos(m·θ) from c = cos θ by the Chebyshev recurrence: smooth in c, unlike acos."""
    prev, cur = torch.ones_like(c), c
    if m == 0:
        return prev
    for _ in range(m - 1):
        prev, cur = cur, 2 * c * cur - prev
    return cur


def psi(cos_target, m):
    """ψ(θ) = (-1)^k cos(mθ) - 2k on θ ∈ [kπ/m, (k+1)π/m]: monotone, equal to cos θ at m=1."""
    with torch.no_grad():
        k = torch.floor(torch.acos(cos_target) * m / math.pi)
    return (-1) ** k * _chebyshev_cos_multiple(cos_target, m) - 2 * k


@loss_example()
class LargeMarginSoftmaxLoss(MarginSoftmaxBase):
    """L-Softmax: the target logit ``||W_y|| ||x|| ψ(θ_y)`` with an integer angular margin m.

    Other logits are ``||W_j|| ||x|| cos θ_j``; all are multiplied by ``scale``.

    Trained from scratch with the full margin, the network escapes it by shrinking the
    feature norms and the loss stalls at log(C); both papers therefore blend the target
    logit with the plain one, ``(λ cos θ_y + ψ(θ_y)) / (1 + λ)``, with λ annealed from
    ``lambda_start`` to ``lambda_min`` as ``λ_t = lambda_start / (1 + lambda_decay · t)``
    over training steps t (SphereFace's schedule). ``lambda_start=0`` disables it (the
    plain loss, as pytorch-metric-learning computes it).

    Parameters
    ----------
    num_classes, embedding_size : int
    margin : int, default=4
        The angular multiplier m (1 is the plain softmax).
    scale : float, default=1.0
    lambda_start : float, default=1000.0
    lambda_min : float, default=5.0
    lambda_decay : float, default=0.12

    References
    ----------
    .. [1] W. Liu, Y. Wen, Z. Yu, M. Yang. "Large-margin softmax loss for convolutional
       neural networks", ICML 2016.
    """

    _parameter_constraints = {
        "margin": [Interval(Integral, 1, None, closed="left")],
        "lambda_start": [NON_NEGATIVE],
        "lambda_min": [NON_NEGATIVE],
        "lambda_decay": [NON_NEGATIVE],
    }

    def __init__(self, num_classes, embedding_size, margin=4, scale=1.0, lambda_start=1000.0,
                 lambda_min=5.0, lambda_decay=0.12):
        super().__init__(num_classes, embedding_size, int(margin),
                         scale)
        self.lambda_start, self.lambda_min, self.lambda_decay = (
            lambda_start, lambda_min, lambda_decay)
        # Training steps seen, for the annealing; saved with the model.
        self.register_buffer("n_steps", torch.zeros((), dtype=torch.long))

    def current_lambda(self):
        """The blending weight λ at the current training step (0 without annealing)."""
        if self.lambda_start == 0:
            return 0.0
        return float(self._lambda())

    def _lambda(self):
        # On the buffer's device: reading n_steps on the host would be a sync per step.
        if self.lambda_start == 0:
            return 0.0
        decayed = self.lambda_start / (1 + self.lambda_decay * self.n_steps)
        return decayed.clamp(min=self.lambda_min)

    def target_logit(self, cos_target):
        lam = self._lambda()
        if self.training and torch.is_grad_enabled():
            self.n_steps += 1
        return (lam * cos_target + psi(cos_target, self.margin)) / (1 + lam)

    def scale_logits(self, logits, embeddings):
        norms = torch.linalg.vector_norm(embeddings, dim=1)[:, None]
        return self.scale * logits * norms * torch.linalg.vector_norm(self.W, dim=0)[None, :]


@loss_example()
class SphereFaceLoss(LargeMarginSoftmaxLoss):
    """A-Softmax (SphereFace): L-Softmax with normalised class weights.

    Logits are ``||x|| ψ(θ_y)`` for the target and ``||x|| cos θ_j`` otherwise, so the
    decision boundary between classes 1 and 2 is ``||x|| (cos mθ_1 - cos θ_2) = 0``.

    References
    ----------
    .. [1] W. Liu, Y. Wen, Z. Yu, M. Li, B. Raj, L. Song. "SphereFace: deep hypersphere
       embedding for face recognition", CVPR 2017.
    """

    def scale_logits(self, logits, embeddings):
        return self.scale * logits * torch.linalg.vector_norm(embeddings, dim=1)[:, None]
