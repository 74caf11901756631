"""NT-Xent / InfoNCE loss (Chen et al., 2020; van den Oord et al., 2018)."""

import torch

from .._docstrings import loss_example
from .._params import POSITIVE
from .._tuples import to_pairs
from ._base import BaseLoss, masked_logsumexp, mean_or_zero, zero_loss
from ._terms import pair_counts


@loss_example(temperature=0.1)
class NTXentLoss(BaseLoss):
    """Each positive pair must win a softmax against the negatives of its anchor.

    For a positive pair ``(a, p)`` with logits ``s / temperature`` (``s`` the similarity, or
    minus the distance), ``loss = -log(exp(s_ap) / (exp(s_ap) + sum_n exp(s_an)))`` where ``n``
    runs over the negative pairs of anchor ``a``; the losses are averaged over the positive
    pairs. A negative pair listed k times by a miner counts k times, as in
    pytorch-metric-learning.

    Parameters
    ----------
    temperature : float, default=0.07
        Softmax temperature: small values focus on the hardest negatives.
    distance : {'cosine_similarity', 'dot', 'euclidean', 'sqeuclidean'}, default='cosine_similarity'
    normalize : bool, default=True

    Notes
    -----
    The loss is zero without a positive or without a negative pair, and ``-log(ratio +
    tiny)`` caps a term at about 87 (float32) or 708 (float64), as in
    pytorch-metric-learning. One positive and one negative pair give their loss;
    pytorch-metric-learning 2.9 returns 0 whenever no index tensor has two elements (see
    "Where skmetric differs from pytorch-metric-learning" in docs/deep_losses.md).

    References
    ----------
    Chen, Kornblith, Norouzi and Hinton, "A Simple Framework for Contrastive Learning of
    Visual Representations", ICML 2020. van den Oord, Li and Vinyals, "Representation
    Learning with Contrastive Predictive Coding", 2018.
    """

    supports_reducer = True  # PML's pair terms

    _parameter_constraints = {"temperature": [POSITIVE]}

    def __init__(self, temperature=0.07, distance="cosine_similarity", normalize=True):
        super().__init__(distance=distance, normalize=normalize)
        self.temperature = temperature

    def compute_loss(self, embeddings, labels, indices_tuple, ref_emb, ref_labels):
        a1, p, a2, n = to_pairs(indices_tuple, labels, ref_labels)
        if len(a1) == 0 or len(a2) == 0:
            return zero_loss(embeddings)
        mat = self.distance_matrix(embeddings, ref_emb)
        logits = self.dist.margin(0.0, mat) / self.temperature  # similarity, or -distance
        # sum over the anchor's negative pairs (with multiplicity) as one log-sum-exp
        counts = pair_counts(a2, n, mat.shape, mat.dtype)
        neg_lse = masked_logsumexp(logits + counts.clamp(min=1).log(), counts > 0)
        has_neg = counts.any(1)
        pos = logits[a1, p]
        log_denominator = torch.where(has_neg[a1], torch.logaddexp(pos, neg_lse[a1]), pos)
        tiny = torch.finfo(mat.dtype).tiny
        losses = -torch.log(torch.exp(pos - log_denominator) + tiny)
        return self.reduce(losses, (a1, p), "pos_pair", embeddings, labels, mean_or_zero)
