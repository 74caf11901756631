"""Triplet margin loss (Weinberger & Saul, 2009; Schroff et al., 2015)."""

from numbers import Integral

import torch
import torch.nn.functional as F

from ..._sklearn_compat import Interval, StrOptions
from .._docstrings import loss_example
from .._params import FINITE
from .._tuples import Seeded, random_triplets, to_triplets
from ._base import BaseLoss, mean_nonzero


@loss_example(margin=0.1)
class TripletMarginLoss(Seeded, BaseLoss):
    """Make each anchor closer to its positive than to its negative by ``margin``.

    ``loss = mean+[relu(d(a, p) - d(a, n) + margin)]`` over the triplets, ``mean+`` averaging
    over the triplets with a non-zero loss (for a similarity the signs flip).

    Parameters
    ----------
    margin : float, default=0.05
        The required gap between the negative and the positive distance.
    swap : bool, default=False
        Use d(p, n) instead of d(a, n) when it is smaller (Balntas et al., 2016).
    smooth_loss : bool, default=False
        The soft-margin form ``softplus(d(a, p) - d(a, n) + margin)`` instead of the hinge.
    triplets_per_anchor : 'all' or int, default='all'
        Without a miner, use all triplets, or this many random ones per anchor.
    distance : {'euclidean', 'sqeuclidean', 'cosine_similarity', 'dot'}, default='euclidean'
        The pairwise distance.
    normalize : bool, default=True
        L2-normalise the embeddings first.
    random_state : int, torch.Generator or None, default=None
        Seeds the random triplets when ``triplets_per_anchor`` is an int.
    reducer : reducer, default=None
        Reduces the triplet terms; None is the mean of the non-zero ones
        (``AvgNonZeroReducer``).

    References
    ----------
    Schroff, Kalenichenko and Philbin, "FaceNet: A Unified Embedding for Face Recognition
    and Clustering", CVPR 2015. Hermans, Beyer and Leibe, "In Defense of the Triplet Loss
    for Person Re-Identification", 2017 (soft margin).
    """

    supports_reducer = True

    _parameter_constraints = {
        "margin": [FINITE],
        "swap": ["boolean"],
        "smooth_loss": ["boolean"],
        "triplets_per_anchor": [StrOptions({"all"}), Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        margin=0.05,
        swap=False,
        smooth_loss=False,
        triplets_per_anchor="all",
        distance="euclidean",
        normalize=True,
        random_state=None,
    ):
        super().__init__(distance=distance, normalize=normalize)
        self.margin = margin
        self.swap = swap
        self.smooth_loss = smooth_loss
        self.triplets_per_anchor = triplets_per_anchor
        self.random_state = random_state

    def compute_loss(self, embeddings, labels, indices_tuple, ref_emb, ref_labels):
        if indices_tuple is None and self.triplets_per_anchor != "all":
            a, p, n = random_triplets(labels, ref_labels, self.triplets_per_anchor, self.generator)
        else:
            a, p, n = to_triplets(indices_tuple, labels, ref_labels)
        mat = self.distance_matrix(embeddings, ref_emb)
        ap, an = mat[a, p], mat[a, n]
        if self.swap:
            an = self.dist.closest(an, mat[p, n])
        violation = self.dist.margin(ap, an) + self.margin
        losses = F.softplus(violation) if self.smooth_loss else torch.relu(violation)
        return self.reduce(losses, (a, p, n), "triplet", embeddings, labels, mean_nonzero)
