"""Pairwise distances on NumPy, torch, CuPy and array-api-strict arrays, in bounded memory.

One code path written against the Array API (through ``array_api_compat``) serves every
namespace: NumPy in gives NumPy out, a torch tensor gives a torch tensor on the same device,
a CuPy array gives a CuPy array. Results are computed in blocks of rows, so the memory used
beyond the inputs and the output is set by ``chunk_size`` or ``working_memory``, not by n².
NumPy arrays take a few in-place fast paths; the arithmetic is the same. Inputs of any
finite magnitude and offset are handled by one scaling and centring mechanism
(:class:`_Prepared`), which every function here and in :mod:`skmetric.neighbors` uses.
"""

import math
import numbers
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from sklearn import get_config
from threadpoolctl import threadpool_limits

from ._array_api import (
    array_namespace,
    as_array,
    device,
    from_numpy,
    is_numpy_namespace,
    is_torch_namespace,
    to_numpy,
)
from ._init import components_from_metric

METRICS = ("euclidean", "sqeuclidean", "cosine", "mahalanobis")
_CACHE_BLOCK_BYTES = 4 * 2**20

__all__ = ["METRICS", "pairwise_distances", "pairwise_distances_chunked"]


def pairwise_distances(X, Y=None, metric="euclidean", *, M=None, L=None, chunk_size=None,
                       working_memory=None, n_threads=None):
    """Distances between the rows of ``X`` and the rows of ``Y``.

    Parameters
    ----------
    X : array of shape (n_samples_X, n_features)
        NumPy, torch, CuPy or any Array API array (lists are read as NumPy).
    Y : array of shape (n_samples_Y, n_features), default=None
        Same namespace as ``X``. None means ``Y = X``; the diagonal is then exactly 0.
    metric : {'euclidean', 'sqeuclidean', 'cosine', 'mahalanobis'} or callable, \
            default='euclidean'
        'euclidean' and 'sqeuclidean' use ``||x||² - 2 x·y + ||y||²`` (one matrix product
        per block; see Notes for its accuracy); 'cosine' is ``1 - cos(x, y)`` in [0, 2]
        (a zero vector is at distance 1 from everything); 'mahalanobis' is
        ``sqrt((x - y)ᵀ M (x - y)) = ||L x - L y||`` given exactly one of ``M`` and ``L``.
        A callable ``metric(X_block, Y)`` returns the (n_block, n_samples_Y) distances of
        a block of rows; a wrong shape, a non-real dtype or NaN is a ValueError/TypeError.
    M : array of shape (n_features, n_features), default=None
        Symmetric positive semi-definite Mahalanobis matrix (for 'mahalanobis').
    L : array of shape (n_components, n_features), default=None
        Linear map with ``M = Lᵀ L`` (e.g. a learner's ``components_``); cheaper than M.
    chunk_size : int, default=None
        Rows of ``X`` per block.
    working_memory : float, default=None
        Memory budget of one block in MiB, as scikit-learn's ``working_memory``; used when
        ``chunk_size`` is None. Defaults to ``sklearn.get_config()['working_memory']``.
    n_threads : int, default=None
        NumPy input: blocks computed in parallel by this many threads, each with a
        single-threaded BLAS (one block per thread in memory). None uses every CPU core;
        1 keeps one block at a time with the BLAS's own threads. Other namespaces
        parallelise inside their kernels and ignore it.

    Returns
    -------
    D : array of shape (n_samples_X, n_samples_Y)
        In the namespace and on the device of ``X``, with its floating dtype (float32
        stays float32; integers become float64).

    Notes
    -----
    Accuracy of 'euclidean', 'sqeuclidean' and 'mahalanobis' (in the mapped space), for
    finite input of any magnitude: each distance is within a relative ``sqrt(eps)`` of
    the exact distance of the given (floating) coordinates, 1.5e-8 in float64 and 3.5e-4
    in float32 at worst (typically 1e-15 and 1e-7); a duplicate pair is exactly 0.
    Distances are inf only where the true value exceeds the largest float ('sqeuclidean'
    of points 1e160 apart). How: the coordinates are multiplied by a power of two (exact)
    when their magnitude would let a squared norm overflow or underflow, and centred on
    the mean of ``Y`` when it lies farther from the origin than ``Y``'s spread (offset
    data); entries where the expansion's round-off bound exceeds ``sqrt(eps)`` times the
    entry are recomputed directly from ``x - y``. One mechanism, shared by every function
    of this module and of :mod:`skmetric.neighbors`, on every namespace.

    torch autograd flows through the result (no in-place operation on the graph); the
    subgradient of a zero distance is 0, as for ``torch.cdist``.

    Examples
    --------
    >>> import numpy as np
    >>> from skmetric.distances import pairwise_distances
    >>> X = np.array([[0.0, 0.0], [3.0, 4.0]])
    >>> pairwise_distances(X)
    array([[0., 5.],
           [5., 0.]])
    >>> pairwise_distances(X, metric="mahalanobis", L=np.diag([2.0, 1.0]))
    array([[0.        , 7.21110255],
           [7.21110255, 0.        ]])
    >>> pairwise_distances(X * 1e300)  # the squared norms would overflow
    array([[0.e+000, 5.e+300],
           [5.e+300, 0.e+000]])
    """
    prep = _Prepared(X, Y, metric, M, L)
    xp = prep.xp
    rows = _chunk_rows(prep.n_x, prep.n_y, prep.itemsize, chunk_size, working_memory)
    if prep.numpy and chunk_size is None and working_memory is None:
        # NumPy blocks are written in place (no extra memory): size them for the caches,
        # so the passes after the product find the block there, and for every thread.
        rows = min(rows, max(64, _CACHE_BLOCK_BYTES // (prep.n_y * prep.itemsize)))
    if prep.numpy:
        # NumPy blocks are written in place into the output, one thread per block.
        out = np.empty((prep.n_x, prep.n_y), dtype=prep.dtype)
        if prep.kind != "callable":
            prep.ranking_rhs()  # made once, before the threads share it
        map_blocks(lambda s, e: prep.distance_block(s, e, out=out[s:e]), prep.n_x, rows,
                   n_threads)
        return out
    if rows >= prep.n_x:
        return prep.distance_block(0, prep.n_x)
    out = xp.empty((prep.n_x, prep.n_y), dtype=prep.dtype, device=prep.device)
    for start in range(0, prep.n_x, rows):
        stop = min(start + rows, prep.n_x)
        out[start:stop, :] = prep.distance_block(start, stop)
    return out


def pairwise_distances_chunked(X, Y=None, metric="euclidean", *, M=None, L=None,
                               chunk_size=None, working_memory=None):
    """Yield the distance matrix of :func:`pairwise_distances` block of rows by block.

    Takes the same parameters. Each block is a new array of shape
    (block_rows, n_samples_Y), in the namespace and on the device of ``X``; only one
    block is alive at a time unless the caller keeps them.

    Examples
    --------
    >>> import numpy as np
    >>> from skmetric.distances import pairwise_distances_chunked
    >>> X = np.arange(10.0).reshape(5, 2)
    >>> [block.shape for block in pairwise_distances_chunked(X, chunk_size=2)]
    [(2, 5), (2, 5), (1, 5)]
    """
    prep = _Prepared(X, Y, metric, M, L)
    rows = _chunk_rows(prep.n_x, prep.n_y, prep.itemsize, chunk_size, working_memory)
    for start in range(0, prep.n_x, rows):
        yield prep.distance_block(start, min(start + rows, prep.n_x))


class _Prepared:
    """Validated inputs mapped to the space where the metric is a dot-product expansion.

    'mahalanobis' becomes 'euclidean' on ``X @ Lᵀ``; 'cosine' works on unit rows. ``kind``
    is 'sq' (squared Euclidean expansion), 'cos' or 'callable'.

    The one stability mechanism of the engine lives here, for every caller and namespace.
    For 'sq', ``X`` and ``Y`` are the coordinates times ``2**exponent`` (exact in floating
    point; the exponent is 0 unless the largest magnitude would let a squared norm overflow
    or underflow), from which distances are computed directly (``x - y``); ``Xr`` and
    ``Yr`` are the same centred on the references' mean when that mean lies farther from
    the origin than the references' spread (distances are translation invariant): the
    expansion ``||x||² - 2 x·y + ||y||²`` is computed on them, with its round-off bounded
    by :meth:`round_off`. Results are mapped back to the data's units by :meth:`to_units`.
    """

    def __init__(self, X, Y, metric, M, L):
        X, Y, xp = check_pair_inputs(X, Y)
        self.xp = xp
        self.numpy = is_numpy_namespace(xp)
        self.same = Y is None
        self.squared = metric == "sqeuclidean"
        self.device = device(X)
        if callable(metric):
            if M is not None or L is not None:
                raise ValueError("M and L are only used with metric='mahalanobis'.")
            self.kind = "callable"
            self.metric = metric
        elif metric not in METRICS:
            raise ValueError(
                f"Unknown metric {metric!r}; choose one of {METRICS} or pass a callable."
            )
        elif metric == "mahalanobis":
            L = check_mahalanobis(M, L, X.shape[1], xp, X.dtype, self.device)
            X = X @ L.T
            Y = None if Y is None else Y @ L.T
            self.kind = "sq"
        elif M is not None or L is not None:
            raise ValueError(
                f"M and L are only used with metric='mahalanobis'; got metric={metric!r}."
            )
        else:
            self.kind = "cos" if metric == "cosine" else "sq"
        if self.kind == "cos":
            X = _unit_rows(X, xp)
            Y = None if Y is None else _unit_rows(Y, xp)
        self.dtype = X.dtype
        self.itemsize = 4 if X.dtype == xp.float32 else 8
        self.eps = float(np.finfo(np.float32 if self.itemsize == 4 else np.float64).eps)
        self.exponent = 0
        if self.kind == "sq":
            self.exponent = _safe_exponent([X] if Y is None else [X, Y], xp, self.itemsize)
            X = _times_pow2(X, self.exponent, xp)
            Y = None if Y is None else _times_pow2(Y, self.exponent, xp)
        self.X = X
        self.Y = X if Y is None else Y
        self.n_x, self.n_y = X.shape[0], self.Y.shape[0]
        self.Xr, self.Yr = self.X, self.Y
        if self.kind == "sq":
            self._centre_and_norms()
        self.YT = self.Yr.T

    def _centre_and_norms(self):
        """Centre Xr and Yr on the references' mean when it is farther from the origin than
        their spread (the expansion's round-off then shrinks from the norms to the spread);
        set the squared norms ``x_sq``, ``y_sq`` of Xr, Yr and the largest ``y_sq_max``."""
        xp = self.xp
        y_sq = _row_sq_norms(self.Y, xp, self.numpy)
        centre = _constant(xp.mean(self.Y, axis=0), xp)
        # mean ||y||² = ||centre||² + mean ||y - centre||².
        if 2 * _scalar(xp.sum(centre * centre), xp) > _scalar(xp.mean(y_sq), xp):
            self.Yr = self.Y - centre[None, :]
            self.Xr = self.Yr if self.same else self.X - centre[None, :]
            y_sq = _row_sq_norms(self.Yr, xp, self.numpy)
        self.y_sq = y_sq
        self.x_sq = y_sq if self.same else _row_sq_norms(self.Xr, xp, self.numpy)
        self.y_sq_max = _scalar(xp.max(y_sq), xp)

    def round_off(self, start, stop):
        """Bound on the absolute round-off of the expansion's entries (squared distances,
        or ``-x·y`` for 'cos') of rows ``start:stop``, shape (b,): a few ``d·eps`` times the
        size of the terms. The centring's own rounding is within it."""
        d = self.Xr.shape[1]
        if self.kind == "cos":
            return 4.0 * d * self.eps
        return 3.0 * (d + 4) * self.eps * (self.x_sq[start:stop] + self.y_sq_max)

    def to_units(self, D, squared):
        """Distances computed on the scaled coordinates, back in the data's units (in place
        for NumPy); ``squared`` says whether D holds squared distances. Distances beyond
        the largest float become inf: only those whose true value overflows."""
        if self.exponent == 0:
            return D
        return _times_pow2(D, -self.exponent * (2 if squared else 1), self.xp, inplace=True)

    def ranking_rhs(self):
        """NumPy: ``-2 Yᵀ`` ('sq') or ``-Yᵀ`` ('cos') as a contiguous array, made once, so
        that ``X_block @ rhs (+ ||y||²)`` orders each row as the distances."""
        if getattr(self, "_rhs", None) is None:
            scale = -2 if self.kind == "sq" else -1
            self._rhs = np.ascontiguousarray(scale * self.YT)
        return self._rhs

    def call_metric(self, start, stop):
        """The user's callable on rows ``start:stop`` of X, checked: shape (b, n_y), real,
        no NaN; returned in the floating dtype of the data."""
        xp, Xb = self.xp, self.X[start:stop, :]
        name = getattr(self.metric, "__qualname__", None) or repr(self.metric)
        D = self.metric(Xb, self.Y)
        try:
            D = xp.asarray(D)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"The metric callable {name} returned a {type(D).__name__}; it must return "
                "an array of distances in the namespace of its inputs."
            ) from exc
        expected = (stop - start, self.n_y)
        if tuple(D.shape) != expected:
            raise ValueError(
                f"The metric callable {name} returned shape {tuple(D.shape)} for a block of "
                f"{expected[0]} rows of X against {expected[1]} rows of Y; it must return "
                f"the {expected} matrix D with D[i, j] the distance of X_block[i] to Y[j]."
            )
        if not xp.isdtype(D.dtype, ("real floating", "integral", "bool")):
            raise TypeError(
                f"The metric callable {name} returned dtype {D.dtype}; it must return real "
                "distances."
            )
        D = xp.astype(D, self.dtype)
        bad = xp.any(xp.isnan(D), axis=1)
        if bool(xp.any(bad)):
            rows = [start + int(i) for i in to_numpy(xp.nonzero(bad)[0])[:5]]
            raise ValueError(
                f"The metric callable {name} returned NaN distances for rows {rows} of X; "
                "it must return a number (inf allowed) for every pair."
            )
        return D

    def direct_sq(self, rows, cols):
        """Squared distances ``||X[rows[t]] - Y[cols[t]]||²`` from the (scaled) coordinates,
        a slice of pairs at a time so the gathered differences stay within a few MiB."""
        xp, d = self.xp, self.X.shape[1]
        n = rows.shape[0]
        step = max(1, _GATHER_PAIRS_BYTES // (d * self.itemsize))
        parts = []
        for s in range(0, n, step):
            e = min(s + step, n)
            diff = xp.take(self.X, rows[s:e], axis=0) - xp.take(self.Y, cols[s:e], axis=0)
            parts.append(xp.sum(diff * diff, axis=1))
        return parts[0] if len(parts) == 1 else xp.concat(parts)

    def distance_block(self, start, stop, out=None):
        """Distances of rows ``start:stop`` of X to all of Y (into ``out`` for NumPy)."""
        xp = self.xp
        if self.kind == "callable":
            D = self.call_metric(start, stop)
            if out is not None:
                out[...] = D
                D = out
        elif self.kind == "sq":
            D = self._sq_block_numpy(start, stop, out) if self.numpy else \
                self._sq_block(start, stop)
        elif self.numpy:
            D = np.matmul(self.X[start:stop, :], self.ranking_rhs(), out=out)  # -x·y
            D += 1
            np.clip(D, 0, 2, out=D)
        else:
            D = xp.clip(1 - self.X[start:stop, :] @ self.YT, min=0.0, max=2.0)
        if self.same:
            D = set_diagonal(D, start, 0.0, xp)
        return D

    def _sq_block_numpy(self, start, stop, out):
        """NumPy 'sq' block, in place: expansion, cancelled entries recomputed directly,
        root, units."""
        D = np.matmul(self.Xr[start:stop, :], self.ranking_rhs(), out=out)  # -2 x·y
        D += self.x_sq[start:stop, None]
        D += self.y_sq[None, :]
        if self.same:
            set_diagonal(D, start, np.inf, np)  # exactly 0 in the end; not recomputed
        limit = self.round_off(start, stop) * _CANCEL_RATIO[self.itemsize]
        rows = np.flatnonzero(np.min(D, axis=1) < limit)
        if rows.size:
            r, c = np.nonzero(D[rows] < limit[rows, None])
            r = rows[r]
            D[r, c] = self.direct_sq(start + r, c)
        # No clipping pass: a negative entry lies below the (positive) limit, so it was
        # recomputed; the limit is 0 only when every point is 0 and so is D.
        if not self.squared:
            np.sqrt(D, out=D)
        return self.to_units(D, self.squared)

    def _sq_block(self, start, stop):
        """Other namespaces: the same steps, out of place (so torch autograd can follow
        them), with a square root whose subgradient at 0 is 0."""
        xp = self.xp
        G = self.Xr[start:stop, :] @ self.YT
        D = self.x_sq[start:stop, None] - 2 * G + self.y_sq[None, :]
        limit = self.round_off(start, stop) * _CANCEL_RATIO[self.itemsize]
        cancelled = D < limit[:, None]
        if bool(xp.any(cancelled)):
            r, c = xp.nonzero(cancelled)
            exact = xp.zeros_like(D)
            exact[cancelled] = self.direct_sq(r + start, c)
            D = xp.where(cancelled, exact, D)
        D = xp.clip(D, min=0.0)
        if not self.squared:
            D = safe_sqrt(D, xp)
        return self.to_units(D, self.squared)


def check_pair_inputs(X, Y=None):
    """Validate X (and Y): 2-D, finite, real, same number of features, one namespace.

    Returns ``(X, Y, xp)`` with floating arrays (integers become float64, float32 stays
    float32, mixed float dtypes are promoted) and Y None when it was None.
    """
    X = as_array(X, "X")
    Y = None if Y is None else as_array(Y, "Y")
    arrays = [X] if Y is None else [X, Y]
    try:
        xp = array_namespace(*arrays)
    except TypeError as exc:
        raise TypeError(
            "X and Y must come from the same array library (e.g. both NumPy or both torch) "
            f"and live on the same device: {exc}"
        ) from exc
    for name, A in zip("XY", arrays, strict=False):
        if A.ndim != 2:
            raise ValueError(
                f"Expected a 2-D array for {name} of shape (n_samples, n_features); got "
                f"{A.ndim} dimension(s). Reshape with {name}.reshape(-1, 1) for a single "
                f"feature or {name}.reshape(1, -1) for a single sample."
            )
        if A.shape[0] == 0 or A.shape[1] == 0:
            raise ValueError(
                f"{name} has shape {tuple(A.shape)}; at least 1 sample and 1 feature are "
                "required."
            )
    if Y is not None and Y.shape[1] != X.shape[1]:
        raise ValueError(
            f"X has {X.shape[1]} features but Y has {Y.shape[1]}; both must have the "
            "same number of features."
        )
    dtype = _float_dtype(xp, [A.dtype for A in arrays])
    checked = []
    for name, A in zip("XY", arrays, strict=False):
        if A.dtype != dtype:
            A = xp.astype(A, dtype)
        if not bool(xp.all(xp.isfinite(A))):
            raise ValueError(
                f"{name} contains NaN or infinity. Remove or impute those values (e.g. with "
                "sklearn.impute.SimpleImputer) first."
            )
        checked.append(A)
    return checked[0], (None if Y is None else checked[1]), xp


def check_mahalanobis(M, L, n_features, xp, dtype, dev):
    """The map L (shape (n_components, n_features)) from exactly one of M and L, in xp."""
    if (M is None) == (L is None):
        raise ValueError(
            "metric='mahalanobis' needs exactly one of M (the PSD matrix) and L (the linear "
            "map with M = L.T @ L, e.g. a learner's components_); got "
            f"{'both' if M is not None else 'neither'}."
        )
    if M is not None:
        M = np.atleast_2d(np.asarray(to_numpy(M), dtype=np.float64))
        if M.shape != (n_features, n_features):
            raise ValueError(
                f"M has shape {M.shape}; expected (n_features, n_features) = "
                f"({n_features}, {n_features})."
            )
        L = components_from_metric(M)
    else:
        L = np.atleast_2d(np.asarray(to_numpy(L), dtype=np.float64))
        if L.ndim != 2 or L.shape[1] != n_features or L.shape[0] == 0:
            raise ValueError(
                f"L has shape {L.shape}; expected (n_components, n_features) with "
                f"n_features = {n_features}."
            )
        if not np.all(np.isfinite(L)):
            raise ValueError("L contains NaN or infinity.")
    return xp.astype(from_numpy(L, xp, dev), dtype)


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


def safe_sqrt(D, xp):
    """Elementwise square root of the non-negative D whose (sub)gradient at 0 is 0, not
    inf (as ``torch.cdist``): autograd through a zero distance stays finite."""
    positive = D > 0
    return xp.where(positive, xp.sqrt(xp.where(positive, D, xp.ones_like(D))),
                    xp.zeros_like(D))


def map_blocks(work, n_rows, rows, n_threads):
    """Run ``work(start, stop)`` on every block of rows; NumPy blocks run on threads.

    With more than one thread the BLAS is limited to one thread per block (NumPy releases
    the GIL in its kernels), so the matrix products and the row-wise work around them
    both run in parallel. Returns the list of results in block order.
    """
    starts = list(range(0, n_rows, rows))
    n_threads = _check_n_threads(n_threads, len(starts))
    if n_threads == 1:
        return [work(s, min(s + rows, n_rows)) for s in starts]
    with threadpool_limits(1, user_api="blas"), ThreadPoolExecutor(n_threads) as pool:
        return list(pool.map(lambda s: work(s, min(s + rows, n_rows)), starts))


def _check_n_threads(n_threads, n_blocks):
    if n_threads is None:
        n_threads = os.cpu_count() or 1
    elif not isinstance(n_threads, numbers.Integral) or isinstance(n_threads, bool) or (
        n_threads < 1
    ):
        raise ValueError(f"n_threads must be a positive int or None; got {n_threads!r}.")
    return int(max(1, min(n_threads, n_blocks)))


def _float_dtype(xp, dtypes):
    floats = [dt for dt in dtypes if xp.isdtype(dt, "real floating")]
    for dt in dtypes:
        if xp.isdtype(dt, "complex floating"):
            raise ValueError("Complex data is not supported; pass real-valued arrays.")
        if not xp.isdtype(dt, ("real floating", "integral", "bool")):
            raise TypeError(f"Expected numeric arrays; got dtype {dt}.")
    if len(floats) < len(dtypes) or not floats:
        floats.append(xp.float64)
    return xp.result_type(*floats)


def _peak_scaled(X, xp):
    """``X``'s rows divided by their largest magnitudes, and those magnitudes (a column).

    The scaled rows' squares can neither overflow nor underflow (as in ``hypot``); zero rows
    stay zero.
    """
    peak = _constant(xp.max(xp.abs(X), axis=1, keepdims=True), xp)
    return X / xp.where(peak == 0, xp.ones_like(peak), peak), peak


def row_norms(X, xp):
    """Euclidean norms of the rows of ``X``, right at any magnitude (no overflow in squares)."""
    unit, peak = _peak_scaled(X, xp)
    return peak[:, 0] * xp.sqrt(xp.sum(unit * unit, axis=1))


def _unit_rows(X, xp):
    # Zero rows stay zero, so their cosine distance to anything is 1 (as scikit-learn).
    X, _ = _peak_scaled(X, xp)
    norms = xp.sqrt(xp.sum(X * X, axis=1, keepdims=True))
    return X / xp.where(norms == 0, xp.ones_like(norms), norms)


def _row_sq_norms(X, xp, numpy):
    if numpy:
        return np.einsum("ij,ij->i", X, X)
    return xp.sum(X * X, axis=1)


def _chunk_rows(n_rows, n_cols, itemsize, chunk_size, working_memory, default_mib=None):
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


# Entries of the expansion smaller than its round-off bound over sqrt(eps) are recomputed
# from the coordinates: every squared distance is then accurate to about sqrt(eps)
# relative (float64: 1.5e-8; float32: 3.5e-4) at worst, typically far better.
_CANCEL_RATIO = {8: float(np.finfo(np.float64).eps) ** -0.5,
                 4: float(np.finfo(np.float32).eps) ** -0.5}
# Bytes of gathered coordinate differences held at once by _Prepared.direct_sq.
_GATHER_PAIRS_BYTES = 8 * 2**20
# float32 / float64: (largest binary exponent, the exponent range left unscaled).
_EXPONENTS = {4: (128, 31), 8: (1024, 255)}


def _safe_exponent(arrays, xp, itemsize):
    """e such that the arrays times 2**e have their largest magnitude in [0.5, 1), or 0
    when that magnitude m is already within 2**±(emax/4) (float64: 2**±255). Either way
    no squared norm of fewer than 2**(emax/2) features can overflow, and an entry down
    to about 2**-(emax/4) times m keeps a normal square."""
    peak = max(_scalar(xp.max(xp.abs(A)), xp) for A in arrays)
    bound = 2.0 ** _EXPONENTS[itemsize][1]
    if peak == 0 or 1 / bound <= peak <= bound:
        return 0
    return -math.frexp(peak)[1]


def _times_pow2(A, e, xp, inplace=False):
    """A * 2**e, exactly (barring over/underflow of the result), in steps that each fit
    the dtype's range; in place when ``inplace`` and A is NumPy."""
    emax = _EXPONENTS[4 if A.dtype == xp.float32 else 8][0]
    inplace = inplace and isinstance(A, np.ndarray)
    while e != 0:
        step = max(-(emax // 2), min(emax // 2, e))
        if inplace:
            with np.errstate(over="ignore"):  # inf exactly where the true value overflows
                A *= 2.0 ** step
        else:
            A = A * 2.0 ** step
        e -= step
    return A


def _constant(a, xp):
    """``a`` cut from torch's autograd graph (a constant shift, e.g. the centre, changes no
    distance, so no gradient flows through it); other namespaces as is."""
    return a.detach() if is_torch_namespace(xp) else a


def _scalar(a, xp):
    """The 0-d array ``a`` as a Python float (outside any autograd graph)."""
    return float(_constant(a, xp))
