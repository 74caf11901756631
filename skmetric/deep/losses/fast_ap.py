"""FastAP: average precision through soft distance histograms (Cakir et al., 2019)."""

from numbers import Integral

import torch

from ..._sklearn_compat import Interval
from .._docstrings import loss_example
from .._tuples import label_masks
from ._base import BaseLoss, mean_or_zero, zero_loss
from ._terms import miner_weights


@loss_example()
class FastAPLoss(BaseLoss):
    """One minus a differentiable average precision of each sample's ranking of the batch.

    The distances from each anchor to the rest of the batch are spread over
    ``num_bins + 1`` triangular bins on ``[0, 2]`` (Euclidean) or ``[0, 4]`` (squared
    Euclidean) of unit-norm embeddings; with ``h+`` and ``h`` the positive and total
    histograms and ``H+``, ``H`` their cumulative sums, ``AP_i = sum_b h+_b H+_b / H_b / N+_i``.
    The loss is ``1 - AP_i``, times the anchor's miner weight (a miner's tuples only weight
    the samples), averaged over the samples with a positive.

    Parameters
    ----------
    num_bins : int, default=10
        Number of bins (the histogram has ``num_bins + 1`` nodes).
    distance : {'sqeuclidean', 'euclidean'}, default='sqeuclidean'
        The bins assume unit-norm embeddings, so ``normalize`` must stay True.
    normalize : True

    References
    ----------
    Cakir, He, Xia, Kulis and Sclaroff, "Deep Metric Learning to Rank", CVPR 2019.
    """

    supports_reducer = True  # per-sample ("element") terms, as in PML

    allowed_distances = ("sqeuclidean", "euclidean")
    requires_unit_norm = True  # the bins span the distances of unit vectors
    takes_ref_emb = False  # it ranks the batch itself
    _parameter_constraints = {"num_bins": [Interval(Integral, 1, None, closed="left")]}

    def __init__(self, num_bins=10, distance="sqeuclidean", normalize=True):
        super().__init__(distance=distance, normalize=normalize)
        self.num_bins = num_bins

    def compute_loss(self, embeddings, labels, indices_tuple, ref_emb, ref_labels):
        n, dtype = len(embeddings), embeddings.dtype
        pos, neg = label_masks(labels)
        n_pos = pos.sum(1)
        has_pos = n_pos > 0
        weights = miner_weights(indices_tuple, n, dtype, embeddings.device)
        pos_hist, neg_hist = self._histograms(self.distance_matrix(embeddings, None), pos, neg)
        h_pos_cum = pos_hist * torch.cumsum(pos_hist, dim=1)
        total = torch.cumsum(pos_hist + neg_hist, dim=1)
        valid = (h_pos_cum > 0) & (total > 0)
        ap = (h_pos_cum / torch.where(valid, total, 1.0)).masked_fill(~valid, 0.0).sum(1)
        if self.reducer is None:
            # The mean over the anchors with a positive, masked on the device (no sync);
            # zero when no anchor has one or no histogram bin is filled (PML).
            losses = (1 - ap / n_pos.clamp(min=1)) * weights * has_pos
            return losses.sum() / has_pos.sum().clamp(min=1) * valid.any()
        if not bool(valid.any()):  # a reducer selects PML's terms by index (one sync)
            return zero_loss(embeddings)
        losses = (1 - ap[has_pos] / n_pos[has_pos]) * weights[has_pos]
        kept = torch.arange(n, device=embeddings.device)[has_pos]  # PML's terms: these samples
        return self.reduce(losses, kept, "element", embeddings, labels, mean_or_zero)

    def _histograms(self, dist, pos, neg):
        """(n, num_bins + 1) soft counts of each row's positive and negative distances."""
        top = 4.0 if self.distance == "sqeuclidean" else 2.0
        width = top / self.num_bins
        nodes = torch.linspace(0.0, top, self.num_bins + 1, dtype=dist.dtype,
                               device=dist.device)
        pulse = torch.relu(1 - (dist[:, :, None] - nodes).abs() / width)  # (n, n, bins)
        # Both masks' sums over j as one batched product: no (n, n, bins) mask products.
        masks = torch.stack([pos, neg], 1).to(dist.dtype)  # (n, 2, n)
        hists = torch.bmm(masks, pulse)  # (n, 2, bins)
        return hists[:, 0], hists[:, 1]
