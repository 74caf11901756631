"""Prioritising-positives (PNP) loss (Li et al., 2022)."""

import torch

from ..._sklearn_compat import StrOptions
from .._docstrings import loss_example
from .._params import FINITE, POSITIVE
from ._base import BaseLoss

_VARIANTS = ("Ds", "Dq", "Iu", "Ib", "O")


@loss_example(variant="Ds")
class PNPLoss(BaseLoss):
    """Penalise, per query, the smoothed number of negatives ranked above each positive.

    For query a, positive k (its class, itself included) and
    ``R_ak = sum_{l negative} sigmoid((s_al - s_ak) / anneal)``, the loss averages
    ``f(R_ak)`` over a's positives, then over the batch; ``f`` is the variant:

    * ``'O'``: ``R`` (PNP-O, the default);
    * ``'Ds'``: ``log(1 + R)``;  ``'Dq'``: ``1 - mean 1 / (1 + R)^alpha``;
    * ``'Iu'``: ``(1 + R) log(1 + R)``;  ``'Ib'``: ``(b R - log(1 + b R)) / b^2``.

    The sigmoid's argument is clipped to [-50, 50] as in the authors' code. Compute and
    memory are O(batch_size^3).

    Parameters
    ----------
    b : float, default=2
        The 'Ib' variant's parameter.
    alpha : float, default=1
        The 'Dq' variant's exponent.
    anneal : float, default=0.01
        The sigmoid's temperature.
    variant : {'O', 'Ds', 'Dq', 'Iu', 'Ib'}, default='O'
    distance : {'cosine_similarity'}, default='cosine_similarity'
        PNP ranks by cosine similarity, as in the paper.
    normalize : bool, default=True
        Ignored (cosine always normalises); kept for a uniform signature.

    References
    ----------
    Li, Yang, Zhu, Chen, Zhang and Pan, "Rethinking the Optimization of Average Precision:
    Only Penalizing Negative Instances before Positive Ones is Enough", AAAI 2022.
    """

    # PML's terms are "already_reduced": any reducer= leaves the value as is.
    supports_reducer = terms_already_reduced = True

    allowed_distances = ("cosine_similarity",)
    takes_indices_tuple = takes_ref_emb = False  # it ranks the whole batch

    _parameter_constraints = {
        "b": [POSITIVE],
        "alpha": [FINITE],
        "anneal": [POSITIVE],
        "variant": [StrOptions(set(_VARIANTS))],
    }

    def __init__(self, b=2, alpha=1, anneal=0.01, variant="O", distance="cosine_similarity",
                 normalize=True):
        super().__init__(distance=distance, normalize=normalize)
        self.b = b
        self.alpha = alpha
        self.anneal = anneal
        self.variant = variant

    def compute_loss(self, embeddings, labels, indices_tuple, ref_emb, ref_labels):
        sim = self.distance_matrix(embeddings, None)
        same = labels[:, None] == labels[None, :]
        # before[a, k, l]: how much l ranks ahead of k for query a.
        diff = (sim[:, None, :] - sim[:, :, None]) / self.anneal
        before = torch.sigmoid(diff.clamp(-50, 50))
        ranks = torch.einsum("akl,al->ak", before, (~same).to(sim.dtype))
        pos = same.to(sim.dtype)
        per_query = (self._transform(ranks) * pos).sum(1) / pos.sum(1)
        loss = per_query.mean()
        return 1 - loss if self.variant == "Dq" else loss

    def _transform(self, ranks):
        if self.variant == "Ds":
            return torch.log1p(ranks)
        if self.variant == "Dq":
            return (1 + ranks) ** -self.alpha
        if self.variant == "Iu":
            return (1 + ranks) * torch.log1p(ranks)
        if self.variant == "Ib":
            return (self.b * ranks - torch.log1p(self.b * ranks)) / self.b**2
        return ranks
