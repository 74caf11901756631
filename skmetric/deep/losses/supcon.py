"""Supervised contrastive loss (Khosla et al., 2020)."""

import torch

from .._docstrings import loss_example
from .._params import POSITIVE
from ._base import BaseLoss, masked_logsumexp, mean_nonzero, zero_loss


@loss_example(temperature=0.1)
class SupConLoss(BaseLoss):
    """Softmax over each anchor's pairs, averaged over its positives.

    With logits ``z = s / temperature`` (``-d / temperature`` for a distance),
    ``loss_i = -1/|P_i| sum_{p in P_i} [z_ip - log sum_{j in P_i u N_i} exp(z_ij)]``,
    averaged over the anchors with a non-zero loss. Anchors without a positive cost nothing.

    Parameters
    ----------
    temperature : float, default=0.1
        Softmax temperature; smaller values concentrate on the hardest pairs.
    distance : {'cosine_similarity', 'dot', 'euclidean', 'sqeuclidean'}, default='cosine_similarity'
    normalize : bool, default=True
        L2-normalise the embeddings first.

    References
    ----------
    Khosla, Teterwak, Wang, Sarna, Tian, Isola, Maschinot, Liu and Krishnan, "Supervised
    Contrastive Learning", NeurIPS 2020.
    """

    supports_reducer = True  # per-sample ("element") terms, as in PML

    _parameter_constraints = {"temperature": [POSITIVE]}

    def __init__(self, temperature=0.1, distance="cosine_similarity", normalize=True):
        super().__init__(distance=distance, normalize=normalize)
        self.temperature = temperature

    def compute_loss(self, embeddings, labels, indices_tuple, ref_emb, ref_labels):
        mat, pos, neg = self.matrix_and_masks(embeddings, labels, indices_tuple, ref_emb,
                                              ref_labels)
        logits = (mat if self.dist.is_similarity else -mat) / self.temperature
        log_prob = logits - masked_logsumexp(logits, pos | neg)[:, None]
        n_pos = pos.sum(1).to(mat.dtype)
        # tiny keeps anchors without positives at 0 instead of 0/0, as in the reference.
        mean_log_prob_pos = (log_prob * pos).sum(1) / (n_pos + torch.finfo(mat.dtype).tiny)
        # Zero without positive or negative pairs (PML), decided on the device; PML then
        # hands its reducer no term (one sync).
        both = pos.any() & neg.any()
        if self.reducer is None:
            return mean_nonzero(-mean_log_prob_pos, embeddings) * both
        if not bool(both):
            return zero_loss(embeddings)
        anchors = torch.arange(len(embeddings), device=embeddings.device)
        return self.reduce(-mean_log_prob_pos, anchors, "element", embeddings, labels,
                           mean_nonzero)
