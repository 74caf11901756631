"""N-pair loss (Sohn, 2016)."""

import torch
import torch.nn.functional as F

from .._docstrings import loss_example
from .._params import NON_NEGATIVE
from .._tuples import to_pairs
from ._base import BaseLoss, zero_loss


@loss_example()
class NPairsLoss(BaseLoss):
    """One positive pair per class; each anchor must pick its own positive among all of them.

    With one pair ``(a_c, p_c)`` per class c (the first one found, or a miner's), the loss
    is the cross-entropy of the similarity matrix ``s(a_c, p_c')`` with the diagonal as
    targets, plus ``l2_reg`` times the mean squared norm of the (raw) embeddings.

    Parameters
    ----------
    l2_reg : float, default=0.0
        Weight of the embedding-norm penalty; the paper uses it with unnormalised
        embeddings (``normalize=False``), e.g. ``l2_reg=0.002``.
    distance : {'dot', 'cosine_similarity', 'euclidean', 'sqeuclidean'}, default='dot'
        Distances are negated to serve as logits.
    normalize : bool, default=True
        L2-normalise the embeddings first (so 'dot' is the cosine similarity, as in
        pytorch-metric-learning's default).

    References
    ----------
    Sohn, "Improved Deep Metric Learning with Multi-class N-pair Loss Objective",
    NeurIPS 2016.
    """

    supports_reducer = True  # per-anchor ("element") terms, as in PML
    takes_ref_emb = False  # its pairs' anchors and positives both come from the batch

    _parameter_constraints = {"l2_reg": [NON_NEGATIVE]}

    def __init__(self, l2_reg=0.0, distance="dot", normalize=True):
        super().__init__(distance=distance, normalize=normalize)
        self.l2_reg = l2_reg

    def compute_loss(self, embeddings, labels, indices_tuple, ref_emb, ref_labels):
        a, p, valid = _one_pair_per_class(indices_tuple, labels)
        reg = self.l2_reg * embeddings.pow(2).sum(1).mean() if self.l2_reg else 0.0
        if len(a) == 0:
            return zero_loss(embeddings) + reg
        logits = self.dist(embeddings[a], embeddings[p])
        if not self.dist.is_similarity:
            logits = -logits
        # Cross-entropy over the valid slots only (padding masked out, on the device).
        logits = logits.masked_fill(~valid[None, :], torch.finfo(logits.dtype).min)
        targets = torch.arange(len(a), device=embeddings.device)
        ce = F.cross_entropy(logits, targets, reduction="none")
        if self.reducer is None:
            return torch.where(valid, ce, 0.0).sum() / valid.sum().clamp(min=1) + reg
        # A reducer sees the real pairs only (PML's terms): selecting them syncs.
        return self.reduce(ce[valid], a[valid], "element", embeddings, labels, None) + reg


def _one_pair_per_class(indices_tuple, labels):
    """The first positive pair of each anchor label, in the order of the labels.

    Returns ``(a, p, valid)`` of a fixed length (an upper bound on the number of
    classes), the pairs first and padding (``valid`` False) after: the number of classes
    is not read on the host (a sync).
    """
    if indices_tuple is None:
        # The first pair in row-major order is (first, second occurrence) of each label.
        order = torch.argsort(labels, stable=True)
        sorted_labels = labels[order]
        repeat = sorted_labels[1:] == sorted_labels[:-1]
        second = repeat.clone()
        second[1:] &= ~repeat[:-1]  # the second member of its run, not a later one
        slots = len(labels) // 2
        idx = torch.nonzero_static(second, size=slots, fill_value=0)[:, 0] + 1
        return order[idx - 1], order[idx], torch.arange(slots, device=labels.device) < second.sum()
    a1, p, _, _ = to_pairs(indices_tuple, labels)
    # Stable sort by the anchor's label: the first pair of each run is that label's first.
    pair_labels, order = torch.sort(labels[a1], stable=True)
    first = torch.ones_like(pair_labels, dtype=torch.bool)
    first[1:] = pair_labels[1:] != pair_labels[:-1]
    slots = min(len(labels), len(a1))
    idx = order[torch.nonzero_static(first, size=slots, fill_value=0)[:, 0]]
    return a1[idx], p[idx], torch.arange(slots, device=labels.device) < first.sum()
