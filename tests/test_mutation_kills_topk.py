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
    monkeypatch.setattr(_knn_topk, "free_device_bytes", lambda dev: free["bytes"])
    for budget, rows in ((5 * per_row, 5), (5 * per_row - 1, 4), (per_row - 1, 1),
                         (10**4 * per_row, 300)):
        free["bytes"] = 4 * budget
        got = _knn_topk.block_budget(prep, 300, m, None, None)
        assert got == (rows, budget), (budget, rows)
    # chunk_size or working_memory given: the caller's budget, not the free memory.
    assert _knn_topk.block_budget(prep, 300, m, 7, None) == (7, 32 * 2**20)
    assert _knn_topk.block_budget(prep, 300, m, None, 1.0)[0] == 2**20 // (n_y * itemsize)
