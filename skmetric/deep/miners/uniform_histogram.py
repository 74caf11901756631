"""Uniform histogram miner: pairs spread evenly over the range of distances."""

from numbers import Integral

import torch

from ..._sklearn_compat import Interval
from .. import _sync
from .._tuples import Seeded
from ._base import BaseMiner


class UniformHistogramMiner(Seeded, BaseMiner):
    """Sample the same number of pairs from every bin of a histogram of the pair distances.

    The positive pairs' distances are split into ``num_bins`` equal-width bins between
    their minimum and maximum; ``pos_per_bin`` pairs are drawn with replacement from each
    non-empty bin (uniformly within it). Likewise for the negatives. The bins are visited
    in order and drawn one after another exactly as pytorch-metric-learning does, so with
    ``random_state=s`` the result equals PML's after ``torch.manual_seed(s)`` (on the CPU).
    Random numbers always come from a CPU generator, so results do not depend on the
    device.

    Parameters
    ----------
    num_bins : int, default=100
    pos_per_bin : int, default=10
    neg_per_bin : int, default=10
    distance : {'euclidean', 'sqeuclidean', 'cosine_similarity', 'dot'}, default='euclidean'
    normalize : bool, default=True
    random_state : int, torch.Generator or None, default=None
        Seeds the draws (None: fresh entropy, not torch's global seed).

    References
    ----------
    pytorch-metric-learning's ``UniformHistogramMiner`` (Musgrave et al., "A Metric
    Learning Reality Check", ECCV 2020).

    Examples
    --------
    >>> import torch
    >>> from skmetric.deep.miners import UniformHistogramMiner
    >>> miner = UniformHistogramMiner(num_bins=4, pos_per_bin=2, neg_per_bin=3, random_state=0)
    >>> a1, p, a2, n = miner(torch.randn(8, 4), torch.tensor([0, 0, 1, 1, 2, 2, 3, 3]))
    >>> len(a1) <= 8 and len(a2) <= 12
    True
    """

    output = "pairs"

    _parameter_constraints = {
        "num_bins": [Interval(Integral, 1, None, closed="left")],
        "pos_per_bin": [Interval(Integral, 1, None, closed="left")],
        "neg_per_bin": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(self, num_bins=100, pos_per_bin=10, neg_per_bin=10, distance="euclidean",
                 normalize=True, random_state=None):
        super().__init__(distance=distance, normalize=normalize)
        self.num_bins = num_bins
        self.pos_per_bin = pos_per_bin
        self.neg_per_bin = neg_per_bin
        self.random_state = random_state

    def mine(self, embeddings, labels, ref_emb, ref_labels):
        mat, pos, neg = self.matrix_and_masks(embeddings, labels, ref_emb, ref_labels)
        a1, p, a2, n = _sync.where(pos, neg)  # sync 1: the numbers of pairs
        pos_bins, neg_bins = self._bins(mat[a1, p]), self._bins(mat[a2, n])
        # Sync 2: the bins' sizes, which the reference's draws (on the CPU) depend on.
        sizes = _sync.fetch(*pos_bins[1], *neg_bins[1])
        pos_idx = self._draw(pos_bins[0], sizes[: self.num_bins], self.pos_per_bin)
        neg_idx = self._draw(neg_bins[0], sizes[self.num_bins:], self.neg_per_bin)
        return a1[pos_idx], p[pos_idx], a2[neg_idx], n[neg_idx]

    def _bins(self, values):
        """The pairs sorted by bin (stably) and each bin's size, on the device.

        Bins split [min, max] evenly (edges as ``torch.linspace`` computes them), half-open
        except the last.
        """
        if len(values) == 0:
            return values.long(), [values.new_zeros((), dtype=torch.long)] * self.num_bins
        steps = self.num_bins + 1
        low, high = values.min(), values.max()
        step = (high - low) / (steps - 1)
        # torch's CPU linspace rounds start + step * i once (a fused multiply-add): float64
        # arithmetic rounded back reproduces it for narrower floats, addcmul for float64.
        wide = torch.float64
        i = torch.arange(steps, device=values.device, dtype=wide)
        if values.dtype == wide:
            up = torch.addcmul(low, step, i)
            down = torch.addcmul(high, step, steps - 1 - i, value=-1)
        else:
            up = low.to(wide) + step.to(wide) * i
            down = high.to(wide) - step.to(wide) * (steps - 1 - i)
        edges = torch.where(i < steps // 2, up, down).to(values.dtype)
        bin_of = torch.searchsorted(edges[1:-1].contiguous(), values, right=True)
        order = torch.argsort(bin_of, stable=True)
        return order, _sync.counts(bin_of, self.num_bins).unbind()

    def _draw(self, order, sizes, per_bin):
        """``per_bin`` members of each non-empty bin, drawn in bin order on the CPU."""
        picks, start = [], 0
        for size in sizes:
            if size:
                draws = torch.multinomial(torch.ones(size), per_bin, replacement=True,
                                          generator=self.generator)
                picks.append(draws + start)
            start += size
        if not picks:
            return order[:0]
        return order[_sync.to_device(torch.cat(picks), order.device)]
