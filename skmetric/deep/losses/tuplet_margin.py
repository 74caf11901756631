"""Tuplet margin loss (Yu and Tao, 2019)."""

import math

import torch
import torch.nn.functional as F

from .._docstrings import loss_example
from .._params import POSITIVE, RADIANS
from .._tuples import to_pairs
from ._base import BaseLoss, zero_loss
from ._options import COLUMN_TERMS

#: pytorch-metric-learning's default margin, 5.73 degrees, in radians (about 0.1).
PML_MARGIN = math.radians(5.73)


@loss_example()
class TupletMarginLoss(BaseLoss):
    """A softmax of each positive pair against its anchor's negatives, with an angular margin.

    For a positive pair with angle θ_p and the negative pairs (cosines s_n) of its anchor,
    ``loss = log(1 + sum_n exp(scale (s_n - cos(θ_p - margin))))``, averaged over the
    positive pairs. Negative pairs count as often as they occur in a miner's tuples.

    Parameters
    ----------
    margin : float, default=math.radians(5.73)
        The angular margin, in radians (pytorch-metric-learning takes degrees, 5.73 by
        default; skmetric's angular margins are radians, as in :class:`ArcFaceLoss`).
    scale : float, default=64.0
        The logit scale.
    distance : {'cosine_similarity'}, default='cosine_similarity'
        The angular margin needs cosines: no other distance is defined.
    normalize : bool, default=True
        Ignored (cosine always normalises); kept for a uniform signature.

    References
    ----------
    Yu and Tao, "Deep Metric Learning with Tuplet Margin Loss", ICCV 2019.
    """

    allowed_distances = ("cosine_similarity",)

    supports_reducer = True  # PML's "pos_pair" terms
    refuses_class_weights = COLUMN_TERMS  # PML's (n, 1) terms (see _options)

    _parameter_constraints = {"margin": [RADIANS], "scale": [POSITIVE]}

    def __init__(self, margin=PML_MARGIN, scale=64.0, distance="cosine_similarity",
                 normalize=True):
        super().__init__(distance=distance, normalize=normalize)
        self.margin = margin
        self.scale = scale

    def compute_loss(self, embeddings, labels, indices_tuple, ref_emb, ref_labels):
        a1, p, a2, n = to_pairs(indices_tuple, labels, ref_labels)
        if len(a1) == 0 or len(a2) == 0:
            return zero_loss(embeddings)
        sim = self.distance_matrix(embeddings, ref_emb)
        pos_logits = self.scale * torch.cos(torch.acos(sim[a1, p]) - self.margin)
        neg_lse, has_neg = grouped_logsumexp(self.scale * sim[a2, n], a2, len(sim))
        losses = F.softplus(neg_lse[a1] - pos_logits)
        losses = torch.where(has_neg[a1], losses, 0.0)
        if self.reducer is None:
            return losses.mean()
        return self.reduce(losses, (a1, p), "pos_pair", embeddings, labels, None)


def grouped_logsumexp(values, groups, n_groups):
    """Log-sum-exp of ``values`` per group id (repeats count); 0 and False for empty groups.

    Returns ``(lse, nonempty)``, both of length ``n_groups``. Empty groups get a finite
    value so that masking them out later leaves zero (not NaN) gradients.
    """
    shift = torch.full((n_groups,), float("-inf"), dtype=values.dtype, device=values.device)
    shift = shift.scatter_reduce(0, groups, values.detach(), reduce="amax")
    nonempty = torch.isfinite(shift)
    shift = torch.where(nonempty, shift, 0.0)
    total = torch.zeros_like(shift).index_add(0, groups, torch.exp(values - shift[groups]))
    return torch.log(total + (~nonempty).to(total.dtype)) + shift, nonempty
