"""Batch easy-hard miner (Xuan, Stylianou and Pless, 2020)."""


from ..._sklearn_compat import StrOptions
from .. import _sync
from ._base import BaseMiner

_STRATEGIES = ("hard", "semihard", "easy", "all")


class BatchEasyHardMiner(BaseMiner):
    """One positive and one negative per anchor, each chosen easiest, hardest or semi-hard.

    * positives: ``'easy'`` the closest, ``'hard'`` the farthest, ``'semihard'`` the
      farthest that is still closer than the anchor's chosen negative;
    * negatives: ``'easy'`` the farthest, ``'hard'`` the closest, ``'semihard'`` the
      closest that is still farther than the anchor's chosen positive;
    * ``'all'``: every positive (or negative) pair, unfiltered.

    Unless a strategy is ``'all'``, only anchors with both a chosen positive and a chosen
    negative are kept, and the output pairs share their anchors (``a1 == a2``).

    Parameters
    ----------
    pos_strategy : {'easy', 'hard', 'semihard', 'all'}, default='easy'
    neg_strategy : {'easy', 'hard', 'semihard', 'all'}, default='semihard'
        At most one of the two may be 'semihard', and 'semihard' cannot be combined
        with 'all'.
    allowed_pos_range, allowed_neg_range : (float, float) or None, default=None
        Only pairs whose distance (or similarity) lies in ``[low, high]`` are candidates
        (not applied with the 'all' strategy).
    distance : {'euclidean', 'sqeuclidean', 'cosine_similarity', 'dot'}, default='euclidean'
    normalize : bool, default=True

    References
    ----------
    Xuan, Stylianou and Pless, "Improved Embeddings with Easy Positive Triplet Mining",
    WACV 2020.

    Examples
    --------
    >>> import torch
    >>> from skmetric.deep.miners import BatchEasyHardMiner
    >>> a1, p, a2, n = BatchEasyHardMiner("easy", "hard")(
    ...     torch.randn(8, 4), torch.tensor([0, 0, 1, 1, 2, 2, 3, 3]))
    >>> len(a1)
    8
    """

    output = "pairs"

    _parameter_constraints = {
        "pos_strategy": [StrOptions(set(_STRATEGIES))],
        "neg_strategy": [StrOptions(set(_STRATEGIES))],
        "allowed_pos_range": [tuple, list, None],
        "allowed_neg_range": [tuple, list, None],
    }

    def __init__(self, pos_strategy="easy", neg_strategy="semihard", allowed_pos_range=None,
                 allowed_neg_range=None, distance="euclidean", normalize=True):
        if pos_strategy == neg_strategy == "semihard":
            raise ValueError("pos_strategy and neg_strategy cannot both be 'semihard'; "
                             "make one of them 'easy' or 'hard'.")
        if {pos_strategy, neg_strategy} == {"semihard", "all"}:
            raise ValueError("'semihard' needs the other side's chosen pair, so it cannot "
                             "be combined with 'all'; use 'easy' or 'hard' on that side.")
        for name, rng in (("allowed_pos_range", allowed_pos_range),
                          ("allowed_neg_range", allowed_neg_range)):
            if rng is not None and (len(rng) != 2 or not rng[0] <= rng[1]):
                raise ValueError(f"{name} must be (low, high) with low <= high; got {rng!r}.")
        super().__init__(distance=distance, normalize=normalize)
        self.pos_strategy = pos_strategy
        self.neg_strategy = neg_strategy
        self.allowed_pos_range = allowed_pos_range
        self.allowed_neg_range = allowed_neg_range

    def mine(self, embeddings, labels, ref_emb, ref_labels):
        mat, pos, neg = self.matrix_and_masks(embeddings, labels, ref_emb, ref_labels)
        # "Farness": the distance, or minus the similarity, so one rule serves both.
        far = -mat if self.dist.is_similarity else mat
        pos = _in_range(pos, mat, self.allowed_pos_range, self.pos_strategy)
        neg = _in_range(neg, mat, self.allowed_neg_range, self.neg_strategy)
        # Semi-hard needs the other side's choice first.
        if self.pos_strategy == "semihard":
            n, n_far, n_ok = _pick(far, neg, farthest=self.neg_strategy == "easy")
            p, _, p_ok = _pick(far, pos & (far < n_far[:, None]), farthest=True)
        else:
            p, p_far, p_ok = _pick(far, pos, farthest=self.pos_strategy != "easy")
            if self.neg_strategy == "semihard":
                neg = neg & (far > p_far[:, None])
            n, _, n_ok = _pick(far, neg, farthest=self.neg_strategy == "easy")
        # Each branch reads its output lengths in one sync.
        if self.pos_strategy == "all" and self.neg_strategy == "all":
            return _sync.where(pos, neg)
        if self.pos_strategy == "all":
            a1, pp, a2 = _sync.where(pos, n_ok)
            return a1, pp, a2, n[a2]
        if self.neg_strategy == "all":
            a1, a2, nn = _sync.where(p_ok, neg)
            return a1, p[a1], a2, nn
        (a,) = _sync.where(p_ok & n_ok)
        return a, p[a], a, n[a]


def _in_range(mask, mat, allowed, strategy):
    if allowed is None or strategy == "all":
        return mask
    return mask & (mat >= allowed[0]) & (mat <= allowed[1])


def _pick(far, mask, farthest):
    """Per row, the index and farness of the farthest (or closest) entry of ``mask``."""
    if farthest:
        values, idx = far.masked_fill(~mask, float("-inf")).max(1)
    else:
        values, idx = far.masked_fill(~mask, float("inf")).min(1)
    return idx, values, mask.any(1)
