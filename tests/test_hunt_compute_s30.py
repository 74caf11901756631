"""Bugs found off the happy path of the compute and evaluation code, session 30.

Each test failed before its fix: half-precision input to the distance engine, k-means
scores of embeddings at extreme magnitudes, the query-order check of
``ref_includes_query`` on offset or small-unit data, and skmetric.dask's retrieval report
on uneven or empty row chunks.
"""

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from skmetric.distances import pairwise_distances
from skmetric.metrics import ami_kmeans, nmi_kmeans, precision_at_k, retrieval_report
from skmetric.neighbors import kneighbors, radius_neighbors

torch = pytest.importorskip("torch")


# -- half precision in the distance engine ----------------------------------------------

# float16 and bfloat16 went through the engine in their own dtype, with float64's scaling
# range and cancellation limit (the engine knew float32 and float64 only): squared norms of
# float16 coordinates past 256 overflowed, so points 424 apart came out at distance inf,
# and coordinates of 1e-3 lost 10% to underflow; bfloat16's 3 digits ordered neighbours
# by round-off. Half precision is now computed, and returned, in float32.
HALF = [("numpy", np.float16), ("torch", torch.float16), ("torch", torch.bfloat16)]


def _half(A, namespace, dtype):
    return A.astype(dtype) if namespace == "numpy" else torch.tensor(A).to(dtype)


def _host64(A):
    return (A.double().numpy() if isinstance(A, torch.Tensor) else A).astype(np.float64)


@pytest.mark.parametrize(("namespace", "dtype"), HALF, ids=["np16", "torch16", "torchbf16"])
@pytest.mark.parametrize("scale", [1e-3, 1.0, 300.0])
def test_half_precision_distances_are_those_of_the_rounded_coordinates(namespace, dtype,
                                                                       scale):
    rng = np.random.default_rng(0)
    X = _half(scale * rng.standard_normal((40, 4)), namespace, dtype)
    X64 = _host64(X)  # the coordinates the caller holds, exactly
    for metric in ("euclidean", "sqeuclidean"):
        D = pairwise_distances(X, metric=metric)
        assert type(D) is type(X) and D.dtype == (np.float32 if namespace == "numpy"
                                                   else torch.float32)
        expected = cdist(X64, X64, metric)
        np.testing.assert_allclose(_host64(D), expected, rtol=1e-5,
                                   atol=1e-6 * expected.max())
    dist, ind = kneighbors(X, n_neighbors=5)
    dist64, ind64 = kneighbors(X64, n_neighbors=5)
    np.testing.assert_array_equal(_host64(ind), ind64)
    np.testing.assert_allclose(_host64(dist), dist64, rtol=1e-6)
    _, within = radius_neighbors(X, radius=scale)
    _, within64 = radius_neighbors(X64, radius=scale)
    assert [list(_host64(i)) for i in within] == [list(i) for i in within64]


def test_half_precision_keeps_autograd_and_retrieval_matches_float64():
    rng = np.random.default_rng(1)
    X = torch.tensor(300 * rng.standard_normal((30, 3)), dtype=torch.float16,
                     requires_grad=True)
    D = pairwise_distances(X)
    assert torch.isfinite(pairwise_distances(X, metric="sqeuclidean")).all()
    D.sum().backward()  # each row's gradient sums unit vectors: at most 2 * 29 long
    expected = torch.autograd.grad(torch.cdist(X.float(), X.float()).sum(), X)[0]
    assert X.grad.dtype == torch.float16
    torch.testing.assert_close(X.grad, expected, rtol=1e-2, atol=1e-2)
    y = np.arange(30) % 3
    X64 = _host64(X.detach())
    assert retrieval_report(X.detach(), y, k=(1, 5), mean_ap=True) == \
        retrieval_report(X64, y, k=(1, 5), mean_ap=True)


# -- k-means scores at extreme magnitudes -----------------------------------------------

# nmi_kmeans/ami_kmeans handed the embeddings to KMeans as they were: past about 1e154 its
# squared distances overflowed (below 1e-162 they underflowed to 0), every sample fell in
# one cluster and well separated classes scored 0.0, with only NumPy's RuntimeWarnings.
# An exact power-of-two scaling leaves k-means' clusters as they are at unit scale.
@pytest.mark.parametrize("exponent", [-1000, -600, 600, 1000])
def test_kmeans_scores_do_not_depend_on_the_magnitude_of_the_embeddings(exponent):
    rng = np.random.default_rng(0)
    y = np.arange(60) % 3
    X = rng.standard_normal((60, 4)) + 1.5 * y[:, None]  # overlapping: scores below 1
    for score in (nmi_kmeans, ami_kmeans):
        at_unit_scale = score(X, y, random_state=0)
        assert 0.2 < at_unit_scale < 0.9
        assert score(X * 2.0**exponent, y, random_state=0) == at_unit_scale


# -- the query-order check of ref_includes_query -----------------------------------------

# With ref_includes_query=True the first len(query) references must be the queries. The
# check allowed a gap of 1e-5 * (1 + max|query|): 10 for data offset by 1e6, 1e-5 for data
# in units of 1e-6, more than the distances between rows. Queries in another order than
# their copies in the reference passed, each query found itself at distance 0 and
# precision@1 came out at 0.87 instead of an error. The gap is now judged against the
# queries' spread (and float32's rounding of their magnitude).
@pytest.mark.parametrize(("scale", "offset"), [(1.0, 0.0), (1.0, 1e6), (1e-6, 0.0),
                                               (1e200, 0.0)])
def test_reference_rows_out_of_query_order_are_refused_at_any_offset_and_unit(scale,
                                                                              offset):
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 10)
    query = offset + scale * rng.standard_normal((30, 4))
    others = offset + scale * rng.standard_normal((30, 4))
    in_class = np.concatenate([c * 10 + rng.permutation(10) for c in range(3)])
    both = np.r_[labels, labels]
    with pytest.raises(ValueError, match="first len\\(query\\) references must be the"):
        precision_at_k(query, labels, np.r_[query[in_class], others], both,
                       ref_includes_query=True)
    # The queries in order, also as float32 copies, are accepted and excluded.
    reference = np.r_[query, others]
    expected = np.mean(precision_at_k(reference, both, average=None)[:30])  # leave-one-out
    for copy in ([query] if scale > 1e30 else [query, query.astype(np.float32)]):
        assert precision_at_k(copy, labels, reference, both,
                              ref_includes_query=True) == pytest.approx(expected)


# -- skmetric.dask.retrieval_report on uneven and empty row chunks -----------------------

# The query labels were rechunked with rechunk(query.chunks[0]): a bare tuple of sizes is
# one size per axis, so the labels took the first chunk's size for every chunk, and a
# query chunked (5, 20, 1, 11) failed with "zip() argument 2 is longer than argument 1".
# A chunk without rows (as boolean filtering leaves) failed with "query is empty".
@pytest.mark.parametrize("chunks", [(5, 20, 1, 11), (10, 0, 27), (0, 37, 0)])
def test_dask_retrieval_report_on_uneven_and_empty_chunks(chunks):
    da = pytest.importorskip("dask.array")
    import skmetric.dask as skd

    rng = np.random.default_rng(0)
    query, labels = rng.standard_normal((37, 4)), rng.integers(0, 4, 37)
    reference, reference_labels = rng.standard_normal((50, 4)), rng.integers(0, 5, 50)
    labels[3] = 7  # a lone query
    queries = da.from_array(query, chunks=(chunks, 4))
    for average in ("query", "class"):
        expected = retrieval_report(query, labels, reference, reference_labels, k=(1, 3),
                                    average=average)
        for given in (labels, da.from_array(labels, chunks=7)):
            assert skd.retrieval_report(queries, given, reference, reference_labels,
                                        k=(1, 3), average=average) == expected
    with pytest.raises(ValueError, match="query is empty"):
        skd.retrieval_report(queries[:0], labels[:0], reference, reference_labels)


# -- approximate FAISS indexes that find fewer neighbours than asked ---------------------

# IVF searches nprobe of its nlist lists and HNSW a beam of ef_search; where those hold
# fewer than k references, FAISS pads the row with index -1 and distance FLT_MAX. They came
# back as neighbour -1 (which indexes the last reference) at distance 1.8e19; with the
# default parameters already for k = 500 of 3000 references.
@pytest.mark.parametrize(("index", "knob"), [("ivf", "nprobe"), ("hnsw", "ef_search")])
def test_faiss_approximate_index_short_of_neighbours_is_a_clear_error(index, knob):
    pytest.importorskip("faiss")
    X = np.random.default_rng(0).standard_normal((3000, 8))
    with pytest.raises(ValueError, match=f"fewer than the 500 neighbours.*Raise "
                                         f"index_params\\['{knob}'\\]"):
        kneighbors(X, n_neighbors=500, backend="faiss", index=index)
    params = {"nprobe": 1000} if index == "ivf" else {"ef_search": 1000}
    dist, ind = kneighbors(X, n_neighbors=500, backend="faiss", index=index,
                           index_params=params)
    assert ind.min() >= 0 and np.all(ind != np.arange(3000)[:, None])
    assert dist.max() < 10


# -- the query's own reference among references at distance inf --------------------------

# A callable metric may return inf ("inf allowed"). The searches excluded a query's own
# reference by setting its distance to inf, level with those infs, and broke the tie by the
# smaller index: query 0 of four points on a line, with distances beyond 1.5 set to inf,
# got neighbours [1, 0, 2], itself included, and leave-one-out retrieval counted a query
# as its own match. The own reference now goes after every other.

@pytest.mark.parametrize("algorithm", ["bound", "topk"])
@pytest.mark.parametrize("namespace", ["numpy", "torch"])
def test_a_query_is_not_its_own_neighbour_among_infinite_distances(monkeypatch, algorithm,
                                                                   namespace):
    from skmetric._compute import _knn_topk

    monkeypatch.setattr(_knn_topk, "ALGORITHM", algorithm)

    def metric(A, B):
        D = abs(A - B.T)
        return torch.where(D > 1.5, torch.inf, D) if namespace == "torch" else \
            np.where(D > 1.5, np.inf, D)

    X = np.arange(6.0)[:, None]
    X = torch.tensor(X) if namespace == "torch" else X
    for chunk_size in (None, 1):
        dist, ind = kneighbors(X, n_neighbors=4, metric=metric, chunk_size=chunk_size)
        ind = np.asarray(ind)
        assert np.all(ind != np.arange(6)[:, None])
        np.testing.assert_array_equal(ind[0], [1, 2, 3, 4])  # the infs by index
        np.testing.assert_array_equal(np.asarray(dist)[0], [1.0, np.inf, np.inf, np.inf])
    # Leave-one-out precision@3: query 0 (class 0) finds 1, 2, 3, all of class 1.
    labels = [0, 1, 1, 1, 0, 0]
    per_query = precision_at_k(X, labels, k=3, metric=metric, average=None)
    assert per_query[0] == 0.0


def test_dask_kneighbors_declares_the_dtype_its_chunks_have():
    # The engine answers half precision in float32; skmetric.dask declared float16.
    da = pytest.importorskip("dask.array")
    import skmetric.dask as skd

    rng = np.random.default_rng(0)
    reference = rng.standard_normal((8, 3))
    for dtype, expected in [(np.float16, np.float32), (np.int32, np.float64),
                            (np.float32, np.float32)]:
        queries = da.from_array(rng.standard_normal((10, 3)).astype(dtype), chunks=4)
        dist, _ = skd.kneighbors(queries, reference.astype(dtype), n_neighbors=2)
        assert dist.dtype == expected == dist.blocks[0].compute().dtype


# -- cosine distances of nearly parallel rows ---------------------------------------------

# 'cosine' was 1 - u·v on the unit rows, with an absolute round-off of a few d·eps: for
# rows within 1e-3 rad of each other (distances near 5e-7) float32 kept no digit, the
# distances of kneighbors were 89% off and only 32% of the neighbours were those of float64.
# Cancelled entries (and the distances of the chosen neighbours) are now ||u - v||² / 2.
def _cos_exact(A, B):
    """Cosine distances of the rows of A and B in extended precision."""
    A, B = A.astype(np.longdouble), B.astype(np.longdouble)
    U = A / np.sqrt(np.sum(A * A, axis=1, keepdims=True))
    V = B / np.sqrt(np.sum(B * B, axis=1, keepdims=True))
    diff = U[:, None, :] - V[None, :, :]
    return (np.sum(diff * diff, axis=2) / 2).astype(np.float64)


@pytest.mark.parametrize("namespace", ["numpy", "torch"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cosine_of_nearly_parallel_rows_is_accurate(namespace, dtype):
    rng = np.random.default_rng(0)
    X = (rng.standard_normal(16) + 1e-3 * rng.standard_normal((80, 16))).astype(dtype)
    X[5] = X[7]  # a duplicate: exactly 0 apart
    exact = _cos_exact(X, X)
    eps = np.finfo(dtype).eps
    tol = 64 * eps / np.sqrt(np.maximum(exact, eps**2))  # about eps over the angle
    # pairwise_distances keeps the expansion where it is accurate to sqrt(eps).
    tol_pairwise = np.maximum(tol, np.sqrt(eps))
    XX = torch.tensor(X) if namespace == "torch" else X
    off = ~np.eye(80, dtype=bool)
    for Y in (None, XX[::-1] if namespace == "numpy" else XX.flip(0)):
        D = _host64(pairwise_distances(XX, Y, metric="cosine"))
        D = D if Y is None else D[:, ::-1]
        assert np.all(np.abs(D - exact)[off] <= tol_pairwise[off] * exact[off]
                      + (exact[off] == 0))
        assert D[5, 7] == 0.0
    dist, ind = kneighbors(XX, n_neighbors=5, metric="cosine")
    dist, ind = _host64(dist), _host64(ind).astype(np.int64)
    picked = np.take_along_axis(exact, ind, axis=1)
    assert np.all(np.abs(dist - picked) <= np.take_along_axis(tol, ind, axis=1) * picked
                  + (picked == 0))
    np.fill_diagonal(exact, np.inf)
    np.testing.assert_array_equal(ind, np.argsort(exact, axis=1, kind="stable")[:, :5])


def test_cosine_keeps_zero_rows_at_distance_one():
    X = np.array([[0.0, 0.0], [1.0, 1.0], [0.0, 0.0], [1e-3, 1.0]])
    D = pairwise_distances(X, X.copy(), metric="cosine")
    assert D[0, 1] == D[0, 2] == D[0, 0] == D[1, 0] == 1.0 and D[1, 1] == 0.0
    dist, ind = kneighbors(X, n_neighbors=3, metric="cosine")
    np.testing.assert_array_equal(dist[0], [1.0, 1.0, 1.0])
    T = torch.tensor(X, requires_grad=True)
    assert torch.equal(pairwise_distances(T, T.detach().clone(), metric="cosine")[0],
                       torch.tensor([1.0, 1.0, 1.0, 1.0], dtype=torch.float64))
