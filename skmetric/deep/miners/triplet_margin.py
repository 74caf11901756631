"""Triplet margin miner: all, hard, semi-hard or easy triplets with respect to a margin."""

import torch

from ..._sklearn_compat import StrOptions
from .._params import FINITE
from .._sync import fetch
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
        # Every (anchor, positive) cell of the dense (n, m) grid at once: no index lists.
        if self.type_of_triplets == "easy":
            lo = _count_at_most(neg_far, None, far, self.margin, n_neg)
            hi = n_neg[:, None].expand_as(lo)
        elif self.type_of_triplets == "semihard":
            lo = _count_at_most(neg_far, None, far, 0.0, n_neg)
            hi = torch.maximum(_count_at_most(neg_far, None, far, self.margin, n_neg), lo)
        else:
            limit = min(self.margin, 0.0) if self.type_of_triplets == "hard" else self.margin
            hi = _count_at_most(neg_far, None, far, limit, n_neg)
            lo = torch.zeros_like(hi)
        length = (hi - lo).clamp(min=0) * pos
        return _expand_runs(length, lo, neg_order)


def _count_at_most(neg_far, a, ap, limit, n_neg):
    """How many of an anchor's sorted negatives n have ``t = neg_far[., n] - ap <= limit``.

    ``neg_far`` (n, m) holds each anchor's negatives sorted (``n_neg[i]`` of them, then
    +inf). With ``a`` None, ``ap`` is (n, q): q values per anchor row (the miner passes
    every (anchor, positive) cell); else ``ap[j]`` goes with anchor ``a[j]``.

    ``t`` (as computed in floating point) is monotone in the sorted negatives, so a
    bisection on that exact test finds the boundary: the result is identical to testing
    every triplet, in log2(m) steps and without reading anything on the host.
    """
    if a is not None:
        return _count_at_most(neg_far[a], None, ap[:, None], limit, n_neg[a])[:, 0]
    lo = torch.zeros(ap.shape, dtype=torch.long, device=ap.device)
    hi = n_neg[:, None].expand(ap.shape).clone()
    last = neg_far.shape[1] - 1
    # In place, into buffers allocated once: fresh (n, m) temporaries each step cost more
    # than the arithmetic (page faults) on the CPU.
    mid, step = torch.empty_like(lo), torch.empty_like(lo)
    active, ok = torch.empty_like(lo, dtype=torch.bool), torch.empty_like(lo, dtype=torch.bool)
    t = torch.empty(ap.shape, dtype=neg_far.dtype, device=ap.device)
    for _ in range(max(last + 1, 1).bit_length()):
        torch.lt(lo, hi, out=active)
        # Non-negative: >> 1 is floor(/2), 3x faster than // on int64. The clamp changes
        # only inactive cells (there lo = hi may be m); active ones have mid < hi <= m.
        torch.add(lo, hi, out=mid).bitwise_right_shift_(1).clamp_(max=max(last, 0))
        torch.sub(torch.gather(neg_far, 1, mid, out=t), ap, out=t)
        torch.le(t, limit, out=ok).logical_and_(active)
        torch.where(ok, torch.add(mid, 1, out=step), lo, out=lo)
        torch.where(ok.logical_not_().logical_and_(active), mid, hi, out=hi)
    return lo


def _expand_runs(length, lo, neg_order):
    """Triplets: cell (a, p) (row-major) with its negatives ``lo .. lo + length - 1``."""
    n_cols = length.shape[1]
    length, lo = length.flatten(), lo.flatten()
    (total,) = fetch(length.sum())  # the miner's one sync: its output length
    cell = torch.repeat_interleave(torch.arange(len(length), device=length.device), length,
                                   output_size=total)
    offset = torch.arange(total, device=length.device) - (torch.cumsum(length, 0) - length)[cell]
    anchors = cell // n_cols
    return anchors, cell % n_cols, neg_order[anchors, lo[cell] + offset]


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
