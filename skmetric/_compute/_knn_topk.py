"""Exact k-nearest-neighbour search for accelerators: per block of queries, ``topk`` of k
plus a margin on the ranking, exact distances of those candidates, re-ranked by
(distance, index), and a check that the margin held.

The search of :mod:`._knn` bounds each row's k-th ranking from group minima and gathers
the references under the bound with ``nonzero``, whose output size the host must read: on
a GPU every block then waits for the device. Here every step of a block has shapes known
in advance (``topk``, gathers, sorts), so the block loop queues work without waiting; the
one read-back comes after the loop. The results equal those of :mod:`._knn`: the same
candidates' exact distances are ranked the same way, and the check below proves that the
candidates hold every reference the exact search could pick.

The proof: the ranking entries carry a round-off of at most ``band / 2`` (see
:func:`._knn._ranking_band`), so every reference that can be among the k nearest has a
ranking at most ``V_k + band``, with ``V_k`` the row's k-th smallest ranking. When the m-th
smallest ranking ``V_m`` (m = k + margin) exceeds that, the m candidates hold all of them.
Rows where it does not (ties or near-ties wider than the margin) are searched again with a
wider margin, up to every reference.
"""

import numpy as np

from .._array_api import is_torch_namespace, to_numpy
from ._blocks import chunk_rows, set_diagonal
from ._knn import (
    _GATHER_BYTES,
    KNN_WORKING_MEMORY_MIB,
    _neighbor_distances,
    _ranking_band,
    _ranking_block,
    smallest_first,
)
from ._numerics import constant

#: The search used by ``algorithm='auto'``: 'auto' picks 'topk' for arrays on a CUDA
#: device and 'bound' (:mod:`._knn`) elsewhere; tests set it to force one everywhere.
ALGORITHM = "auto"
ALGORITHMS = ("auto", "bound", "topk")
# Share of the free device memory that one block (its ranking, topk's work space and the
# gathered candidates) may take when the caller sets no budget.
_FREE_MEMORY_SHARE = 0.25
# Bytes per query row of a block, per reference: the ranking, and topk's sorted copy
# with its int64 indices (torch sorts rows when k is large).
_ENTRY_BYTES = {4: 2 * 4 + 8, 8: 2 * 8 + 8}
# A row's candidates are widened by this factor until the margin holds.
_WIDEN = 4


def margin(k):
    """Candidates beyond the k-th: enough that data without wide ties needs no second
    pass, few enough that ``topk`` and the exact distances cost little more than for k.

    The band above the k-th ranking holds about ``(d/2)·k·band/D²_k`` references (the
    count of neighbours grows as ``r^d``): for float32 at d = 128 a few hundredths of k,
    far below k/4; at d in the high hundreds it approaches k/4 and rows start to take a
    second, wider pass."""
    return 16 + k // 4


def choose(prep, algorithm="auto"):
    """'topk' or 'bound' for the prepared search: ``algorithm``, or when 'auto' the
    module's :data:`ALGORITHM`, or when that is 'auto' too, 'topk' on a CUDA device."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {ALGORITHMS}; got {algorithm!r}.")
    if algorithm == "auto":
        algorithm = ALGORITHM
    if algorithm == "auto":
        return "topk" if on_cuda(prep.device) else "bound"
    return algorithm


def on_cuda(dev):
    """Whether ``dev`` (an array's device) is a CUDA device of torch or CuPy."""
    return getattr(dev, "type", None) == "cuda" or type(dev).__module__.startswith("cupy")


def free_device_bytes(dev):
    """Bytes free on the CUDA device ``dev`` (torch or CuPy), counting the memory the
    library's allocator has cached but not handed out; None for the host."""
    if not on_cuda(dev):
        return None
    if getattr(dev, "type", None) == "cuda":  # a torch.device
        import torch

        free, _ = torch.cuda.mem_get_info(dev)
        return free + torch.cuda.memory_reserved(dev) - torch.cuda.memory_allocated(dev)
    import cupy  # a cupy.cuda.Device

    with dev:
        free, _ = cupy.cuda.runtime.memGetInfo()
    return free + cupy.get_default_memory_pool().free_bytes()


def kneighbors(prep, k, start, stop, exclude, chunk_size, working_memory):
    """The k nearest references of the query rows ``start:stop``: sorted distances and
    int64 indices, ties by the smaller index, as :func:`._knn.kneighbors`."""
    xp = prep.xp
    m = min(prep.n_y, k + margin(k))
    rows, gather = block_budget(prep, stop - start, m, chunk_size, working_memory)
    blocks = [(s, min(s + rows, stop)) for s in range(start, stop, rows)]
    found = [search_block(prep, s, e, k, m, exclude, gather) for s, e in blocks]
    # The one read-back: which blocks have rows whose margin did not hold.
    held = xp.stack([xp.all(ok) for _, _, ok in found])
    for b in np.flatnonzero(~to_numpy(held)):
        found[b] = _widen(prep, *blocks[b], k, m, exclude, gather, found[b])
    if len(found) == 1:
        return found[0][:2]
    return (xp.concat([d for d, _, _ in found], axis=0),
            xp.concat([i for _, i, _ in found], axis=0))


def block_budget(prep, n_rows, m, chunk_size, working_memory):
    """Query rows per block and bytes of gathered candidates per slice: from
    ``chunk_size`` or ``working_memory`` as the exact search does, else on a CUDA device
    from its free memory."""
    free = None
    if chunk_size is None and working_memory is None:
        free = free_device_bytes(prep.device)
    if free is None:
        rows = chunk_rows(n_rows, prep.n_y, prep.itemsize, chunk_size, working_memory,
                          default_mib=KNN_WORKING_MEMORY_MIB)
        return rows, _GATHER_BYTES
    budget = free * _FREE_MEMORY_SHARE
    d = prep.X.shape[1]
    # The candidates: their gathered coordinates and differences (two (m, d) arrays and
    # their squares), distances, columns.
    per_row = _ENTRY_BYTES[prep.itemsize] * prep.n_y + prep.itemsize * m * (3 * d + 1) + 8 * m
    return int(max(1, min(n_rows, budget // per_row))), int(budget)


def search_block(prep, s, e, k, m, exclude, gather=_GATHER_BYTES):
    """One block, queued without reading anything back: the k nearest of query rows
    ``s:e`` among the m smallest rankings, and per row whether the margin held (a device
    boolean array). ``gather`` caps the bytes of gathered candidates at a time."""
    xp = prep.xp
    R = _ranking_block(prep, s, e)
    if prep.kind != "callable":
        R = constant(R, xp)  # only orders the references; distances are recomputed
    if exclude:
        R = _exclude_self(R, s, prep)
    V, C = smallest(R, m, xp)
    if m == prep.n_y:  # every reference is a candidate
        held = xp.ones(e - s, dtype=xp.bool, device=prep.device)
    else:
        held = V[:, m - 1] > V[:, k - 1] + _row_band(prep, s, e)
    D = _neighbor_distances(prep, prep.X[s:e, :], C, R, gather_bytes=gather)
    own = None
    if exclude:  # the query itself is a candidate when m covers every reference
        own = xp.arange(s, e, dtype=C.dtype, device=prep.device)[:, None]
        D = xp.where(C == own, xp.full_like(D, xp.inf), D)  # full_like: no host copy
    dist, ind = rerank(D, C, k, xp, own)
    return dist, ind, held


def smallest(R, m, xp):
    """The m smallest entries of each row of R, ascending, and their int64 columns."""
    n = R.shape[1]
    if is_torch_namespace(xp):
        V, C = xp.topk(R, m, dim=1, largest=False, sorted=True)
        return V, C
    if m < n and hasattr(xp, "argpartition"):  # NumPy, CuPy
        C = xp.argpartition(R, m - 1, axis=1)[:, :m]
    else:
        C = xp.argsort(R, axis=1)[:, :m]
    V = xp.take_along_axis(R, C, axis=1)
    order = xp.argsort(V, axis=1)
    return (xp.take_along_axis(V, order, axis=1),
            xp.astype(xp.take_along_axis(C, order, axis=1), xp.int64))


def rerank(D, C, k, xp, own=None):
    """The k smallest distances D of each row with their columns C, in (distance, column)
    order: the candidates are put in column order first, then stably sorted by distance;
    the column ``own`` (the query's own reference, excluded) goes last."""
    by_col = xp.argsort(C, axis=1)
    C = xp.take_along_axis(C, by_col, axis=1)
    D = xp.take_along_axis(D, by_col, axis=1)
    order = smallest_first(D, C, k, xp, own)
    return xp.take_along_axis(D, order, axis=1), xp.take_along_axis(C, order, axis=1)


def _row_band(prep, s, e):
    """The round-off band of the rows ``s:e`` as a 1-D array (or a number)."""
    band = _ranking_band(prep, s, e)
    return band[:, 0] if getattr(band, "ndim", 0) == 2 else band


def _exclude_self(R, s, prep):
    """R with query i's own reference at +inf: in place for torch (R is a fresh,
    detached block; a diagonal view filled with a number copies nothing from the host),
    as the exact search otherwise."""
    xp = prep.xp
    if is_torch_namespace(xp) and prep.kind != "callable":
        b = min(R.shape[0], R.shape[1] - s)
        if b > 0:
            R[:b, s:s + b].diagonal().fill_(float("inf"))
        return R
    return set_diagonal(R, s, float("inf"), xp)


def _widen(prep, s, e, k, m, exclude, gather, found):
    """Block ``s:e`` searched again with ever wider margins until every row's held;
    rows that held keep their first result."""
    xp = prep.xp
    dist, ind, held = found
    while m < prep.n_y:
        m = min(prep.n_y, _WIDEN * m)
        d2, i2, held2 = search_block(prep, s, e, k, m, exclude, gather)
        dist = xp.where(held[:, None], dist, d2)
        ind = xp.where(held[:, None], ind, i2)
        held = held | held2
        if bool(xp.all(held)):
            break
    return dist, ind, held
