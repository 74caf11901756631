"""Histogram loss (Ustinova and Lempitsky, 2016)."""

from numbers import Integral, Real

import torch

from ..._sklearn_compat import Interval
from .._docstrings import loss_example
from .._tuples import label_masks, to_triplets
from ._base import BaseLoss


@loss_example(n_bins=20)
class HistogramLoss(BaseLoss):
    """The probability that a random negative pair is more similar than a random positive.

    The cosine similarities of the distinct positive and negative pairs (unordered pairs
    taken from the triplets) are spread over triangular bins of width ``delta`` on
    ``[-1, 1]``, giving densities ``p+`` and ``p-``; the loss is
    ``sum_r p-_r * sum_{q <= r} p+_q``.

    Parameters
    ----------
    n_bins : int or None, default=None
        Number of bins; 100 when ``delta`` is None too.
    delta : float or None, default=None
        Bin width; must equal ``2 / n_bins`` when both are given.
    distance : 'cosine_similarity'
    normalize : True

    Notes
    -----
    A similarity of exactly 1 falls in the last bin here; pytorch-metric-learning indexes
    past the histogram's end and fails.

    References
    ----------
    Ustinova and Lempitsky, "Learning Deep Embeddings with Histogram Loss", NeurIPS 2016.
    """

    # PML's terms are "already_reduced": any reducer= leaves the value as is.
    supports_reducer = terms_already_reduced = True

    allowed_distances = ("cosine_similarity",)
    takes_ref_emb = False  # it compares the batch with itself
    _parameter_constraints = {
        "n_bins": [None, Interval(Integral, 1, None, closed="left")],
        "delta": [None, Interval(Real, 0, 2, closed="right")],
    }

    def __init__(self, n_bins=None, delta=None, distance="cosine_similarity", normalize=True):
        if n_bins is not None and delta is not None and delta != 2 / n_bins:
            raise ValueError(f"delta and n_bins must satisfy delta = 2 / n_bins; got "
                             f"delta={delta} and n_bins={n_bins}. Pass only one of them.")
        super().__init__(distance=distance, normalize=normalize)
        self.n_bins = n_bins
        self.delta = delta

    @property
    def bin_width(self):
        """The width of a bin (``delta``, or ``2 / n_bins``)."""
        if self.delta is not None:
            return self.delta
        return 2 / (100 if self.n_bins is None else self.n_bins)

    def compute_loss(self, embeddings, labels, indices_tuple, ref_emb, ref_labels):
        pos, neg = _triplet_pair_masks(indices_tuple, labels)
        mat = self.distance_matrix(embeddings, None)
        pos_density = self._density(mat, pos)
        neg_density = self._density(mat, neg)
        # Zero without triplets (PML), decided on the device.
        return (neg_density * torch.cumsum(pos_density, dim=0)).sum() * pos.any()

    def _density(self, mat, mask):
        """Soft histogram of the similarities in ``mask`` on the ``round(2 / delta) + 1``
        nodes of [-1, 1] (every entry is binned, those outside the mask with weight 0)."""
        sims, weight = mat.flatten(), mask.flatten().to(mat.dtype)
        delta = self.bin_width
        n_nodes = round(1 + 2 / delta)
        position = (sims + 1) / delta
        # The bin is picked in float32, as pytorch-metric-learning does: a value on a bin
        # edge then gets the same slope (gradient) as there.
        left = torch.floor((sims.detach().float() + 1) / delta).long().clamp(0, n_nodes - 2)
        right_weight = position - left  # the share of the node to the right
        density = torch.zeros(n_nodes, dtype=sims.dtype, device=sims.device)
        density = density.scatter_add(0, left + 1, right_weight * weight)
        density = density.scatter_add(0, left, (1 - right_weight) * weight)
        return density / weight.sum().clamp(min=1)


def _triplet_pair_masks(indices_tuple, labels):
    """Upper-triangular (n, n) masks of the distinct unordered positive and negative pairs
    of the triplets (all triplets when None), built on the device without index lists."""
    n = len(labels)
    if indices_tuple is None:
        pos, neg = label_masks(labels)
        # All triplets: the positive pairs of anchors with a negative, and vice versa.
        pos, neg = pos & neg.any(1, keepdim=True), neg & pos.any(1, keepdim=True)
    else:
        a, p, negative = to_triplets(indices_tuple, labels)
        pos = torch.zeros(n, n, dtype=torch.bool, device=labels.device)
        neg = torch.zeros_like(pos)
        pos[a, p] = True
        neg[a, negative] = True
    return (pos | pos.T).triu(1), (neg | neg.T).triu(1)
