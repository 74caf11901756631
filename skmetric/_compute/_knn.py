"""Exact blockwise k-nearest-neighbour and radius searches on a prepared reference set.

Ties are broken deterministically: among references at the same distance, the one with the
smaller index comes first (and is kept when only some of the tied references fit in k).
"""

import threading

import numpy as np

from .._array_api import is_numpy_namespace, is_torch_namespace
from ._blocks import chunk_rows, map_blocks, n_threads_for, set_diagonal
from ._numerics import cos_from_difference, safe_sqrt

# Default block of the searches: large enough for an efficient matrix product, small
# enough that the block of distances stays near the CPU caches.
KNN_WORKING_MEMORY_MIB = 64
# Bytes of gathered neighbour coordinates held at once when computing exact distances:
# 32 MiB per slice in general; NumPy reuses one buffer of about a core's L2 cache, so the
# coordinates are reduced while still in cache and no fresh memory is touched per slice.
_GATHER_BYTES = 32 * 2**20
_GATHER_BYTES_NUMPY = 2**20


def kneighbors(prep, k, start, stop, exclude, chunk_size, working_memory, n_threads):
    """Exact search of the query rows ``start:stop``: per block, a ranking matrix, a bound
    on each row's k-th smallest, then exact distances of the references at or below the
    bound.

    The ranking (a matrix product) carries round-off, so two references whose distances
    are equal or closer than that round-off could be ordered by noise, differently for
    another block size. So every reference whose ranking is within the round-off of the
    bound is a candidate, the candidates are ordered on exact distances, ties by smaller
    index, and the result does not depend on the blocks or threads.
    """
    xp = prep.xp
    n_rows = stop - start
    rows = chunk_rows(n_rows, prep.n_y, prep.itemsize, chunk_size, working_memory,
                      default_mib=KNN_WORKING_MEMORY_MIB)
    if prep.numpy and chunk_size is None and working_memory is None:
        # Give every thread a block on small problems too.
        per_thread = -(-n_rows // n_threads_for(n_threads, n_rows))
        rows = min(rows, max(128, per_thread))

    # NumPy: each thread reuses one ranking buffer across its blocks; a fresh block of
    # tens of MiB per block would page-fault on every first touch.
    local = threading.local()

    def work(s, e):
        if prep.numpy and prep.kind != "callable":
            if getattr(local, "buf", None) is None:
                local.buf = np.empty((rows, prep.n_y), dtype=prep.dtype)
            R = _ranking_block(prep, s, e, out=local.buf[:e - s])
        else:
            R = _ranking_block(prep, s, e)
        if exclude:
            R = set_diagonal(R, s, float("inf"), xp)
        upper = _kth_upper_bound(R, k, xp) + _ranking_band(prep, s, e)
        return _nearest_candidates(prep, prep.X[s:e, :], R, upper, k,
                                   own=s if exclude else None)

    if not prep.numpy:
        n_threads = 1
    elif prep.kind != "callable":
        prep.ranking_rhs()  # made once, before the threads share it
    blocks = map_blocks(work, start, stop, rows, n_threads)
    if len(blocks) == 1:
        return blocks[0]
    return (xp.concat([d for d, _ in blocks], axis=0),
            xp.concat([i for _, i in blocks], axis=0))


def radius(prep, radius, exclude, chunk_size, working_memory, sort_results):
    """Per query, the references at distance ``<= radius``: two lists of 1-D arrays
    (distances, int64 indices), sorted by distance (ties by index) or by index.

    As in :func:`kneighbors`, the block's distances carry the expansion's round-off: the
    references within that round-off of the radius are candidates whose distances are
    recomputed from the coordinates, so membership and the order of equal distances do
    not depend on round-off."""
    xp = prep.xp
    radius = float(radius)  # e.g. a NumPy scalar, which strict namespaces do not compare
    rows = prep.block_rows(chunk_size, working_memory, default_mib=KNN_WORKING_MEMORY_MIB)
    all_dist, all_ind = [], []
    for start, stop in prep.row_blocks(rows):
        D = prep.distance_block(start, stop)
        if exclude:
            D = set_diagonal(D, start, float("inf"), xp)
        dist_rows, ind_rows = _within(D, _radius_slack(prep, radius), xp, prep.numpy)
        if prep.kind != "callable":
            dist_rows, ind_rows = _exact_within(prep, start, ind_rows, radius)
        if sort_results:
            orders = [xp.argsort(d, stable=True) for d in dist_rows]
            dist_rows = [xp.take(d, o) for d, o in zip(dist_rows, orders, strict=True)]
            ind_rows = [xp.take(i, o) for i, o in zip(ind_rows, orders, strict=True)]
        all_dist.extend(dist_rows)
        all_ind.extend(ind_rows)
    return all_dist, all_ind


def _radius_slack(prep, radius):
    """``radius`` widened by the round-off of the block's distances: relative sqrt(eps)
    for the Euclidean family (entries below their cancellation limit are recomputed, so
    the others are accurate to sqrt(eps) relative), twice the absolute bound for cosine."""
    if prep.kind == "cos":
        return radius + 2.0 * prep.round_off(0, 0)
    if prep.kind == "callable":
        return radius
    return radius * (1.0 + 4.0 * prep.eps ** 0.5)


def _exact_within(prep, start, ind_rows, radius):
    """Distances of the candidates ``ind_rows`` of the query rows from ``start`` computed
    from the coordinates, and those ``<= radius`` kept (in index order)."""
    xp = prep.xp
    dist_rows, kept_rows = [], []
    for i, ind in enumerate(ind_rows):
        if ind.shape[0] == 0:
            dist_rows.append(xp.zeros(0, dtype=prep.dtype, device=prep.device))
            kept_rows.append(ind)
            continue
        dist = _neighbor_distances(prep, prep.X[start + i:start + i + 1, :], ind[None, :],
                                   None)[0, :]
        (keep,) = xp.nonzero(dist <= radius)
        dist_rows.append(xp.take(dist, keep))
        kept_rows.append(xp.take(ind, keep))
    return dist_rows, kept_rows


def _within(D, radius, xp, numpy):
    """Per row of D, the distances and (ascending) column indices of entries <= radius."""
    if numpy:
        within = D <= radius
        r, c = np.nonzero(within)
        splits = np.cumsum(np.count_nonzero(within, axis=1))[:-1]
        return np.split(D[r, c], splits), np.split(c.astype(np.int64), splits)
    dist_rows, ind_rows = [], []
    for i in range(D.shape[0]):
        (cols,) = xp.nonzero(D[i, :] <= radius)
        ind_rows.append(xp.astype(cols, xp.int64))
        dist_rows.append(xp.take(D[i, :], cols))
    return dist_rows, ind_rows


def _ranking_block(prep, start, stop, out=None):
    """A matrix ordered along rows as the distances: ``||y||² - 2 x·y`` for the Euclidean
    family (the query's own norm does not change the order), ``-x·y`` for cosine, on the
    engine's centred and scaled coordinates. NumPy writes it into ``out`` when given."""
    Xb = prep.Xr[start:stop, :]
    if prep.kind == "callable":
        return prep.call_metric(start, stop)
    if prep.numpy:
        # -2 Yᵀ (or -Yᵀ) stored contiguous once: one product and one pass per block.
        R = np.matmul(Xb, prep.ranking_rhs(), out=out)
        if prep.kind == "sq":
            R += prep.y_sq
        return R
    if prep.kind == "sq":
        if is_torch_namespace(prep.xp):  # one fused pass instead of three
            return prep.xp.addmm(prep.y_sq[None, :], Xb, prep.YT, alpha=-2)
        return prep.y_sq[None, :] - 2 * (Xb @ prep.YT)
    return -(Xb @ prep.YT)


def _ranking_band(prep, start, stop):
    """Width of the band above the k-th bound, shape (b, 1): twice the round-off bound of
    the ranking entries. The computed k-th smallest entry may sit a round-off below its
    true value, and a reference at the true k-th distance a round-off above it."""
    if prep.kind == "callable":
        return 0.0
    band = 2.0 * prep.round_off(start, stop)
    return band if prep.kind == "cos" else band[:, None]


def _kth_upper_bound(R, k, xp):
    """Per row (shape (b, 1)) a value at least the k-th smallest entry of R and close to
    it, found cheaply: the k-th smallest of the minima of column groups (column c in group
    c mod n_groups, so the minima are one elementwise pass). Those k minima are k entries
    of the row, so the k-th smallest entry is at or below; with about sqrt(n/k) columns per
    group, few more than k entries are (a group rarely holds two of the smallest)."""
    b, n = R.shape
    g = int(np.sqrt(n / k))
    n_groups = n // g if g > 1 else 0
    if n_groups >= 2 * k:
        R = xp.min(xp.reshape(R[:, :n_groups * g], (b, g, n_groups)), axis=1)
    if is_numpy_namespace(xp):
        return np.partition(R, k - 1, axis=1)[:, k - 1:k]
    if is_torch_namespace(xp):
        return R.kthvalue(k, dim=1, keepdim=True).values
    return xp.sort(R, axis=1)[:, k - 1:k]


def _nearest_candidates(prep, Xb, R, upper, k, own=None):
    """The k nearest references of each row of ``Xb`` among those whose ranking is at most
    ``upper`` (shape (b, 1), at least k per row): exact distances of these candidates, the k
    smallest taken in (distance, index) order. ``own``: row i is query ``own + i``, whose
    own reference is excluded. Returns sorted distances and indices."""
    xp = prep.xp
    b, n = R.shape
    # Row-major nonzero: each row's candidate columns come out ascending, so a stable
    # sort by distance breaks ties by the smaller index.
    flat = xp.nonzero(xp.reshape(R <= upper, (-1,)))[0]
    bounds = xp.arange(0, (b + 1) * n, n, dtype=flat.dtype, device=prep.device)
    edges = xp.searchsorted(flat, bounds)  # where each row's candidates start
    offsets, counts = edges[:-1], edges[1:] - edges[:-1]
    cols = flat % n
    width = int(xp.max(counts))
    slot = xp.arange(width, device=prep.device)[None, :]
    valid = slot < counts[:, None]
    pos = xp.where(valid, offsets[:, None] + slot, xp.zeros_like(slot))
    cand = xp.reshape(xp.take(cols, xp.reshape(pos, (-1,))), (b, width))
    dist = _neighbor_distances(prep, Xb, cand, R)
    dist = xp.where(valid, dist, xp.asarray(xp.inf, dtype=dist.dtype, device=prep.device))
    if own is not None:
        own = xp.arange(own, own + b, dtype=cand.dtype, device=prep.device)[:, None]
    order = smallest_first(dist, cand, k, xp, own)
    return (xp.take_along_axis(dist, order, axis=1),
            xp.astype(xp.take_along_axis(cand, order, axis=1), xp.int64))


def smallest_first(dist, cols, k, xp, own=None):
    """Positions of the k smallest ``dist`` of each row, ties by position (a stable
    sort). With ``own`` (shape (b, 1)), the column ``own`` of each row, the query's own
    reference, goes after every other: excluded even where a callable metric puts the
    other references at inf too, level with the inf that masks it."""
    order = xp.argsort(dist, axis=1, stable=True)
    if own is not None:
        is_own = xp.astype(xp.take_along_axis(cols, order, axis=1) == own, xp.int8)
        order = xp.take_along_axis(order, xp.argsort(is_own, axis=1, stable=True), axis=1)
    return order[:, :k]


def _neighbor_distances(prep, Xb, ind, R, gather_bytes=_GATHER_BYTES):
    """Distances of the rows Xb to the references ``ind``, computed from the coordinates.

    The gathered neighbours form a (rows, k, d) array; rows are taken a few at a time so
    that it stays within ``gather_bytes`` however large k·d is (e.g. MAP@R's k = R).
    """
    xp = prep.xp
    if prep.kind == "callable":
        return xp.take_along_axis(R, ind, axis=1)
    if prep.numpy:
        return _gathered_distances_numpy(prep, Xb, ind)
    b, k = ind.shape
    step = max(1, gather_bytes // max(1, k * Xb.shape[1] * prep.itemsize))
    if step >= b:
        return _gathered_distances(prep, Xb, ind)
    # Slice stops within bounds: the Array API leaves out-of-range stops unspecified.
    return xp.concat([_gathered_distances(prep, Xb[s:min(s + step, b), :],
                                          ind[s:min(s + step, b), :])
                      for s in range(0, b, step)], axis=0)


def _gathered_distances(prep, Xb, ind):
    xp = prep.xp
    b, k = ind.shape
    Yk = xp.reshape(xp.take(prep.Y, xp.reshape(ind, (-1,)), axis=0), (b, k, -1))
    diff = Xb[:, None, :] - Yk
    dist = xp.sum(diff * diff, axis=2)
    if prep.kind == "cos":
        return _cos_of_gathered(prep, Xb, ind, dist)
    return prep.to_units(dist if prep.squared else safe_sqrt(dist, xp), prep.squared)


def _cos_of_gathered(prep, Xb, ind, sq_diff):
    """Cosine distances of the rows Xb (unit rows) to the references ``ind`` from their
    squared differences ``sq_diff`` (shape of ``ind``)."""
    xp = prep.xp
    x_nonzero = xp.astype(xp.any(Xb != 0, axis=1), sq_diff.dtype)[:, None]
    y_nonzero = xp.reshape(xp.take(prep.y_nonzero, xp.reshape(ind, (-1,))), ind.shape)
    return cos_from_difference(sq_diff, x_nonzero, y_nonzero, xp)


def _gathered_distances_numpy(prep, Xb, ind):
    """As ``_gathered_distances``, through one reused cache-sized buffer: slices of a few
    rows (and of columns when one row's neighbours exceed it) are gathered into it with
    ``np.take(out=)``, differenced in place and reduced by einsum."""
    b, k = ind.shape
    row_bytes = Xb.shape[1] * prep.itemsize
    cols = int(min(k, max(1, _GATHER_BYTES_NUMPY // row_bytes)))
    rows = int(min(b, max(1, _GATHER_BYTES_NUMPY // (cols * row_bytes))))
    buf = np.empty((rows, cols, Xb.shape[1]), dtype=prep.Y.dtype)
    out = np.empty((b, k), dtype=np.result_type(Xb.dtype, prep.Y.dtype))
    for r0 in range(0, b, rows):
        r1 = min(r0 + rows, b)
        for c0 in range(0, k, cols):
            c1 = min(c0 + cols, k)
            B = buf[:r1 - r0, :c1 - c0]
            np.take(prep.Y, ind[r0:r1, c0:c1], axis=0, out=B)
            np.subtract(Xb[r0:r1, None, :], B, out=B)
            out[r0:r1, c0:c1] = np.einsum("bkd,bkd->bk", B, B)
    if prep.kind == "cos":
        return _cos_of_gathered(prep, Xb, ind, out)
    return prep.to_units(out if prep.squared else np.sqrt(out, out=out), prep.squared)
