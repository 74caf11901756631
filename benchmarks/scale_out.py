"""Scaling out: data-parallel deep training and Dask for the classical side.

Three measurements, each against its own baseline in the same run:

1. ``DistributedMetricEmbedder`` training steps per second on 1 process and on 2 CPU
   processes (gloo on 127.0.0.1; the same global batches), and on GPUs where CUDA is
   visible (``--gpus N``, nccl). Training time only: process start-up and the process
   group's rendezvous are excluded.
2. ``GridSearchCV`` over NCA and LMNN through ``joblib.parallel_backend("dask")`` on a
   ``distributed.LocalCluster`` of 1 and 2 worker processes, next to the local n_jobs=1 run.
3. The out-of-core pipeline of ``skmetric.dask`` (transform, 1-NN against 200 references,
   retrieval report) on an N x 32 float32 ``dask.array`` generated chunk by chunk: rows per
   second and peak resident memory of the process (``VmHWM``), in a subprocess.

Agreement, asserted before any ratio is printed (``_common.Run``):

1. every multi-process run took as many steps as the 1-process run, and trained the same
   network: its embedding of the training rows within ``DDP_ATOL`` of the 1-process one and
   its per-epoch training losses within ``DDP_LOSS_RTOL`` (float32 all-reduces sum in
   another order);
2. each Dask search found the local search's ``best_params_`` and the same mean CV score of
   every candidate (within ``CV_ATOL``);
3. on ``CHECK_ROWS`` rows from the first and the last chunk, the Dask transform equals
   ``nca.transform`` on the same rows in memory (``EMBED_ATOL``), the Dask 1-NN equals
   scikit-learn's brute-force ``NearestNeighbors`` on them (distances within
   ``KNN_RTOL``, indices equal in at least ``KNN_MIN_SHARE``: float32 near-ties), and the
   report's precision@1 equals the share of rows whose Dask 1-NN has their label.

    python benchmarks/scale_out.py [--quick] [--record] [--rows N] [--epochs N] [--gpus N]
"""

import argparse
import json
import os
import socket
import subprocess
import sys

import numpy as np
from _common import ROOT, Run, add_common_args

DDP_ATOL = 1e-4
DDP_LOSS_RTOL = 1e-4
CV_ATOL = 1e-9
EMBED_ATOL = 1e-5
KNN_RTOL = 1e-4
KNN_MIN_SHARE = 0.999
CHECK_ROWS = 2_000
CHUNK = 25_000


# ------------------------------------------------------------------ 1. data-parallel DDP
def _ddp_data():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(32), 32)
    X = (rng.standard_normal((y.size, 64)) + rng.standard_normal((32, 64))[y]).astype(
        np.float32)
    return X, y


def _ddp_worker(epochs, device_kind):
    import torch

    from skmetric.deep import DistributedMetricEmbedder
    from skmetric.deep.distributed import init_distributed

    rank = 0
    if "RANK" in os.environ:
        rank, _ = init_distributed("nccl" if device_kind == "cuda" else "gloo")
    torch.set_num_threads(1)
    device = f"cuda:{os.environ.get('LOCAL_RANK', 0)}" if device_kind == "cuda" else "cpu"
    X, y = _ddp_data()
    net = DistributedMetricEmbedder(module__hidden=(256, 256), embedding_dim=32,
                                    batch_size=128, samples_per_class=4,
                                    max_epochs=epochs + 1, random_state=0, verbose=0,
                                    device=device).fit(X, y)
    # skorch's per-epoch durations; the first epoch (allocations, first collectives) is
    # a warm-up.
    elapsed = sum(net.history[1:, "dur"])
    # this rank's steps (the shared history's "batches" hold every rank's records)
    steps = sum(e["train_batch_count"] for e in net.history[1:])
    if rank == 0:  # what the run trained, for the agreement check against 1 process
        print(json.dumps({"steps": steps, "seconds": elapsed,
                          "train_loss": list(net.history[:, "train_loss"]),
                          "embedding": net.transform(X).tolist()}))


def ddp_run(world, epochs, device_kind="cpu"):
    """Train on ``world`` processes; rank 0's steps, seconds, losses and embedding."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = []
    for rank in range(world):
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
        if world > 1:
            env.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                       MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        procs.append(subprocess.Popen(
            [sys.executable, __file__, "--ddp-worker", str(epochs), device_kind],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outs = [p.communicate(timeout=900) for p in procs]
    if any(p.returncode for p in procs):
        raise RuntimeError("\n".join(err[-2000:] for _, err in outs))
    return json.loads(outs[0][0].strip().splitlines()[-1])


def ddp_table(run, epochs, gpus):
    cases = [(1, "cpu"), (2, "cpu")] + ([(gpus, "cuda")] if gpus else [])
    results = {case: ddp_run(case[0], epochs, case[1]) for case in cases}
    base = results[(1, "cpu")]
    for (world, kind), res in results.items():
        if (world, kind) == (1, "cpu"):
            continue
        what = f"{world} {kind} process(es) vs 1 process"
        run.check_same(f"{what}: steps", res["steps"], base["steps"])
        run.check_close(f"{what}: per-epoch training loss", res["train_loss"],
                        base["train_loss"], rtol=DDP_LOSS_RTOL, atol=0)
        run.check_close(f"{what}: embedding of the {len(base['embedding'])} training rows",
                        res["embedding"], base["embedding"], rtol=0, atol=DDP_ATOL)
    base_rate = base["steps"] / base["seconds"]
    rows = []
    for (world, kind), res in results.items():
        rate = res["steps"] / res["seconds"]
        rows.append([world, kind, res["steps"], f"{rate:.1f}", f"{rate / base_rate:.2f}"])
    return run.table(
        "ddp", "Data-parallel training (DistributedMetricEmbedder)",
        ["processes", "device", "steps", "steps/s", "ratio vs 1 process"], rows,
        f"MLP 64-256-256-32, global batch 128 = 32 classes x 4, {epochs} timed epoch(s) "
        "after a warm-up epoch; gloo on 127.0.0.1 for CPU processes; the same global "
        f"batches on every side: embeddings agree within {DDP_ATOL:g}, losses within "
        f"rtol {DDP_LOSS_RTOL:g}")


# --------------------------------------------------------------- 2. Dask grid search
def _grid(quick):
    from skmetric import LMNN, NCA

    if quick:
        return [{"learner": [NCA(max_iter=20, random_state=0)],
                 "learner__n_components": [2, 4]},
                {"learner": [LMNN(max_iter=10, random_state=0)],
                 "learner__n_neighbors": [3]}]
    return [{"learner": [NCA(max_iter=50, random_state=0)],
             "learner__n_components": [2, 4, 6, 8]},
            {"learner": [LMNN(max_iter=30, random_state=0)],
             "learner__n_neighbors": [2, 3, 4, 5]}]


def grid_table(run, workers_list, quick):
    import time

    from distributed import Client, LocalCluster
    from joblib import parallel_backend
    from sklearn.datasets import load_wine
    from sklearn.model_selection import GridSearchCV
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from skmetric import NCA

    X, y = load_wine(return_X_y=True)
    pipe = Pipeline([("scale", StandardScaler()), ("learner", NCA()),
                     ("knn", KNeighborsClassifier(n_neighbors=3))])
    grid, cv = _grid(quick), 3 if quick else 5
    start = time.perf_counter()
    local = GridSearchCV(pipe, grid, cv=cv, n_jobs=1).fit(X, y)
    times = {"local n_jobs=1": time.perf_counter() - start}
    n_fits = cv * len(local.cv_results_["params"])
    for n in workers_list:
        with LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster):
            with parallel_backend("dask"):
                GridSearchCV(pipe, grid, cv=cv, n_jobs=-1).fit(X, y)  # warm the workers
                start = time.perf_counter()
                search = GridSearchCV(pipe, grid, cv=cv, n_jobs=-1).fit(X, y)
                times[f"dask, {n} worker(s)"] = time.perf_counter() - start
        what = f"dask, {n} worker(s) vs local"
        run.check(f"{what}: best_params_",
                  repr(search.best_params_) == repr(local.best_params_),
                  f"{search.best_params_} vs {local.best_params_}")
        run.check_close(f"{what}: mean CV score of each of the {n_fits // cv} candidates",
                        search.cv_results_["mean_test_score"],
                        local.cv_results_["mean_test_score"], rtol=0, atol=CV_ATOL)
    base = times["local n_jobs=1"]
    rows = [[name, f"{seconds:.2f}", f"{seconds / base:.2f}"]
            for name, seconds in times.items()]
    return run.table(
        "grid", f"GridSearchCV over NCA and LMNN (wine, {n_fits // cv} candidates x {cv} "
        "folds)", ["run", f"seconds ({n_fits} fits)", "ratio vs local n_jobs=1"], rows,
        "joblib.parallel_backend('dask') on a LocalCluster of 1 thread per worker process, "
        "timed after a warm-up search; every Dask search found the local best_params_ and "
        f"the same mean CV score of every candidate (within {CV_ATOL:g})")


# ------------------------------------------------------------ 3. out-of-core pipeline
_OUT_OF_CORE = """
import json, sys, time
import numpy as np, dask, dask.array as da
from skmetric import NCA
import skmetric.dask as skd

n, d, rows, n_check = int(sys.argv[1]), 32, int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(0)
# Overlapping classes (precision@1 about 0.77): the report's check below compares a
# value that a mislabelled or misweighted chunk would move, not 1.0 with 1.0.
centers = rng.standard_normal((4, d)).astype(np.float32) * 0.5
y_ref = np.arange(200) % 4
X_ref = rng.standard_normal((200, d)).astype(np.float32) + centers[y_ref]
nca = NCA(n_components=8, max_iter=10, random_state=0).fit(X_ref, y_ref)
ref = nca.transform(X_ref)

def block(block_info=None):
    start, stop = block_info[None]["array-location"][0]
    r = np.random.default_rng(start)
    return (r.standard_normal((stop - start, d), dtype=np.float32)
            + centers[np.arange(start, stop) % 4])

X = da.map_blocks(block, chunks=((rows,) * (n // rows), (d,)), dtype=np.float32,
                  meta=np.empty((0, 0), np.float32))
labels = da.arange(n, chunks=rows) % 4

def peak_mb():  # VmHWM: ru_maxrss would count the parent's RSS carried over the exec
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmHWM")) / 1024

base = peak_mb()
t0 = time.perf_counter()
X.sum(axis=0).compute()
t_gen = time.perf_counter() - t0
t0 = time.perf_counter()
skd.transform(nca, X).sum(axis=0).compute()
t_transform = time.perf_counter() - t0
peak_transform = peak_mb()
t0 = time.perf_counter()
Z = skd.transform(nca, X)
dist, ind = dask.compute(*skd.kneighbors(Z, ref, n_neighbors=1, n_threads=1,
                                         working_memory=8))
t_knn = time.perf_counter() - t0
t0 = time.perf_counter()
report = skd.retrieval_report(Z, labels, ref, y_ref, k=(1, 3), max_k=5, working_memory=8)
t_report = time.perf_counter() - t0
peak = peak_mb()
# After the timings: what the parent checks against the in-memory computation.
check = np.r_[np.arange(n_check // 2), np.arange(n - n_check // 2, n)]
print(json.dumps(dict(base=base, peak_transform=peak_transform, peak=peak, t_gen=t_gen,
                      t_transform=t_transform, t_knn=t_knn, t_report=t_report,
                      p1=report["precision_at_1"],
                      p1_from_knn=float(np.mean(y_ref[ind[:, 0]] == np.arange(n) % 4)),
                      check_rows=check.tolist(), X_check=X[check].compute().tolist(),
                      Z_check=Z[check].compute().tolist(), dist_check=dist[check].tolist(),
                      ind_check=ind[check].tolist(), X_ref=X_ref.tolist())))
"""


def out_of_core(n_rows, n_check=CHECK_ROWS):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", _OUT_OF_CORE, str(n_rows), str(CHUNK),
                          str(n_check)], env=env, capture_output=True, text=True,
                         timeout=1800)
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def check_out_of_core(run, res):
    """The Dask side against the same rows computed in memory (scikit-learn's brute k-NN)."""
    from sklearn.neighbors import NearestNeighbors

    from skmetric import NCA

    X_ref = np.asarray(res["X_ref"], dtype=np.float32)
    y_ref = np.arange(len(X_ref)) % 4
    # The subprocess's NCA, refitted here: the fit is deterministic (random_state=0).
    nca = NCA(n_components=8, max_iter=10, random_state=0).fit(X_ref, y_ref)
    X = np.asarray(res["X_check"], dtype=np.float32)
    n = len(X)
    Z = nca.transform(X)
    run.check_close(f"dask transform vs in-memory nca.transform on {n} rows (first and "
                    "last chunk)", res["Z_check"], Z, rtol=0, atol=EMBED_ATOL)
    ref = nca.transform(X_ref).astype(np.float64)
    dist, ind = NearestNeighbors(n_neighbors=1, algorithm="brute").fit(ref).kneighbors(
        Z.astype(np.float64))
    run.check_close(f"dask 1-NN distances vs scikit-learn brute force (float64) on {n} rows",
                    res["dist_check"], dist, rtol=KNN_RTOL, atol=KNN_RTOL)
    run.check_same(f"dask 1-NN indices vs scikit-learn brute force on {n} rows",
                   res["ind_check"], ind, min_share=KNN_MIN_SHARE)
    run.check_close("retrieval_report precision@1 vs the share of rows whose dask 1-NN has "
                    "their label", res["p1"], res["p1_from_knn"], rtol=0, atol=1e-12)


def out_of_core_table(run, rows):
    res = out_of_core(rows)
    check_out_of_core(run, res)
    table = run.table(
        "out_of_core", f"Out-of-core skmetric.dask on {rows:,} x 32 float32 rows",
        ["step", "seconds", "rows/s"],
        [[name, f"{res[key]:.2f}", f"{rows / res[key]:,.0f}"] for name, key in [
            ("generate the rows (baseline)", "t_gen"),
            ("generate + transform (NCA, 32 -> 8) + sum", "t_transform"),
            ("generate + transform + 1-NN of 200 refs", "t_knn"),
            ("generate + transform + retrieval_report (k=1,3; max_k=5)", "t_report")]],
        f"{rows * 32 * 4 / 1e6:.0f} MB generated chunk by chunk ({CHUNK:,} rows), "
        "working_memory=8 MiB, in a fresh subprocess")
    memory = run.table(
        "memory", "Peak resident memory of the out-of-core subprocess (VmHWM)",
        ["after", "MB"],
        [["imports and the NCA fit", f"{res['base']:.0f}"],
         ["transforming every row", f"{res['peak_transform']:.0f}"],
         ["the 1-NN and the report (their per-row results are held in memory)",
          f"{res['peak']:.0f}"]],
        f"{rows * 32 * 4 / 1e6:.0f} MB of input; precision@1 of the report "
        f"{res['p1']:.3f}")
    return table + "\n\n" + memory


# --------------------------------------------------------------------------- report
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--gpus", type=int, default=0, help="also time N CUDA processes")
    parser.add_argument("--ddp-worker", nargs=2, help=argparse.SUPPRESS)
    add_common_args(parser)
    args = parser.parse_args(argv)
    if args.ddp_worker:
        _ddp_worker(int(args.ddp_worker[0]), args.ddp_worker[1])
        return
    rows = 2 * CHUNK if args.quick else args.rows
    if rows % CHUNK:
        parser.error(f"--rows must be a multiple of {CHUNK:,} (the chunk size)")
    epochs = 1 if args.quick else args.epochs
    run = Run("scale_out", args)
    print("### Data-parallel training\n")
    print(ddp_table(run, epochs, args.gpus))
    print("\n### GridSearchCV over NCA and LMNN\n")
    print(grid_table(run, [1, 2], args.quick))
    print("\n### Out-of-core skmetric.dask\n")
    print(out_of_core_table(run, rows))
    run.finish(("numpy", "sklearn", "torch", "skorch", "dask", "distributed", "skmetric"))


if __name__ == "__main__":
    main()
