"""Tests written to kill the mutants of the accelerators' exact k-NN search
(skmetric/_compute/_knn_topk.py) and of the FAISS path (skmetric/_compute/_faiss.py) that
survived their own tests (issue #22; tests/README.md, "Seventh session (2026-12-01):
`_knn_topk.py` and `_faiss.py`").

References are independent of the code under test: a float64 brute force (scipy's
``cdist``, ties by the smaller index through a stable sort), scikit-learn's
``NearestNeighbors``, ``faiss.IndexFlatL2`` called directly, and the byte counts the
module documents, worked out by hand. CUDA devices are stood in for by ``torch.device``
objects (which need no GPU) and by fakes of torch's and CuPy's memory queries.
"""

import sys
import types

import numpy as np
import pytest
from _namespaces import numpy_of, to_namespace
from numpy.testing import assert_allclose, assert_array_equal
from scipy.spatial.distance import cdist

from skmetric._compute import _knn_topk
from skmetric._compute._engine import prepare

torch = pytest.importorskip("torch")


def _brute_force(X, Y, k, exclude_self=False, metric="euclidean"):
    """float64 distances of the data and the k nearest, ties by the smaller index."""
    D = cdist(np.asarray(X, np.float64), np.asarray(Y, np.float64), metric=metric)
    if exclude_self:
        np.fill_diagonal(D, np.inf)
    ind = np.argsort(D, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(D, ind, axis=1), ind


class _CupyDevice:
    """Stands in for ``cupy.cuda.Device``: CuPy's class lives in a ``cupy`` module, has no
    ``type``, and is entered (``with dev:``) to make it current."""

    __module__ = "cupy.cuda.device"

    def __init__(self):
        self.entered = 0

    def __enter__(self):
        self.entered += 1
        return self

    def __exit__(self, *exc):
        return False


# ------------------------------------------------------------------- devices and memory


def test_on_cuda_recognises_torch_and_cupy_devices_only():
    """torch's CUDA devices (any index) and CuPy's devices are CUDA; the host's devices
    (NumPy's 'cpu', torch's cpu and meta, array-api-strict's) are not."""
    xs = pytest.importorskip("array_api_strict")
    assert _knn_topk.on_cuda(torch.device("cuda"))
    assert _knn_topk.on_cuda(torch.device("cuda:1"))
    assert _knn_topk.on_cuda(_CupyDevice())
    for dev in (torch.device("cpu"), torch.device("meta"), "cpu", xs.asarray([1.0]).device,
                None):
        assert not _knn_topk.on_cuda(dev), dev


def test_free_device_bytes_of_torch_counts_the_cached_but_unused_memory(monkeypatch):
    """On a torch CUDA device: the driver's free bytes plus what torch's allocator holds
    reserved but has not handed out (reserved - allocated), all asked of that device."""
    asked = []

    def query(value):
        def f(dev=None):
            asked.append(dev)
            return value
        return f

    monkeypatch.setattr(torch.cuda, "mem_get_info", query((1000, 8000)))
    monkeypatch.setattr(torch.cuda, "memory_reserved", query(300))
    monkeypatch.setattr(torch.cuda, "memory_allocated", query(120))
    dev = torch.device("cuda:1")
    assert _knn_topk.free_device_bytes(dev) == 1000 + (300 - 120)
    assert asked == [dev, dev, dev]
    assert _knn_topk.free_device_bytes(torch.device("cpu")) is None
    assert _knn_topk.free_device_bytes("cpu") is None


def test_free_device_bytes_of_cupy_counts_the_pool_free_bytes(monkeypatch):
    """On a CuPy device: the runtime's free bytes, asked with the device current, plus
    the free bytes of CuPy's default memory pool."""
    dev = _CupyDevice()
    current = []

    def mem_get_info():
        current.append(dev.entered)
        return 5000, 9000

    pool = types.SimpleNamespace(free_bytes=lambda: 700)
    cupy = types.ModuleType("cupy")
    cupy.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(memGetInfo=mem_get_info))
    cupy.get_default_memory_pool = lambda: pool
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    assert _knn_topk.free_device_bytes(dev) == 5000 + 700
    assert current == [1]  # inside `with dev:`


def test_auto_follows_the_module_setting_before_the_device(monkeypatch):
    """algorithm='auto' takes the module's ALGORITHM when that names a search (the tests'
    way to force one everywhere), and only when it is 'auto' too the device's choice;
    an explicit algorithm wins over both."""
    prep = prepare(torch.zeros((3, 2)))
    for setting, on_gpu, expected in (("topk", False, "topk"), ("bound", True, "bound"),
                                      ("auto", True, "topk"), ("auto", False, "bound")):
        monkeypatch.setattr(_knn_topk, "ALGORITHM", setting)
        monkeypatch.setattr(_knn_topk, "on_cuda",  # the data's device is asked
                            lambda dev, gpu=on_gpu: gpu and dev is prep.device)
        assert _knn_topk.choose(prep) == expected, setting
        assert _knn_topk.choose(prep, "auto") == expected, setting
        assert _knn_topk.choose(prep, "bound") == "bound"
        assert _knn_topk.choose(prep, "topk") == "topk"


# --------------------------------------------------------------------- block budget


def _fake_prep(n_y, d, itemsize, device="cpu"):
    """What ``block_budget`` reads of a prepared search, for sizes no test could hold."""
    X = types.SimpleNamespace(shape=(10, d))
    return types.SimpleNamespace(n_y=n_y, itemsize=itemsize, X=X, device=device)


@pytest.mark.parametrize("itemsize", [4, 8])
def test_host_blocks_default_to_64_mib_of_ranking(itemsize):
    """Off a CUDA device with no chunk_size or working_memory: blocks of 64 MiB of
    ranking entries (the documented default, not scikit-learn's 1 GiB working memory),
    and the exact search's gather cap."""
    prep = _fake_prep(n_y=100_000, d=16, itemsize=itemsize)
    rows, gather = _knn_topk.block_budget(prep, 10**6, 50, None, None)
    assert rows == 64 * 2**20 // (100_000 * itemsize)
    assert gather == 32 * 2**20
    assert _knn_topk.block_budget(prep, 10**6, 50, None, 2.0)[0] == \
        2 * 2**20 // (100_000 * itemsize)
    assert _knn_topk.block_budget(prep, 10**6, 50, 123, None)[0] == 123


@pytest.mark.parametrize("itemsize", [4, 8])
def test_cuda_blocks_take_a_quarter_of_the_free_memory_byte_for_byte(monkeypatch, itemsize):
    """On a CUDA device: rows = (free / 4) // (bytes per query row), the bytes per row
    counted as documented: per reference the ranking and topk's sorted copy (itemsize
    each) with its int64 index; per candidate (m of them) the gathered coordinates, their
    differences and squares (3 d entries) and the distance (itemsize each), and its
    int64 column. Checked at a budget of exactly N rows and one byte short of it, at
    least one row, at most n_rows."""
    n_y, d, m = 1000, 7, 60
    per_row = (2 * itemsize + 8) * n_y + itemsize * m * (3 * d + 1) + 8 * m
    prep = _fake_prep(n_y, d, itemsize, device=torch.device("cuda"))
    free = {}
    monkeypatch.setattr(_knn_topk, "free_device_bytes",  # of the data's device only
                        lambda dev: free["bytes"] if dev is prep.device else None)
    for budget, rows in ((5 * per_row, 5), (5 * per_row - 1, 4), (per_row - 1, 1),
                         (10**4 * per_row, 300)):
        free["bytes"] = 4 * budget
        got = _knn_topk.block_budget(prep, 300, m, None, None)
        assert got == (rows, budget), (budget, rows)
    # chunk_size or working_memory given: the caller's budget, not the free memory.
    assert _knn_topk.block_budget(prep, 300, m, 7, None) == (7, 32 * 2**20)
    assert _knn_topk.block_budget(prep, 300, m, None, 1.0)[0] == 2**20 // (n_y * itemsize)


# ------------------------------------------------------------------- one block's search


def _torch_distances(A, B):
    """Euclidean distances from the differences (torch.cdist may use the expansion, whose
    round-off would split a duplicate's tie)."""
    return torch.sqrt(((A[:, None, :] - B[None, :, :]) ** 2).sum(-1))


def test_a_block_over_every_reference_reports_a_boolean_per_row_on_its_device():
    """With m = n_y every reference is a candidate and every row held: one boolean per
    query row of the block (s > 0 here), on the data's device (meta tensors: shapes, no
    values, so nothing may be made on the host); the neighbours exclude the query."""
    X = torch.as_tensor(np.random.RandomState(3).standard_normal((60, 4)), dtype=torch.float32)
    prep = prepare(X)
    meta = torch.device("meta")
    for name in ("X", "Y", "Xr", "Yr", "YT", "x_sq", "y_sq"):
        if hasattr(prep, name):
            setattr(prep, name, getattr(prep, name).to(meta))
    prep.device = meta
    for exclude in (False, True):
        dist, ind, held = _knn_topk.search_block(prep, 5, 25, 7, 60, exclude)
        assert held.shape == (20,) and held.dtype == torch.bool and held.device == meta
        assert dist.shape == (20, 7) and ind.shape == (20, 7) and ind.device == meta


def _callable_ties(namespace, n=1000, n_tied=200):
    """Queries at the origin; reference 7 alone at distance 0.3, ``n_tied`` references
    (at scattered indices) tied at exactly 1, the rest at 2 to 10: the ties at the k-th
    distance are far more than k + margin."""
    rng = np.random.RandomState(5)
    Y = rng.standard_normal((n, 2))
    Y *= rng.uniform(2, 10, (n, 1)) / np.linalg.norm(Y, axis=1, keepdims=True)
    tied = np.sort(rng.choice(np.delete(np.arange(n), 7), n_tied, replace=False))
    Y[tied] = [0.0, 1.0]
    Y[7] = [0.3, 0.0]
    X = np.zeros((4, 2))
    return X, Y, _torch_distances if namespace == "torch" else cdist


@pytest.mark.parametrize("namespace", ["numpy", "torch"])
def test_callable_metric_ties_at_the_kth_distance_go_to_the_smallest_indices(namespace):
    """A callable's ranking is its exact distances (no round-off band): the margin holds
    only when the m-th candidate is strictly farther than the k-th, so ties at the k-th
    distance wider than the margin are searched again and settled by index, as a
    float64 brute force with a stable sort does. k = 1 (the unique nearest), k = 2 and
    k = 50 (the nearest and the first of the tied), and k = n."""
    X, Y, metric = _callable_ties(namespace)
    prep = prepare(to_namespace(X, namespace), to_namespace(Y, namespace), metric=metric)
    for k in (1, 2, 50, 1000):
        d_ref, i_ref = _brute_force(X, Y, k)
        dist, ind = (numpy_of(a) for a in prep.kneighbors(k, algorithm="topk"))
        assert_array_equal(ind, i_ref, err_msg=f"k={k}")
        assert_allclose(dist, d_ref, rtol=1e-12, atol=1e-12, err_msg=f"k={k}")
    m = 2 + _knn_topk.margin(2)
    held = numpy_of(_knn_topk.search_block(prep, 0, 4, 2, m, False)[2])
    assert not held.any(), "ties at the k-th distance past the margin must not hold"


@pytest.mark.parametrize("namespace", ["numpy", "torch"])
def test_the_margin_holds_exactly_when_the_mth_candidate_is_past_the_kth(namespace):
    """The proof's boundary, on a callable (exact rankings, no band): a row holds when
    its m-th smallest distance is strictly above its k-th, whatever lies between; m - 1
    ties at the nearest with the m-th farther hold, m ties do not."""
    rng = np.random.RandomState(13)
    far = rng.uniform(2, 10, 300)
    X = np.zeros((2, 1))
    k, m = 1, 1 + _knn_topk.margin(1)
    metric = _torch_distances if namespace == "torch" else cdist
    for n_tied, nearest, expected in ((m - 1, None, True), (m, None, False),
                                      (200, 0.3, True)):
        Y = far.copy()
        Y[rng.choice(300, n_tied, replace=False)] = 1.0
        if nearest is not None:
            Y[7] = nearest
        prep = prepare(to_namespace(X, namespace), to_namespace(Y[:, None], namespace),
                       metric=metric)
        held = numpy_of(_knn_topk.search_block(prep, 0, 2, k, m, False)[2])
        assert_array_equal(held, [expected] * 2, err_msg=f"{n_tied} tied")
        d_ref, i_ref = _brute_force(X, Y[:, None], 3)
        assert_array_equal(numpy_of(prep.kneighbors(3, algorithm="topk")[1]), i_ref)


def test_callable_metric_distances_carry_autograd_under_topk():
    """A callable's distances are its ranking's entries, so the ranking must stay in
    torch's graph (the other metrics recompute distances and cut it): gradients with
    'topk' equal those of the exact search and of the callable on the chosen pairs,
    with the query itself excluded."""
    X0 = np.random.RandomState(6).standard_normal((40, 3))
    grads = []
    for alg in ("topk", "bound"):
        X = torch.tensor(X0, requires_grad=True)
        prep = prepare(X, metric=lambda A, B: torch.cdist(A, B))
        d, i = prep.kneighbors(3, exclude_self=True, algorithm=alg)
        (d ** 2).sum().backward()
        grads.append(X.grad.numpy().copy())
    assert_array_equal(i.numpy(), _brute_force(X0, X0, 3, exclude_self=True)[1])
    # By hand: d/dX_a of sum over pairs (a, b) of |x_a - x_b|^2 is 2 (x_a - x_b), and
    # -2 (x_a - x_b) for x_b.
    expected = np.zeros_like(X0)
    for a, row in enumerate(i.numpy()):
        for b in row:
            expected[a] += 2 * (X0[a] - X0[b])
            expected[b] -= 2 * (X0[a] - X0[b])
    assert_allclose(grads[0], expected, rtol=1e-10, atol=1e-12)
    assert_allclose(grads[0], grads[1], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("metric", ["euclidean", "callable"])
def test_torch_blocks_of_one_row_still_leave_each_query_out(metric):
    """Blocks of one query row (chunk_size=1), of a few, and two blocks: query i never
    finds itself, and finds its duplicate at another index, as a brute force with i left
    out; the blocks' results are put together in order."""
    rng = np.random.RandomState(7)
    base = rng.standard_normal((30, 3))
    X = np.concatenate([base, base[:5]])
    kw = {} if metric == "euclidean" else {"metric": _torch_distances}
    prep = prepare(torch.as_tensor(X), **kw)
    d_ref, i_ref = _brute_force(X, X, 4, exclude_self=True)
    for chunk_size in (1, 4, 18):  # 35, 9 and 2 blocks
        dist, ind = prep.kneighbors(4, exclude_self=True, algorithm="topk",
                                    chunk_size=chunk_size)
        assert_array_equal(ind.numpy(), i_ref, err_msg=f"chunk_size={chunk_size}")
        assert_allclose(dist.numpy(), d_ref, rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------- widening and memory


def _ties_beyond_the_margin(namespace):
    """Three queries at the origin; 150 exact copies at distance 0.5 among 1000
    references at distances 1 to 10 (test_knn_topk's data)."""
    rng = np.random.RandomState(8)
    Y = rng.standard_normal((1000, 3))
    Y *= rng.uniform(1, 10, (1000, 1)) / np.linalg.norm(Y, axis=1, keepdims=True)
    copies = np.sort(rng.choice(1000, 150, replace=False))
    Y[copies] = [0.5, 0.0, 0.0]
    return np.zeros((3, 3)), Y, copies


@pytest.mark.parametrize("namespace", ["numpy", "torch"])
def test_widening_stops_as_soon_as_every_row_holds(monkeypatch, namespace):
    """Rows whose margin did not hold are searched again with the candidates widened by
    the module's factor, and only until every row's margin holds: here the first m past
    the 150 tied copies (a pass over every reference would waste a search of the whole
    set, per block, on a GPU)."""
    X, Y, copies = _ties_beyond_the_margin(namespace)
    prep = prepare(to_namespace(X, namespace), to_namespace(Y, namespace))
    seen = []
    search = _knn_topk.search_block

    def spy(prep, s, e, k, m, *args):
        seen.append(m)
        return search(prep, s, e, k, m, *args)

    monkeypatch.setattr(_knn_topk, "search_block", spy)
    k = 1
    dist, ind = prep.kneighbors(k, algorithm="topk")
    assert_array_equal(numpy_of(ind), np.full((3, 1), copies[0]))
    expected = [k + _knn_topk.margin(k)]
    while expected[-1] <= 150:
        expected.append(min(1000, _knn_topk._WIDEN * expected[-1]))
    assert expected[-1] < 1000, "the data must hold before every reference is taken"
    assert seen == expected


def test_on_a_cuda_device_every_pass_gathers_within_the_block_budget(monkeypatch):
    """On a CUDA device (faked: the budget from 'free memory') the candidates of every
    pass, the first and the widened ones, are gathered within the block's budget (a
    quarter of the free memory), not the host's fixed 32 MiB."""
    X, Y, copies = _ties_beyond_the_margin("torch")
    prep = prepare(torch.as_tensor(X), torch.as_tensor(Y))
    free = 2**20
    monkeypatch.setattr(_knn_topk, "free_device_bytes", lambda dev: free)
    caps = []
    gathered = _knn_topk._neighbor_distances

    def spy(*args, gather_bytes):
        caps.append(gather_bytes)
        return gathered(*args, gather_bytes=gather_bytes)

    monkeypatch.setattr(_knn_topk, "_neighbor_distances", spy)
    dist, ind = prep.kneighbors(10, algorithm="topk")
    assert_array_equal(ind.numpy(), np.broadcast_to(copies[:10], (3, 10)))
    assert len(caps) > 1 and caps == [free // 4] * len(caps)


@pytest.mark.parametrize("namespace", ["numpy", "torch"])
def test_self_search_with_wide_ties_leaves_the_query_out_of_the_margin_check(namespace):
    """Self search where each query's k-th distance is tied far past the margin (80
    exact copies; a unique nearest point for the point at the origin): the query's own
    entry must be out of the ranking before the m candidates are taken, else it takes a
    candidate's place, the margin check compares the wrong ranks and ties are cut
    arbitrarily. Against a float64 brute force with the query left out, ties by index."""
    _, Y, _ = _callable_ties(namespace, n=300, n_tied=80)
    Y = np.concatenate([np.zeros((1, 2)), Y])  # the origin is point 0, point 8 at 0.3
    prep = prepare(to_namespace(Y, namespace))
    for k in (1, 2, 20):
        d_ref, i_ref = _brute_force(Y, Y, k, exclude_self=True)
        for chunk_size in (None, 50) if k > 2 else (None, 1):
            dist, ind = (numpy_of(a) for a in prep.kneighbors(
                k, exclude_self=True, algorithm="topk", chunk_size=chunk_size))
            assert_array_equal(ind, i_ref, err_msg=f"k={k} chunk_size={chunk_size}")
            assert_allclose(dist, d_ref, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------------------- FAISS


def _faiss_index(prep, index, params=None):
    """The FAISS index the search built and cached for ``(index, params)``."""
    key = (index, repr(sorted((params or {}).items())))
    return prep._faiss_searches[key].index


def test_faiss_self_search_drops_the_query_or_else_the_last_neighbour():
    """exclude_self with FAISS asks for k + 1 neighbours and drops the query; where the
    index did not return it (more exact copies than k + 1, which FAISS's flat index
    orders by index, checked here directly) it drops the last. Against a float64 brute
    force with the query left out, ties by index, and scikit-learn's NearestNeighbors."""
    faiss = pytest.importorskip("faiss")
    from sklearn.neighbors import NearestNeighbors

    from skmetric.neighbors import kneighbors

    rng = np.random.RandomState(9)
    X = rng.standard_normal((40, 3)) * 10
    X[:5] = X[0]  # five exact copies: queries 3 and 4 do not find themselves among k + 1
    flat = faiss.IndexFlatL2(3)
    flat.add(X.astype(np.float32))
    assert_array_equal(flat.search(X[4:5].astype(np.float32), 3)[1], [[0, 1, 2]])
    for k in (1, 2, 39):
        d_ref, i_ref = _brute_force(X, X, k, exclude_self=True)
        dist, ind = kneighbors(X, n_neighbors=k, backend="faiss")
        assert_array_equal(ind, i_ref, err_msg=f"k={k}")
        assert_allclose(dist, d_ref, rtol=1e-5, atol=1e-4, err_msg=f"k={k}")
    d_skl, i_skl = NearestNeighbors(n_neighbors=5).fit(X[5:]).kneighbors()
    dist, ind = kneighbors(X[5:], n_neighbors=5, backend="faiss")
    assert_array_equal(ind, i_skl)
    assert_allclose(dist, d_skl, rtol=1e-5)


def test_faiss_index_options_and_documented_defaults_reach_the_index():
    """index_params reach the FAISS index; without them the documented defaults: IVF
    nlist = 4 sqrt(n) capped at n // 39 (at least 1), nprobe = min(nlist, 8) (at least
    1); HNSW M = 32 (M links per node above level 0), efConstruction 80, efSearch 64."""
    pytest.importorskip("faiss")
    rng = np.random.RandomState(10)
    for n, nlist, nprobe in ((50, 1, 1), (117, 3, 3), (400, 10, 8), (25_600, 640, 8)):
        prep = prepare(rng.standard_normal((n, 2)).astype(np.float32))
        prep.kneighbors(1, stop=3, backend="faiss", index="ivf")
        idx = _faiss_index(prep, "ivf")
        assert (idx.nlist, idx.nprobe) == (nlist, nprobe), n
    X = rng.standard_normal((300, 4))
    prep = prepare(X)
    params = {"nlist": 5, "nprobe": 3}
    prep.kneighbors(2, backend="faiss", index="ivf", index_params=params)
    idx = _faiss_index(prep, "ivf", params)
    assert (idx.nlist, idx.nprobe, idx.ntotal) == (5, 3, 300)
    prep.kneighbors(2, backend="faiss", index="hnsw")
    hnsw = _faiss_index(prep, "hnsw").hnsw
    assert (hnsw.nb_neighbors(1), hnsw.efConstruction, hnsw.efSearch) == (32, 80, 64)
    params = {"M": 8, "ef_construction": 40, "ef_search": 20}
    prep.kneighbors(2, backend="faiss", index="hnsw", index_params=params)
    hnsw = _faiss_index(prep, "hnsw", params).hnsw
    assert (hnsw.nb_neighbors(1), hnsw.efConstruction, hnsw.efSearch) == (8, 40, 20)
    # Every index (and the IVF quantizer) ranks by the metric's own measure: squared L2,
    # or the inner product of unit rows for cosine.
    faiss = pytest.importorskip("faiss")
    for metric, measure in (("euclidean", faiss.METRIC_L2),
                            ("cosine", faiss.METRIC_INNER_PRODUCT)):
        prep = prepare(X, metric=metric)
        for index in ("flat", "ivf", "hnsw"):
            prep.kneighbors(2, stop=2, backend="faiss", index=index)
            idx = _faiss_index(prep, index)
            assert idx.metric_type == measure, (metric, index)
        assert faiss.downcast_index(idx.storage).metric_type == measure  # HNSW's storage
        assert _faiss_index(prep, "ivf").quantizer.metric_type == measure, metric
    with pytest.raises(ValueError, match=r"^Unknown index_params \['bad'\] for "
                       r"index='hnsw'; allowed: \['M', 'ef_construction', 'ef_search'\]\.$"):
        prep.kneighbors(2, backend="faiss", index="hnsw", index_params={"bad": 1})


def test_faiss_indexes_are_cached_per_index_and_options():
    """One index per (index, options) on a prepared search, built once and reused: a
    flat and an HNSW index, and two HNSW indexes with different efSearch, are kept
    apart; the HNSW results with a large efSearch equal the exact ones."""
    pytest.importorskip("faiss")
    X = np.random.RandomState(11).standard_normal((200, 4))
    prep = prepare(X)
    _, i_ref = _brute_force(X, X, 3, exclude_self=True)
    _, flat = prep.kneighbors(3, exclude_self=True, backend="faiss")
    _, hnsw = prep.kneighbors(3, exclude_self=True, backend="faiss", index="hnsw",
                              index_params={"ef_search": 200})
    prep.kneighbors(3, exclude_self=True, backend="faiss", index="hnsw",
                    index_params={"ef_search": 16})
    _, again = prep.kneighbors(3, exclude_self=True, backend="faiss")
    assert len(prep._faiss_searches) == 3
    assert _faiss_index(prep, "hnsw", {"ef_search": 200}).hnsw.efSearch == 200
    assert _faiss_index(prep, "hnsw", {"ef_search": 16}).hnsw.efSearch == 16
    assert_array_equal(flat, i_ref)
    assert_array_equal(hnsw, i_ref)
    assert_array_equal(again, i_ref)


@pytest.mark.parametrize("namespace", ["numpy", "torch"])
def test_faiss_cosine_distances_stay_within_0_and_2(namespace):
    """FAISS's float32 inner products of unit rows overshoot ±1 by a round-off (checked
    here directly with faiss.IndexFlatIP); the cosine distances are clipped to [0, 2]
    and otherwise equal float64 ones, for vectors, their opposites and duplicates."""
    faiss = pytest.importorskip("faiss")
    X = np.random.RandomState(0).standard_normal((200, 7)).astype(np.float32)
    A = np.concatenate([X, -X])
    U = (A / np.linalg.norm(A, axis=1, keepdims=True)).astype(np.float32)
    ip = faiss.IndexFlatIP(7)
    ip.add(U)
    raw = ip.search(U[:200], 400)[0]
    assert raw.max() > 1 and raw.min() < -1, "the round-off this test needs"
    from skmetric.neighbors import kneighbors

    dist, ind = kneighbors(to_namespace(A[:200], namespace), to_namespace(A, namespace),
                           n_neighbors=400, metric="cosine", backend="faiss")
    dist, ind = numpy_of(dist), numpy_of(ind)
    assert dist.min() >= 0 and dist.max() <= 2
    exact = np.take_along_axis(cdist(A[:200].astype(float), A.astype(float), "cosine"),
                               ind, axis=1)
    assert_allclose(dist, exact, atol=1e-6)
    assert (dist[:, 0] == 0).any() and (dist[:, -1] == 2).any()  # clipped, not past


@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean"])
@pytest.mark.parametrize("scale", [1e-30, 1.0, 1e30])
def test_faiss_distances_at_any_magnitude_in_float64_and_torch(metric, scale):
    """float64 data far outside float32's range is scaled by a power of two for FAISS
    and the scale undone on the distances (squared ones by its square), and float32
    data far from the origin is centred first: distances as a float64 brute force's,
    in the input's namespace and dtype, indices int64."""
    pytest.importorskip("faiss")
    from skmetric.neighbors import kneighbors

    rng = np.random.RandomState(12)
    X = rng.standard_normal((60, 5)) * scale
    Y = rng.standard_normal((90, 5)) * scale
    d_ref, i_ref = _brute_force(X, Y, 4, metric=metric)
    for data, ref in (((X, Y), d_ref),
                      ((torch.as_tensor(X), torch.as_tensor(Y)), d_ref)):
        dist, ind = kneighbors(*data, n_neighbors=4, metric=metric, backend="faiss")
        assert numpy_of(dist).dtype == np.float64 and numpy_of(ind).dtype == np.int64
        assert type(dist) is type(data[0])
        assert_array_equal(numpy_of(ind), i_ref)
        assert_allclose(numpy_of(dist), ref, rtol=1e-5)
    far = (rng.standard_normal((80, 5)) + 1000).astype(np.float32)
    d_ref, i_ref = _brute_force(far[:20], far, 3, metric=metric)
    dist, ind = kneighbors(torch.as_tensor(far[:20]), torch.as_tensor(far), n_neighbors=3,
                           metric=metric, backend="faiss")
    assert dist.dtype == torch.float32
    assert_allclose(dist.numpy(), d_ref, rtol=1e-4)


def test_missing_faiss_is_named_with_the_feature_that_needs_it(monkeypatch):
    """Without faiss installed, backend='faiss' says which call needs it, which module,
    and the command that installs it, in full."""
    monkeypatch.setitem(sys.modules, "faiss", None)  # makes `import faiss` fail
    message = ("kneighbors(backend='faiss') requires the optional dependency 'faiss', "
               "which is not installed. Install it with: pip install 'skmetric[faiss]'")
    with pytest.raises(ImportError) as info:
        prepare(np.eye(3)).kneighbors(1, backend="faiss")
    assert str(info.value) == message


def test_faiss_results_are_put_on_the_data_device():
    """FAISS searches on the host; the distances and indices are put back on the data's
    device. A meta device stands in for a GPU (only prep.device is changed: the data
    FAISS reads stays on the host)."""
    pytest.importorskip("faiss")
    X = np.random.RandomState(14).standard_normal((30, 3))
    prep = prepare(torch.as_tensor(X))
    _, i_ref = _brute_force(X, X, 2, exclude_self=True)
    dist, ind = prep.kneighbors(2, exclude_self=True, backend="faiss")
    assert_array_equal(ind.numpy(), i_ref)
    prep.device = torch.device("meta")
    dist, ind = prep.kneighbors(2, exclude_self=True, backend="faiss")
    assert dist.device == ind.device == torch.device("meta")
    assert dist.dtype == torch.float64 and ind.dtype == torch.int64
