"""Uniform random miner and the all-tuples miner."""

from numbers import Integral

from ..._sklearn_compat import Interval, StrOptions
from .._sync import where
from .._tuples import (
    Seeded,
    all_pairs,
    all_triplets,
    label_masks,
    random_triplets,
    sample_in_rows,
)
from ._base import BaseMiner


class RandomMiner(Seeded, BaseMiner):
    """Uniformly random tuples: ``tuples_per_anchor`` per anchor, ignoring the embeddings.

    Triplets: each anchor with a positive and a negative gets that many triplets, its
    positive and negative drawn uniformly (with replacement). Pairs: each anchor gets that
    many random positive pairs (if it has a positive) and negative pairs (if it has a
    negative).

    Parameters
    ----------
    output : {'triplets', 'pairs'}, default='triplets'
    tuples_per_anchor : int, default=1
    random_state : int, torch.Generator or None, default=None
        Seeds the draws (on the CPU, so results do not depend on the device).

    Examples
    --------
    >>> import torch
    >>> from skmetric.deep.miners import RandomMiner
    >>> a, p, n = RandomMiner(tuples_per_anchor=2, random_state=0)(
    ...     torch.randn(8, 4), torch.tensor([0, 0, 1, 1, 2, 2, 3, 3]))
    >>> len(a)
    16
    """

    _parameter_constraints = {
        "output": [StrOptions({"pairs", "triplets"})],
        "tuples_per_anchor": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(self, output="triplets", tuples_per_anchor=1, random_state=None):
        super().__init__(distance="euclidean", normalize=True)
        self.output = output
        self.tuples_per_anchor = tuples_per_anchor
        self.random_state = random_state

    def mine(self, embeddings, labels, ref_emb, ref_labels):
        k = self.tuples_per_anchor
        if self.output == "triplets":
            return random_triplets(labels, ref_labels, k, self.generator)
        pos, neg = label_masks(labels, ref_labels)
        has_pos, has_neg = pos.any(1), neg.any(1)
        a1, a2 = where(has_pos, has_neg)  # the one sync: how many anchors have each
        a1, a2 = a1.repeat_interleave(k), a2.repeat_interleave(k)
        return (a1, sample_in_rows(pos, has_pos.long() * k, self.generator,
                                   sizes=(k if len(a1) else 0, len(a1))),
                a2, sample_in_rows(neg, has_neg.long() * k, self.generator,
                                   sizes=(k if len(a2) else 0, len(a2))))


class AllTuplesMiner(BaseMiner):
    """All valid pairs or triplets of the batch (what a loss uses without a miner).

    Parameters
    ----------
    output : {'pairs', 'triplets'}, default='pairs'

    Examples
    --------
    >>> import torch
    >>> from skmetric.deep.miners import AllTuplesMiner
    >>> a, p, n = AllTuplesMiner("triplets")(torch.randn(4, 2), torch.tensor([0, 0, 1, 1]))
    >>> len(a)
    8
    """

    _parameter_constraints = {"output": [StrOptions({"pairs", "triplets"})]}

    def __init__(self, output="pairs"):
        super().__init__(distance="euclidean", normalize=True)
        self.output = output

    def mine(self, embeddings, labels, ref_emb, ref_labels):
        if self.output == "pairs":
            return all_pairs(labels, ref_labels)
        return all_triplets(labels, ref_labels)
