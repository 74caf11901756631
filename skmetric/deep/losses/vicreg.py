"""VICReg: variance-invariance-covariance regularisation (Bardes et al., 2022)."""

import torch
import torch.nn.functional as F
from torch import nn

from ..._sklearn_compat import StrOptions
from .._params import NON_NEGATIVE, POSITIVE, ValidatedParams
from .._tuples import check_inputs
from ._options import check_class_weighted
from .reducers import REDUCERS, get_reducer


class VICRegLoss(nn.Module, metaclass=ValidatedParams):
    """A self-supervised loss on two views of the same batch; it takes no labels.

    Called as ``loss(z1, ref_emb=z2)`` with ``z1[i]`` and ``z2[i]`` the embeddings of two
    augmentations of sample i (pytorch-metric-learning's signature)::

        invariance_lambda * mean_i |z1_i - z2_i|^2 / d
        + variance_mu * (mean_j relu(1 - std_j(z1)) + mean_j relu(1 - std_j(z2))) / 2
        + covariance_v * (sum_{j != k} C(z1)_jk^2 + sum_{j != k} C(z2)_jk^2) / d

    with ``std_j = sqrt(var_j + eps)`` per dimension and C the covariance matrix.

    It needs two views and no labels: :class:`~skmetric.deep.MetricEmbedder` makes the
    views by applying its ``train_transform`` twice to each training batch (with
    ``miner=None`` and ``samples_per_class=None``); in your own loop, call it on the
    network's outputs for two augmentations of each input.

    Parameters
    ----------
    invariance_lambda : float, default=25
    variance_mu : float, default=25
    covariance_v : float, default=1
    eps : float, default=1e-4
        Added to the variances before the square root.
    reducer : {'mean', 'avg_non_zero', 'per_anchor'}, callable or None, default=None
        Reduces pytorch-metric-learning's terms, each on its own, then adds them: the
        invariance per sample, each view's variance per dimension ("element" terms) and
        the covariance ("already_reduced"). None is the formula above (as PML's default
        ``MeanReducer``). ``ClassWeightedReducer`` is refused: there are no labels.

    References
    ----------
    Bardes, Ponce and LeCun, "VICReg: Variance-Invariance-Covariance Regularization for
    Self-Supervised Learning", ICLR 2022.

    Examples
    --------
    >>> import torch
    >>> from skmetric.deep.losses import VICRegLoss
    >>> z1 = torch.randn(16, 8, requires_grad=True)
    >>> z2 = z1 + 0.1 * torch.randn(16, 8)
    >>> VICRegLoss()(z1, ref_emb=z2).ndim
    0
    """

    #: Not a labels-based loss: MetricEmbedder trains it on two views (train_transform).
    requires_classes = False
    self_supervised = True

    _parameter_constraints = {
        "invariance_lambda": [NON_NEGATIVE],
        "variance_mu": [NON_NEGATIVE],
        "covariance_v": [NON_NEGATIVE],
        "eps": [POSITIVE],
        "reducer": [None, StrOptions(set(REDUCERS)), callable],
    }
    supports_reducer = True
    refuses_class_weights = "it takes no labels, so there are no classes to weigh."

    def __init__(self, invariance_lambda=25, variance_mu=25, covariance_v=1, eps=1e-4,
                 reducer=None):
        super().__init__()
        self.reducer = get_reducer(reducer)
        check_class_weighted(type(self), self.reducer)
        self.invariance_lambda = invariance_lambda
        self.variance_mu = variance_mu
        self.covariance_v = covariance_v
        self.eps = eps

    def forward(self, embeddings, labels=None, indices_tuple=None, ref_emb=None,
                ref_labels=None):
        """Return the loss of two views ``embeddings`` and ``ref_emb`` (same shape)."""
        if labels is not None or ref_labels is not None or indices_tuple is not None:
            raise TypeError(
                "VICRegLoss is self-supervised: call it as loss(z1, ref_emb=z2) on two "
                "views of a batch, without labels or miner tuples. MetricEmbedder trains "
                "on labels and cannot use it; write your own loop for it."
            )
        if ref_emb is None:
            raise ValueError("VICRegLoss needs the second view: loss(z1, ref_emb=z2).")
        embeddings, _, ref_emb, _ = check_inputs(embeddings, None, ref_emb, None,
                                                 labels_required=False)
        if ref_emb.shape != embeddings.shape:
            raise ValueError(f"The two views must have the same shape; got "
                             f"{tuple(embeddings.shape)} and {tuple(ref_emb.shape)}.")
        if len(embeddings) < 2:
            raise ValueError("VICRegLoss needs at least 2 samples per batch (it uses "
                             "their variance).")
        if self.reducer is not None:
            return self._reduced(embeddings, ref_emb)
        invariance = (embeddings - ref_emb).pow(2).mean()
        variance = (self._variance(embeddings) + self._variance(ref_emb)) / 2
        covariance = self._covariance(embeddings) + self._covariance(ref_emb)
        return (self.invariance_lambda * invariance + self.variance_mu * variance
                + self.covariance_v * covariance)

    def _reduced(self, z1, z2):
        """PML's terms, each reduced by ``reducer``, added."""
        samples = torch.arange(len(z1), device=z1.device)
        dims = torch.arange(z1.shape[1], device=z1.device)
        invariance = self.invariance_lambda * (z1 - z2).pow(2).mean(dim=1)
        loss = self.reducer(invariance, samples, "element", z1, None)
        for z in (z1, z2):
            variance = self.variance_mu * F.relu(1 - torch.sqrt(z.var(dim=0) + self.eps)) / 2
            loss = loss + self.reducer(variance, dims, "element", z1, None)
        covariance = self.covariance_v * (self._covariance(z1) + self._covariance(z2))
        return loss + self.reducer(covariance, None, "already_reduced", z1, None)

    def _variance(self, z):
        return F.relu(1 - torch.sqrt(z.var(dim=0) + self.eps)).mean()

    @staticmethod
    def _covariance(z):
        n, d = z.shape
        z = z - z.mean(dim=0)
        cov = z.T @ z / (n - 1)
        return (cov.pow(2).sum() - cov.diagonal().pow(2).sum()) / d
