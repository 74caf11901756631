"""Per-query retrieval values from one prepared reference set: the setup (labels as
class codes, R per query), the k-NN metrics and the full-ranking average precision."""

from typing import NamedTuple

import array_api_compat
import numpy as np
from sklearn import get_config

from .._array_api import to_numpy
from .._compute._arrays import check_inputs
from .._compute._engine import prepare
from .._validation import unique_labels
from ._common import check_k, check_same_label_kind, labels_as_numpy


class Setup(NamedTuple):
    xp: object
    query: object
    reference: object
    q_codes: np.ndarray
    r_codes: np.ndarray
    exclude_self: bool
    n_available: int
    R: np.ndarray  # relevant references per query, capped by max_k
    R_full: np.ndarray  # uncapped
    lone: np.ndarray


def retrieval_setup(query, query_labels, reference, reference_labels, ref_includes_query,
                    max_k):
    """The checked inputs of a retrieval metric, labels as class codes, and R per query."""
    if max_k is not None:
        check_k(max_k, "max_k")
    if not isinstance(ref_includes_query, (bool, np.bool_)):
        raise TypeError(f"ref_includes_query must be a bool; got {ref_includes_query!r}.")
    if reference is None and reference_labels is not None:
        raise ValueError("reference_labels was given without reference.")
    if reference is not None and reference_labels is None:
        raise ValueError("reference_labels is required with reference.")
    query, reference, xp = check_inputs(query, reference, names=("query", "reference"))
    q_labels = labels_as_numpy(query_labels, query.shape[0], "query_labels", "query")
    if reference is None:
        reference, r_labels, exclude_self = query, q_labels, True
    else:
        r_labels = labels_as_numpy(reference_labels, reference.shape[0], "reference_labels",
                                   "reference")
        exclude_self = bool(ref_includes_query)
    names = "query_labels"
    if r_labels is not q_labels:
        check_same_label_kind(q_labels, r_labels)
        names = "query_labels and reference_labels"
    _, codes = unique_labels(np.concatenate([q_labels, r_labels]), names, return_inverse=True)
    q_codes, r_codes = codes[: q_labels.shape[0]], codes[q_labels.shape[0]:]
    if exclude_self and reference is not query:
        n_q = q_codes.shape[0]
        if r_codes.shape[0] < n_q or np.any(r_codes[:n_q] != q_codes) or not _same_rows(
                xp, query, reference[:n_q, ...]):
            raise ValueError(
                "With ref_includes_query=True the first len(query) references must be the "
                "queries, with the same labels; check the order of reference and its labels."
            )
    n_available = reference.shape[0] - int(exclude_self)
    if n_available < 1:
        raise ValueError("Retrieval needs at least 2 samples (1 reference besides the query).")
    counts = np.bincount(r_codes, minlength=int(codes.max()) + 1)
    R_full = counts[q_codes] - int(exclude_self)
    R = R_full if max_k is None else np.minimum(R_full, max_k)
    return Setup(xp, query, reference, q_codes, r_codes, exclude_self, n_available, R,
                  R_full, R_full == 0)


def _same_rows(xp, A, B):
    """Whether A and B hold the same rows up to float round-off (e.g. float32 copies).

    The gap allowed is a small fraction of A's spread about its mean, which sets the
    distances between rows, plus float32's rounding of A's magnitude, which offset data
    carry; it has no absolute part, so neither an offset nor small units hide a row
    out of place. Computed on A and B divided by A's largest magnitude (no overflow).
    """
    A, B = xp.astype(A, xp.float64), xp.astype(B, xp.float64)
    peak = float(xp.max(xp.abs(A)))
    if peak == 0:
        return not bool(xp.any(B != 0))
    A, B = A / peak, B / peak
    gap = float(xp.max(xp.abs(A - B)))
    spread = float(xp.max(xp.abs(A - xp.mean(A, axis=0))))
    return gap <= 1e-5 * spread + 2.0**-22


def knn_metrics(setup, prep, ks, *, at_r, chunk_size, working_memory, backend):
    """Per-query precision@k / recall@k (each k) and, if ``at_r``, R-precision and MAP@R."""
    xp, n_q = setup.xp, setup.q_codes.shape[0]
    n_neighbors = max([*ks, int(setup.R.max()) if at_r else 0])
    out = {}
    names = [f"{m}_at_{k}" for k in ks for m in ("precision", "recall")]
    names += ["r_precision", "map_at_r"] if at_r else []
    for name in names:
        out[name] = np.full(n_q, np.nan)
    if n_neighbors == 0:  # every query is lone
        return out
    device = array_api_compat.device(setup.query)
    # int32 class codes: half the memory traffic of the (block, R) label gathers.
    q_codes = xp.asarray(setup.q_codes.astype(np.int32), device=device)
    r_codes = xp.asarray(setup.r_codes.astype(np.int32), device=device)
    R = xp.asarray(setup.R, device=device)
    ranks = xp.arange(1, n_neighbors + 1, dtype=xp.float64, device=device)
    block = _query_block(n_q, n_neighbors, working_memory)
    for start in range(0, n_q, block):
        stop = min(start + block, n_q)
        _, idx = prep.kneighbors(n_neighbors, start=start, stop=stop,
                                 exclude_self=setup.exclude_self, chunk_size=chunk_size,
                                 working_memory=working_memory,
                                 backend="faiss" if backend == "faiss" else "brute")
        nn_codes = xp.reshape(xp.take(r_codes, xp.reshape(idx, (-1,)), axis=0),
                              (stop - start, n_neighbors))
        hits = nn_codes == q_codes[start:stop, None]
        found = _running_count(xp, hits)  # hits in the top i
        for k in ks:
            found_k = xp.astype(found[:, k - 1], xp.float64)
            out[f"precision_at_{k}"][start:stop] = to_numpy(found_k / k)
            out[f"recall_at_{k}"][start:stop] = to_numpy(xp.astype(found_k > 0, xp.float64))
        if at_r:
            r = R[start:stop]
            denom = xp.astype(xp.where(r > 0, r, xp.ones_like(r)), xp.float64)
            # Hits in the top R: the running count at column R - 1.
            at_r_col = xp.reshape(xp.astype(denom, xp.int64) - 1, (-1, 1))
            found_r = xp.take_along_axis(found, at_r_col, axis=1)[:, 0]
            out["r_precision"][start:stop] = to_numpy(xp.astype(found_r, xp.float64) / denom)
            # MAP@R sums P@i = found_i / i over the hits at ranks i <= R.
            counted = hits & (ranks[None, :] <= xp.astype(r, xp.float64)[:, None])
            precision = xp.where(counted, xp.astype(found, xp.float64) / ranks[None, :],
                                 xp.zeros((), dtype=xp.float64, device=device))
            out["map_at_r"][start:stop] = to_numpy(xp.sum(precision, axis=1) / denom)
    return out


def _running_count(xp, hits):
    """Cumulative count of True along each row of ``hits``, as one flat cumulative sum
    minus each row's starting value (a row-wise cumsum is several times slower)."""
    b, k = hits.shape
    dtype = xp.int32 if b * k < 2**31 else xp.int64
    flat = xp.cumulative_sum(xp.reshape(xp.astype(hits, dtype), (-1,)), dtype=dtype)
    found = xp.reshape(flat, (b, k))
    start = xp.concat([xp.zeros(1, dtype=dtype, device=array_api_compat.device(hits)),
                       found[:-1, -1]])
    return found - start[:, None]


def _query_block(n_queries, n_neighbors, working_memory):
    """Queries per block so that the block's neighbour arrays fit in ``working_memory``."""
    mib = get_config()["working_memory"] if working_memory is None else working_memory
    # ~8 arrays of n_neighbors 8-byte values per query (indices, labels, hits, sums, ...).
    return int(max(1, min(n_queries, mib * 2**20 // (64 * max(n_neighbors, 1)))))


def prepare_reference(setup, metric, M, L):
    """The engine's prepared reference set of a retrieval setup, made once per call."""
    same = setup.reference is setup.query
    return prepare(setup.query, None if same else setup.reference, metric, M, L,
                   names=("query", "reference"))


def full_ranking_ap(setup, prep, working_memory):
    """Per-query average precision over the full ranking of the references, ordered as the
    k-NN metrics order them: the engine's exact search with k = every available reference,
    ties by the smaller index. (Sorting the expansion's distance rows would order equal
    distances by their round-off.)"""
    xp = setup.xp
    n_q, k = setup.q_codes.shape[0], setup.n_available
    out = np.full(n_q, np.nan)
    device = array_api_compat.device(setup.query)
    q_codes = xp.asarray(setup.q_codes, device=device)
    r_codes = xp.asarray(setup.r_codes, device=device)
    ranks = xp.arange(1, k + 1, dtype=xp.float64, device=device)
    mib = get_config()["working_memory"] if working_memory is None else working_memory
    block = int(max(1, min(n_q, mib * 2**20 // (40 * k))))
    for start in range(0, n_q, block):
        stop = min(start + block, n_q)
        _, idx = prep.kneighbors(k, start=start, stop=stop, exclude_self=setup.exclude_self,
                                 working_memory=working_memory)
        nn_codes = xp.reshape(xp.take(r_codes, xp.reshape(idx, (-1,)), axis=0),
                              (stop - start, k))
        hits = xp.astype(nn_codes == q_codes[start:stop, None], xp.float64)
        found = xp.cumulative_sum(hits, axis=1)
        r = xp.sum(hits, axis=1)
        denom = xp.where(r > 0, r, xp.ones_like(r))
        out[start:stop] = to_numpy(xp.sum(hits * found / ranks[None, :], axis=1) / denom)
    out[setup.lone] = np.nan
    return out
