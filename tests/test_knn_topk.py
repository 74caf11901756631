"""The accelerators' exact k-NN search ('topk' of k + a margin, exact re-ranking, a proof
that the margin held) gives the results of the CPU's exact search ('bound') and of a
float64 brute force, with no read-back from the device inside its block loop.

'auto' picks 'topk' only on a CUDA device; here it is forced on NumPy and torch (CPU),
which run the same Array API code.
"""

import numpy as np
import pytest
import test_neighbors
from _namespaces import NAMESPACES, numpy_of, to_namespace
from numpy.testing import assert_allclose, assert_array_equal
from scipy.spatial.distance import cdist

from skmetric._compute import _knn_topk
from skmetric._compute._engine import prepare
from skmetric.neighbors import kneighbors

ON_CPU = [n for n in NAMESPACES if isinstance(n, str)]  # numpy, array_api_strict, torch


def _brute_force(X, Y, k, exclude_self):
    """float64 distances of the (float32 or float64) data, (distance, index) order."""
    D = cdist(np.asarray(X, np.float64), np.asarray(Y, np.float64))
    if exclude_self:
        np.fill_diagonal(D, np.inf)
    cols = np.broadcast_to(np.arange(D.shape[1]), D.shape)
    ind = np.lexsort((cols, D), axis=1)[:, :k]
    return np.take_along_axis(D, ind, axis=1), ind


def _both(prep, k, **kwargs):
    """(distances, indices) of 'topk' and of 'bound', as NumPy."""
    return [tuple(numpy_of(a) for a in prep.kneighbors(k, algorithm=alg, **kwargs))
            for alg in ("topk", "bound")]


def _two_far_clusters(rng, n, d=4, dtype=np.float32):
    """Points around +1000 and -1000 on every axis: their mean is near the origin, so no
    centring helps, and the ranking's round-off (about 3·(d+4)·eps·||y||², 30 in
    float32) dwarfs the gaps between neighbours' squared distances (about 1)."""
    centre = np.where(np.arange(n) % 2 == 0, 1000.0, -1000.0)[:, None]
    return (centre + rng.standard_normal((n, d))).astype(dtype)


@pytest.mark.parametrize("namespace", ["numpy", "torch"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("offset", [0.0, 1000.0])
def test_topk_equals_the_exact_search_and_a_float64_brute_force(namespace, dtype, offset,
                                                                 rng):
    Y = (rng.standard_normal((1400, 8)) + offset).astype(dtype)
    X = (rng.standard_normal((60, 8)) + offset).astype(dtype)
    prep = prepare(to_namespace(X, namespace), to_namespace(Y, namespace))
    rel = 1e-4 if dtype == np.float32 else 1e-10
    # k = 1000 with its margin fits below n = 1400; k = n takes every reference.
    for k in (1, 10, 1000, 1400):
        (d_top, i_top), (d_exact, i_exact) = _both(prep, k)
        d_ref, i_ref = _brute_force(X, Y, k, False)
        assert_array_equal(i_top, i_exact, err_msg=f"k={k}")
        assert_array_equal(d_top, d_exact, err_msg=f"k={k}")
        assert_allclose(d_top, d_ref, rtol=rel, atol=0, err_msg=f"k={k}")
        if dtype == np.float64:
            assert_array_equal(i_top, i_ref, err_msg=f"k={k}")
        else:  # float32 distances may swap references closer than its round-off
            chosen = np.take_along_axis(cdist(X.astype(float), Y.astype(float)), i_top, 1)
            assert_allclose(chosen, d_ref, rtol=rel, atol=0, err_msg=f"k={k}")
        assert d_top.dtype == dtype and i_top.dtype == np.int64
        for chunk_size in (1, 23) if k <= 10 else (23,):
            d, i = (numpy_of(a) for a in prep.kneighbors(k, algorithm="topk",
                                                         chunk_size=chunk_size))
            assert_array_equal(i, i_top, err_msg=f"k={k} chunk_size={chunk_size}")
            assert_array_equal(d, d_top, err_msg=f"k={k} chunk_size={chunk_size}")


@pytest.mark.parametrize("namespace", ON_CPU)
def test_self_search_leaves_each_query_out_and_keeps_its_duplicates(namespace, rng):
    base = rng.standard_normal((300, 5))
    X = np.concatenate([base, base[:40]])  # 340 points; 0..39 have a duplicate at +300
    prep = prepare(to_namespace(X, namespace))
    for k in (1, 10, 200, 339):  # 339 = every other point: the query is a candidate
        (d_top, i_top), (d_exact, i_exact) = _both(prep, k, exclude_self=True)
        d_ref, i_ref = _brute_force(X, X, k, True)
        assert_array_equal(i_top, i_exact, err_msg=f"k={k}")
        assert_array_equal(i_top, i_ref, err_msg=f"k={k}")
        assert_allclose(d_top, d_ref, rtol=1e-10, atol=1e-12, err_msg=f"k={k}")
        assert not np.any(i_top == np.arange(340)[:, None]), f"k={k}: a query found itself"
    first = i_top[:, 0]
    assert_array_equal(first[:40], np.arange(300, 340))
    assert_array_equal(first[300:], np.arange(40))


@pytest.mark.parametrize("namespace", ["numpy", "torch"])
def test_ties_wider_than_the_margin_go_to_the_smallest_indices(namespace, rng):
    # 150 exact copies of the query's nearest point, scattered among 1000 references at
    # distances 1 to 10: far more tied references than k + margin, in no particular order
    # in topk's output.
    Y = rng.standard_normal((1000, 3))
    Y *= rng.uniform(1, 10, (1000, 1)) / np.linalg.norm(Y, axis=1, keepdims=True)
    copies = np.sort(rng.choice(1000, 150, replace=False))
    Y[copies] = [0.5, 0.0, 0.0]
    X = np.zeros((3, 3))
    prep = prepare(to_namespace(X, namespace), to_namespace(Y, namespace))
    for k in (1, 10, 100):
        _, _, held = _knn_topk.search_block(prep, 0, 3, k, k + _knn_topk.margin(k), False)
        assert not numpy_of(held).any(), "the margin is not enough and must be seen so"
        (d_top, i_top), (_, i_exact) = _both(prep, k)
        assert_array_equal(i_top, np.broadcast_to(copies[:k], (3, k)), err_msg=f"k={k}")
        assert_array_equal(i_top, i_exact)
        assert_allclose(d_top, 0.5, rtol=1e-15)


@pytest.mark.parametrize("namespace", ["numpy", "torch"])
def test_a_ranking_coarser_than_the_gaps_is_settled_on_exact_distances(namespace, rng):
    Y = _two_far_clusters(rng, 1200)
    X = _two_far_clusters(rng, 50)
    prep = prepare(to_namespace(X, namespace), to_namespace(Y, namespace))
    k = 10
    _, _, held = _knn_topk.search_block(prep, 0, 50, k, k + _knn_topk.margin(k), False)
    assert not numpy_of(held).all(), "the round-off band exceeds the margin"
    (d_top, i_top), (d_exact, i_exact) = _both(prep, k)
    d_ref, i_ref = _brute_force(X, Y, k, False)
    assert_array_equal(i_top, i_ref)
    assert_array_equal(i_top, i_exact)
    assert_allclose(d_top, d_ref, rtol=1e-4)
    assert np.all(np.diff(d_top, axis=1) >= 0)


@pytest.mark.parametrize("namespace", ["numpy", "torch"])
@pytest.mark.parametrize("k", [1, 10, 300])
def test_the_margin_holds_on_random_data_in_one_pass(namespace, k, rng):
    # One pass is the point of the algorithm: a margin too small (e.g. 0) would send
    # every row through the wider second search and lose the speed, silently.
    X = rng.standard_normal((2000, 16)).astype(np.float32) + 1000
    prep = prepare(to_namespace(X, namespace))
    m = k + _knn_topk.margin(k)
    assert m < 2000
    _, _, held = _knn_topk.search_block(prep, 0, 500, k, m, True)
    assert numpy_of(held).all()


def test_the_block_loop_reads_nothing_back_from_the_device(rng):
    # Meta tensors have shapes but no values: .item(), bool(), nonzero and any other
    # read of a value raise. A block searched on them is free of host synchronisation.
    torch = pytest.importorskip("torch")
    X = torch.as_tensor(rng.standard_normal((50, 6)), dtype=torch.float32)
    Y = torch.as_tensor(rng.standard_normal((400, 6)), dtype=torch.float32) + 100
    meta = torch.device("meta")
    for metric in ("euclidean", "cosine"):
        prep = prepare(X, Y, metric=metric)
        for name in ("X", "Y", "Xr", "Yr", "YT", "x_sq", "y_sq", "x_nonzero", "y_nonzero"):
            if hasattr(prep, name):
                setattr(prep, name, getattr(prep, name).to(meta))
        prep.device = meta
        with pytest.raises((RuntimeError, NotImplementedError)):
            bool(torch.any(prep.X > 0))  # the meta device refuses reads, as intended
        dist, ind, held = _knn_topk.search_block(prep, 0, 50, 10, 40, exclude=True)
        assert dist.device == meta and dist.shape == (50, 10) and ind.shape == (50, 10)
        assert held.shape == (50,)


def test_auto_picks_topk_on_a_cuda_device_and_the_block_from_free_memory(monkeypatch,
                                                                        rng):
    torch = pytest.importorskip("torch")
    X = torch.as_tensor(rng.standard_normal((700, 4)))
    prep = prepare(X)
    assert _knn_topk.choose(prep) == "bound"  # the host
    assert _knn_topk.choose(prep, "topk") == "topk"
    with pytest.raises(ValueError, match="algorithm must be one of"):
        _knn_topk.choose(prep, "fast")
    # Without a budget on the host: the exact search's blocks (64 MiB, or working_memory).
    assert _knn_topk.block_budget(prep, 700, 50, None, None)[0] == 700
    assert _knn_topk.block_budget(prep, 700, 50, None, 0.1)[0] == int(0.1 * 2**20 // (8 * 700))
    # A CUDA device with 4 MiB free: a quarter of it per block.
    monkeypatch.setattr(_knn_topk, "on_cuda", lambda dev: True)
    monkeypatch.setattr(_knn_topk, "free_device_bytes", lambda dev: 4 * 2**20)
    assert _knn_topk.choose(prep) == "topk"
    rows, gather = _knn_topk.block_budget(prep, 700, 50, None, None)
    per_row = (8 + 8 + 8) * 700 + 8 * 50 * (3 * 4 + 1) + 8 * 50
    assert rows == 2**20 // per_row and gather == 2**20
    assert _knn_topk.block_budget(prep, 700, 50, 9, None)[0] == 9  # chunk_size wins
    # Blocks sized so, through the public function: the exact search's neighbours.
    d, i = kneighbors(X, n_neighbors=7)
    monkeypatch.setattr(_knn_topk, "ALGORITHM", "bound")
    d_ref, i_ref = kneighbors(X, n_neighbors=7)
    assert_array_equal(i.numpy(), i_ref.numpy())
    assert_array_equal(d.numpy(), d_ref.numpy())


def test_topk_distances_carry_autograd_as_the_exact_search(rng):
    torch = pytest.importorskip("torch")
    X0 = rng.standard_normal((80, 5))
    grads = []
    for alg in ("topk", "bound"):
        X = torch.tensor(X0, requires_grad=True)
        d, _ = prepare(X).kneighbors(4, exclude_self=True, algorithm=alg)
        (d ** 2).sum().backward()
        grads.append(X.grad.numpy())
    assert np.isfinite(grads[0]).all() and np.abs(grads[0]).max() > 0
    assert_allclose(grads[0], grads[1], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("check", [
    test_neighbors.test_kneighbors_matches_sklearn_nearest_neighbors,
    test_neighbors.test_ties_go_to_the_smaller_index_and_duplicates_are_not_self,
    test_neighbors.test_block_sizes_and_threads_give_identical_neighbours,
    test_neighbors.test_many_neighbours_in_float32_do_not_depend_on_blocks,
], ids=lambda f: f.__name__[5:])
@pytest.mark.parametrize("namespace", ON_CPU)
def test_the_public_search_passes_its_tests_with_topk_forced(check, namespace, monkeypatch):
    monkeypatch.setattr(_knn_topk, "ALGORITHM", "topk")
    kwargs = {"namespace": namespace, "rng": np.random.RandomState(0)}
    if "dtype" in check.__code__.co_varnames[:check.__code__.co_argcount]:
        for dtype in (np.float32, np.float64):
            check(dtype=dtype, **kwargs)
    elif "rng" in check.__code__.co_varnames[:check.__code__.co_argcount]:
        check(**kwargs)
    else:
        check(namespace=namespace)


@pytest.mark.parametrize("namespace", ["numpy", "torch"])
def test_retrieval_metrics_are_unchanged_with_topk_forced(namespace, monkeypatch, rng):
    from skmetric.metrics import retrieval_report

    X = _two_far_clusters(rng, 400)
    X[:50] = X[50:100]  # duplicates: ties across classes
    y = rng.randint(0, 8, 400)
    Xn, yn = to_namespace(X, namespace), to_namespace(y, namespace)
    expected = retrieval_report(Xn, yn, k=(1, 5), mean_ap=True)
    monkeypatch.setattr(_knn_topk, "ALGORITHM", "topk")
    got = retrieval_report(Xn, yn, k=(1, 5), mean_ap=True)
    assert got.keys() == expected.keys()
    for key in expected:
        assert_array_equal(np.asarray(numpy_of(got[key])), np.asarray(numpy_of(expected[key])),
                           err_msg=key)


@pytest.mark.gpu
@pytest.mark.parametrize("library", ["torch", "cupy"])
def test_on_cuda_auto_is_topk_free_of_syncs_and_equals_the_cpu(library, rng):
    torch = pytest.importorskip("torch")
    X = rng.standard_normal((3000, 32)).astype(np.float32) + 1000
    Xd = to_namespace(X, "torch-cuda" if library == "torch" else "cupy")
    prep = prepare(Xd)
    assert _knn_topk.choose(prep) == "topk"
    if library == "torch":
        rows, gather = _knn_topk.block_budget(prep, 3000, 40, None, None)
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:
            for s in range(0, 3000, 1000):
                _knn_topk.search_block(prep, s, s + 1000, 10, 40, True, gather)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    for k in (1, 10, 1000):
        d, i = kneighbors(Xd, n_neighbors=k)
        d_cpu, i_cpu = kneighbors(X, n_neighbors=k)
        assert_array_equal(numpy_of(i), i_cpu)
        assert_allclose(numpy_of(d), d_cpu, rtol=1e-5)
