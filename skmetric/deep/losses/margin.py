"""Margin loss with a learnable boundary beta (Wu et al., 2017)."""

from numbers import Integral

import torch
from torch import nn

from ..._sklearn_compat import Interval, StrOptions
from .. import _sync
from .._params import FINITE, NON_NEGATIVE
from .._tuples import to_triplets
from ._base import BaseLoss, zero_loss


class MarginLoss(BaseLoss):
    """Positive pairs inside ``beta - margin``, negative pairs beyond ``beta + margin``.

    For each triplet, ``relu(d(a, p) - beta + margin) + relu(beta - d(a, n) + margin)``;
    the sum is divided by the number of non-zero terms. With ``learn_beta=True``, beta is an
    ``nn.Parameter`` (one, or one per class with ``num_classes``) and ``nu * beta`` is added
    as a regulariser, as in the paper.

    Parameters
    ----------
    margin : float, default=0.2
        Half the width of the gap around the boundary.
    nu : float, default=0.0
        Weight of the beta regulariser (only with ``learn_beta``).
    beta : float, default=1.2
        Initial boundary between positive and negative distances.
    learn_beta : bool, default=False
        Make beta a learnable ``nn.Parameter`` (include the loss's parameters in the
        optimizer; skorch does this for its criterion).
    num_classes : int or None, default=None
        Learn one beta per class; labels must then lie in ``[0, num_classes)``.
    triplets_per_anchor : 'all', default='all'
        Without a miner, all triplets are used.
    distance : {'euclidean', 'sqeuclidean', 'cosine_similarity', 'dot'}, default='euclidean'
    normalize : bool, default=True

    Attributes
    ----------
    betas : Tensor of shape (1,) or (num_classes,)
        The boundary, an ``nn.Parameter`` when ``learn_beta`` (else a buffer).

    References
    ----------
    Wu, Manmatha, Smola and Krahenbuhl, "Sampling Matters in Deep Embedding Learning",
    ICCV 2017.

    Examples
    --------
    >>> import torch
    >>> from skmetric.deep.losses import MarginLoss
    >>> loss = MarginLoss(learn_beta=True)
    >>> [name for name, _ in loss.named_parameters()]
    ['betas']
    """

    supports_reducer = True  # PML\'s "triplet" terms (and its beta regulariser\'s)

    _parameter_constraints = {
        "margin": [FINITE],
        "nu": [NON_NEGATIVE],
        "beta": [FINITE],
        "learn_beta": ["boolean"],
        "num_classes": [None, Interval(Integral, 1, None, closed="left")],
        "triplets_per_anchor": [StrOptions({"all"})],
    }

    def __init__(
        self,
        margin=0.2,
        nu=0.0,
        beta=1.2,
        learn_beta=False,
        num_classes=None,
        triplets_per_anchor="all",
        distance="euclidean",
        normalize=True,
    ):
        super().__init__(distance=distance, normalize=normalize)
        self.margin = margin
        self.nu = nu
        self.beta = beta
        self.learn_beta = learn_beta
        self.num_classes = num_classes
        self.triplets_per_anchor = triplets_per_anchor
        betas = torch.full((num_classes or 1,), float(beta))
        if learn_beta:
            self.betas = nn.Parameter(betas)
        else:
            self.register_buffer("betas", betas)

    def compute_loss(self, embeddings, labels, indices_tuple, ref_emb, ref_labels):
        a, p, n = to_triplets(indices_tuple, labels, ref_labels)
        if len(a) == 0:
            return zero_loss(embeddings)
        if self.num_classes is None:
            beta = self.betas.to(embeddings.dtype)
        else:
            if _sync.host_checks(labels) and (
                    int(labels.min()) < 0 or int(labels.max()) >= self.num_classes):
                raise ValueError(
                    f"With num_classes={self.num_classes}, labels must lie in "
                    f"[0, {self.num_classes}); encode them with sklearn's LabelEncoder."
                )
            beta = self.betas.to(embeddings.dtype)[labels[a].long()]
        mat = self.distance_matrix(embeddings, ref_emb)
        pos_loss = torch.relu(self.dist.margin(mat[a, p], beta) + self.margin)
        neg_loss = torch.relu(self.dist.margin(beta, mat[a, n]) + self.margin)
        if self.reducer is not None:
            return self._reduce_terms(pos_loss + neg_loss, beta, (a, p, n), embeddings, labels)
        divisor = (pos_loss > 0).sum() + (neg_loss > 0).sum()
        # Without terms the sum is 0: clamping the divisor gives PML's zero, sync-free.
        loss = (pos_loss + neg_loss).sum() / divisor.clamp(min=1)
        if self.learn_beta:
            if self.num_classes is None:
                loss = loss + self.nu * beta.sum()
            else:
                loss = loss + self.nu * beta.sum() / divisor.clamp(min=1) * (divisor > 0)
        return loss

    def _reduce_terms(self, losses, beta, triplets, embeddings, labels):
        """PML's terms: the triplets' losses, plus ``nu * beta`` with ``learn_beta`` (one
        "already_reduced" value, or per anchor "element" terms with ``num_classes``)."""
        loss = self.reduce(losses, triplets, "triplet", embeddings, labels, None)
        if not self.learn_beta:
            return loss
        if self.num_classes is None:
            reg = self.reduce(self.nu * beta.reshape(()), None, "already_reduced", embeddings,
                              labels, None)
        else:
            reg = self.reduce(self.nu * beta, triplets[0], "element", embeddings, labels, None)
        return loss + reg
