"""skmetric.dask: fitted learners applied to Dask arrays chunk by chunk, and grid searches
over skmetric learners on a ``distributed`` cluster through joblib's dask backend."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.model_selection import GridSearchCV, cross_validate
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")
pytest.importorskip("distributed")

import skmetric.dask as skd  # noqa: E402
from skmetric import LMNN, NCA  # noqa: E402
from skmetric.metrics import retrieval_report  # noqa: E402
from skmetric.neighbors import kneighbors  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((5, 6)) * 3
    y = np.arange(300) % 5
    X = rng.standard_normal((300, 6)) + centers[y]
    nca = NCA(n_components=3, max_iter=20, random_state=0).fit(X, y)
    return nca, X, y


def test_transform_equals_in_memory_on_uneven_row_and_feature_chunks(fitted):
    nca, X, _ = fitted
    Xd = da.from_array(X, chunks=((70, 100, 130), (2, 4)))
    Z = skd.transform(nca, Xd)
    assert Z.shape == (300, 3) and Z.chunks == ((70, 100, 130), (3,))
    np.testing.assert_allclose(Z.compute(), nca.transform(X), rtol=0, atol=1e-12)
    # float32 input keeps the estimator's own output dtype
    Z32 = skd.transform(nca, Xd.astype(np.float32))
    assert Z32.dtype == Z32.compute().dtype


def test_kneighbors_equals_in_memory_search_row_for_row(fitted):
    nca, X, _ = fitted
    ref, queries = nca.transform(X[:120]), nca.transform(X[120:])
    Qd = da.from_array(queries, chunks=(47, 3))
    for kwargs in ({}, {"metric": "cosine"}, {"metric": "mahalanobis", "L": np.eye(3) * 2}):
        dist, ind = dask.compute(*skd.kneighbors(Qd, ref, n_neighbors=4, **kwargs))
        d0, i0 = kneighbors(queries, ref, n_neighbors=4, **kwargs)
        np.testing.assert_array_equal(ind, i0)
        np.testing.assert_allclose(dist, d0, rtol=0, atol=1e-12)
        assert ind.dtype == np.int64


@pytest.mark.parametrize("average", ["query", "class", None])
def test_retrieval_report_equals_in_memory_report(fitted, average):
    nca, X, y = fitted
    Z = nca.transform(X)
    q_labels = y[100:].copy()
    q_labels[:3] = 99  # lone queries: no reference of their class
    ref, r_labels = Z[:100], y[:100]
    Qd = da.from_array(Z[100:], chunks=(61, 3))
    for labels in (q_labels, da.from_array(q_labels, chunks=90)):  # NumPy or dask labels
        got = skd.retrieval_report(Qd, labels, ref, r_labels, k=(1, 5), max_k=7,
                                   average=average)
        want = retrieval_report(Z[100:], q_labels, ref, r_labels, k=(1, 5), max_k=7,
                                average=average)
        assert got.keys() == want.keys()
        assert got["n_lone_queries"] == 3 and got["n_queries"] == 200
        for name in want:
            np.testing.assert_allclose(got[name], want[name], rtol=1e-12, err_msg=name)


def test_bad_inputs_say_what_to_do(fitted):
    nca, X, y = fitted
    with pytest.raises(TypeError, match="dask.array.from_array"):
        skd.transform(nca, X)
    Xd = da.from_array(X, chunks=(100, 6))
    with pytest.raises(TypeError, match=r"reference.compute\(\)"):
        skd.kneighbors(Xd, Xd, n_neighbors=2)
    with pytest.raises(ValueError, match="6 features"):
        skd.kneighbors(Xd, X[:, :4], n_neighbors=2)
    with pytest.raises(ValueError, match="exceeds the 10 references"):
        skd.kneighbors(Xd, X[:10], n_neighbors=11)
    with pytest.raises(TypeError, match="exclude_self"):
        skd.kneighbors(Xd, X, n_neighbors=2, exclude_self=True)
    for bad in (0, True, 2.5):  # the in-memory kneighbors' count rule
        with pytest.raises(ValueError, match="'n_neighbors' parameter of skmetric.dask"):
            skd.kneighbors(Xd, X, n_neighbors=bad)
    with pytest.raises(ValueError, match="one label per query"):
        skd.retrieval_report(Xd, y[:10], X, y)
    with pytest.raises(ValueError, match="average"):
        skd.retrieval_report(Xd, y, X, y, average="micro")
    unknown = Xd[Xd[:, 0] > 0]
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        skd.transform(nca, unknown)


def test_import_skmetric_does_not_import_dask():
    code = ("import sys, skmetric, skmetric.metrics, skmetric.neighbors; "
            "print('dask' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, check=True)
    assert out.stdout.strip() == "False"


def test_grid_search_over_nca_and_lmnn_on_a_local_cluster_matches_the_local_run():
    from distributed import Client, LocalCluster
    from joblib import parallel_backend

    X, y = load_iris(return_X_y=True)
    pipe = Pipeline([("scale", StandardScaler()), ("learner", NCA()),
                     ("knn", KNeighborsClassifier(n_neighbors=3))])
    grid = [{"learner": [NCA(max_iter=30, random_state=0)], "learner__n_components": [2, 3]},
            {"learner": [LMNN(max_iter=15, random_state=0)], "learner__n_neighbors": [2, 4]}]
    local = GridSearchCV(pipe, grid, cv=3, n_jobs=1).fit(X, y)
    local_cv = cross_validate(local.best_estimator_, X, y, cv=3)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        with parallel_backend("dask"):
            remote = GridSearchCV(pipe, grid, cv=3, n_jobs=-1).fit(X, y)
            remote_cv = cross_validate(local.best_estimator_, X, y, cv=3, n_jobs=-1)
        # the fits really ran on both worker processes
        ran_on = client.run(lambda: os.getpid())
    assert len(set(ran_on.values())) == 2
    assert remote.best_params_.keys() == local.best_params_.keys()
    assert repr(remote.best_params_) == repr(local.best_params_)
    np.testing.assert_allclose(remote.cv_results_["mean_test_score"],
                               local.cv_results_["mean_test_score"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(remote_cv["test_score"], local_cv["test_score"], atol=1e-12)
    assert remote.best_score_ == local.best_score_


_OUT_OF_CORE = textwrap.dedent("""
    import json
    import numpy as np, dask, dask.array as da
    from skmetric import NCA
    import skmetric.dask as skd
    from skmetric.metrics import retrieval_report
    from skmetric.neighbors import kneighbors

    def peak_mb():
        # VmHWM: this process's peak RSS. ru_maxrss would also count the parent's RSS at
        # the fork, which Linux carries over the exec.
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) for l in f if l.startswith("VmHWM")) / 1024

    n, d, rows = 2_000_000, 32, 25_000
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((4, d)).astype(np.float32) * 3
    y_ref = np.arange(200) % 4
    X_ref = rng.standard_normal((200, d)).astype(np.float32) + centers[y_ref]
    nca = NCA(n_components=8, max_iter=10, random_state=0).fit(X_ref, y_ref)
    ref = nca.transform(X_ref)

    def block(block_info=None):  # rows generated chunk by chunk: the input is never whole
        start, stop = block_info[None]["array-location"][0]
        r = np.random.default_rng(start)
        return (r.standard_normal((stop - start, d), dtype=np.float32)
                + centers[np.arange(start, stop) % 4])

    X = da.map_blocks(block, chunks=((rows,) * (n // rows), (d,)), dtype=np.float32,
                      meta=np.empty((0, 0), np.float32))
    labels = da.arange(n, chunks=rows) % 4
    assert X.nbytes == 256_000_000
    before = peak_mb()
    Z = skd.transform(nca, X)
    z_sum = Z.sum(axis=0).compute()
    after_transform = peak_mb()
    dist, ind = dask.compute(*skd.kneighbors(Z, ref, n_neighbors=1, n_threads=1,
                                             working_memory=8))
    report = skd.retrieval_report(Z, labels, ref, y_ref, k=(1, 3), max_k=5, working_memory=8)
    peak = peak_mb()
    s = slice(rows - 1000, rows + 1000)  # across a chunk boundary
    Zs = nca.transform(X[s].compute())
    d_s, i_s = kneighbors(Zs, ref, n_neighbors=1)
    r_s = retrieval_report(Zs, np.arange(n)[s] % 4, ref, y_ref, k=(1, 3), max_k=5)
    r_part = skd.retrieval_report(Z[s], labels[s], ref, y_ref, k=(1, 3), max_k=5)
    print(json.dumps({"before": before, "after_transform": after_transform, "peak": peak,
                      "n_queries": report["n_queries"],
                      "p1": report["precision_at_1"], "ind": bool((ind[s] == i_s).all()),
                      "dist": float(np.abs(dist[s] - d_s).max()),
                      "report_slice": r_part == r_s,
                      "z_sum_finite": bool(np.isfinite(z_sum).all())}))
""")


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM (Linux)")
def test_out_of_core_2m_rows_stay_under_1gb_and_match_the_in_memory_path():
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", _OUT_OF_CORE], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["peak"] < 1024, res
    # The 256 MB input was never whole in memory: transforming (and reducing) it all grew
    # the process by a fraction of its size. The later steps keep O(n) outputs (neighbours,
    # one float per query and metric for the report).
    assert res["after_transform"] - res["before"] < 100, res
    assert res["n_queries"] == 2_000_000 and res["p1"] > 0.99
    assert res["ind"] and res["dist"] < 1e-12 and res["report_slice"] and res["z_sum_finite"]
