"""Manifold (ensemble deep manifold similarity) loss with hard proxies (Aziere and
Todorovic, 2019)."""

from numbers import Real

import torch
import torch.nn.functional as F
from torch import nn

from ..._sklearn_compat import Interval
from .._docstrings import loss_example
from .._params import NON_NEGATIVE, PMLName
from ._base import masked_logsumexp
from ._proxy_base import BaseProxyLoss


@loss_example()
class ManifoldLoss(BaseProxyLoss):
    """Rank each sample's own proxy first by random-walk (manifold) similarity.

    The cosine affinities ``exp(max(cos, 0) / 0.5)`` of the batch and the ``num_classes``
    proxies form a graph; ``F = (1 - alpha) (I - alpha D^-1/2 S D^-1/2)^-1`` is its
    random-walk similarity. With ``m_i`` the proxy of sample i (its label), the intrinsic
    loss is the mean over samples of ``log(1 + sum_k exp(F_ik - F_im_i + margin))`` over the
    other proxies k with a non-negative term, and the context loss is the same on the
    cosine similarities of the rows of F; ``loss = intrinsic + lambda_c * context``.

    Parameters
    ----------
    num_classes : int
        Number of proxies K (pytorch-metric-learning's ``K``, also accepted as ``K=``);
        labels are the proxy (meta-class) indices of the samples, in ``[0, K)``. No
        default (pytorch-metric-learning's is 50): as for every proxy loss,
        :class:`~skmetric.deep.MetricEmbedder` sets it to the number of classes.
    embedding_size : int
        Dimension of the embeddings (pytorch-metric-learning's ``l``, also accepted).
    lambda_c : float, default=1.0
        Weight of the context loss (``lambdaC``, also accepted).
    alpha : float, default=0.8
        How much similarity each node passes to its neighbours in the random walk, in (0, 1).
    margin : float, default=5e-4

    Notes
    -----
    pytorch-metric-learning takes the meta-classes as ``indices_tuple`` (labels must be
    None) and draws them at random when none are given; here they are the labels, so the
    loss plugs into :class:`~skmetric.deep.MetricEmbedder` with one proxy per class. Miners
    are not supported. ``lambda_c`` must be finite (pytorch-metric-learning returns inf for
    ``lambdaC=inf``). The matrix inverse runs in the embeddings' dtype (pytorch-metric-
    learning inverts in float32), so float64 results agree to about 1e-8.

    References
    ----------
    Aziere and Todorovic, "Ensemble Deep Manifold Similarity Learning using Hard Proxies",
    CVPR 2019.
    """

    pml_names = {"l": PMLName("embedding_size"), "K": PMLName("num_classes"),
                 "lambdaC": PMLName("lambda_c")}
    _parameter_constraints = {
        "lambda_c": [NON_NEGATIVE],
        "alpha": [Interval(Real, 0, 1, closed="neither")],
        "margin": [NON_NEGATIVE],
    }
    #: pytorch-metric-learning returns the loss "already_reduced": every reducer keeps it.
    supports_reducer = terms_already_reduced = True

    def __init__(self, num_classes, embedding_size, lambda_c=1.0, alpha=0.8, margin=5e-4):
        super().__init__(num_classes, embedding_size)
        self.lambda_c = lambda_c
        self.alpha = alpha
        self.margin = margin
        self.proxies = self._new_weights(num_classes, embedding_size, init=nn.init.normal_)

    def logits(self, embeddings):
        return F.normalize(embeddings, dim=1) @ F.normalize(self.proxies, dim=1).T

    def compute_loss(self, embeddings, labels, weights):
        if weights is not None:
            raise ValueError("ManifoldLoss takes no miner tuples (miner=None in "
                             "MetricEmbedder); the labels give each sample's proxy.")
        n = len(embeddings)
        walk = self._random_walk(torch.cat([embeddings, self.proxies]))
        intrinsic = _hard_proxy_term(walk[:n, n:], labels, self.margin)
        # Cosines of the rows of F by one product of unit rows: broadcasting (n, 1, n + K)
        # against (K, n + K) would build an n x K x (n + K) tensor (128 MiB at n = K = 256).
        context = F.normalize(walk[:n], dim=1) @ F.normalize(walk[n:], dim=1).T
        return intrinsic + self.lambda_c * _hard_proxy_term(context, labels, self.margin)

    def _random_walk(self, points):
        """``(1 - alpha) (I - alpha S_bar)^-1`` of the normalised affinity graph."""
        unit = F.normalize(points, dim=1)
        eye = torch.eye(len(points), dtype=points.dtype, device=points.device)
        affinity = torch.exp((unit @ unit.T).clamp(min=0) / 0.5) * (1 - eye)
        scale = affinity.sum(1).rsqrt()
        s_bar = scale[:, None] * affinity * scale[None, :]
        system = eye - self.alpha * s_bar
        if system.dtype in (torch.float16, torch.bfloat16):  # no half-precision inverse
            return (1 - self.alpha) * _inverse(system.float()).to(system.dtype)
        return (1 - self.alpha) * _inverse(system)


def _inverse(system):
    # I - alpha S_bar (alpha < 1, spectral radius of S_bar <= 1) is always invertible:
    # inv_ex skips the error check, which reads a status from the device (a sync).
    return torch.linalg.inv_ex(system).inverse


def _hard_proxy_term(sim, labels, margin):
    """Mean over rows of ``log(1 + sum exp(s_k - s_own + margin))`` over the other proxies
    whose term is non-negative."""
    excess = sim - sim.gather(1, labels[:, None]) + margin
    own = F.one_hot(labels, sim.shape[1]).bool()
    return masked_logsumexp(excess, ~own & (excess >= 0), add_one=True).mean()
