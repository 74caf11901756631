"""Out-of-core application of fitted learners to Dask arrays (the ``dask`` extra).

A fitted learner maps each row on its own, and a k-nearest-neighbour search against an
in-memory reference set handles each query on its own: both apply to a ``dask.array``
chunk of rows at a time, so an input larger than memory streams through and only the
outputs (or their reductions) are kept. The helpers here build that graph; Dask runs it,
on threads, processes or a ``distributed`` cluster, and never materialises the whole input.

- :func:`transform`: the lazy embedding of a row-chunked array.
- :func:`kneighbors`: the ``n_neighbors`` nearest references of every row, lazily.
- :func:`retrieval_report`: :func:`skmetric.metrics.retrieval_report` computed chunk by
  chunk and averaged exactly as the in-memory function does.

Searching and cross-validating *over* learners on a cluster needs no helper: scikit-learn's
``GridSearchCV`` and ``cross_validate`` dispatch their fits through joblib, and
``joblib.parallel_backend("dask")`` sends them to the ``distributed`` cluster
(see ``docs/distributed.md``).

``import skmetric`` never imports Dask; ``import skmetric.dask`` needs
``pip install 'skmetric[dask]'``.
"""

import numbers
from types import SimpleNamespace

import numpy as np

from . import neighbors as _neighbors
from ._compute._params import COUNT
from ._optional import import_optional
from ._sklearn_compat import validate_parameter_constraints
from .metrics import _retrieval as _metrics

da = import_optional("dask.array", feature="skmetric.dask", extra="dask")
dask = import_optional("dask", feature="skmetric.dask", extra="dask")

__all__ = ["kneighbors", "retrieval_report", "transform"]


def transform(estimator, X):
    """Lazy ``estimator.transform`` of a Dask array, one chunk of rows at a time.

    Parameters
    ----------
    estimator : fitted estimator
        Any fitted transformer whose ``transform`` maps each row independently (every
        skmetric learner, a ``Pipeline`` of them, a deep embedder).
    X : dask.array.Array of shape (n_samples, n_features) or (n_samples, ...)
        Chunked along rows; chunks along the other axes are merged first. Images for a
        deep embedder (e.g. uint8 of shape (n_samples, channels, height, width)) are
        rows too.

    Returns
    -------
    X_new : dask.array.Array of shape (n_samples, n_components)
        Lazy: nothing runs until ``.compute()``, ``.store()`` or a reduction asks for it.
        Its chunks follow the row chunks of ``X``.

    Examples
    --------
    >>> import dask.array as da
    >>> from sklearn.datasets import load_iris
    >>> from skmetric import NCA
    >>> import skmetric.dask
    >>> X, y = load_iris(return_X_y=True)
    >>> nca = NCA(n_components=2, max_iter=20, random_state=0).fit(X, y)
    >>> Xd = da.from_array(X, chunks=(50, 4))
    >>> Z = skmetric.dask.transform(nca, Xd)
    >>> Z.shape, Z.chunks[0]
    ((150, 2), (50, 50, 50))
    >>> bool(abs(Z.compute() - nca.transform(X)).max() < 1e-12)
    True
    """
    # (N-D rows: an image embedder's input was refused as "must be 2-D")
    X = _check_rows(X, "X", min_ndim=2)
    probe = np.asarray(estimator.transform(np.zeros((1, *X.shape[1:]), dtype=X.dtype)))
    if probe.ndim != 2 or probe.shape[0] != 1:
        raise ValueError(
            f"estimator.transform must return one row per input row; on a 1-row probe it "
            f"returned shape {probe.shape}."
        )
    return X.map_blocks(_transform_block, estimator, dtype=probe.dtype,
                        chunks=(X.chunks[0], (probe.shape[1],)),
                        drop_axis=list(range(2, X.ndim)),
                        meta=np.empty((0, 0), dtype=probe.dtype))


def _transform_block(block, estimator):
    return np.asarray(estimator.transform(block))


def kneighbors(X, reference, n_neighbors=5, **kwargs):
    """Lazy nearest references of every row of a Dask array.

    Each chunk of queries is searched against the whole in-memory ``reference`` with
    :func:`skmetric.neighbors.kneighbors` (exact, ties broken by the smaller index), so the
    results equal the in-memory search row for row.

    Parameters
    ----------
    X : dask.array.Array of shape (n_queries, n_features)
        Queries, chunked along rows.
    reference : array of shape (n_references, n_features)
        The reference set, in memory (NumPy); every chunk of queries is searched against
        all of it.
    n_neighbors : int, default=5
        Number of neighbours per query.
    **kwargs
        ``metric``, ``M``, ``L``, ``chunk_size``, ``working_memory``, ``backend``,
        ``index``, ``index_params``, ``n_threads`` of
        :func:`skmetric.neighbors.kneighbors`.

    Returns
    -------
    distances : dask.array.Array of shape (n_queries, n_neighbors)
    indices : dask.array.Array of shape (n_queries, n_neighbors)
        Lazy, chunked like the rows of ``X``; compute both with one
        ``dask.compute(distances, indices)`` so that each chunk is searched once.

    Examples
    --------
    >>> import dask
    >>> import dask.array as da
    >>> import numpy as np
    >>> import skmetric.dask
    >>> Q = da.from_array(np.array([[0.0], [2.9], [6.0]]), chunks=(2, 1))
    >>> ref = np.array([[0.0], [1.0], [3.0], [7.0]])
    >>> dist, ind = dask.compute(*skmetric.dask.kneighbors(Q, ref, n_neighbors=2))
    >>> ind
    array([[0, 1],
           [2, 1],
           [3, 2]])
    """
    X = _check_rows(X, "X")
    reference = _in_memory_reference(reference)
    for name in ("exclude_self", "return_distance"):
        if name in kwargs:
            raise TypeError(
                f"skmetric.dask.kneighbors does not take {name}: it searches every query "
                f"against a separate reference set and returns distances and indices."
            )
    if reference.ndim != 2 or reference.shape[1] != X.shape[1]:
        raise ValueError(
            f"reference must be 2-D with the {X.shape[1]} features of X; got shape "
            f"{reference.shape}."
        )
    # The count rule of the in-memory kneighbors (an int >= 1, not a bool).
    validate_parameter_constraints({"n_neighbors": [COUNT]}, {"n_neighbors": n_neighbors},
                                   caller_name="skmetric.dask.kneighbors")
    k = int(n_neighbors)
    if k > reference.shape[0]:
        raise ValueError(
            f"n_neighbors={k} exceeds the {reference.shape[0]} references; lower "
            f"n_neighbors or add references."
        )
    # The engine's result dtype: integers in float64, half precision in float32.
    dist_dtype = np.result_type(X.dtype, reference.dtype)
    if dist_dtype.kind != "f":
        dist_dtype = np.dtype(np.float64)
    elif dist_dtype.itemsize < 4:
        dist_dtype = np.dtype(np.float32)
    search = dask.delayed(_kneighbors_block, pure=True)
    ref = dask.delayed(reference, pure=True)  # one copy in the graph, shared by every chunk
    dists, inds = [], []
    for block, rows in zip(X.to_delayed().ravel(), X.chunks[0], strict=True):
        result = search(block, ref, k, kwargs)
        dists.append(da.from_delayed(result[0], (rows, k), dtype=dist_dtype,
                                     meta=np.empty((0, 0), dist_dtype)))
        inds.append(da.from_delayed(result[1], (rows, k), dtype=np.int64,
                                    meta=np.empty((0, 0), np.int64)))
    return da.concatenate(dists, axis=0), da.concatenate(inds, axis=0)


def _kneighbors_block(block, reference, k, kwargs):
    dist, ind = _neighbors.kneighbors(block, reference, n_neighbors=k, **kwargs)
    return np.asarray(dist), np.asarray(ind, dtype=np.int64)


def retrieval_report(query, query_labels, reference, reference_labels, *, k=(1, 5, 10),
                     max_k=None, metric="euclidean", M=None, L=None, average="query",
                     chunk_size=None, working_memory=None, backend="auto"):
    """:func:`skmetric.metrics.retrieval_report` of a Dask array of queries, chunk by chunk.

    Every chunk of queries is ranked against the whole in-memory reference set; the
    per-query values are gathered (one float per query and metric) and averaged as the
    in-memory function averages them, so the report equals
    ``skmetric.metrics.retrieval_report(query.compute(), ...)``.

    Parameters
    ----------
    query : dask.array.Array of shape (n_queries, n_features)
        Query embeddings, chunked along rows (e.g. :func:`transform`'s output).
    query_labels : array-like or dask.array.Array of shape (n_queries,)
        Class of each query.
    reference : array of shape (n_references, n_features)
        Reference embeddings, in memory (NumPy).
    reference_labels : array-like of shape (n_references,)
        Class of each reference.
    k, max_k, metric, M, L, average, chunk_size, working_memory, backend :
        As in :func:`skmetric.metrics.retrieval_report`. ``mean_ap`` and
        ``ref_includes_query`` are not offered: the queries are a separate set.

    Returns
    -------
    report : dict
        The keys and values of :func:`skmetric.metrics.retrieval_report`.

    Examples
    --------
    >>> import dask.array as da
    >>> import numpy as np
    >>> import skmetric.dask
    >>> ref = np.array([[0.0], [0.2], [1.0], [1.2]])
    >>> Q = da.from_array(np.array([[0.1], [1.1], [0.9]]), chunks=(2, 1))
    >>> report = skmetric.dask.retrieval_report(Q, [0, 1, 0], ref, [0, 0, 1, 1], k=1)
    >>> report["precision_at_1"], report["n_queries"]
    (0.6666666666666666, 3)
    """
    query = _check_rows(query, "query")
    reference = _in_memory_reference(reference)
    reference_labels = np.asarray(reference_labels)
    _metrics._check_average(average)
    labels = _label_blocks(query_labels, query)
    options = {"k": k, "max_k": max_k, "metric": metric, "M": M, "L": L, "average": None,
               "chunk_size": chunk_size, "working_memory": working_memory,
               "backend": backend}
    report_of = dask.delayed(_metrics.retrieval_report, pure=True)
    ref = dask.delayed(reference, pure=True)
    # Chunks without rows (as filtering leaves them) hold no query to rank: skipped.
    blocks = [(block, block_labels) for block, block_labels, rows
              in zip(query.to_delayed().ravel(), labels, query.chunks[0], strict=True)
              if rows > 0]
    if not blocks:
        raise ValueError(f"query is empty (shape {query.shape}); at least 1 query is "
                         "required.")
    parts = [report_of(block, block_labels, ref, reference_labels, **options)
             for block, block_labels in blocks]
    parts, label_blocks = dask.compute(parts, [block_labels for _, block_labels in blocks])
    codes = np.unique(np.concatenate(label_blocks), return_inverse=True)[1]
    return _merge_reports(parts, codes, average)


def _label_blocks(query_labels, query):
    """The query labels as one delayed 1-D block per row chunk of ``query``."""
    if not isinstance(query_labels, da.Array):
        query_labels = np.asarray(query_labels)
    if query_labels.ndim != 1 or query_labels.shape[0] != query.shape[0]:
        raise ValueError(
            f"query_labels must be 1-D with one label per query ({query.shape[0]}); got "
            f"shape {query_labels.shape}."
        )
    # The row chunks as a one-axis chunk spec: a bare tuple of sizes would be read as
    # one size per axis (its first entry the size of every chunk), wrong for uneven chunks.
    rows = (query.chunks[0],)
    if isinstance(query_labels, np.ndarray):
        query_labels = da.from_array(query_labels, chunks=rows)
    return list(query_labels.rechunk(rows).to_delayed().ravel())


def _merge_reports(parts, codes, average):
    """One report from the per-query reports of the chunks (NaN marks lone queries)."""
    names = [name for name in parts[0] if name not in ("n_queries", "n_lone_queries")]
    report = {}
    for name in names:
        values = np.concatenate([part[name] for part in parts])
        # NaN marks the lone queries, as in the in-memory setup; average them alike.
        setup = SimpleNamespace(lone=np.isnan(values), q_codes=codes)
        report[name] = _metrics._average(values, setup, average)
    report["n_queries"] = sum(part["n_queries"] for part in parts)
    report["n_lone_queries"] = sum(part["n_lone_queries"] for part in parts)
    return report


def _check_rows(X, name, min_ndim=None):
    """X as a Dask array chunked along rows only: 2-D, or at least ``min_ndim``-D."""
    if not isinstance(X, da.Array):
        raise TypeError(
            f"{name} must be a dask.array.Array; got {type(X).__name__}. For in-memory "
            f"arrays use the estimator or skmetric.neighbors / skmetric.metrics directly, "
            f"or wrap it with dask.array.from_array(X, chunks=(rows, -1))."
        )
    if X.ndim != 2 and (min_ndim is None or X.ndim < min_ndim):
        raise ValueError(f"{name} must be 2-D (n_samples, n_features); got {X.ndim}-D.")
    if any(np.isnan(c) for c in X.chunks[0]):
        raise ValueError(
            f"{name} has unknown chunk sizes; call {name}.compute_chunk_sizes() first."
        )
    if any(len(chunks) > 1 for chunks in X.chunks[1:]):
        X = X.rechunk({axis: -1 for axis in range(1, X.ndim)})
    return X


def _in_memory_reference(reference):
    if isinstance(reference, da.Array):
        raise TypeError(
            "reference must be in memory (a NumPy array): every chunk of queries is "
            "searched against all of it. Call reference.compute() first if it fits."
        )
    if not isinstance(reference, numbers.Number) and not hasattr(reference, "shape"):
        reference = np.asarray(reference)
    return reference
