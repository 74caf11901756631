"""N-pair loss (Sohn, 2016)."""

import torch
import torch.nn.functional as F

from .._params import NON_NEGATIVE
from .._tuples import to_pairs
from ._base import BaseLoss, zero_loss


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

    Examples
    --------
    >>> import torch
    >>> from skmetric.deep.losses import NPairsLoss
    >>> emb = torch.randn(8, 4, requires_grad=True)
    >>> NPairsLoss()(emb, torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])).ndim
    0
    """

    _parameter_constraints = {"l2_reg": [NON_NEGATIVE]}

    def __init__(self, l2_reg=0.0, distance="dot", normalize=True):
        super().__init__(distance=distance, normalize=normalize)
        self.l2_reg = l2_reg

    def compute_loss(self, embeddings, labels, indices_tuple, ref_emb, ref_labels):
        if ref_emb is not None:
            raise ValueError("NPairsLoss does not support ref_emb; pass only the batch.")
        a, p = _one_pair_per_class(indices_tuple, labels)
        reg = self.l2_reg * embeddings.pow(2).sum(1).mean() if self.l2_reg else 0.0
        if len(a) == 0:
            return zero_loss(embeddings) + reg
        logits = self.dist(embeddings[a], embeddings[p])
        if not self.dist.is_similarity:
            logits = -logits
        targets = torch.arange(len(a), device=embeddings.device)
        return F.cross_entropy(logits, targets) + reg


def _one_pair_per_class(indices_tuple, labels):
    """The first positive pair of each anchor label, in row-major pair order."""
    if indices_tuple is None:
        # The first pair in row-major order is (first, second occurrence) of each label.
        order = torch.argsort(labels, stable=True)
        sorted_labels = labels[order]
        second = torch.where(sorted_labels[1:] == sorted_labels[:-1])[0] + 1
        is_second = torch.ones_like(second, dtype=torch.bool)
        is_second[1:] = sorted_labels[second[1:]] != sorted_labels[second[:-1]]
        second = second[is_second]
        return order[second - 1], order[second]
    a1, p, _, _ = to_pairs(indices_tuple, labels)
    if len(a1) == 0:
        return a1, p
    _, group = torch.unique(labels[a1], return_inverse=True)
    order = torch.arange(len(a1), device=a1.device)
    first = torch.full((int(group.max()) + 1,), len(a1), dtype=torch.long, device=a1.device)
    first = first.scatter_reduce(0, group, order, reduce="amin")
    return a1[first], p[first]
