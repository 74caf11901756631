"""N-pair miner (Sohn, 2016): one positive pair per class."""

import torch

from .. import _sync
from .._tuples import Seeded
from ._base import BaseMiner


class NPairsMiner(Seeded, BaseMiner):
    """One random positive pair per class, negatives from the other classes' pairs.

    Returns pairs ``(a1, p, a2, n)``: ``(a1[c], p[c])`` is a random pair of class c (for
    classes with at least two samples), and the negatives pair each anchor with the
    positives of all other classes: the N-pair tuple of the paper. The query batch is also
    the reference set.

    Parameters
    ----------
    random_state : int, torch.Generator or None, default=None

    References
    ----------
    Sohn, "Improved Deep Metric Learning with Multi-class N-pair Loss Objective",
    NeurIPS 2016.

    Examples
    --------
    >>> import torch
    >>> from skmetric.deep.miners import NPairsMiner
    >>> a1, p, a2, n = NPairsMiner(random_state=0)(torch.randn(8, 4),
    ...                                             torch.tensor([0, 0, 1, 1, 2, 2, 3, 3]))
    >>> len(a1), len(a2)
    (4, 12)
    """

    output = "pairs"
    takes_ref_emb = False

    def __init__(self, random_state=None):
        super().__init__(distance="dot", normalize=True)
        self.random_state = random_state

    def mine(self, embeddings, labels, ref_emb, ref_labels):
        if ref_emb is not None:
            raise ValueError("NPairsMiner does not support ref_emb; pass only the batch.")
        device = labels.device
        # Shuffle, then stable-sort by label: each class's members end up in random order.
        shuffle = _sync.to_device(torch.randperm(len(labels), generator=self.generator),
                                  device)
        order = shuffle[torch.argsort(labels[shuffle], stable=True)]
        sorted_labels = labels[order]
        # The first member of each label's run that has a second one.
        same = sorted_labels[1:] == sorted_labels[:-1]
        first = same.clone()
        first[1:] &= ~same[:-1]
        (first,) = _sync.where(first)  # the one sync: the number of classes with a pair
        a1, p = order[first], order[first + 1]
        # Every ordered pair (i, j), i != j, of those k pairs, in row-major order.
        k = len(a1)
        i = torch.arange(k, device=device).repeat_interleave(max(k - 1, 0))
        j = torch.arange(max(k - 1, 0), device=device).repeat(k)
        j = j + (j >= i).long()
        return a1, p, a1[i], p[j]
