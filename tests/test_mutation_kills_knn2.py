"""Tests written to kill the mutants of the exact k-NN search (skmetric/_compute/_knn.py:
``kneighbors``, ``_neighbor_distances``), of the public ``skmetric.neighbors.kneighbors`` and
of the retrieval metrics' setup and averages that survived the earlier tests (issue #22;
tests/README.md, the "Sixth session" subsections).

Every reference is independent of the code under test: float64 ``cdist`` and a stable sort
(ties by the smaller index), scikit-learn's ``NearestNeighbors``, pytorch-metric-learning's
``AccuracyCalculator``, or sizes and values computed by hand from the documented rules.
"""

from functools import partial

import numpy as np
import pytest
from _namespaces import numpy_of, to_namespace
from scipy.spatial.distance import cdist

from skmetric._compute import _knn
from skmetric._compute._engine import prepare

MIB = 2**20


class _Stop(Exception):
    """Raised by a spy to end a search once the call it records has been made."""


def _brute(D, k, exclude_self=False):
    """The k smallest entries of each row of D (float64), ties by the smaller column."""
    D = np.array(D, dtype=np.float64)
    if exclude_self:
        D[np.arange(len(D)), np.arange(len(D))] = np.inf
    order = np.argsort(D, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(D, order, axis=1), order


def _block_plan(monkeypatch, X, Y, **kwargs):
    """(rows per block, threads) that the search hands to ``map_blocks``, and whether the
    NumPy ranking operand was made before the threads start; the search stops there."""
    seen = {}

    def spy(work, start, stop, rows, n_threads):
        seen.update(rows=rows, n_threads=n_threads, rhs=getattr(prep, "_rhs", None))
        raise _Stop

    monkeypatch.setattr(_knn, "map_blocks", spy)
    prep = prepare(X, Y, "euclidean")
    with pytest.raises(_Stop):
        prep.kneighbors(3, algorithm="bound", **kwargs)
    return seen


def test_query_blocks_follow_the_documented_memory_and_threads(monkeypatch):
    """Blocks of 64 MiB of ranking values by default (float64: 64 MiB // (8 n_y) rows),
    at most ceil(rows / n_threads) and at least 128 rows each so every thread gets a block,
    ``chunk_size`` / ``working_memory`` taken as given, one thread off NumPy; the NumPy
    ranking operand is made before the threads share it."""
    Y = np.zeros((20000, 1))
    cap = 64 * MIB // (20000 * 8)  # 419 rows of 20,000 float64 values
    cases = [  # (n_queries, start, stop, options, rows, threads)
        (1000, 0, 1000, {"n_threads": 2}, cap, 2),  # the memory cap binds
        (1000, 200, 1000, {"n_threads": 3}, 267, 3),  # ceil(800 / 3): rows of start:stop
        (300, 0, 300, {"n_threads": 3}, 128, 3),  # never below 128 rows
        (300, 0, 300, {"n_threads": 3, "chunk_size": 200}, 200, 3),
        (300, 0, 300, {"n_threads": 3, "working_memory": 200 * 20000 * 8 / MIB}, 200, 3),
        (100, 0, 100, {"n_threads": 3}, 100, 3),
    ]
    for n, start, stop, options, rows, threads in cases:
        seen = _block_plan(monkeypatch, np.zeros((n, 1)), Y, start=start, stop=stop,
                           **options)
        assert (seen["rows"], seen["n_threads"]) == (rows, threads), (n, start, options)
        assert seen["rhs"] is not None
    # Off NumPy: one thread, blocks as the memory allows (no per-thread split).
    torch = pytest.importorskip("torch")
    seen = _block_plan(monkeypatch, torch.zeros((300, 1), dtype=torch.float64),
                       torch.zeros((20000, 1), dtype=torch.float64), n_threads=3)
    assert (seen["rows"], seen["n_threads"]) == (300, 1)
    seen = _block_plan(monkeypatch, torch.zeros((300, 1), dtype=torch.float64),
                       torch.zeros((20000, 1), dtype=torch.float64))
    assert seen["n_threads"] == 1


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_numpy_blocks_reuse_one_ranking_buffer_of_the_data_dtype(monkeypatch, dtype):
    """On NumPy every block's ranking is written into one buffer per thread, of the data's
    dtype (a float64 buffer for float32 data would double the memory); a callable metric's
    blocks are its own values. The neighbours equal float64 brute force either way."""
    rng = np.random.RandomState(3)
    X = rng.randint(0, 4, size=(50, 3)).astype(dtype)
    seen = []
    ranking_block = _knn._ranking_block

    def spy(prep, s, e, out=None):
        seen.append(out)
        return ranking_block(prep, s, e, out=out)

    monkeypatch.setattr(_knn, "_ranking_block", spy)
    got = prepare(X, None, "euclidean").kneighbors(4, exclude_self=True, chunk_size=10,
                                                   n_threads=1)
    ref = _brute(cdist(X.astype(np.float64), X.astype(np.float64)), 4, exclude_self=True)
    np.testing.assert_array_equal(got[1], ref[1])
    np.testing.assert_allclose(got[0], ref[0], rtol=1e-6)
    assert len(seen) == 5 and all(out is not None for out in seen)
    assert all(out.dtype == dtype and out.shape == (10, 50) for out in seen)
    assert all(out.base is seen[0].base and out.base is not None for out in seen)

    seen.clear()
    got = prepare(X, None, lambda A, B: cdist(A, B, "cityblock")).kneighbors(
        4, exclude_self=True, chunk_size=10, n_threads=1)
    ref = _brute(cdist(X.astype(np.float64), X.astype(np.float64), "cityblock"), 4,
                 exclude_self=True)
    np.testing.assert_array_equal(got[1], ref[1])
    assert len(seen) == 5 and all(out is None for out in seen)


@pytest.mark.parametrize("namespace", ["array_api_strict", "torch"])
@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_gather_cap_below_one_row_gathers_one_row_at_a_time(monkeypatch, namespace, metric):
    """Off NumPy the candidates' coordinates are gathered max(1, gather_bytes // (k d
    itemsize)) rows at a time, whatever the cap (even below one row's k·d values): the
    slices have that many rows (a short last one) and the distances equal cdist's."""
    rng = np.random.RandomState(4)
    X, Y = rng.randn(10, 4), rng.randn(30, 4)
    ind = np.stack([rng.permutation(30)[:9] for _ in range(10)])
    ref = np.take_along_axis(cdist(X, Y, metric), ind, axis=1)
    prep = prepare(to_namespace(X, namespace), to_namespace(Y, namespace), metric)
    row = 9 * 4 * 8  # one row's gathered float64 coordinates, in bytes
    sizes = []
    gathered = _knn._gathered_distances

    def spy(prep, Xb, ind):
        sizes.append(ind.shape[0])
        return gathered(prep, Xb, ind)

    monkeypatch.setattr(_knn, "_gathered_distances", spy)
    for gather_bytes, rows in ((1, 1), (9, 1), (row - 1, 1), (3 * row + 5, 3), (10 * row, 10)):
        sizes.clear()
        got = _knn._neighbor_distances(prep, prep.X, to_namespace(ind, namespace), None,
                                       gather_bytes=gather_bytes)
        np.testing.assert_allclose(numpy_of(got), ref, rtol=1e-12, atol=1e-14)
        assert sizes == [rows] * (10 // rows) + [10 % rows] * (10 % rows > 0), gather_bytes


# --------------------------------------------------------------- the public kneighbors


def _sklearn_knn(X, Y, k, metric="euclidean", **params):
    """scikit-learn's brute-force neighbours of the rows of X among Y (Y None: X itself,
    each query left out of its own neighbours), with their float64 ``cdist`` distances
    (scikit-learn's own carry the expansion's round-off, e.g. 4e-8 for a duplicate)."""
    from sklearn.neighbors import NearestNeighbors

    nn = NearestNeighbors(n_neighbors=k, metric=metric, algorithm="brute", **params)
    nn.fit(X if Y is None else Y)
    ind = nn.kneighbors(None if Y is None else X, return_distance=False)
    D = cdist(X, X if Y is None else Y, metric)
    return np.take_along_axis(D, ind, axis=1), ind


def _assert_same_neighbours(got, ref, rtol=1e-10):
    np.testing.assert_array_equal(numpy_of(got[1]), ref[1])
    np.testing.assert_allclose(numpy_of(got[0]), ref[0], rtol=rtol, atol=1e-12)


def test_public_kneighbors_equals_scikit_learn():
    """Every option of ``skmetric.neighbors.kneighbors`` against scikit-learn's brute force
    (continuous data: no ties): references given or the queries themselves, self excluded
    by default only without Y, Mahalanobis through M or L, cosine, k equal to every
    available reference, the default k of 5, indices only."""
    from skmetric.neighbors import kneighbors

    rng = np.random.RandomState(5)
    X, Y = rng.randn(40, 3), rng.randn(25, 3)
    L = rng.randn(2, 3)
    _assert_same_neighbours(kneighbors(X, Y, 4), _sklearn_knn(X, Y, 4))
    _assert_same_neighbours(kneighbors(X, n_neighbors=4), _sklearn_knn(X, None, 4))
    with_self = kneighbors(X, n_neighbors=4, exclude_self=False)
    _assert_same_neighbours(with_self, _sklearn_knn(X, X, 4))
    np.testing.assert_array_equal(with_self[1][:, 0], np.arange(40))
    _assert_same_neighbours(kneighbors(X, X.copy(), 4, exclude_self=True),
                            _sklearn_knn(X, None, 4))
    _assert_same_neighbours(kneighbors(X, Y, 3, metric="mahalanobis", M=L.T @ L),
                            _sklearn_knn(X @ L.T, Y @ L.T, 3))
    _assert_same_neighbours(kneighbors(X, Y, 3, metric="mahalanobis", L=L),
                            _sklearn_knn(X @ L.T, Y @ L.T, 3))
    _assert_same_neighbours(kneighbors(X, Y, 3, metric="cosine"),
                            _sklearn_knn(X, Y, 3, metric="cosine"))
    _assert_same_neighbours(kneighbors(X, Y, 25), _sklearn_knn(X, Y, 25))
    _assert_same_neighbours(kneighbors(X, n_neighbors=39), _sklearn_knn(X, None, 39))
    _assert_same_neighbours(kneighbors(X, Y), _sklearn_knn(X, Y, 5))
    ind = kneighbors(X, Y, 4, return_distance=False)
    np.testing.assert_array_equal(ind, _sklearn_knn(X, Y, 4)[1])


def test_public_kneighbors_error_messages_in_full():
    """Too many neighbours (with and without the query excluded) and FAISS options without
    the FAISS backend are refused with messages that say what to do."""
    import re

    from skmetric.neighbors import kneighbors

    X = np.arange(10.0).reshape(5, 2)
    with pytest.raises(ValueError, match="^" + re.escape(
            "n_neighbors=5 exceeds the 4 references available (the query itself excluded); "
            "lower n_neighbors.") + "$"):
        kneighbors(X, n_neighbors=5)
    with pytest.raises(ValueError, match="^" + re.escape(
            "n_neighbors=4 exceeds the 3 references available; lower n_neighbors.") + "$"):
        kneighbors(X, X[:3], 4)
    faiss_only = "^" + re.escape(
        "index and index_params are FAISS options; pass backend='faiss'.") + "$"
    for options in ({"index": "ivf"}, {"index_params": {"nprobe": 2}},
                    {"index": "hnsw", "backend": "brute"}):
        with pytest.raises(ValueError, match=faiss_only):
            kneighbors(X, n_neighbors=2, **options)


def test_public_kneighbors_hands_every_option_to_the_engine(monkeypatch):
    """The blocks, threads and FAISS options reach the prepared search as given ('auto'
    and 'brute' are its exact search), and the results equal scikit-learn's."""
    from skmetric._compute._engine import Prepared
    from skmetric.neighbors import kneighbors

    pytest.importorskip("faiss")
    calls = []
    search = Prepared.kneighbors

    def spy(self, k, **kwargs):
        calls.append(dict(kwargs, k=k))
        return search(self, k, **kwargs)

    monkeypatch.setattr(Prepared, "kneighbors", spy)
    rng = np.random.RandomState(6)
    X, Y = rng.randn(30, 3), rng.randn(20, 3)
    ref = _sklearn_knn(X, Y, 3)
    base = {"k": 3, "exclude_self": False, "chunk_size": None, "working_memory": None,
            "n_threads": None, "backend": "brute", "index": "flat", "index_params": None}
    cases = [({}, {}), ({"backend": "brute", "chunk_size": 7, "n_threads": 2},
                        {"chunk_size": 7, "n_threads": 2}),
             ({"working_memory": 0.5}, {"working_memory": 0.5}),
             ({"backend": "faiss"}, {"backend": "faiss"}),
             ({"backend": "faiss", "index": "hnsw", "index_params": {"ef_search": 64}},
              {"backend": "faiss", "index": "hnsw", "index_params": {"ef_search": 64}})]
    for options, reached in cases:
        calls.clear()
        got = kneighbors(X, Y, 3, **options)
        assert calls == [dict(base, **reached)], options
        _assert_same_neighbours(got, ref, rtol=1e-10 if "backend" not in reached else 1e-5)


# ------------------------------------------------- retrieval metrics: setup and averages


def _warning_points_at_this_file(call):
    """The "no query has a reference of its class" warning of ``call``, checked in full and
    attributed to the line of this file that called the metric (not to skmetric's code)."""
    import os
    import warnings
    from pathlib import Path

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = call()
    assert caught and all(w.category is UserWarning for w in caught)
    for w in caught:
        assert str(w.message) == (
            "No query has a reference of its class (besides itself); the retrieval metric "
            "is undefined and set to NaN.")
        assert "skmetric" not in Path(w.filename).parts, w.filename
        if "MUTANT_UNDER_TEST" not in os.environ:  # mutmut's trampoline adds stack frames
            assert w.filename == __file__
    return value


def test_undefined_retrieval_metric_warns_at_the_callers_line():
    """Every query alone in its class: each metric (single or in the report) is NaN, with a
    warning that points at the user's call."""
    from skmetric import metrics

    X, y = np.arange(8.0).reshape(4, 2), np.arange(4)
    for name in ("precision_at_k", "recall_at_k", "r_precision", "map_at_r",
                 "mean_average_precision"):
        assert np.isnan(_warning_points_at_this_file(partial(getattr(metrics, name), X, y)))
    report = _warning_points_at_this_file(partial(metrics.retrieval_report, X, y, k=1))
    assert report.pop("n_queries") == report.pop("n_lone_queries") == 4
    assert len(report) == 4 and all(np.isnan(v) for v in report.values())


def test_retrieval_input_messages_in_full():
    """Each check of the retrieval setup, with scikit-learn's parameter validation skipped
    so that skmetric's own checks answer, says in full what was wrong and what to do."""
    import re

    import sklearn

    from skmetric import metrics

    X, y = np.arange(10.0).reshape(5, 2), np.array([0, 0, 1, 1, 0])
    cases = [
        (partial(metrics.r_precision, X, y, max_k=0), ValueError,
         "max_k must be an integer >= 1; got 0."),
        (partial(metrics.precision_at_k, X, y, ref_includes_query="yes"), TypeError,
         "ref_includes_query must be a bool; got 'yes'."),
        (partial(metrics.precision_at_k, X, y, reference_labels=y), ValueError,
         "reference_labels was given without reference."),
        (partial(metrics.precision_at_k, X, y, reference=X), ValueError,
         "reference_labels is required with reference."),
        (partial(metrics.precision_at_k, X, y[:4]), ValueError,
         "query_labels must be 1-D with one label per row of query (5); got shape (4,)."),
        (partial(metrics.precision_at_k, X, y, X[:, :1], y), ValueError,
         "query has 2 features but reference has 1; both must have the same number of "
         "features."),
        (partial(metrics.precision_at_k, X, y, X, y[:3]), ValueError,
         "reference_labels must be 1-D with one label per row of reference (5); got shape "
         "(3,)."),
        (partial(metrics.precision_at_k, X, y, X[:3], y[:3], ref_includes_query=True),
         ValueError, "With ref_includes_query=True the first len(query) references must be "
         "the queries, with the same labels; check the order of reference and its labels."),
        (partial(metrics.precision_at_k, X[:1], y[:1]), ValueError,
         "Retrieval needs at least 2 samples (1 reference besides the query)."),
        (partial(metrics.precision_at_k, X, y, average="mean"), ValueError,
         "average must be one of ('query', 'class', None); got 'mean'."),
        (partial(metrics.retrieval_report, X, y, k=1, average="mean"), ValueError,
         "average must be one of ('query', 'class', None); got 'mean'."),
    ]
    with sklearn.config_context(skip_parameter_validation=True):
        for call, error, message in cases:
            with pytest.raises(error, match="^" + re.escape(message) + "$"):
                call()


def _brute_precision_at_k(X, y, k):
    """Per query, the share of its k nearest others (float64 cdist, ties by the smaller
    index) that share its label."""
    _, ind = _brute(cdist(X, X), k, exclude_self=True)
    return (y[ind] == y[:, None]).mean(axis=1)


def test_query_blocks_of_the_retrieval_metrics_follow_working_memory(monkeypatch):
    """The queries are searched in blocks of max(1, working_memory // (64 bytes x the
    neighbours per query)) rows (scikit-learn's working_memory when None), and every
    block size gives the brute-force values."""
    import sklearn

    from skmetric import metrics
    from skmetric._compute._engine import Prepared

    rng = np.random.RandomState(7)
    X, y = rng.randn(20, 3), rng.randint(0, 3, 20)
    ranges = []
    search = Prepared.kneighbors

    def spy(self, k, **kwargs):
        ranges.append((kwargs["start"], kwargs["stop"]))
        return search(self, k, **kwargs)

    monkeypatch.setattr(Prepared, "kneighbors", spy)

    def blocks(size):
        return [(s, min(s + size, 20)) for s in range(0, 20, size)]

    for k, size in ((3, 7), (3, 1), (1, 5), (1, 20), (3, 20)):
        mib = 64 * k * size / MIB
        for options, context in (({"working_memory": mib}, {}),
                                 ({}, {"working_memory": mib})):
            ranges.clear()
            with sklearn.config_context(**context):
                got = metrics.precision_at_k(X, y, k=k, average=None, **options)
            np.testing.assert_allclose(got, _brute_precision_at_k(X, y, k), rtol=1e-12)
            assert ranges == blocks(size), (k, size, options)
    ranges.clear()
    metrics.precision_at_k(X, y, k=2, working_memory=64 * 2 * 6.5 / MIB)  # 6.5 rows: 6
    assert ranges == blocks(6)


def test_class_average_counts_a_class_with_one_scored_query():
    """average='class' is the mean over classes of each class's mean per-query value,
    every class with at least one scored query counting, also one with exactly one (here
    class 2: one query, two references). Values by hand from a float64 brute-force
    ranking."""
    from skmetric import metrics

    rng = np.random.RandomState(8)
    Q, R = rng.randn(7, 2), rng.randn(12, 2)
    q_labels = np.array([0, 0, 0, 1, 1, 1, 2])
    r_labels = np.array([0, 1, 2, 0, 1, 2, 0, 1, 0, 1, 0, 1])
    _, ind = _brute(cdist(Q, R), 3)
    per_query = (r_labels[ind] == q_labels[:, None]).mean(axis=1)
    by_class = [per_query[q_labels == c].mean() for c in (0, 1, 2)]
    got = metrics.precision_at_k(Q, q_labels, R, r_labels, k=3, average="class")
    assert got == pytest.approx(np.mean(by_class), rel=1e-12)
    assert got != pytest.approx(np.mean(by_class[:2]), rel=1e-12)
    got = metrics.precision_at_k(Q, q_labels, R, r_labels, k=3, average=None)
    np.testing.assert_allclose(got, per_query, rtol=1e-12)


def test_reference_made_of_exactly_the_queries_with_ref_includes_query():
    """ref_includes_query=True with a reference of exactly the queries (a copy, as many
    rows) is accepted and equals searching the queries among themselves; values by hand
    from a float64 brute-force ranking."""
    from skmetric import metrics

    rng = np.random.RandomState(9)
    X, y = rng.randn(9, 2), np.array([0, 1, 0, 1, 0, 1, 2, 2, 0])
    _, ind = _brute(cdist(X, X), 2, exclude_self=True)
    ref = (y[ind] == y[:, None]).mean(axis=1)
    got = metrics.precision_at_k(X, y, X.copy(), y.copy(), k=2, ref_includes_query=True,
                                 average=None)
    np.testing.assert_allclose(got, ref, rtol=1e-12)
