"""Tests written to kill the mutants of the distance engine's set-up and dispatch
(skmetric/_compute/_engine.py: ``prepare``, ``Prepared.__init__``, ``_map_inputs``,
``_centre_and_norms``, ``kneighbors``, ``round_off``, ``to_units``) that survived the
engine's own tests (issue #22; tests/README.md, "Sixth session (2026-12-01): _engine.py").

References are independent of the engine: scipy's ``cdist`` in float64 (of the float32
data where the engine runs in float32), a stable NumPy sort (ties by the smaller index),
scikit-learn's messages where the engine shares them, and hand-counted cases.
"""

import array_api_strict
import numpy as np
import pytest
from _namespaces import numpy_of, to_namespace
from numpy.testing import assert_allclose, assert_array_equal
from scipy.spatial.distance import cdist
from test_mutation_kills_core import CPU_NAMESPACES, _raises  # _raises: the exact text
from test_mutation_kills_engine import _brute_knn  # float64 cdist, ties by index

from skmetric._compute import _knn, _knn_topk
from skmetric._compute._engine import Prepared, prepare

# ---------------------------------------------------------------------------- prepare


def test_prepare_defaults_to_euclidean_and_names_its_inputs_in_messages():
    """``prepare(X, Y)`` is the Euclidean metric; the feature-count error names the
    inputs as the caller asked (the retrieval metrics call them query and reference)."""
    rng = np.random.RandomState(0)
    X, Y = rng.standard_normal((5, 3)), rng.standard_normal((4, 3))
    assert_allclose(prepare(X, Y).pairwise(), cdist(X, Y), rtol=1e-12)
    _raises(ValueError, "query has 3 features but reference has 2; both must have the "
            "same number of features.",
            lambda: prepare(X, Y[:, :2], names=("query", "reference")))
    _raises(ValueError, "X has 3 features but Y has 2; both must have the same number of "
            "features.", lambda: prepare(X, Y[:, :2]))


# ------------------------------------------------------------- Prepared.kneighbors


@pytest.mark.parametrize("namespace", CPU_NAMESPACES)
@pytest.mark.parametrize("algorithm", ["bound", "topk", "auto"])
def test_kneighbors_of_a_range_of_query_rows(namespace, algorithm):
    """``start:stop`` selects the query rows searched (a block of the retrieval metrics'
    walk): they equal the same rows of the brute-force search, with and without the
    queries' own rows excluded."""
    rng = np.random.RandomState(1)
    X = rng.randint(0, 4, size=(12, 2)).astype(float)  # ties and duplicates
    Y = rng.randint(0, 4, size=(9, 2)).astype(float)
    for prep, ref_y, exclude in ((prepare(to_namespace(X, namespace),
                                          to_namespace(Y, namespace)), Y, False),
                                 (prepare(to_namespace(X, namespace)), X, True)):
        d_ref, i_ref = _brute_knn(X, ref_y, 3, exclude_self=exclude)
        dist, ind = prep.kneighbors(3, start=2, stop=7, exclude_self=exclude,
                                    algorithm=algorithm)
        assert_array_equal(numpy_of(ind), i_ref[2:7])
        assert_allclose(numpy_of(dist), d_ref[2:7], rtol=1e-12)
        dist, ind = prep.kneighbors(3, start=4, exclude_self=exclude, algorithm=algorithm)
        assert_array_equal(numpy_of(ind), i_ref[4:])


def test_faiss_kneighbors_of_a_range_of_query_rows_with_the_default_flat_index():
    """The FAISS search with no index named uses the exact flat index (as the retrieval
    metrics call it) and searches only the rows ``start:stop``; its options reach it."""
    pytest.importorskip("faiss")
    rng = np.random.RandomState(2)
    X, Y = rng.standard_normal((12, 4)), rng.standard_normal((30, 4))
    d_ref, i_ref = _brute_knn(X, Y, 3)
    prep = prepare(X, Y)
    dist, ind = prep.kneighbors(3, start=2, stop=7, backend="faiss")
    assert_array_equal(ind, i_ref[2:7])
    assert_allclose(dist, d_ref[2:7], rtol=1e-5)  # FAISS computes in float32
    dist, ind = prepare(X).kneighbors(3, start=5, exclude_self=True, backend="faiss")
    assert_array_equal(ind, _brute_knn(X, X, 3, exclude_self=True)[1][5:])
    _raises(ValueError, "Unknown index_params ['nlist'] for index='flat'; allowed: none.",
            lambda: prep.kneighbors(3, backend="faiss", index_params={"nlist": 2}))
    _raises(ValueError, "backend='faiss' supports the named metrics only, not a callable.",
            lambda: prepare(X, Y, lambda A, B: cdist(A, B)).kneighbors(3, backend="faiss"))


@pytest.mark.parametrize("algorithm, searched", [("bound", "bound"), ("topk", "topk"),
                                                 ("auto", "bound")])
def test_algorithm_runs_the_search_it_names(monkeypatch, algorithm, searched):
    """'bound' runs :mod:`._knn`, 'topk' :mod:`._knn_topk`, 'auto' on the CPU the bound
    search; each gives the brute-force neighbours."""
    calls = []
    for name, module in (("bound", _knn), ("topk", _knn_topk)):
        def spy(*args, _search=module.kneighbors, _name=name, **kwargs):
            calls.append(_name)
            return _search(*args, **kwargs)
        monkeypatch.setattr(module, "kneighbors", spy)
    rng = np.random.RandomState(3)
    X, Y = rng.standard_normal((10, 3)), rng.standard_normal((8, 3))
    dist, ind = prepare(X, Y).kneighbors(2, algorithm=algorithm)
    assert calls == [searched]
    assert_array_equal(ind, _brute_knn(X, Y, 2)[1])


@pytest.mark.parametrize("algorithm", ["bound", "topk"])
def test_block_options_reach_either_search(algorithm):
    """``chunk_size`` and ``working_memory`` (and, for the bound search on NumPy,
    ``n_threads``) reach the search: out-of-range values are refused there."""
    prep = prepare(np.arange(12.0).reshape(6, 2))
    _raises(ValueError, "chunk_size must be a positive int or None; got 0.",
            lambda: prep.kneighbors(2, chunk_size=0, algorithm=algorithm))
    _raises(ValueError, "working_memory must be a positive number of MiB or None; got -1.",
            lambda: prep.kneighbors(2, working_memory=-1, algorithm=algorithm))
    if algorithm == "bound":
        _raises(ValueError, "n_threads must be a positive int or None; got 0.",
                lambda: prep.kneighbors(2, n_threads=0, algorithm=algorithm))


# ------------------------------------------------- set-up: centring, dtypes, scaling


@pytest.mark.parametrize("namespace", CPU_NAMESPACES)
def test_data_far_from_the_origin_is_centred_before_the_expansion(namespace):
    """Points 1e4 from the origin with a spread of 100: centred on the references' mean,
    the expansion's round-off is that of the spread (relative ~1e-15); uncentred (or
    shifted the wrong way) it is that of the norms (~1e-11), still within the
    recomputation bound, so only a tight tolerance sees it."""
    rng = np.random.RandomState(4)
    c = np.full(8, 1e4)
    X, Y = c + 100 * rng.standard_normal((40, 8)), c + 100 * rng.standard_normal((30, 8))
    Xn, Yn = to_namespace(X, namespace), to_namespace(Y, namespace)
    D = numpy_of(prepare(Xn, Yn, "sqeuclidean").pairwise())
    assert_allclose(D, cdist(X, Y, "sqeuclidean"), rtol=1e-13)
    S = numpy_of(prepare(Xn, None, "sqeuclidean").pairwise())
    assert_allclose(S, cdist(X, X, "sqeuclidean"), rtol=1e-13, atol=1e-9)


@pytest.mark.parametrize("namespace", ["numpy", "torch"])
def test_float32_cancelled_entries_are_recomputed_with_float32s_bound(namespace):
    """Two tight float32 clusters far apart (mean near the origin, so centring does not
    help): the within-cluster entries cancel in float32's expansion and are recomputed,
    so every distance is within 1e-5 relative of cdist on the same float32 values in
    float64 (with float64's round-off bound, too few would be: errors of ~3e-3)."""
    rng = np.random.RandomState(5)
    c = rng.standard_normal(16) * 100
    X = np.vstack([c + rng.standard_normal((20, 16)),
                   -c + rng.standard_normal((20, 16))]).astype(np.float32)
    Y = np.vstack([c + rng.standard_normal((20, 16)),
                   -c + rng.standard_normal((20, 16))]).astype(np.float32)
    ref = cdist(X.astype(np.float64), Y.astype(np.float64))
    D = prepare(to_namespace(X, namespace), to_namespace(Y, namespace)).pairwise()
    assert str(D.dtype).endswith("float32")
    assert_allclose(numpy_of(D), ref, rtol=1e-5)


@pytest.mark.parametrize("namespace", ["numpy", "torch"])
def test_only_entries_below_the_cancellation_limit_are_recomputed(monkeypatch, namespace):
    """Integer points (0..9, 8 features; float64), some references duplicates of
    queries and some one unit away: duplicates give 0 and every other pair at least 1,
    far above the limit 3 (d + 4) eps (||x||² + max ||y||²) / sqrt(eps) (below 1e-4
    here; float32's eps would make it about 2). So exactly the duplicate pairs are
    recomputed from the coordinates (and come out exactly 0), not the others."""
    recomputed = []
    direct_sq = Prepared.direct_sq

    def spy(self, rows, cols):
        recomputed.append(int(rows.shape[0]))
        return direct_sq(self, rows, cols)

    monkeypatch.setattr(Prepared, "direct_sq", spy)
    rng = np.random.RandomState(6)
    X = rng.randint(0, 10, size=(50, 8)).astype(float)
    Y = np.vstack([X[:7], X[7:12] + np.eye(8)[1], rng.randint(0, 10, size=(40, 8))])
    ref = cdist(X, Y, "sqeuclidean")
    D = prepare(to_namespace(X, namespace), to_namespace(Y, namespace),
                "sqeuclidean").pairwise()
    assert_allclose(numpy_of(D), ref, rtol=1e-12)
    assert np.count_nonzero(ref == 1) >= 5
    assert sum(recomputed) == np.count_nonzero(ref == 0) >= 7


@pytest.mark.parametrize("namespace", ["numpy", "torch"])
def test_references_far_larger_than_the_queries_are_scaled_too(namespace):
    """float32 queries of magnitude 1 and references of 1e25: the squared norms of the
    references overflow float32 unless both are scaled by one power of two; the
    distances then equal cdist's in float64 (on the same float32 values)."""
    rng = np.random.RandomState(7)
    X = rng.standard_normal((6, 3)).astype(np.float32)
    Y = (1e25 * rng.standard_normal((5, 3))).astype(np.float32)
    ref = cdist(X.astype(np.float64), Y.astype(np.float64))
    D = numpy_of(prepare(to_namespace(X, namespace), to_namespace(Y, namespace)).pairwise())
    assert np.isfinite(D).all()
    assert_allclose(D, ref, rtol=1e-5)


@pytest.mark.parametrize("metric", ["euclidean", "mahalanobis", "cosine"])
def test_arrays_on_another_device_stay_there(metric):
    """array-api-strict's second device: the data, the learner's map L, the output
    filled block by block and every intermediate must live on the inputs' device
    (mixing devices is an error there); the distances equal cdist's of the mapped data.
    (A CPU test that kills dropped ``device=`` arguments, which CUDA alone would show.)"""
    dev = array_api_strict.Device("device1")
    rng = np.random.RandomState(8)
    X, Y = rng.standard_normal((7, 3)), rng.standard_normal((6, 3))
    L = rng.standard_normal((2, 3))
    kwargs = {"L": L} if metric == "mahalanobis" else {}
    ref = cdist(X @ L.T, Y @ L.T) if metric == "mahalanobis" else cdist(X, Y, metric)
    prep = prepare(array_api_strict.asarray(X, device=dev),
                   array_api_strict.asarray(Y, device=dev), metric, **kwargs)
    cpu = array_api_strict.Device("CPU_DEVICE")
    for D in (prep.pairwise(), prep.pairwise(chunk_size=3)):  # one block, or an output
        assert D.device == dev
        assert_allclose(numpy_of(D.to_device(cpu)), ref, rtol=1e-12, atol=1e-15)
    dist, ind = prep.kneighbors(2)
    assert dist.device == dev and ind.device == dev
    assert_array_equal(numpy_of(ind.to_device(cpu)),
                       np.argsort(ref, axis=1, kind="stable")[:, :2])


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_the_bound_search_computes_exact_distances_of_few_candidates(monkeypatch, metric):
    """The bound search recomputes exactly only the references whose ranking lies within
    the round-off band above the k-th bound: a few more than k of 400 for random data
    (4 here), not all of them (a band as wide as the data); the neighbours equal brute
    force."""
    widths = []
    gathered = _knn._neighbor_distances

    def spy(prep, Xb, ind, R, *args, **kwargs):
        widths.append(int(ind.shape[1]))
        return gathered(prep, Xb, ind, R, *args, **kwargs)

    monkeypatch.setattr(_knn, "_neighbor_distances", spy)
    rng = np.random.RandomState(10)
    X, Y = rng.standard_normal((50, 5)), rng.standard_normal((400, 5))
    dist, ind = prepare(X, Y, metric).kneighbors(3, algorithm="bound")
    d_ref, i_ref = _brute_knn(X, Y, 3, metric=metric)
    assert_array_equal(ind, i_ref)
    assert_allclose(dist, d_ref, rtol=1e-12, atol=1e-15)
    assert 3 <= max(widths) <= 40
