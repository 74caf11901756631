"""Signal-to-noise ratio contrastive loss (Yuan et al., 2019)."""

import torch

from .._distances import Distance, pairwise_euclidean
from .._docstrings import loss_example
from .contrastive import ContrastiveLoss


class SNRDistance(Distance):
    """``var(x - y) / var(x)``: the noise-to-signal ratio of y seen as a noisy copy of x.

    Not symmetric. Computed from the centred vectors, ``var(x - y) = |x_c - y_c|^2 / (d-1)``,
    so no (n, m, d) tensor of differences is built.
    """

    name = "snr"

    def _matrix(self, x, y):
        xc = x - x.mean(1, keepdim=True)
        yc = y - y.mean(1, keepdim=True)
        noise = pairwise_euclidean(xc, yc) ** 2 / (x.shape[1] - 1)
        return noise / torch.var(x, dim=1)[:, None]


@loss_example()
class SignalToNoiseRatioContrastiveLoss(ContrastiveLoss):
    """The contrastive loss on the SNR distance ``var(x - y) / var(x)``.

    ``loss = mean+[relu(d(a1, p) - pos_margin)] + mean+[relu(neg_margin - d(a2, n))]``
    with d the SNR distance (``mean+`` averages over the non-zero terms). The paper adds
    a regulariser on the mean of the embeddings; pytorch-metric-learning leaves it out
    by default, and so does this class.

    Parameters
    ----------
    pos_margin : float, default=0.0
        Positive pairs with an SNR distance below this cost nothing.
    neg_margin : float, default=1.0
        Negative pairs with an SNR distance above this cost nothing.
    normalize : bool, default=True
        L2-normalise the embeddings first.

    References
    ----------
    Yuan, Chen, Wang, Shi and Gong, "Signal-to-Noise Ratio: A Robust Distance Metric for
    Deep Metric Learning", CVPR 2019.
    """

    def __init__(self, pos_margin=0.0, neg_margin=1.0, normalize=True):
        super().__init__(pos_margin=pos_margin, neg_margin=neg_margin,
                         distance=SNRDistance(normalize=normalize), normalize=normalize)
        self.distance = "snr"
