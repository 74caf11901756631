"""Uniform histogram miner: pairs spread evenly over the range of distances."""

from numbers import Integral

import torch

from ..._sklearn_compat import Interval
from .._tuples import as_generator, label_masks
from ._base import BaseMiner


class UniformHistogramMiner(BaseMiner):
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
        self._generator = None

    def mine(self, embeddings, labels, ref_emb, ref_labels):
        if self._generator is None:
            self._generator = as_generator(self.random_state)
        mat = self.dist(embeddings, ref_emb)
        pos, neg = label_masks(labels, ref_labels)
        a1, p = self._per_bin(mat, *torch.where(pos), self.pos_per_bin)
        a2, n = self._per_bin(mat, *torch.where(neg), self.neg_per_bin)
        return a1, p, a2, n

    def _per_bin(self, mat, rows, cols, per_bin):
        if len(rows) == 0:
            return rows, cols
        values = mat[rows, cols]
        edges = torch.linspace(values.min(), values.max(), self.num_bins + 1,
                               dtype=values.dtype, device=values.device)
        chosen = []
        # One draw per bin, in bin order: the reference's sequence of random numbers.
        for i in range(self.num_bins):
            upper = values <= edges[i + 1] if i == self.num_bins - 1 else values < edges[i + 1]
            members = torch.where((values >= edges[i]) & upper)[0]
            if len(members) == 0:
                continue
            draws = torch.multinomial(torch.ones(len(members)), per_bin, replacement=True,
                                      generator=self._generator)
            chosen.append(members[draws.to(members.device)])
        idx = torch.cat(chosen)
        return rows[idx], cols[idx]
