"""Ranked list loss (Wang et al., 2019)."""

from numbers import Real

import torch

from ..._sklearn_compat import Interval
from ..._warn import warn_user
from .._docstrings import loss_example
from .._params import FINITE
from ._base import BaseLoss


@loss_example(margin=0.4, Tn=10.0)
class RankedListLoss(BaseLoss):
    """Push negatives beyond ``alpha`` and pull positives within ``alpha - margin``, weighted.

    For anchor i, with ``b = alpha - margin``, the violating positives P_i
    (``d_ij > b``) and negatives N_i (``d_ij < alpha``) and the weights
    ``w_ij = exp(Tp (d_ij - b))`` and ``exp(Tn (alpha - d_ij))``,
    ``L_P = sum_P w (d - b) / (sum_P w + 1e-5 n)``, ``L_N = sum_N w (alpha - d) /
    (sum_N w + 1e-5 n)`` and ``loss_i = (1 - imbalance) L_P + imbalance L_N``, averaged
    over the batch (n is the batch size; the 1e-5 terms are pytorch-metric-learning's).
    Only pairs with ``d_ij > 0`` count. The defaults ``Tp=0`` give "RLL-Simpler".

    Parameters
    ----------
    margin : float, default=0.4
        The gap between the positive and the negative boundaries.
    Tn : float, default=1.0
        Temperature of the negative weights (0: uniform weights).
        pytorch-metric-learning has no defaults for ``margin`` and ``Tn``; these let the
        registry name ``'ranked_list'`` build the loss alone (with ``alpha`` = 1.2).
    imbalance : float in [0, 1], default=0.5
        Weight of the negative term against the positive one.
    alpha : float or None, default=None
        The negative boundary; None means ``1 + margin / 2``.
    Tp : float, default=0.0
        Temperature of the positive weights.
    distance : {'euclidean', 'sqeuclidean', 'cosine_similarity', 'dot'}, default='euclidean'
        Used as is (the boundaries assume a distance: small means similar).
    normalize : bool, default=True
        L2-normalise the embeddings first.

    References
    ----------
    Wang, Hua, Kodirov, Hu, Garnier and Robertson, "Ranked List Loss for Deep Metric
    Learning", CVPR 2019.
    """

    supports_reducer = True  # per-anchor ("element") terms, as in PML
    takes_indices_tuple = takes_ref_emb = False  # it ranks the whole batch

    _parameter_constraints = {
        "margin": [FINITE],
        "Tn": [FINITE],
        "imbalance": [Interval(Real, 0, 1, closed="both")],
        "alpha": [FINITE, None],
        "Tp": [FINITE],
    }

    def __init__(self, margin=0.4, Tn=1.0, imbalance=0.5, alpha=None, Tp=0.0, distance="euclidean",
                 normalize=True):
        super().__init__(distance=distance, normalize=normalize)
        if Tp > 5 or Tn > 5:
            warn_user("Tp or Tn above 5: large temperatures may overflow exp().")
        self.margin = margin
        self.Tn = Tn
        self.imbalance = imbalance
        self.alpha = alpha
        self.Tp = Tp

    def compute_loss(self, embeddings, labels, indices_tuple, ref_emb, ref_labels):
        mat = self.distance_matrix(embeddings, None)
        alpha = 1 + self.margin / 2 if self.alpha is None else self.alpha
        bound = alpha - self.margin
        same = labels[:, None] == labels[None, :]
        nonzero = mat > 0
        pos = same & (mat > bound) & nonzero
        pos.fill_diagonal_(False)
        neg = ~same & (mat < alpha) & nonzero
        loss_p = _weighted_violation(mat - bound, self.Tp, pos)
        loss_n = _weighted_violation(alpha - mat, self.Tn, neg)
        losses = (1 - self.imbalance) * loss_p + self.imbalance * loss_n
        if self.reducer is None:
            return losses.mean()
        anchors = torch.arange(len(embeddings), device=embeddings.device)
        return self.reduce(losses, anchors, "element", embeddings, labels, None)


def _weighted_violation(violation, temperature, mask):
    """Per row, the mean violation weighted by ``exp(T violation)`` over ``mask``."""
    weights = torch.where(mask, torch.exp(temperature * violation), 0.0)
    total = (weights * torch.where(mask, violation, 0.0)).sum(1)
    return total / (weights.sum(1) + 1e-5 * mask.shape[1])
