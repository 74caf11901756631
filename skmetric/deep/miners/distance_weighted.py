"""Distance-weighted sampling (Wu et al., 2017)."""

import torch

from .. import _sync
from .._params import NON_NEGATIVE, POSITIVE
from .._tuples import Seeded, label_masks, sample_in_rows
from ._base import BaseMiner


class DistanceWeightedMiner(Seeded, BaseMiner):
    """One negative per positive pair, drawn with probability ∝ 1 / q(d(a, n)).

    On the unit sphere in ``dim`` dimensions, pairwise distances follow
    ``q(d) ∝ d^(dim-2) (1 - d^2/4)^((dim-3)/2)``; sampling negatives by the inverse density
    spreads them over all distances instead of the crowded middle. Distances are clipped
    below at ``cutoff`` (variance) and negatives at ``nonzero_loss_cutoff`` or farther are
    never drawn (they would give zero loss). Works on L2-normalised Euclidean distances.

    Parameters
    ----------
    cutoff : float, default=0.5
        Distances below this count as this when weighting (the density diverges at 0).
    nonzero_loss_cutoff : float, default=1.4
        Negatives at this distance or farther are never drawn.
    random_state : int, torch.Generator or None, default=None
        Seeds the draws (on the CPU, so results do not depend on the device).

    References
    ----------
    Wu, Manmatha, Smola and Krahenbuhl, "Sampling Matters in Deep Embedding Learning",
    ICCV 2017 (its distance weighted sampling; :class:`~skmetric.deep.losses.MarginLoss`
    is the paper's loss).

    Examples
    --------
    >>> import torch
    >>> from skmetric.deep.miners import DistanceWeightedMiner
    >>> miner = DistanceWeightedMiner(random_state=0)
    >>> a, p, n = miner(torch.randn(8, 16), torch.tensor([0, 0, 1, 1, 2, 2, 3, 3]))
    >>> len(a) == len(p) == len(n)
    True
    """

    output = "triplets"

    _parameter_constraints = {"cutoff": [NON_NEGATIVE], "nonzero_loss_cutoff": [POSITIVE]}

    def __init__(self, cutoff=0.5, nonzero_loss_cutoff=1.4, random_state=None):
        super().__init__(distance="euclidean", normalize=True)
        self.cutoff = float(cutoff)
        self.nonzero_loss_cutoff = float(nonzero_loss_cutoff)
        self.random_state = random_state

    def mine(self, embeddings, labels, ref_emb, ref_labels):
        pos, neg = label_masks(labels, ref_labels)
        weights, valid = negative_weights(
            self.dist(embeddings, ref_emb), neg, embeddings.shape[1],
            self.cutoff, self.nonzero_loss_cutoff,
        )
        pos &= valid.any(1, keepdim=True)
        draws = pos.sum(1)
        # One sync: the number of pairs and the most draws of a row.
        a, p, most = _sync.where(pos, extra=(draws.max(),))
        n = sample_in_rows(valid, draws, self.generator, weights=weights,
                           sizes=(most, len(a)))
        return a, p, n


def negative_weights(mat, neg, dim, cutoff, nonzero_loss_cutoff):
    """Row-normalised sampling weights of the negatives and the mask of drawable ones."""
    d = torch.clamp(mat, min=cutoff)
    log_w = (2.0 - dim) * torch.log(d) - ((dim - 3) / 2) * torch.log(1.0 - 0.25 * d**2)
    valid = neg & (mat < nonzero_loss_cutoff) & torch.isfinite(log_w)
    log_w = log_w.masked_fill(~valid, float("-inf"))
    # Subtract each row's maximum before exponentiating: stable in any dimension.
    row_max = log_w.amax(1, keepdim=True).nan_to_num(neginf=0.0)
    weights = torch.exp(log_w - row_max)
    weights = weights / weights.sum(1, keepdim=True).clamp_min(torch.finfo(mat.dtype).tiny)
    return weights, valid
