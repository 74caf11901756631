"""Blocks of rows: their size from ``chunk_size`` or ``working_memory``, threads over
them, and the masking of the diagonal (a query's own row) inside a block."""

import numbers
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from sklearn import get_config
from threadpoolctl import threadpool_limits

from .._array_api import device, is_numpy_namespace


def chunk_rows(n_rows, n_cols, itemsize, chunk_size, working_memory, default_mib=None):
    """Rows per block: ``chunk_size``, or as many as fit ``working_memory`` MiB."""
    if chunk_size is not None and working_memory is not None:
        raise ValueError("Give chunk_size or working_memory, not both.")
    if chunk_size is not None:
        if not isinstance(chunk_size, numbers.Integral) or isinstance(chunk_size, bool) or (
            chunk_size < 1
        ):
            raise ValueError(f"chunk_size must be a positive int or None; got {chunk_size!r}.")
        return int(min(chunk_size, n_rows))
    if working_memory is None:
        working_memory = default_mib if default_mib is not None else get_config()[
            "working_memory"
        ]
    elif not isinstance(working_memory, numbers.Real) or isinstance(working_memory, bool) or (
        not working_memory > 0
    ):
        raise ValueError(
            f"working_memory must be a positive number of MiB or None; got {working_memory!r}."
        )
    rows = int(working_memory * 2**20 // (n_cols * itemsize))
    return max(1, min(rows, n_rows))


def n_threads_for(n_threads, n_blocks):
    """Threads used on ``n_blocks`` blocks: ``n_threads`` (None: every CPU core), at
    most one per block."""
    if n_threads is None:
        n_threads = os.cpu_count() or 1
    elif not isinstance(n_threads, numbers.Integral) or isinstance(n_threads, bool) or (
        n_threads < 1
    ):
        raise ValueError(f"n_threads must be a positive int or None; got {n_threads!r}.")
    return int(max(1, min(n_threads, n_blocks)))


def map_blocks(work, start, stop, rows, n_threads):
    """Run ``work(s, e)`` on the blocks of ``rows`` rows of ``start:stop``; NumPy blocks
    run on threads.

    With more than one thread the BLAS is limited to one thread per block (NumPy releases
    the GIL in its kernels), so the matrix products and the row-wise work around them
    both run in parallel. Returns the list of results in block order.
    """
    starts = list(range(start, stop, rows))
    n_threads = n_threads_for(n_threads, len(starts))
    if n_threads == 1:
        return [work(s, min(s + rows, stop)) for s in starts]
    with threadpool_limits(1, user_api="blas"), ThreadPoolExecutor(n_threads) as pool:
        return list(pool.map(lambda s: work(s, min(s + rows, stop)), starts))


def set_diagonal(D, start, value, xp):
    """``D`` with ``D[i, start + i] = value`` for every row i of the block D: in place for
    NumPy, out of place otherwise (so torch autograd can follow it). Returns D."""
    b = min(D.shape[0], D.shape[1] - start)
    if b <= 0:
        return D
    if is_numpy_namespace(xp):
        np.fill_diagonal(D[:b, start:start + b], value)
        return D
    dev = device(D)
    rows = xp.arange(D.shape[0], device=dev)[:, None]
    cols = xp.arange(D.shape[1], device=dev)[None, :]
    return xp.where(cols == rows + start, xp.asarray(value, dtype=D.dtype, device=dev), D)
