"""Smooth-AP loss (Brown et al., 2020)."""

import torch

from .._params import POSITIVE
from ._base import BaseLoss, mean_or_zero
from ._proxy_base import BaseProxyLoss


class SmoothAPLoss(BaseLoss):
    """One minus a smoothed average precision, with each anchor as a query.

    For anchor a with positives P_a (its class in the batch, itself included, as in the
    paper's code) and ``D_akl = sigmoid((s_al - s_ak) / temperature)``,
    ``AP_a = 1/|P_a| sum_{k in P_a} (1 + sum_{l in P_a, l != k} D_akl) /
    (1 + sum_{l != k} D_akl)`` and ``loss = mean_a w_a (1 - AP_a)``, where ``w_a`` weighs
    a by how often it occurs in a miner's tuples (1 without a miner).

    pytorch-metric-learning 2.9 requires every class of the batch to have the same number
    of samples, in contiguous blocks, and then reshapes the batch into blocks whose size
    is the *number of classes*: its result is right only when there are as many classes
    as samples per class (e.g. 8 classes x 8 samples), and silently treats other blocks as
    classes otherwise. This class uses the labels themselves, in any order and with any
    class sizes, and equals pytorch-metric-learning on the layouts where that is right.
    Compute and memory are O(batch_size^3).

    Parameters
    ----------
    temperature : float, default=0.01
        The sigmoid's temperature: smaller is closer to the true (step-function) ranks.
    distance : {'cosine_similarity'}, default='cosine_similarity'
        The only one defined: the paper ranks by cosine similarity.
    normalize : bool, default=True
        Ignored (cosine always normalises); kept for a uniform signature.

    References
    ----------
    Brown, Xie, Kalogeiton and Zisserman, "Smooth-AP: Smoothing the Path Towards
    Large-Scale Image Retrieval", ECCV 2020.

    Examples
    --------
    >>> import torch
    >>> from skmetric.deep.losses import SmoothAPLoss
    >>> emb = torch.randn(8, 4, requires_grad=True)
    >>> loss = SmoothAPLoss()(emb, torch.tensor([0, 0, 1, 1, 2, 2, 3, 3]))
    >>> 0 <= loss.item() <= 1
    True
    """

    supports_reducer = True  # per-sample ("element") terms, as in PML

    allowed_distances = ("cosine_similarity",)
    takes_ref_emb = False  # it ranks the batch against itself

    _parameter_constraints = {"temperature": [POSITIVE]}

    def __init__(self, temperature=0.01, distance="cosine_similarity", normalize=True):
        super().__init__(distance=distance, normalize=normalize)
        self.temperature = temperature

    def compute_loss(self, embeddings, labels, indices_tuple, ref_emb, ref_labels):
        sim = self.distance_matrix(embeddings, None)
        same = (labels[:, None] == labels[None, :]).to(sim.dtype)
        # soft[a, k, l]: how much l ranks ahead of k for query a; the l == k term is
        # sigmoid(0) = 1/2, removed below instead of masked.
        soft = torch.sigmoid((sim[:, None, :] - sim[:, :, None]) / self.temperature)
        all_rank = 0.5 + soft.sum(2)
        pos_rank = 0.5 + torch.einsum("akl,al->ak", soft, same)
        ap = (same * pos_rank / all_rank).sum(1) / same.sum(1)
        weights = BaseProxyLoss._miner_weights(indices_tuple, embeddings)
        losses = 1 - ap if weights is None else (1 - ap) * weights
        anchors = torch.arange(len(embeddings), device=embeddings.device)
        return self.reduce(losses, anchors, "element", embeddings, labels, mean_or_zero)
