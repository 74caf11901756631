"""The distance engine: a prepared reference set searched block of query rows by block.

:func:`prepare` validates the queries ``X`` and the references ``Y`` once, maps them to
the space where the metric is a dot-product expansion and sets up the one stability
mechanism (exact power-of-two scaling, centring, direct recomputation of cancelled
entries). The :class:`Prepared` object then serves every consumer, on any Array API
namespace: :meth:`~Prepared.pairwise` and :meth:`~Prepared.distance_block` (distances),
:meth:`~Prepared.kneighbors` and :meth:`~Prepared.radius` (searches), each over all the
query rows or a range of them, so a caller that walks its queries in blocks (the
retrieval metrics) prepares the references once per call.
"""

import numpy as np

from .._array_api import device, from_numpy, is_numpy_namespace, to_numpy
from .._init import components_from_metric
from . import _faiss, _knn, _knn_topk
from ._arrays import check_input, check_inputs
from ._blocks import chunk_rows, map_blocks, set_diagonal
from ._numerics import (
    constant,
    cos_from_difference,
    row_sq_norms,
    safe_exponent,
    safe_sqrt,
    scalar,
    times_pow2,
    unit_rows,
)

METRICS = ("euclidean", "sqeuclidean", "cosine", "mahalanobis")

# NumPy distance blocks are sized for the caches when the caller sets no budget.
_CACHE_BLOCK_BYTES = 4 * 2**20
# Entries of the expansion smaller than its round-off bound over sqrt(eps) are recomputed
# from the coordinates: every squared distance is then accurate to about sqrt(eps)
# relative (float64: 1.5e-8; float32: 3.5e-4) at worst, typically far better.
_CANCEL_RATIO = {8: float(np.finfo(np.float64).eps) ** -0.5,
                 4: float(np.finfo(np.float32).eps) ** -0.5}
# Bytes of gathered coordinate differences held at once by Prepared.direct_sq.
_GATHER_PAIRS_BYTES = 8 * 2**20


def prepare(X, Y=None, metric="euclidean", M=None, L=None, *, names=("X", "Y")):
    """The queries ``X`` and references ``Y`` (None: ``X`` itself) validated and prepared
    for ``metric``; ``names`` are what error messages call them. See :class:`Prepared`."""
    return Prepared(X, Y, metric, M, L, names)


def check_metric(metric):
    """A ValueError for a metric that is neither a known name nor a callable."""
    if not callable(metric) and metric not in METRICS:
        raise ValueError(
            f"Unknown metric {metric!r}; choose one of {METRICS} or pass a callable."
        )


class Prepared:
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

    def __init__(self, X, Y, metric, M, L, names=("X", "Y")):
        X, Y, xp = check_inputs(X, Y, names=names)
        X, Y = _at_least_single(X, Y, xp)
        self.xp = xp
        self.numpy = is_numpy_namespace(xp)
        self.same = Y is None
        self.squared = metric == "sqeuclidean"
        self.device = device(X)
        self.kind, X, Y = self._map_inputs(X, Y, metric, M, L)
        self.dtype = X.dtype
        self.itemsize = 4 if X.dtype == xp.float32 else 8
        self.eps = float(np.finfo(np.float32 if self.itemsize == 4 else np.float64).eps)
        self.exponent = 0
        if self.kind == "sq":
            self.exponent = safe_exponent([X] if Y is None else [X, Y], xp, self.itemsize)
            X = times_pow2(X, self.exponent, xp)
            Y = None if Y is None else times_pow2(Y, self.exponent, xp)
        self.X = X
        self.Y = X if Y is None else Y
        self.n_x, self.n_y = X.shape[0], self.Y.shape[0]
        self.Xr, self.Yr = self.X, self.Y
        if self.kind == "sq":
            self._centre_and_norms()
        if self.kind == "cos":  # which unit rows are zero (see cos_from_difference)
            self.y_nonzero = xp.astype(xp.any(self.Y != 0, axis=1), self.dtype)
            self.x_nonzero = self.y_nonzero if self.same else \
                xp.astype(xp.any(self.X != 0, axis=1), self.dtype)
        self.YT = self.Yr.T

    def _map_inputs(self, X, Y, metric, M, L):
        """The kind of the metric and X, Y mapped to its space (``X @ Lᵀ``, unit rows)."""
        xp = self.xp
        if callable(metric):
            if M is not None or L is not None:
                raise ValueError("M and L are only used with metric='mahalanobis'.")
            self.metric = metric
            return "callable", X, Y
        check_metric(metric)
        if metric == "mahalanobis":
            L = check_mahalanobis(M, L, X.shape[1], xp, X.dtype, self.device)
            return "sq", X @ L.T, None if Y is None else Y @ L.T
        if M is not None or L is not None:
            raise ValueError(
                f"M and L are only used with metric='mahalanobis'; got metric={metric!r}."
            )
        if metric == "cosine":
            return "cos", unit_rows(X, xp), None if Y is None else unit_rows(Y, xp)
        return "sq", X, Y

    def _centre_and_norms(self):
        """Centre Xr and Yr on the references' mean when it is farther from the origin than
        their spread (the expansion's round-off then shrinks from the norms to the spread);
        set the squared norms ``x_sq``, ``y_sq`` of Xr, Yr and the largest ``y_sq_max``."""
        xp = self.xp
        y_sq = row_sq_norms(self.Y, xp, self.numpy)
        centre = constant(xp.mean(self.Y, axis=0), xp)
        # mean ||y||² = ||centre||² + mean ||y - centre||².
        if 2 * scalar(xp.sum(centre * centre), xp) > scalar(xp.mean(y_sq), xp):
            self.Yr = self.Y - centre[None, :]
            self.Xr = self.Yr if self.same else self.X - centre[None, :]
            y_sq = row_sq_norms(self.Yr, xp, self.numpy)
        self.y_sq = y_sq
        self.x_sq = y_sq if self.same else row_sq_norms(self.Xr, xp, self.numpy)
        self.y_sq_max = scalar(xp.max(y_sq), xp)

    # ------------------------------------------------------------------ the consumers

    def pairwise(self, chunk_size=None, working_memory=None, n_threads=None):
        """The (n_x, n_y) distance matrix, computed block of rows by block (NumPy blocks
        in place into the output, on ``n_threads`` threads)."""
        rows = chunk_rows(self.n_x, self.n_y, self.itemsize, chunk_size, working_memory)
        if self.numpy:
            if chunk_size is None and working_memory is None:
                # Written in place (no extra memory): blocks sized for the caches, so the
                # passes after the product find the block there, and for every thread.
                rows = min(rows, max(64, _CACHE_BLOCK_BYTES // (self.n_y * self.itemsize)))
            out = np.empty((self.n_x, self.n_y), dtype=self.dtype)
            if self.kind != "callable":
                self.ranking_rhs()  # made once, before the threads share it
            map_blocks(lambda s, e: self.distance_block(s, e, out=out[s:e]), 0, self.n_x,
                       rows, n_threads)
            return out
        if rows >= self.n_x:
            return self.distance_block(0, self.n_x)
        xp = self.xp
        out = xp.empty((self.n_x, self.n_y), dtype=self.dtype, device=self.device)
        for start, stop in self.row_blocks(rows):
            out[start:stop, :] = self.distance_block(start, stop)
        return out

    def row_blocks(self, rows, start=0, stop=None):
        """``(start, stop)`` of the blocks of ``rows`` query rows of ``start:stop``."""
        stop = self.n_x if stop is None else stop
        return [(s, min(s + rows, stop)) for s in range(start, stop, rows)]

    def block_rows(self, chunk_size=None, working_memory=None, default_mib=None):
        """Query rows per block of distances: ``chunk_size``, or as many as fit
        ``working_memory`` MiB (default ``default_mib``, else scikit-learn's setting)."""
        return chunk_rows(self.n_x, self.n_y, self.itemsize, chunk_size, working_memory,
                          default_mib)

    def check_exclude_self(self, exclude_self):
        """``exclude_self`` resolved: None means "when Y is X"; True needs query i to be
        reference i, so as many queries as references."""
        if exclude_self is None:
            return self.same
        if not isinstance(exclude_self, bool | np.bool_):
            raise TypeError(f"exclude_self must be True, False or None; got {exclude_self!r}.")
        if exclude_self and not self.same and self.n_x != self.n_y:
            raise ValueError(
                "exclude_self=True with Y given means query i is reference i, which needs as "
                f"many queries as references; got {self.n_x} and {self.n_y}."
            )
        return bool(exclude_self)

    def kneighbors(self, k, *, start=0, stop=None, exclude_self=False, chunk_size=None,
                   working_memory=None, n_threads=None, backend="brute", index="flat",
                   index_params=None, algorithm="auto"):
        """The k nearest references of the query rows ``start:stop`` (default: all):
        sorted distances and int64 indices, ties by the smaller index. ``exclude_self``
        leaves reference i out of query i's neighbours. 'faiss' builds its index once per
        Prepared object. The exact search is ``algorithm`` 'bound' (:mod:`._knn`, for
        the CPU) or 'topk' (:mod:`._knn_topk`, free of host synchronisation, for GPUs);
        'auto' picks by the device (see :func:`._knn_topk.choose`); both give the same
        results."""
        stop = self.n_x if stop is None else stop
        if backend == "faiss":
            return _faiss.kneighbors(self, k, start, stop, exclude_self, index, index_params)
        if _knn_topk.choose(self, algorithm) == "topk":
            return _knn_topk.kneighbors(self, k, start, stop, exclude_self, chunk_size,
                                        working_memory)
        return _knn.kneighbors(self, k, start, stop, exclude_self, chunk_size,
                               working_memory, n_threads)

    def radius(self, radius, *, exclude_self=False, chunk_size=None, working_memory=None,
               sort_results=True):
        """Per query, the references within ``radius``: lists of distances and indices."""
        return _knn.radius(self, radius, exclude_self, chunk_size, working_memory,
                           sort_results)

    # ----------------------------------------------------------- blocks of distances

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
        return times_pow2(D, -self.exponent * (2 if squared else 1), self.xp, inplace=True)

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

    def direct_cos(self, rows, cols):
        """Cosine distances of the pairs ``(rows[t], cols[t])`` from the unit rows' difference:
        ``||u - v||² / 2``, free of the cancellation of ``1 - u·v`` for nearly parallel rows
        (see :func:`cos_from_difference`)."""
        xp = self.xp
        return cos_from_difference(self.direct_sq(rows, cols),
                                   xp.take(self.x_nonzero, rows), xp.take(self.y_nonzero, cols),
                                   xp)

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
            if self.same:
                set_diagonal(D, start, np.inf, np)  # exactly 0 in the end; not recomputed
            self._recompute_numpy(D, start, self.direct_cos)
            np.clip(D, 0, 2, out=D)
        else:
            D = 1 - self.X[start:stop, :] @ self.YT
            D = xp.clip(self._recompute(D, start, self.direct_cos), min=0.0, max=2.0)
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
        self._recompute_numpy(D, start, self.direct_sq)
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
        D = xp.clip(self._recompute(D, start, self.direct_sq), min=0.0)
        if not self.squared:
            D = safe_sqrt(D, xp)
        return self.to_units(D, self.squared)

    def _cancel_limit(self, start, stop):
        """Per row of the block, the value below which an entry of the expansion is
        recomputed: its round-off bound over sqrt(eps), so every entry kept is accurate to
        sqrt(eps) relative."""
        limit = self.round_off(start, stop) * _CANCEL_RATIO[self.itemsize]
        if self.kind == "cos":  # one bound for every row
            return self.xp.full(stop - start, limit, dtype=self.dtype, device=self.device)
        return limit

    def _recompute_numpy(self, D, start, direct):
        """NumPy: the entries of D below their cancellation limit replaced, in place, by
        ``direct(rows, cols)``."""
        limit = self._cancel_limit(start, start + D.shape[0])
        rows = np.flatnonzero(np.min(D, axis=1) < limit)
        if rows.size:
            r, c = np.nonzero(D[rows] < limit[rows, None])
            r = rows[r]
            D[r, c] = direct(start + r, c)

    def _recompute(self, D, start, direct):
        """Other namespaces: D with the entries below their cancellation limit replaced by
        ``direct(rows, cols)``, out of place (so torch autograd can follow it)."""
        xp = self.xp
        cancelled = D < self._cancel_limit(start, start + D.shape[0])[:, None]
        if not bool(xp.any(cancelled)):
            return D
        r, c = xp.nonzero(cancelled)
        exact = xp.zeros_like(D)
        exact[cancelled] = direct(r + start, c)
        return xp.where(cancelled, exact, D)


def _at_least_single(X, Y, xp):
    """X and Y (of one dtype) in float32 when of half precision (float16, bfloat16):
    squared norms of float16 overflow past 256, and no round-off bound holds on 3 digits;
    the scaling and cancellation limits are set for float32 and float64."""
    if xp.finfo(X.dtype).bits >= 32:
        return X, Y
    return xp.astype(X, xp.float32), None if Y is None else xp.astype(Y, xp.float32)


def check_mahalanobis(M, L, n_features, xp, dtype, dev):
    """The map L (shape (n_components, n_features)) from exactly one of M and L, in xp."""
    if (M is None) == (L is None):
        raise ValueError(
            "metric='mahalanobis' needs exactly one of M (the PSD matrix) and L (the linear "
            "map with M = L.T @ L, e.g. a learner's components_); got "
            f"{'both' if M is not None else 'neither'}."
        )
    if M is not None:
        # The array checker refuses complex (was cast to its real part), non-numeric and
        # non-finite matrices, as for L.
        M = check_input(np.atleast_2d(to_numpy(M)), "M").astype(np.float64, copy=False)
        if M.shape != (n_features, n_features):
            raise ValueError(
                f"M has shape {M.shape}; expected (n_features, n_features) = "
                f"({n_features}, {n_features})."
            )
        L = components_from_metric(M)
    else:
        L = check_input(np.atleast_2d(to_numpy(L)), "L", n_features=n_features)
        L = L.astype(np.float64, copy=False)
    return xp.astype(from_numpy(L, xp, dev), dtype)
