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

Run ``.venv/bin/python benchmarks/scale_out.py [--quick] [--rows N] [--gpus N]``.
"""

import argparse
import datetime
import json
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# This file's folder leaves sys.path: its name would hide the `distributed` package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
sys.path.insert(0, str(ROOT))


# ------------------------------------------------------------------ 1. data-parallel DDP
def _ddp_worker(epochs, device_kind):
    import torch

    from skmetric.deep import DistributedMetricEmbedder
    from skmetric.deep.distributed import init_distributed

    rank = 0
    if "RANK" in os.environ:
        rank, _ = init_distributed("nccl" if device_kind == "cuda" else "gloo")
    torch.set_num_threads(1)
    device = f"cuda:{os.environ.get('LOCAL_RANK', 0)}" if device_kind == "cuda" else "cpu"
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(32), 32)
    X = (rng.standard_normal((y.size, 64)) + rng.standard_normal((32, 64))[y]).astype(
        np.float32)
    net = DistributedMetricEmbedder(module__hidden=(256, 256), embedding_dim=32,
                                    batch_size=128, samples_per_class=4,
                                    max_epochs=epochs + 1, random_state=0, verbose=0,
                                    device=device).fit(X, y)
    # skorch's per-epoch durations; the first epoch (allocations, first collectives) is
    # a warm-up.
    elapsed = sum(net.history[1:, "dur"])
    # this rank's steps (the shared history's "batches" hold every rank's records)
    steps = sum(e["train_batch_count"] for e in net.history[1:])
    if rank == 0:
        print(json.dumps({"steps": steps, "seconds": elapsed}))


def ddp_steps_per_second(world, epochs, device_kind="cpu"):
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
    result = json.loads(outs[0][0].strip().splitlines()[-1])
    return result["steps"] / result["seconds"], result["steps"]


# --------------------------------------------------------------- 2. Dask grid search
def grid_search_times(workers_list):
    from distributed import Client, LocalCluster
    from joblib import parallel_backend
    from sklearn.datasets import load_wine
    from sklearn.model_selection import GridSearchCV
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from skmetric import LMNN, NCA

    X, y = load_wine(return_X_y=True)
    pipe = Pipeline([("scale", StandardScaler()), ("learner", NCA()),
                     ("knn", KNeighborsClassifier(n_neighbors=3))])
    grid = [{"learner": [NCA(max_iter=50, random_state=0)],
             "learner__n_components": [2, 4, 6, 8]},
            {"learner": [LMNN(max_iter=30, random_state=0)],
             "learner__n_neighbors": [2, 3, 4, 5]}]
    start = time.perf_counter()
    local = GridSearchCV(pipe, grid, cv=5, n_jobs=1).fit(X, y)
    times = {"local n_jobs=1": time.perf_counter() - start}
    same = {}
    for n in workers_list:
        with LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster):
            with parallel_backend("dask"):
                GridSearchCV(pipe, grid, cv=5, n_jobs=-1).fit(X, y)  # warm the workers
                start = time.perf_counter()
                search = GridSearchCV(pipe, grid, cv=5, n_jobs=-1).fit(X, y)
                times[f"dask, {n} worker(s)"] = time.perf_counter() - start
        same[n] = repr(search.best_params_) == repr(local.best_params_)
    return times, same, 5 * 8


# ------------------------------------------------------------ 3. out-of-core pipeline
_OUT_OF_CORE = """
import json, sys, time
import numpy as np, dask, dask.array as da
from skmetric import NCA
import skmetric.dask as skd

n, d, rows = int(sys.argv[1]), 32, 25_000
rng = np.random.default_rng(0)
centers = rng.standard_normal((4, d)).astype(np.float32) * 3
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
print(json.dumps(dict(base=base, peak_transform=peak_transform, peak=peak, t_gen=t_gen,
                      t_transform=t_transform, t_knn=t_knn, t_report=t_report,
                      p1=report["precision_at_1"])))
"""


def out_of_core(n_rows):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", _OUT_OF_CORE, str(n_rows)], env=env,
                         capture_output=True, text=True, timeout=1800, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- report
def _versions():
    import dask
    import distributed
    import sklearn
    import torch

    return (f"Python {platform.python_version()}, torch {torch.__version__}, scikit-learn "
            f"{sklearn.__version__}, dask {dask.__version__}, distributed "
            f"{distributed.__version__}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--gpus", type=int, default=0, help="also time N CUDA processes")
    parser.add_argument("--ddp-worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ddp_worker:
        _ddp_worker(int(args.ddp_worker[0]), args.ddp_worker[1])
        return
    rows = 200_000 if args.quick else args.rows
    epochs = 1 if args.quick else args.epochs
    print(f"Measured {datetime.date.today()} on {platform.node()} ({os.cpu_count()} CPUs), "
          f"{_versions()}; load average at start {os.getloadavg()[0]:.1f}.\n")

    print("### Data-parallel training (DistributedMetricEmbedder, MLP 64-256-256-32, "
          "global batch 128 = 32 classes x 4)\n")
    print("| processes | device | steps | steps/s | ratio vs 1 process |")
    print("|---|---|---|---|---|")
    base = None
    for world, kind in [(1, "cpu"), (2, "cpu")] + ([(args.gpus, "cuda")] if args.gpus else []):
        rate, steps = ddp_steps_per_second(world, epochs, kind)
        base = base or rate
        print(f"| {world} | {kind} | {steps} | {rate:.1f} | {rate / base:.2f} |")

    print("\n### GridSearchCV over NCA and LMNN (wine, 8 candidates x 5 folds)\n")
    times, same, n_fits = grid_search_times([1, 2])
    print(f"| run | seconds ({n_fits} fits) | ratio vs local n_jobs=1 | same best_params_ |")
    print("|---|---|---|---|")
    local = times["local n_jobs=1"]
    for name, seconds in times.items():
        n = int(name.split(", ")[1][0]) if name.startswith("dask") else None
        print(f"| {name} | {seconds:.2f} | {seconds / local:.2f} | "
              f"{'—' if n is None else same[n]} |")

    print(f"\n### Out-of-core skmetric.dask on {rows:,} x 32 float32 rows "
          f"({rows * 32 * 4 / 1e6:.0f} MB, chunks of 25,000 rows)\n")
    res = out_of_core(rows)
    print("| step | seconds | rows/s |")
    print("|---|---|---|")
    for name, key in [("generate the rows (baseline)", "t_gen"),
                      ("generate + transform (NCA, 32 -> 8)", "t_transform"),
                      ("generate + transform + 1-NN of 200 refs", "t_knn"),
                      ("generate + transform + retrieval_report", "t_report")]:
        print(f"| {name} | {res[key]:.2f} | {rows / res[key]:,.0f} |")
    print(f"\nPeak resident memory: {res['base']:.0f} MB after imports, "
          f"{res['peak_transform']:.0f} MB after the transform, {res['peak']:.0f} MB at "
          f"the end (precision@1 {res['p1']:.3f}).")


if __name__ == "__main__":
    main()
