"""Retrieval metrics: precision@k, recall@k, R-precision, MAP@R, mean average precision
and the report of several at once, all with the conventions of :mod:`skmetric.metrics`."""

import numbers

import numpy as np

from .._compute._params import ARRAY, ARRAY_OR_NONE, BLOCKS, COUNT, COUNT_OR_NONE, METRIC_ARRAYS
from .._docstrings import fill_doc
from .._sklearn_compat import StrOptions
from .._warn import warn_user
from ..neighbors import BACKENDS
from ._common import check_k, validated
from ._ranking import full_ranking_ap, knn_metrics, prepare_reference, retrieval_setup

_AVERAGES = ("query", "class", None)

_SHARED_PARAMS_DOC = """
    query : array of shape (n_queries, n_features)
        Query embeddings; a NumPy, torch, CuPy or other Array API array.
    query_labels : array-like of shape (n_queries,)
        Class of each query.
    reference : array of shape (n_references, n_features), default=None
        Reference embeddings, in the same namespace as ``query``. None uses the queries
        themselves, each query's own row excluded.
    reference_labels : array-like of shape (n_references,), default=None
        Class of each reference; required with ``reference``.
    metric : str, default="euclidean"
        Distance of :func:`skmetric.neighbors.kneighbors` ("euclidean", "sqeuclidean",
        "cosine", ...); ``M`` or ``L`` give a Mahalanobis distance.
    M, L : array, default=None
        Mahalanobis matrix or linear map, passed to the distance engine.
    ref_includes_query : bool, default=False
        With ``reference``: its first ``n_queries`` rows are the queries (same labels), and
        each query's own row is excluded from its neighbours.
    average : {"query", "class"} or None, default="query"
        "query" averages over the queries that have at least one relevant reference,
        "class" averages per class first then over classes, None returns the per-query
        values (NaN for lone queries).
    chunk_size, working_memory, backend :
        Passed to the distance engine; ``working_memory`` (MiB, default scikit-learn's
        ``working_memory`` setting) also bounds the blocks of queries processed at once.
"""


#: Constraints of the parameters every retrieval function takes.
_CONSTRAINTS = {
    "query": ARRAY,
    "query_labels": ["array-like"],
    "reference": ARRAY_OR_NONE,
    "reference_labels": ["array-like", None],
    **METRIC_ARRAYS,
    "ref_includes_query": ["boolean"],
    "average": [StrOptions({"query", "class"}), None],
    **BLOCKS,
    "backend": [StrOptions(set(BACKENDS))],
}


def _validated(**constraints):
    """``validate_params`` with the shared constraints and the function's own."""
    return validated({**_CONSTRAINTS, **constraints})


_AT_R_DOC = """
    Parameters
    ----------
    {shared}
    max_k : int, default=None
        Cap on R (and so on the neighbours searched); None uses the true R.

    Returns
    -------
    score : float, or ndarray of shape (n_queries,) when ``average=None``

    References
    ----------
    Musgrave, Belongie, Lim. "A Metric Learning Reality Check", ECCV 2020.
"""
_fill_doc = fill_doc(shared=_SHARED_PARAMS_DOC, at_r=_AT_R_DOC)


@_validated(k=[COUNT])
@_fill_doc
def precision_at_k(query, query_labels, reference=None, reference_labels=None, k=1, *,
                   metric="euclidean", M=None, L=None, ref_includes_query=False,
                   average="query", chunk_size=None, working_memory=None, backend="auto"):
    """Precision at k: the fraction of the k nearest references sharing the query's class.

    ``P@k = (1/k) * sum_{i<=k} rel_i`` where ``rel_i`` is 1 if the i-th nearest reference
    has the query's label. ``precision_at_k(..., k=1)`` is the usual "precision at 1"
    (1-NN accuracy, leave-one-out when ``reference`` is None).

    Parameters
    ----------
    {shared}
    k : int, default=1
        Number of neighbours, at least 1 and at most the number of references available.

    Returns
    -------
    score : float, or ndarray of shape (n_queries,) when ``average=None``

    Examples
    --------
    >>> import numpy as np
    >>> from skmetric.metrics import precision_at_k
    >>> X = np.array([[0.0], [0.1], [1.0], [1.2]])
    >>> precision_at_k(X, [0, 0, 1, 1], k=1)
    1.0
    """
    return _single_metric("precision_at_k", **locals())


@_validated(k=[COUNT])
@_fill_doc
def recall_at_k(query, query_labels, reference=None, reference_labels=None, k=1, *,
                metric="euclidean", M=None, L=None, ref_includes_query=False,
                average="query", chunk_size=None, working_memory=None, backend="auto"):
    """Recall at k as in deep metric learning: 1 if any of the k nearest is correct.

    ``Recall@k = 1[sum_{i<=k} rel_i > 0]`` averaged over queries (Song et al. 2016); this
    is not the information-retrieval recall ``sum_{i<=k} rel_i / R``.

    Parameters
    ----------
    {shared}
    k : int, default=1
        Number of neighbours, at least 1.

    Returns
    -------
    score : float, or ndarray of shape (n_queries,) when ``average=None``

    References
    ----------
    Song, Xiang, Jegelka, Savarese. "Deep Metric Learning via Lifted Structured Feature
    Embedding", CVPR 2016.

    Examples
    --------
    >>> import numpy as np
    >>> from skmetric.metrics import recall_at_k
    >>> X = np.array([[0.0], [0.4], [0.6], [1.0]])
    >>> float(recall_at_k(X, [0, 1, 0, 1], k=2))
    0.5
    """
    return _single_metric("recall_at_k", **locals())


@_validated(max_k=COUNT_OR_NONE)
@_fill_doc
def r_precision(query, query_labels, reference=None, reference_labels=None, *,
                max_k=None, metric="euclidean", M=None, L=None, ref_includes_query=False,
                average="query", chunk_size=None, working_memory=None, backend="auto"):
    """R-precision: precision at R, R being the number of references of the query's class.

    ``RP = (1/R) * sum_{i<=R} rel_i``.

    {at_r}

    Examples
    --------
    >>> import numpy as np
    >>> from skmetric.metrics import r_precision
    >>> X = np.array([[0.0], [0.1], [0.3], [1.0], [1.2], [0.25]])
    >>> round(float(r_precision(X, [0, 0, 0, 1, 1, 1])), 4)
    0.4167
    """
    return _single_metric("r_precision", **locals())


@_validated(max_k=COUNT_OR_NONE)
@_fill_doc
def map_at_r(query, query_labels, reference=None, reference_labels=None, *, max_k=None,
             metric="euclidean", M=None, L=None, ref_includes_query=False, average="query",
             chunk_size=None, working_memory=None, backend="auto"):
    """Mean average precision at R (MAP@R).

    ``MAP@R = (1/R) * sum_{i<=R} P@i * rel_i``: the average precision of the first R
    neighbours, R being the number of references of the query's class. It rewards both
    retrieving the relevant references and ranking them first (Musgrave et al. 2020).

    {at_r}

    Examples
    --------
    >>> import numpy as np
    >>> from skmetric.metrics import map_at_r
    >>> X = np.array([[0.0], [0.1], [1.0], [1.2]])
    >>> float(map_at_r(X, [0, 0, 1, 1]))
    1.0
    """
    return _single_metric("map_at_r", **locals())


@_validated()
@_fill_doc
def mean_average_precision(query, query_labels, reference=None, reference_labels=None, *,
                           metric="euclidean", M=None, L=None, ref_includes_query=False,
                           average="query", working_memory=None, backend="auto"):
    """Mean average precision over the full ranking of the references.

    ``AP = (1/R) * sum_{i<=n} P@i * rel_i`` over all ``n`` references, R being the number
    of references of the query's class; equivalently the mean over relevant references of
    the precision at their rank. Each block of queries ranks every reference (the exact
    search of :func:`precision_at_k` with k = all, ties by the smaller index), so the cost
    is ``O(n_queries * n_references * log n_references)``; prefer :func:`map_at_r` on large
    sets.

    Parameters
    ----------
    {shared}

    Returns
    -------
    score : float, or ndarray of shape (n_queries,) when ``average=None``

    Examples
    --------
    Every reference of the query's class counts, however far down the ranking:

    >>> import numpy as np
    >>> from skmetric.metrics import mean_average_precision
    >>> X = np.array([[0.0], [0.4], [0.6], [1.0], [1.3]])
    >>> round(float(mean_average_precision(X, [0, 1, 0, 1, 0])), 4)
    0.4167
    """
    return _single_metric("mean_average_precision", **locals())


@_validated(k=[COUNT, "array-like"], max_k=COUNT_OR_NONE, mean_ap=["boolean"])
@_fill_doc
def retrieval_report(query, query_labels, reference=None, reference_labels=None, *,
                     k=(1, 5, 10), max_k=None, mean_ap=False, metric="euclidean", M=None,
                     L=None, ref_includes_query=False, average="query", chunk_size=None,
                     working_memory=None, backend="auto"):
    """Several retrieval metrics at once, from a single k-nearest-neighbour search.

    Parameters
    ----------
    {shared}
    k : int or sequence of int, default=(1, 5, 10)
        The k of ``precision_at_{k}`` and ``recall_at_{k}``; values above the number of
        available references are skipped.
    max_k : int, default=None
        Cap on R for ``r_precision`` and ``map_at_r``.
    mean_ap : bool, default=False
        Also compute ``mean_average_precision`` over the full ranking (costlier).

    Returns
    -------
    report : dict
        ``{"precision_at_1": ..., "recall_at_1": ..., ..., "r_precision": ...,
        "map_at_r": ...}`` (and ``"mean_average_precision"``), each a float (or a per-query
        array when ``average=None``), plus ``"n_queries"`` and ``"n_lone_queries"``.

    Examples
    --------
    >>> import numpy as np
    >>> from skmetric.metrics import retrieval_report
    >>> X = np.array([[0.0], [0.1], [1.0], [1.2]])
    >>> report = retrieval_report(X, [0, 0, 1, 1], k=1)
    >>> report["precision_at_1"], report["map_at_r"]
    (1.0, 1.0)
    """
    ks = [k] if isinstance(k, numbers.Integral) else list(k)
    if not ks:
        raise ValueError("k must be an int or a non-empty sequence of ints.")
    for kk in ks:
        check_k(kk, "k")
    setup = retrieval_setup(query, query_labels, reference, reference_labels,
                            ref_includes_query, max_k)
    ks = sorted({kk for kk in ks if kk <= setup.n_available})
    if not ks:
        raise ValueError(
            f"Every k is above the {setup.n_available} references available per query."
        )
    prep = prepare_reference(setup, metric, M, L)
    per_query = knn_metrics(setup, prep, ks, at_r=True, chunk_size=chunk_size,
                            working_memory=working_memory, backend=backend)
    if mean_ap:
        per_query["mean_average_precision"] = full_ranking_ap(setup, prep, working_memory)
    report = {name: _average(values, setup, average) for name, values in per_query.items()}
    report["n_queries"] = int(setup.q_codes.shape[0])
    report["n_lone_queries"] = int(np.sum(setup.lone))
    return report


def _single_metric(name, query, query_labels, reference, reference_labels, *, k=None,
                   max_k=None, metric, M, L, ref_includes_query, average, chunk_size=None,
                   working_memory, backend):
    """The one core of the five single-metric functions: ``name`` and their arguments."""
    if name in ("precision_at_k", "recall_at_k"):
        check_k(k, "k")
    setup = retrieval_setup(query, query_labels, reference, reference_labels,
                            ref_includes_query, max_k)
    _check_average(average)
    if k is not None and k > setup.n_available:
        raise ValueError(
            f"k={k} is more than the {setup.n_available} references available per query."
        )
    prep = prepare_reference(setup, metric, M, L)
    if name == "mean_average_precision":
        return _average(full_ranking_ap(setup, prep, working_memory), setup, average)
    values = knn_metrics(setup, prep, [k] if k is not None else [], at_r=k is None,
                         chunk_size=chunk_size, working_memory=working_memory,
                         backend=backend)
    key = {"precision_at_k": f"precision_at_{k}", "recall_at_k": f"recall_at_{k}"}.get(name,
                                                                                    name)
    return _average(values[key], setup, average)


def _average(per_query, setup, average):
    _check_average(average)
    scored = ~setup.lone
    if average is None:
        values = per_query.copy()
        values[~scored] = np.nan
        return values
    if not np.any(scored):
        warn_user("No query has a reference of its class (besides itself); the retrieval "
                  "metric is undefined and set to NaN.")
        return float("nan")
    if average == "query":
        return float(np.mean(per_query[scored]))
    codes = setup.q_codes[scored]
    sums = np.bincount(codes, weights=per_query[scored])
    counts = np.bincount(codes)
    present = counts > 0
    return float(np.mean(sums[present] / counts[present]))


def _check_average(average):
    if average not in _AVERAGES:
        raise ValueError(f"average must be one of {_AVERAGES}; got {average!r}.")
