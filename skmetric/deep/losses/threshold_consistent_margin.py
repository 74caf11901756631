"""Threshold-consistent margin (TCM) loss (Zhang et al., 2023)."""

from .._docstrings import loss_example
from .._params import FINITE, NON_NEGATIVE
from .._tuples import to_pairs
from ._base import BaseLoss


@loss_example()
class ThresholdConsistentMarginLoss(BaseLoss):
    """Penalise positive pairs below ``margin_plus`` and negatives above ``margin_minus``.

    ``loss = lambda_plus mean_{s_p <= m+} (m+ - s_p) + lambda_minus mean_{s_n >= m-}
    (s_n - m-)`` over the cosine similarities of the positive and negative pairs (all
    pairs, or a miner's); an empty selection contributes 0. Meant as a regulariser added
    to another loss, to make one verification threshold fit all classes.

    Parameters
    ----------
    lambda_plus, lambda_minus : float, default=1.0
        Weights of the positive and negative terms.
    margin_plus : float, default=0.9
        Positive pairs less similar than this are penalised.
    margin_minus : float, default=0.5
        Negative pairs more similar than this are penalised.
    distance : {'cosine_similarity'}, default='cosine_similarity'
    normalize : bool, default=True
        Ignored (cosine always normalises); kept for a uniform signature.

    Notes
    -----
    With ``ref_emb`` the positives and negatives are taken from ``ref_emb``;
    pytorch-metric-learning 2.9 indexes the query batch with them instead, so the two
    agree only without ``ref_emb``.

    References
    ----------
    Zhang, Tan, Mao, Shi, Wang and Ding, "Threshold-Consistent Margin Loss for Open-World
    Deep Metric Learning", ICLR 2024 (arXiv:2307.04047, 2023).
    """

    # PML's terms are "already_reduced": any reducer= leaves the value as is.
    supports_reducer = terms_already_reduced = True

    allowed_distances = ("cosine_similarity",)

    _parameter_constraints = {
        "lambda_plus": [NON_NEGATIVE],
        "lambda_minus": [NON_NEGATIVE],
        "margin_plus": [FINITE],
        "margin_minus": [FINITE],
    }

    def __init__(self, lambda_plus=1.0, lambda_minus=1.0, margin_plus=0.9, margin_minus=0.5,
                 distance="cosine_similarity", normalize=True):
        super().__init__(distance=distance, normalize=normalize)
        self.lambda_plus = lambda_plus
        self.lambda_minus = lambda_minus
        self.margin_plus = margin_plus
        self.margin_minus = margin_minus

    def compute_loss(self, embeddings, labels, indices_tuple, ref_emb, ref_labels):
        a1, p, a2, n = to_pairs(indices_tuple, labels, ref_labels)
        sim = self.distance_matrix(embeddings, ref_emb)
        pos_term = _mean_violation(self.margin_plus - sim[a1, p])
        neg_term = _mean_violation(sim[a2, n] - self.margin_minus)
        return self.lambda_plus * pos_term + self.lambda_minus * neg_term + 0 * sim.sum()


def _mean_violation(violation):
    """Mean of the non-negative entries (0 if none), as the reference selects them."""
    selected = violation >= 0
    count = selected.sum()
    return (violation * selected).sum() / count.clamp(min=1)
