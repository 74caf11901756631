"""Triplet margin miner: all, hard, semi-hard or easy triplets with respect to a margin."""

import torch

from ..._sklearn_compat import StrOptions
from .._params import FINITE
from .._tuples import label_masks
from ._base import BaseMiner

_TYPES = ("all", "hard", "semihard", "easy")


class TripletMarginMiner(BaseMiner):
    """Triplets selected by their margin ``t = d(a, n) - d(a, p)`` (sign flipped for similarities).

    * ``'all'``: ``t <= margin``, every triplet that violates the margin;
    * ``'hard'``: ``t <= 0`` (and ``t <= margin``): the negative is closer than the positive;
    * ``'semihard'``: ``0 < t <= margin``: the negative is farther, but within the margin;
    * ``'easy'``: ``t > margin``: triplets that already satisfy the margin.

    Memory is O(N^2) plus the candidate triplets: no (N, N, N) mask is built.

    Parameters
    ----------
    margin : float, default=0.2
    type_of_triplets : {'all', 'hard', 'semihard', 'easy'}, default='all'
    distance : {'euclidean', 'sqeuclidean', 'cosine_similarity', 'dot'}, default='euclidean'
    normalize : bool, default=True

    References
    ----------
    Schroff, Kalenichenko and Philbin, "FaceNet", CVPR 2015 (semi-hard negatives).

    Examples
    --------
    >>> import torch
    >>> from skmetric.deep.miners import TripletMarginMiner
    >>> a, p, n = TripletMarginMiner(type_of_triplets="semihard")(
    ...     torch.randn(8, 4), torch.tensor([0, 0, 1, 1, 2, 2, 3, 3]))
    >>> a.dtype
    torch.int64
    """

    output = "triplets"

    _parameter_constraints = {
        "margin": [FINITE],
        "type_of_triplets": [StrOptions(set(_TYPES))],
    }

    def __init__(self, margin=0.2, type_of_triplets="all", distance="euclidean", normalize=True):
        super().__init__(distance=distance, normalize=normalize)
        self.margin = margin
        self.type_of_triplets = type_of_triplets

    def mine(self, embeddings, labels, ref_emb, ref_labels):
        mat = self.dist(embeddings, ref_emb)
        # "Farness" f: the distance, or minus the similarity; then t = f(a, n) - f(a, p).
        far = -mat if self.dist.is_similarity else mat
        pos, neg = label_masks(labels, ref_labels)
        # Each anchor's negatives sorted by farness (others pushed to the end): for a
        # positive pair, the negatives with t in a range are a contiguous run of them.
        neg_far, neg_order = torch.sort(far.masked_fill(~neg, float("inf")), dim=1)
        n_neg = neg.sum(1)
        a, p = torch.where(pos & (n_neg > 0)[:, None])
        ap = far[a, p]
        if self.type_of_triplets == "easy":
            lo, hi = _count_at_most(neg_far, a, ap, self.margin, n_neg), n_neg[a]
        elif self.type_of_triplets == "semihard":
            lo = _count_at_most(neg_far, a, ap, 0.0, n_neg)
            hi = torch.maximum(_count_at_most(neg_far, a, ap, self.margin, n_neg), lo)
        else:
            limit = min(self.margin, 0.0) if self.type_of_triplets == "hard" else self.margin
            lo, hi = torch.zeros_like(a), _count_at_most(neg_far, a, ap, limit, n_neg)
        return _expand_runs(a, p, lo, hi, neg_order)


def _count_at_most(neg_far, a, ap, limit, n_neg):
    """For each positive pair, how many of anchor a's sorted negatives have t <= limit.

    ``t = neg_far - ap`` is monotone in the sorted negatives, so a binary search on
    ``ap + limit`` finds the boundary; a few exact checks of ``neg_far - ap <= limit``
    around it then make the result identical to testing every triplet.
    """
    counts = torch.bincount(a, minlength=neg_far.shape[0])
    k = int(counts.max()) if len(a) else 0
    if k == 0:
        return torch.zeros_like(a)
    # Lay the positive pairs out as (anchor, slot) so each row searches its own negatives.
    first = torch.cumsum(counts, 0) - counts
    slot = torch.arange(len(a), device=a.device) - first[a]
    values = torch.full((neg_far.shape[0], k), float("inf"), dtype=neg_far.dtype,
                        device=neg_far.device)
    values[a, slot] = ap + limit
    found = torch.searchsorted(neg_far, values, right=True)[a, slot]
    found = torch.minimum(found, n_neg[a])
    size = n_neg[a]
    for _ in range(4):
        # Step right while the next negative still qualifies, left while the last fails.
        nxt = neg_far[a, found.clamp(max=neg_far.shape[1] - 1)] - ap <= limit
        right = (found < size) & nxt
        prev = neg_far[a, (found - 1).clamp(min=0)] - ap > limit
        left = (found > 0) & prev & ~right
        unsettled = right | left
        if not bool(unsettled.any()):
            return found
        found = found + right.long() - left.long()
    # Rare (runs of equal values): count those pairs exactly, a row at a time.
    for i in torch.where(unsettled)[0].tolist():
        row = neg_far[a[i], : size[i]]
        found[i] = (row - ap[i] <= limit).sum()
    return found


def _expand_runs(a, p, lo, hi, neg_order):
    """Triplets (a, p, n) for n in the sorted negatives ``neg_order[a, lo:hi]`` of each pair."""
    length = (hi - lo).clamp(min=0)
    total = int(length.sum())
    pair = torch.repeat_interleave(torch.arange(len(a), device=a.device), length,
                                   output_size=total)
    offset = torch.arange(total, device=a.device) - (torch.cumsum(length, 0) - length)[pair]
    anchors = a[pair]
    return anchors, p[pair], neg_order[anchors, lo[pair] + offset]


class HardTripletMiner(TripletMarginMiner):
    """``TripletMarginMiner(type_of_triplets='hard')``: d(a, n) <= d(a, p)."""

    def __init__(self, margin=0.2, distance="euclidean", normalize=True):
        super().__init__(margin, "hard", distance=distance, normalize=normalize)


class SemihardTripletMiner(TripletMarginMiner):
    """``TripletMarginMiner(type_of_triplets='semihard')``: d(a,p) < d(a,n) <= d(a,p) + margin."""

    def __init__(self, margin=0.2, distance="euclidean", normalize=True):
        super().__init__(margin, "semihard", distance=distance, normalize=normalize)


class EasyTripletMiner(TripletMarginMiner):
    """``TripletMarginMiner(type_of_triplets='easy')``: d(a, p) + margin < d(a, n)."""

    def __init__(self, margin=0.2, distance="euclidean", normalize=True):
        super().__init__(margin, "easy", distance=distance, normalize=normalize)
