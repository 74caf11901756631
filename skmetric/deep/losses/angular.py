"""Angular loss (Wang et al., 2017)."""

import math
from numbers import Real

import torch
import torch.nn.functional as F

from ..._sklearn_compat import Interval
from .._docstrings import loss_example
from .._sync import where
from .._tuples import label_masks, to_pairs
from ._base import BaseLoss, masked_logsumexp, zero_loss
from ._options import COLUMN_TERMS


@loss_example(alpha=45.0)
class AngularLoss(BaseLoss):
    """Bound the angle at each negative in the triangle it forms with a positive pair.

    For a positive pair ``(a, p)`` of unit vectors and each sample ``n`` of another class,
    ``f = 4 tan(alpha)^2 (a + p) . x_n - 2 (1 + tan(alpha)^2) a . p`` and the pair's loss
    is ``log(1 + sum_n exp(f))``; losses are averaged over the positive pairs. A miner's
    positive pairs select the pairs; every sample of another class acts as a negative.

    Parameters
    ----------
    alpha : float, default=40.0
        The angle bound, in degrees (as in the paper and pytorch-metric-learning).
    distance : 'euclidean'
        Only the unit-norm Euclidean geometry is defined, so ``normalize`` must stay True.
    normalize : True

    Notes
    -----
    As in pytorch-metric-learning 2.9, anchors and positives are L2-normalised but the
    negatives ``x_n`` enter as given (the network's raw output).

    References
    ----------
    Wang, Zhou, Wen, Liu and Lin, "Deep Metric Learning with Angular Loss", ICCV 2017.
    """

    allowed_distances = ("euclidean",)
    requires_unit_norm = True
    supports_reducer = True  # PML's "pos_pair" terms
    refuses_class_weights = COLUMN_TERMS  # PML's (n, 1) terms (see _options)

    _parameter_constraints = {"alpha": [Interval(Real, 0, 90, closed="neither")]}

    def __init__(self, alpha=40.0, distance="euclidean", normalize=True):
        super().__init__(distance=distance, normalize=normalize)
        self.alpha = alpha

    def compute_loss(self, embeddings, labels, indices_tuple, ref_emb, ref_labels):
        a1, p, n_neg = _positive_pairs(indices_tuple, labels, ref_labels)  # no (i, i) pairs
        ref_emb = embeddings if ref_emb is None else ref_emb
        ref_labels = labels if ref_labels is None else ref_labels
        if len(a1) == 0 or n_neg == 0:
            return zero_loss(embeddings)
        anchors, positives = F.normalize(embeddings[a1], dim=1), F.normalize(ref_emb[p], dim=1)
        sq_tan = math.tan(math.radians(self.alpha)) ** 2
        ap_dot = (anchors * positives).sum(1, keepdim=True)
        # f = 4 tan^2 (a + p) . x_n - 2 (1 + tan^2) a . p, scaled and shifted inside the product
        f = torch.addmm(ap_dot, anchors + positives, ref_emb.T, beta=-2 * (1 + sq_tan),
                        alpha=4 * sq_tan)
        negatives = labels[a1][:, None] != ref_labels[None, :]
        losses = masked_logsumexp(f, negatives, add_one=True)
        if self.reducer is None:
            return losses.mean()
        return self.reduce(losses, (a1, p), "pos_pair", embeddings, labels, None)


def _positive_pairs(indices_tuple, labels, ref_labels):
    """The positive pairs ``(a1, p)`` and the number of negative pairs; with all pairs, the
    negative pairs (nearly all of the matrix) are counted, not listed."""
    if indices_tuple is not None:
        a1, p, a2, _ = to_pairs(indices_tuple, labels, ref_labels)
        return a1, p, len(a2)
    pos, neg = label_masks(labels, ref_labels)
    return where(pos, extra=(neg.sum(),))  # one sync: the two counts
