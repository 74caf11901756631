"""Exact and approximate nearest neighbours in a (learned) metric, on any array namespace.

``kneighbors`` and ``radius_neighbors`` search block of query rows by block, on NumPy,
torch, CuPy or array-api-strict arrays, with the results in the namespace and on the device
of the queries. ``backend='faiss'`` hands the search to FAISS after applying the learned map.
``MetricKNeighborsClassifier`` fits a metric learner and classifies by k-NN in its space.

Ties are broken deterministically: among references at the same distance, the one with the
smaller index comes first (and is kept when only some of the tied references fit in k).
"""

import numbers
import threading

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ._array_api import from_numpy, is_numpy_namespace, is_torch_namespace, to_numpy
from ._optional import import_optional
from ._sklearn_compat import HasMethods, Interval, StrOptions, _fit_context
from .distances import (
    _check_n_threads,
    _chunk_rows,
    _Prepared,
    _safe_exponent,
    _times_pow2,
    map_blocks,
    safe_sqrt,
    set_diagonal,
)

BACKENDS = ("auto", "brute", "faiss")
FAISS_INDEXES = ("flat", "ivf", "hnsw")
# Default block of the brute-force search: large enough for an efficient matrix product,
# small enough that the block of distances stays near the CPU caches.
_KNN_WORKING_MEMORY_MIB = 64

__all__ = ["MetricKNeighborsClassifier", "kneighbors", "radius_neighbors"]


def kneighbors(X, Y=None, n_neighbors=5, *, metric="euclidean", M=None, L=None,
               exclude_self=None, chunk_size=None, working_memory=None, backend="auto",
               index="flat", index_params=None, return_distance=True, n_threads=None):
    """The ``n_neighbors`` nearest references of every query.

    Parameters
    ----------
    X : array of shape (n_queries, n_features)
        Queries: NumPy, torch, CuPy or any Array API array (lists are read as NumPy).
    Y : array of shape (n_references, n_features), default=None
        References, in the namespace of ``X``. None searches ``X`` among itself.
    n_neighbors : int, default=5
        Number of neighbours per query.
    metric : {'euclidean', 'sqeuclidean', 'cosine', 'mahalanobis'} or callable, \
            default='euclidean'
        As in :func:`skmetric.distances.pairwise_distances`; 'mahalanobis' needs M or L.
    M, L : array, default=None
        The Mahalanobis matrix or the linear map (``M = Lᵀ L``) for 'mahalanobis'.
    exclude_self : bool, default=None
        Whether query i may not return reference i (the query itself). None means True
        when ``Y`` is None and False otherwise. With ``Y`` given it needs as many queries
        as references. A duplicate of the query at another index is still returned.
    chunk_size : int, default=None
        Query rows per block (brute force).
    working_memory : float, default=None
        Memory of one block of distances in MiB when ``chunk_size`` is None; by default
        64 MiB per block (per thread), which keeps the matrix products efficient and
        the memory low; larger blocks suit GPUs.
    backend : {'auto', 'brute', 'faiss'}, default='auto'
        'brute' (and 'auto') is the exact blockwise search of this module; 'faiss' builds
        a FAISS index on the references (``pip install 'skmetric[faiss]'``), in float32.
    index : {'flat', 'ivf', 'hnsw'}, default='flat'
        FAISS index: 'flat' is exact; 'ivf' (inverted lists) and 'hnsw' (graph) are
        approximate and faster on large sets. Only with ``backend='faiss'``.
    index_params : dict, default=None
        FAISS options: 'nlist' and 'nprobe' for 'ivf'; 'M', 'ef_construction' and
        'ef_search' for 'hnsw'.
    return_distance : bool, default=True
        Whether to return the distances too.
    n_threads : int, default=None
        NumPy input, brute force: query blocks searched in parallel by this many threads
        (each with a single-threaded BLAS). None uses every CPU core.

    Returns
    -------
    distances : array of shape (n_queries, n_neighbors)
        Sorted ascending, in the namespace, device and floating dtype of ``X``. Omitted
        when ``return_distance=False``. The brute backend recomputes the distances of the
        chosen neighbours directly (``||x - y||``), free of the expansion's round-off:
        within a few ``d·eps`` relative at any magnitude and offset (float32 data offset
        by 1,000 included). With torch input they carry autograd to X and Y (the indices
        are piecewise constant; a zero distance has subgradient 0).
    indices : array of shape (n_queries, n_neighbors)
        Indices into ``Y`` (int64); ties by distance are broken by the smaller index
        (FAISS orders ties its own way). The brute backend returns the neighbours of an
        exact search on those distances, for any block size and number of threads.

    Examples
    --------
    >>> import numpy as np
    >>> from skmetric.neighbors import kneighbors
    >>> X = np.array([[0.0], [1.0], [3.0], [7.0]])
    >>> dist, ind = kneighbors(X, n_neighbors=2)
    >>> ind
    array([[1, 2],
           [0, 2],
           [1, 0],
           [2, 1]])
    >>> dist[0]
    array([1., 3.])
    """
    k = _check_positive_int(n_neighbors, "n_neighbors")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}; got {backend!r}.")
    if index not in FAISS_INDEXES:
        raise ValueError(f"index must be one of {FAISS_INDEXES}; got {index!r}.")
    if backend != "faiss" and (index != "flat" or index_params):
        raise ValueError("index and index_params are FAISS options; pass backend='faiss'.")
    prep = _Prepared(X, Y, metric, M, L)
    exclude = _check_exclude_self(exclude_self, prep)
    n_available = prep.n_y - int(exclude)
    if k > n_available:
        raise ValueError(
            f"n_neighbors={k} exceeds the {n_available} references available"
            f"{' (the query itself excluded)' if exclude else ''}; lower n_neighbors."
        )
    if backend == "faiss":
        dist, ind = _kneighbors_faiss(prep, k, exclude, index, index_params)
    else:
        dist, ind = _kneighbors_brute(prep, k, exclude, chunk_size, working_memory, n_threads)
    return (dist, ind) if return_distance else ind


def radius_neighbors(X, Y=None, radius=1.0, *, metric="euclidean", M=None, L=None,
                     exclude_self=None, chunk_size=None, working_memory=None,
                     return_distance=True, sort_results=True):
    """The references within ``radius`` of every query (distance ``<= radius``).

    Parameters
    ----------
    X, Y, metric, M, L, exclude_self, chunk_size, working_memory
        As in :func:`kneighbors`.
    radius : float, default=1.0
        Distance limit, in the units of ``metric`` (squared for 'sqeuclidean').
    return_distance : bool, default=True
        Whether to return the distances too.
    sort_results : bool, default=True
        Sort each query's neighbours by distance (ties by index); else by index.

    Returns
    -------
    distances : list of n_queries arrays
        One 1-D array per query, in the namespace of ``X``. Omitted when
        ``return_distance=False``.
    indices : list of n_queries int64 arrays
        Indices into ``Y`` of the references within the radius.

    Examples
    --------
    >>> import numpy as np
    >>> from skmetric.neighbors import radius_neighbors
    >>> X = np.array([[0.0], [1.0], [3.0]])
    >>> dist, ind = radius_neighbors(X, radius=2.0)
    >>> [i.tolist() for i in ind]
    [[1], [0, 2], [1]]
    """
    if not isinstance(radius, numbers.Real) or isinstance(radius, bool) or not (
        np.isfinite(radius) and radius >= 0
    ):
        raise ValueError(f"radius must be a finite number >= 0; got {radius!r}.")
    prep = _Prepared(X, Y, metric, M, L)
    exclude = _check_exclude_self(exclude_self, prep)
    xp = prep.xp
    rows = _chunk_rows(prep.n_x, prep.n_y, prep.itemsize, chunk_size, working_memory,
                       default_mib=_KNN_WORKING_MEMORY_MIB)
    all_dist, all_ind = [], []
    for start in range(0, prep.n_x, rows):
        D = prep.distance_block(start, min(start + rows, prep.n_x))
        if exclude:
            D = set_diagonal(D, start, float("inf"), xp)
        if prep.numpy:
            within = D <= radius
            r, c = np.nonzero(within)
            splits = np.cumsum(np.count_nonzero(within, axis=1))[:-1]
            ind_rows = np.split(c.astype(np.int64), splits)
            dist_rows = np.split(D[r, c], splits)
        else:
            ind_rows, dist_rows = [], []
            for i in range(D.shape[0]):
                (cols,) = xp.nonzero(D[i, :] <= radius)
                ind_rows.append(xp.astype(cols, xp.int64))
                dist_rows.append(xp.take(D[i, :], cols))
        if sort_results:
            orders = [xp.argsort(d, stable=True) for d in dist_rows]
            dist_rows = [xp.take(d, o) for d, o in zip(dist_rows, orders, strict=True)]
            ind_rows = [xp.take(i, o) for i, o in zip(ind_rows, orders, strict=True)]
        all_dist.extend(dist_rows)
        all_ind.extend(ind_rows)
    return (all_dist, all_ind) if return_distance else all_ind


def _check_positive_int(value, name):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int; got {value!r}.")
    return int(value)


def _check_exclude_self(exclude_self, prep):
    if exclude_self is None:
        return prep.same
    if not isinstance(exclude_self, bool | np.bool_):
        raise TypeError(f"exclude_self must be True, False or None; got {exclude_self!r}.")
    if exclude_self and not prep.same and prep.n_x != prep.n_y:
        raise ValueError(
            "exclude_self=True with Y given means query i is reference i, which needs as "
            f"many queries as references; got {prep.n_x} and {prep.n_y}."
        )
    return bool(exclude_self)


# Bytes of gathered neighbour coordinates held at once when computing exact distances:
# 32 MiB per slice in general; NumPy reuses one buffer of about a core's L2 cache, so the
# coordinates are reduced while still in cache and no fresh memory is touched per slice.
_GATHER_BYTES = 32 * 2**20
_GATHER_BYTES_NUMPY = 2**20


def _kneighbors_brute(prep, k, exclude, chunk_size, working_memory, n_threads):
    """Exact search: per block, a ranking matrix, a bound on each row's k-th smallest,
    then exact distances of the references at or below the bound.

    The ranking (a matrix product) carries round-off, so two references whose distances
    are equal or closer than that round-off could be ordered by noise, differently for
    another block size. So every reference whose ranking is within the round-off of the
    bound is a candidate, the candidates are ordered on exact distances, ties by smaller
    index, and the result does not depend on the blocks or threads.
    """
    xp = prep.xp
    rows = _chunk_rows(prep.n_x, prep.n_y, prep.itemsize, chunk_size, working_memory,
                       default_mib=_KNN_WORKING_MEMORY_MIB)
    if prep.numpy and chunk_size is None and working_memory is None:
        # Give every thread a block on small problems too.
        per_thread = -(-prep.n_x // _check_n_threads(n_threads, prep.n_x))
        rows = min(rows, max(128, per_thread))

    # NumPy: each thread reuses one ranking buffer across its blocks; a fresh block of
    # tens of MiB per block would page-fault on every first touch.
    local = threading.local()

    def work(start, stop):
        if prep.numpy and prep.kind != "callable":
            if getattr(local, "buf", None) is None:
                local.buf = np.empty((rows, prep.n_y), dtype=prep.dtype)
            R = _ranking_block(prep, start, stop, out=local.buf[:stop - start])
        else:
            R = _ranking_block(prep, start, stop)
        if exclude:
            R = set_diagonal(R, start, float("inf"), xp)
        upper = _kth_upper_bound(R, k, xp) + _ranking_band(prep, start, stop)
        return _nearest_candidates(prep, prep.X[start:stop, :], R, upper, k)

    if not prep.numpy:
        n_threads = 1
    elif prep.kind != "callable":
        prep.ranking_rhs()  # made once, before the threads share it
    blocks = map_blocks(work, prep.n_x, rows, n_threads)
    if len(blocks) == 1:
        return blocks[0]
    return (xp.concat([d for d, _ in blocks], axis=0),
            xp.concat([i for _, i in blocks], axis=0))


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


def _nearest_candidates(prep, Xb, R, upper, k):
    """The k nearest references of each row of ``Xb`` among those whose ranking is at most
    ``upper`` (shape (b, 1), at least k per row): exact distances of these candidates, the k
    smallest taken in (distance, index) order. Returns sorted distances and indices."""
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
    order = xp.argsort(dist, axis=1, stable=True)[:, :k]
    return (xp.take_along_axis(dist, order, axis=1),
            xp.astype(xp.take_along_axis(cand, order, axis=1), xp.int64))


def _neighbor_distances(prep, Xb, ind, R):
    """Distances of the rows Xb to the references ``ind``, computed from the coordinates.

    The gathered neighbours form a (rows, k, d) array; rows are taken a few at a time so
    that it stays within ``_GATHER_BYTES`` however large k·d is (e.g. MAP@R's k = R).
    """
    xp = prep.xp
    if prep.kind == "callable":
        return xp.take_along_axis(R, ind, axis=1)
    if prep.numpy:
        return _gathered_distances_numpy(prep, Xb, ind)
    b, k = ind.shape
    step = max(1, _GATHER_BYTES // max(1, k * Xb.shape[1] * prep.itemsize))
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
    if prep.kind == "cos":
        return xp.clip(1 - xp.sum(Xb[:, None, :] * Yk, axis=2), min=0.0, max=2.0)
    diff = Xb[:, None, :] - Yk
    dist = xp.sum(diff * diff, axis=2)
    return prep.to_units(dist if prep.squared else safe_sqrt(dist, xp), prep.squared)


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
            if prep.kind == "cos":
                out[r0:r1, c0:c1] = 1 - np.einsum("bd,bkd->bk", Xb[r0:r1], B)
            else:
                np.subtract(Xb[r0:r1, None, :], B, out=B)
                out[r0:r1, c0:c1] = np.einsum("bkd,bkd->bk", B, B)
    if prep.kind == "cos":
        return np.clip(out, 0.0, 2.0, out=out)
    return prep.to_units(out if prep.squared else np.sqrt(out, out=out), prep.squared)


def _kneighbors_faiss(prep, k, exclude, index, index_params):
    """Search with a FAISS index on the (transformed / normalised) references."""
    faiss = import_optional("faiss", feature="kneighbors(backend='faiss')")
    if prep.kind == "callable":
        raise ValueError("backend='faiss' supports the named metrics only, not a callable.")
    # FAISS computes in float32: the engine's centred coordinates, scaled by a power of two
    # into float32's safe range (both undone on the distances below).
    exponent = _safe_exponent([prep.Xr, prep.Yr], prep.xp, 4) if prep.kind == "sq" else 0
    Xq = np.ascontiguousarray(_times_pow2(to_numpy(prep.Xr), exponent, np), dtype=np.float32)
    Yr = Xq if prep.same else np.ascontiguousarray(
        _times_pow2(to_numpy(prep.Yr), exponent, np), dtype=np.float32)
    # The IVF quantizer is returned too, to stay alive as long as its index.
    faiss_index, _quantizer = _build_faiss_index(faiss, Yr, prep.kind, index,
                                                 dict(index_params or {}))
    D, ind = faiss_index.search(Xq, k + int(exclude))
    if exclude:
        # Drop the query itself, or the last neighbour where the index did not return it.
        is_self = ind == np.arange(ind.shape[0])[:, None]
        is_self[~is_self.any(axis=1), -1] = True
        keep = ~is_self
        D, ind = D[keep].reshape(-1, k), ind[keep].reshape(-1, k)
    if prep.kind == "cos":
        D = np.clip(1 - D, 0, 2)
    else:
        D = np.maximum(D.astype(np.float64), 0)
        if not prep.squared:
            D = np.sqrt(D)
        D = _times_pow2(D, -(exponent + prep.exponent) * (2 if prep.squared else 1), np,
                        inplace=True)
    xp = prep.xp
    dist = xp.astype(from_numpy(D, xp, prep.device), prep.dtype)
    return dist, from_numpy(ind.astype(np.int64), xp, prep.device)


def _build_faiss_index(faiss, Yr, kind, index, params):
    allowed = {"flat": set(), "ivf": {"nlist", "nprobe"},
               "hnsw": {"M", "ef_construction", "ef_search"}}[index]
    unknown = set(params) - allowed
    if unknown:
        raise ValueError(
            f"Unknown index_params {sorted(unknown)} for index={index!r}; allowed: "
            f"{sorted(allowed) or 'none'}."
        )
    n, d = Yr.shape
    metric = faiss.METRIC_L2 if kind == "sq" else faiss.METRIC_INNER_PRODUCT
    if index == "flat":
        idx = faiss.IndexFlat(d, metric)
    elif index == "ivf":
        # faiss wants >= 39 training points per list.
        nlist = params.get("nlist", max(1, min(int(4 * np.sqrt(n)), n // 39)))
        quantizer = faiss.IndexFlat(d, metric)
        idx = faiss.IndexIVFFlat(quantizer, d, nlist, metric)
        idx.train(Yr)
        idx.nprobe = params.get("nprobe", max(1, min(nlist, 8)))
    else:
        idx = faiss.IndexHNSWFlat(d, params.get("M", 32), metric)
        idx.hnsw.efConstruction = params.get("ef_construction", 80)
        idx.hnsw.efSearch = params.get("ef_search", 64)
    idx.add(Yr)
    return idx, quantizer if index == "ivf" else None


class MetricKNeighborsClassifier(ClassifierMixin, BaseEstimator):
    """k-nearest-neighbours classifier in the space of a metric learner.

    ``fit`` fits (a clone of) ``metric_learner`` on the training data, maps the training
    samples into its space with ``transform`` and stores them; ``predict`` maps the
    queries the same way and votes among their ``n_neighbors`` nearest training samples,
    found by :func:`kneighbors` (blockwise, or FAISS with ``backend='faiss'``). Equivalent
    to ``make_pipeline(learner, KNeighborsClassifier())`` but with skmetric's search.

    Parameters
    ----------
    n_neighbors : int, default=5
        Number of neighbours that vote.
    metric_learner : estimator with fit and transform, default=None
        The learner of the metric, e.g. ``NCA()``; None uses the Euclidean metric.
    weights : {'uniform', 'distance'}, default='uniform'
        'distance' weighs each vote by the inverse distance (exact matches take all
        the weight).
    backend : {'auto', 'brute', 'faiss'}, default='auto'
        The search of :func:`kneighbors`.
    chunk_size : int, default=None
        Query rows per block of the search.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels.
    metric_learner_ : estimator or None
        The fitted clone of ``metric_learner``.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when X has string feature names.
    n_samples_fit_ : int
        Number of training samples.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skmetric import Covariance
    >>> from skmetric.neighbors import MetricKNeighborsClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = MetricKNeighborsClassifier(3, metric_learner=Covariance()).fit(X, y)
    >>> float(clf.score(X, y)) > 0.9
    True
    """

    _parameter_constraints = {
        "n_neighbors": [Interval(numbers.Integral, 1, None, closed="left")],
        "metric_learner": [HasMethods(["fit", "transform"]), None],
        "weights": [StrOptions({"uniform", "distance"})],
        "backend": [StrOptions(set(BACKENDS))],
        "chunk_size": [Interval(numbers.Integral, 1, None, closed="left"), None],
    }

    def __init__(self, n_neighbors=5, metric_learner=None, weights="uniform", backend="auto",
                 chunk_size=None):
        self.n_neighbors = n_neighbors
        self.metric_learner = metric_learner
        self.weights = weights
        self.backend = backend
        self.chunk_size = chunk_size

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y):
        """Fit the metric learner and store the training samples in its space.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training samples.
        y : array-like of shape (n_samples,)
            Class labels.

        Returns
        -------
        self : object
        """
        X, y = validate_data(self, X, y)
        check_classification_targets(y)
        self.classes_, self._y = np.unique(y, return_inverse=True)
        if self.metric_learner is None:
            self.metric_learner_ = None
            self._fit_Z = X
        else:
            self.metric_learner_ = clone(self.metric_learner).fit(X, y)
            self._fit_Z = np.asarray(self.metric_learner_.transform(X), dtype=np.float64)
        self.n_samples_fit_ = X.shape[0]
        return self

    def kneighbors(self, X=None, n_neighbors=None, return_distance=True):
        """Nearest training samples in the learned space (of the training set if X is None).

        Returns ``(distances, indices)`` as :func:`kneighbors`, or the indices only.
        """
        check_is_fitted(self)
        k = self.n_neighbors if n_neighbors is None else n_neighbors
        if X is None:
            Z, Y = self._fit_Z, None
        else:
            Z, Y = self._embed(X), self._fit_Z
        return kneighbors(Z, Y, k, backend=self.backend, chunk_size=self.chunk_size,
                          return_distance=return_distance)

    def predict_proba(self, X):
        """Class probabilities: the (weighted) share of each class among the neighbours.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Query samples.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        dist, ind = self.kneighbors(X)
        if self.weights == "uniform":
            w = np.ones_like(dist)
        else:
            with np.errstate(divide="ignore"):
                w = 1.0 / dist
            exact = np.isinf(w)
            rows = exact.any(axis=1)
            w[rows] = exact[rows]
        proba = np.zeros((ind.shape[0], self.classes_.shape[0]))
        np.add.at(proba, (np.arange(ind.shape[0])[:, None], self._y[ind]), w)
        return proba / proba.sum(axis=1, keepdims=True)

    def predict(self, X):
        """Class of the (weighted) majority of the neighbours; ties go to the first class.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Query samples.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def _embed(self, X):
        X = validate_data(self, X, reset=False)
        if self.metric_learner_ is None:
            return X
        return np.asarray(self.metric_learner_.transform(X), dtype=np.float64)
