"""k-nearest-neighbour search with a FAISS index on a prepared reference set.

FAISS computes in float32: the engine's centred coordinates are scaled by a power of two
into float32's safe range (both undone on the distances). The index is built once per
:class:`~skmetric._compute._engine.Prepared` object and reused by every block of queries.
"""

import numbers

import numpy as np

from .._array_api import from_numpy, to_numpy
from .._optional import import_optional
from ._numerics import safe_exponent, times_pow2


def kneighbors(prep, k, start, stop, exclude, index, index_params):
    """The k nearest references of query rows ``start:stop`` by the FAISS index."""
    params = dict(index_params or {})
    cache = prep.__dict__.setdefault("_faiss_searches", {})
    key = (index, repr(sorted(params.items())))
    if key not in cache:
        cache[key] = _FaissSearch(prep, index, params)
    search = cache[key]
    D, ind = search.index.search(search.queries[start:stop], k + int(exclude))
    _check_found(ind, k, index, search.index)
    if exclude:
        # Drop the query itself, or the last neighbour where the index did not return it.
        is_self = ind == np.arange(start, stop)[:, None]
        is_self[~is_self.any(axis=1), -1] = True
        keep = ~is_self
        D, ind = D[keep].reshape(-1, k), ind[keep].reshape(-1, k)
    if prep.kind == "cos":
        D = np.clip(1 - D, 0, 2)
    else:
        D = np.maximum(D.astype(np.float64), 0)
        if not prep.squared:
            D = np.sqrt(D)
        D = times_pow2(D, -(search.exponent + prep.exponent) * (2 if prep.squared else 1),
                       np, inplace=True)
    xp = prep.xp
    dist = xp.astype(from_numpy(D, xp, prep.device), prep.dtype)
    return dist, from_numpy(ind.astype(np.int64), xp, prep.device)


def _check_found(ind, k, index, faiss_index):
    """A ValueError where an approximate index returned fewer than the neighbours asked
    for: FAISS pads with index -1 (which would read as the last reference) and distance
    FLT_MAX."""
    short = np.any(ind < 0, axis=1)
    if not short.any():
        return
    knob = {"ivf": f"index_params['nprobe'] (now {getattr(faiss_index, 'nprobe', '?')}, "
                   f"of nlist={getattr(faiss_index, 'nlist', '?')} lists)",
            "hnsw": "index_params['ef_search'] (now "
                    f"{getattr(getattr(faiss_index, 'hnsw', None), 'efSearch', '?')})"}
    raise ValueError(
        f"The FAISS {index!r} index found fewer than the {k} neighbours asked for "
        f"{int(short.sum())} of {ind.shape[0]} queries: it searches only part of the "
        f"references. Raise {knob.get(index, 'its search breadth')}, lower n_neighbors, or "
        "use index='flat' (exact)."
    )


class _FaissSearch:
    """The FAISS index on the (transformed, centred, scaled) references, and the queries
    in its float32 coordinates."""

    def __init__(self, prep, index, params):
        faiss = import_optional("faiss", feature="kneighbors(backend='faiss')")
        if prep.kind == "callable":
            raise ValueError("backend='faiss' supports the named metrics only, not a callable.")
        self.exponent = safe_exponent([prep.Xr, prep.Yr], prep.xp, 4) \
            if prep.kind == "sq" else 0
        self.queries = np.ascontiguousarray(times_pow2(to_numpy(prep.Xr), self.exponent, np),
                                            dtype=np.float32)
        refs = self.queries if prep.same else np.ascontiguousarray(
            times_pow2(to_numpy(prep.Yr), self.exponent, np), dtype=np.float32)
        # The IVF quantizer is kept too, to stay alive as long as its index.
        self.index, self._quantizer = _build_index(faiss, refs, prep.kind, index, params)


# The least value of each index parameter: FAISS crashes the interpreter on HNSW M < 2,
# hangs on M < 0, and returns wrong neighbours for ef_search = 0.
_INDEX_PARAM_MIN = {"nlist": 1, "nprobe": 1, "M": 2, "ef_construction": 1, "ef_search": 1}


def _check_index_params(params, n_references):
    """Index parameters as FAISS can take them: integers at least ``_INDEX_PARAM_MIN``,
    and no more IVF lists than references to train them on."""
    for key, value in params.items():
        low = _INDEX_PARAM_MIN[key]
        if (isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral)
                or value < low):
            raise ValueError(f"index_params[{key!r}] must be an integer >= {low}; got "
                             f"{value!r}.")
    if params.get("nlist", 1) > n_references:
        raise ValueError(
            f"index_params nlist={params['nlist']} exceeds the {n_references} references: "
            "IVF trains one centroid per list on them. Lower nlist."
        )


def _build_index(faiss, Yr, kind, index, params):
    """The FAISS index on ``Yr`` (and the IVF quantizer, else None). Defaults: IVF
    ``nlist`` = 4·sqrt(n) capped at n // 39 (at least 1), ``nprobe`` = min(nlist, 8);
    HNSW ``M`` = 32, ``ef_construction`` = 80, ``ef_search`` = 64."""
    allowed = {"flat": set(), "ivf": {"nlist", "nprobe"},
               "hnsw": {"M", "ef_construction", "ef_search"}}[index]
    unknown = set(params) - allowed
    if unknown:
        raise ValueError(
            f"Unknown index_params {sorted(unknown)} for index={index!r}; allowed: "
            f"{sorted(allowed) or 'none'}."
        )
    n, d = Yr.shape
    _check_index_params(params, n)
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
