"""P2SGrad loss (Zhang et al., 2019)."""

import torch
import torch.nn.functional as F
from torch import nn

from .._docstrings import loss_example
from .._params import PMLName
from ._proxy_base import BaseProxyLoss


@loss_example()
class P2SGradLoss(BaseProxyLoss):
    """Mean squared error between the cosines to the class weights and the one-hot labels.

    ``loss = mean_{i, j} (cos θ_ij - [j = y_i])^2`` with ``cos θ_ij`` the cosine of
    embedding i and class weight j, clipped to [-1, 1]. Its gradient is the paper's
    "probability-to-similarity" gradient, free of the scale and margin hyper-parameters
    of the cosine-softmax losses. The class weights are re-normalised to unit length
    (without gradient) at every call, as in the paper's code.

    Parameters
    ----------
    num_classes, embedding_size : int
        pytorch-metric-learning takes them in the other order,
        ``P2SGradLoss(descriptors_dim, num_classes)``; skmetric's proxy losses all take
        ``(num_classes, embedding_size)``. By keyword, ``descriptors_dim=`` is accepted as
        ``embedding_size``.

    Attributes
    ----------
    W : nn.Parameter of shape (embedding_size, num_classes)
        The class weights (unit columns), initialised uniformly and normalised.

    References
    ----------
    Zhang, Zhao, Qiao, Wang, Li and Liu, "P2SGrad: Refined Gradients for Optimizing Deep
    Face Models", CVPR 2019.
    """

    #: pytorch-metric-learning returns the loss "already_reduced": every reducer keeps it.
    supports_reducer = terms_already_reduced = True
    pml_names = {"descriptors_dim": PMLName("embedding_size")}

    def __init__(self, num_classes, embedding_size):
        super().__init__(num_classes, embedding_size)
        self.W = self._new_weights(embedding_size, num_classes, init=_unit_uniform_)

    def forward(self, embeddings, labels, indices_tuple=None, ref_emb=None, ref_labels=None):
        if indices_tuple is not None:
            raise ValueError("P2SGradLoss does not weight samples by miner tuples (neither "
                             "does pytorch-metric-learning); use it without a miner.")
        return super().forward(embeddings, labels, None, ref_emb, ref_labels)

    def logits(self, embeddings):
        with torch.no_grad():
            _unit_columns_(self.W)
        # Dividing the (n, dim) embeddings rather than the (n, num_classes) product: the
        # same cosines, with fewer divisions when there are more classes than dimensions.
        # F.normalize's floor on the norm gives a zero embedding cosines of 0 (finite loss
        # and gradients) where pytorch-metric-learning's plain division gives NaN.
        cos = F.normalize(embeddings, dim=1) @ self.W
        return cos.clamp(-1, 1)

    def compute_loss(self, embeddings, labels, weights):
        cos = self.logits(embeddings)
        target = torch.zeros_like(cos).scatter_(1, labels[:, None], 1.0)  # one-hot, no int64
        return F.mse_loss(cos, target)


def _unit_columns_(weights):
    # renorm scales columns above the max norm to it: 1e-5, then times 1e5 gives unit length.
    weights.renorm_(2, 1, 1e-5).mul_(1e5)


def _unit_uniform_(weights):
    with torch.no_grad():
        nn.init.uniform_(weights, -1, 1)
        _unit_columns_(weights)
