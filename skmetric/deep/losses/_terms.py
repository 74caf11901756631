"""Small building blocks of the batch losses: miner weights and pair multiplicities."""

import torch

from .._sync import counts as index_counts


def miner_weights(indices_tuple, n, dtype, device, anchors_only=False):
    """Per-sample weight: how often it occurs in a miner's tuples, relative to the most frequent.

    All ones without a miner (or with an empty one), as pytorch-metric-learning's
    ``convert_to_weights``. With ``anchors_only`` (reference embeddings given), only the
    anchors (``a``, or ``a1`` and ``a2``) index the batch and count.
    """
    ones = torch.ones(n, dtype=dtype, device=device)
    if indices_tuple is None or all(len(t) == 0 for t in indices_tuple):
        return ones
    if anchors_only:
        used = indices_tuple[0] if len(indices_tuple) == 3 else torch.cat(indices_tuple[::2])
    else:
        used = torch.cat(indices_tuple)
    counts = index_counts(used, n).to(dtype)
    return counts / counts.max()


def pair_counts(rows, cols, shape, dtype):
    """Dense (n, m) matrix counting how often each pair ``(rows[k], cols[k])`` occurs."""
    counts = torch.zeros(shape, dtype=dtype, device=rows.device)
    ones = torch.ones(len(rows), dtype=dtype, device=rows.device)
    return counts.index_put_((rows, cols), ones, accumulate=True)
