"""Intra-pair variance loss (Yu and Tao, 2019)."""

import torch

from .._docstrings import loss_example
from .._params import NON_NEGATIVE
from .._sync import where
from .._tuples import label_masks, to_pairs
from ._base import BaseLoss, mean_or_zero, zero_loss


@loss_example()
class IntraPairVarianceLoss(BaseLoss):
    """Penalise positive and negative pairs that stray from their group's mean similarity.

    With ``mu+`` the mean similarity of the positive pairs, each positive pair costs
    ``relu((1 - pos_eps) mu+ - s)^2`` (and each negative pair ``relu(s - (1 + neg_eps)
    mu-)^2``); each group is averaged over its pairs and the two means are added. For a
    distance the inequalities flip: ``relu(d - (1 + pos_eps) mu+)^2`` and
    ``relu((1 - neg_eps) mu- - d)^2``. Usually combined with another loss.

    Parameters
    ----------
    pos_eps : float, default=0.01
        Relative slack around the positive pairs' mean.
    neg_eps : float, default=0.01
        Relative slack around the negative pairs' mean.
    distance : {'cosine_similarity', 'dot', 'euclidean', 'sqeuclidean'}, default='cosine_similarity'
    normalize : bool, default=True

    References
    ----------
    Yu and Tao, "Deep Metric Learning with Tuplet Margin Loss", ICCV 2019.
    """

    supports_reducer = True  # PML's pair terms

    _parameter_constraints = {"pos_eps": [NON_NEGATIVE], "neg_eps": [NON_NEGATIVE]}

    def __init__(self, pos_eps=0.01, neg_eps=0.01, distance="cosine_similarity", normalize=True):
        super().__init__(distance=distance, normalize=normalize)
        self.pos_eps = pos_eps
        self.neg_eps = neg_eps

    def compute_loss(self, embeddings, labels, indices_tuple, ref_emb, ref_labels):
        if indices_tuple is None and self.reducer is None:
            return self._all_pairs_loss(embeddings, labels, ref_emb, ref_labels)
        a1, p, a2, n = to_pairs(indices_tuple, labels, ref_labels)
        mat = self.distance_matrix(embeddings, ref_emb)
        loss = zero_loss(embeddings)
        # Positive pairs should not be less similar than their mean, negatives not more;
        # each kind of pair is reduced on its own (PML's "pos_pair" and "neg_pair" terms).
        for pairs, eps, sign, idx, kind in ((mat[a1, p], self.pos_eps, 1, (a1, p), "pos_pair"),
                                            (mat[a2, n], self.neg_eps, -1, (a2, n),
                                             "neg_pair")):
            if len(pairs):
                terms = torch.relu(self._excess(pairs, eps, sign)).pow(2)
                loss = loss + self.reduce(terms, idx, kind, embeddings, labels, mean_or_zero)
        return loss

    def _all_pairs_loss(self, embeddings, labels, ref_emb, ref_labels):
        """The same loss over all pairs, without an index list of the negative pairs (nearly
        all of the matrix): their terms are computed on the whole matrix and masked."""
        pos, neg = label_masks(labels, ref_labels)
        a1, p, n_neg = where(pos, extra=(neg.sum(),))  # one sync: the two counts
        mat = self.distance_matrix(embeddings, ref_emb)
        loss = zero_loss(embeddings)
        if len(a1):
            loss = loss + torch.relu(self._excess(mat[a1, p], self.pos_eps, 1)).pow(2).mean()
        if n_neg:
            mean = mat.masked_fill(~neg, 0).sum() / n_neg
            terms = torch.relu(self._excess(mat, self.neg_eps, -1, mean)).pow(2)
            loss = loss + terms.masked_fill(~neg, 0).sum() / n_neg
        return loss

    def _excess(self, values, eps, sign, mean=None):
        """How much less similar (sign 1) or more similar (sign -1) than the mean allows
        (``mean``: the mean of the group's values, by default of ``values``)."""
        mean = values.mean() if mean is None else mean
        if self.dist.is_similarity == (sign == 1):
            return (1 - eps) * mean - values  # for a similarity's positives, a distance's negatives
        return values - (1 + eps) * mean
