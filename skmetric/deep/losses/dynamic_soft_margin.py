"""Dynamic soft margin loss (Zhang and Rusinkiewicz, 2019)."""

from numbers import Integral, Real

import torch

from ..._sklearn_compat import Interval
from .._tuples import to_triplets
from ._base import BaseLoss, zero_loss


class DynamicSoftMarginLoss(BaseLoss):
    """Weight each triplet's ``d(a, p) - d(a, n)`` by its rank among recent triplets.

    The differences ``x = d(a, p) - d(a, n)`` are binned into a running histogram
    (``num_bins`` nodes spaced ``delta = 2 |min_val| / num_bins`` apart from ``min_val``,
    updated with ``momentum``); the loss is the mean of ``CDF(x) * x``, so the triplets
    that are violated most, relative to the recent ones, weigh most. The histogram is a
    buffer (``hist_``), saved with the model.

    Parameters
    ----------
    min_val : float, default=-2.0
        The lowest difference the histogram resolves (negative).
    num_bins : int, default=10
        Number of histogram nodes.
    momentum : float, default=0.01
        Weight of the current batch in the running histogram (the first batch sets it).
    distance : {'euclidean', 'sqeuclidean'}, default='euclidean'
        Of unit-norm embeddings: ``normalize`` must stay True.
    normalize : True

    Notes
    -----
    Differs from pytorch-metric-learning 2.9 in two places, both where it goes wrong:
    the histogram is a statistic without gradient (pytorch-metric-learning keeps its
    autograd graph, so part of each gradient flows into the previous batches); and
    differences beyond the histogram's last node (or below its first) go to the end
    nodes (pytorch-metric-learning indexes past the histogram and fails, which happens
    for any difference above ``min_val + (num_bins - 1) * delta``, 1.6 by default).
    Values, and the gradient of the loss with the histogram fixed, are equal.

    References
    ----------
    Zhang and Rusinkiewicz, "Learning Local Descriptors with a CDF-Based Dynamic Soft
    Margin", ICCV 2019.

    Examples
    --------
    >>> import torch
    >>> from skmetric.deep.losses import DynamicSoftMarginLoss
    >>> loss = DynamicSoftMarginLoss()
    >>> emb = torch.randn(8, 4, requires_grad=True)
    >>> loss(emb, torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])).ndim, loss.hist_.shape
    (0, torch.Size([10]))
    """

    # PML's terms are "already_reduced": any reducer= leaves the value as is.
    supports_reducer = terms_already_reduced = True

    allowed_distances = ("euclidean", "sqeuclidean")
    requires_unit_norm = True  # its histogram spans the distances of unit vectors
    _parameter_constraints = {
        "min_val": [Interval(Real, None, 0, closed="neither")],
        "num_bins": [Interval(Integral, 2, None, closed="left")],
        "momentum": [Interval(Real, 0, 1, closed="right")],
    }

    def __init__(self, min_val=-2.0, num_bins=10, momentum=0.01, distance="euclidean",
                 normalize=True):
        super().__init__(distance=distance, normalize=normalize)
        self.min_val = min_val
        self.num_bins = num_bins
        self.momentum = momentum
        self.register_buffer("hist_", torch.zeros(num_bins))

    @property
    def delta(self):
        """The spacing of the histogram's nodes."""
        return 2 * abs(self.min_val) / self.num_bins

    def compute_loss(self, embeddings, labels, indices_tuple, ref_emb, ref_labels):
        a, p, n = to_triplets(indices_tuple, labels, ref_labels)
        if len(a) == 0:
            return zero_loss(embeddings)
        mat = self.distance_matrix(embeddings, ref_emb)
        diff = mat[a, p] - mat[a, n]
        position = ((diff.detach() - self.min_val) / self.delta).clamp(0, self.num_bins - 1)
        self._update_histogram(position)
        cdf = torch.cumsum(self.hist_, 0)
        return (cdf[position.floor().long()] * diff).mean()

    @torch.no_grad()
    def _update_histogram(self, position):
        """Blend the batch's soft counts (split between the two nearest nodes) in."""
        if self.hist_.dtype != position.dtype or self.hist_.device != position.device:
            self.hist_ = self.hist_.to(dtype=position.dtype, device=position.device)
        left = position.floor().long().clamp(max=self.num_bins - 2)
        right_share = position - left
        # The first batch replaces the empty histogram; decided on the device (no sync).
        momentum = torch.where(self.hist_.sum() != 0, self.momentum, 1.0).to(position.dtype)
        hist = (1.0 - momentum) * self.hist_
        hist = hist.scatter_add(0, left, momentum * (1 - right_share))
        hist = hist.scatter_add(0, left + 1, momentum * right_share)
        self.hist_ = hist / hist.sum()
