"""Angular miner (Wang et al., 2017)."""

import math

import torch
import torch.nn.functional as F

from .._params import RADIANS
from .._sync import where
from .._tuples import all_triplets
from ._base import BaseMiner

#: pytorch-metric-learning's default angle, 20 degrees, in radians.
PML_ANGLE = math.radians(20)


class AngularMiner(BaseMiner):
    """Triplets whose angle at the negative exceeds ``angle``.

    With ``c = (a + p) / 2`` the angle is ``atan(|a - p| / (2 |n - c|))``, the angle at n
    of the triangle the angular loss works on: large when the negative is close to the
    anchor-positive pair relative to its length. Distances are
    ``torch.nn.functional.pairwise_distance`` (with its ``eps=1e-6``), on the embeddings
    as given: pytorch-metric-learning requires a normalising L2 distance for this miner
    but computes the angles on the raw embeddings, so ``normalize`` defaults to False to
    equal it. Memory is O(number of triplets).

    Parameters
    ----------
    angle : float, default=math.radians(20)
        The threshold in radians (pytorch-metric-learning takes degrees, 20 by default;
        skmetric's angles are radians).
    normalize : bool, default=False
        L2-normalise the embeddings first.

    References
    ----------
    Wang, Zhou, Wen, Liu and Lin, "Deep Metric Learning with Angular Loss", ICCV 2017.

    Examples
    --------
    >>> import torch
    >>> from skmetric.deep.miners import AngularMiner
    >>> a, p, n = AngularMiner()(torch.randn(8, 4), torch.tensor([0, 0, 1, 1, 2, 2, 3, 3]))
    >>> a.dtype
    torch.int64
    """

    output = "triplets"

    _parameter_constraints = {"angle": [RADIANS]}

    def __init__(self, angle=PML_ANGLE, normalize=False):
        super().__init__(distance="euclidean", normalize=normalize)
        self.angle = angle

    def mine(self, embeddings, labels, ref_emb, ref_labels):
        if self.normalize:
            embeddings = F.normalize(embeddings, dim=1)
            ref_emb = None if ref_emb is None else F.normalize(ref_emb, dim=1)
        ref = embeddings if ref_emb is None else ref_emb
        a, p, n = all_triplets(labels, ref_labels)  # sync 1: the number of triplets
        anchors, positives, negatives = embeddings[a], ref[p], ref[n]
        ap = F.pairwise_distance(anchors, positives)
        nc = F.pairwise_distance(negatives, (anchors + positives) / 2)
        keep = torch.atan(ap / (2 * nc)) > self.angle
        (kept,) = where(keep)  # sync 2: how many pass (the angle needs the triplets first)
        return a[kept], p[kept], n[kept]
