"""Multi-similarity loss (Wang et al., 2019)."""

import torch

from .._docstrings import loss_example
from .._params import FINITE, POSITIVE
from ._base import BaseLoss, masked_logsumexp
from ._options import COLUMN_TERMS


@loss_example()
class MultiSimilarityLoss(BaseLoss):
    """Weight every pair by its self-similarity and its relative similarity.

    ``loss_i = 1/alpha log(1 + sum_p exp(-alpha (s_ip - base))) + 1/beta log(1 + sum_n
    exp(beta (s_in - base)))``, averaged over anchors; usually paired with the
    multi-similarity miner.

    Parameters
    ----------
    alpha : float, default=2.0
        Scale of the positive pairs.
    beta : float, default=50.0
        Scale of the negative pairs.
    base : float, default=0.5
        The similarity offset (lambda in the paper).
    distance : {'cosine_similarity', 'dot', 'euclidean', 'sqeuclidean'}, default='cosine_similarity'
    normalize : bool, default=True

    References
    ----------
    Wang, Han, Huang, Dong and Scott, "Multi-Similarity Loss with General Pair Weighting
    for Deep Metric Learning", CVPR 2019.
    """

    supports_reducer = True  # per-sample ("element") terms, as in PML
    refuses_class_weights = COLUMN_TERMS  # PML's (n, 1) terms (see _options)

    _parameter_constraints = {"alpha": [POSITIVE], "beta": [POSITIVE], "base": [FINITE]}

    def __init__(self, alpha=2.0, beta=50.0, base=0.5, distance="cosine_similarity",
                 normalize=True):
        super().__init__(distance=distance, normalize=normalize)
        self.alpha = alpha
        self.beta = beta
        self.base = base

    def compute_loss(self, embeddings, labels, indices_tuple, ref_emb, ref_labels):
        mat, pos, neg = self.matrix_and_masks(embeddings, labels, indices_tuple, ref_emb,
                                              ref_labels)
        pos_term = masked_logsumexp(self.alpha * self.dist.margin(mat, self.base), pos,
                                    add_one=True)
        neg_term = masked_logsumexp(self.beta * self.dist.margin(self.base, mat), neg,
                                    add_one=True)
        losses = pos_term / self.alpha + neg_term / self.beta
        if self.reducer is None:
            return losses.mean()
        anchors = torch.arange(len(embeddings), device=embeddings.device)
        return self.reduce(losses, anchors, "element", embeddings, labels, None)
