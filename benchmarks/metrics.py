"""Benchmark skmetric's retrieval metrics against pytorch-metric-learning's AccuracyCalculator.

Both compute precision@1, R-precision and MAP@R of n embeddings (dimension 128, 100 classes,
so R is about n/100) against each other, leave-one-out. PML searches the neighbours with
FAISS (``IndexFlatL2``, exact) and keeps the whole (n, R) neighbour table in memory;
skmetric searches block of queries by block through :func:`skmetric.neighbors.kneighbors`
and keeps only per-query scores, so its memory is set by ``working_memory``.

Each measurement runs in a fresh subprocess: time of the metric call, and the rise of the
process's peak resident set size (Linux ``ru_maxrss``) over its peak after building the
embeddings. The values of both libraries are compared (they must agree).

``--threads T`` limits every side alike: the child process is pinned to T CPU cores
(``os.sched_setaffinity``, which also bounds skmetric's own query-block threads), and
BLAS/OpenMP (threadpoolctl), torch and FAISS get T threads. Before the table, the values of
every skmetric method are asserted equal to PML's (``VALUE_ATOL``).

Run ``.venv/bin/python benchmarks/metrics.py [--sizes 10000,100000] [--working-memory 256]
[--methods pml,skmetric-brute,skmetric-faiss,skmetric-torch] [--quick] [--record]``.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from _common import Run, add_common_args

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# The metrics of both libraries are means of per-query scores computed from the same exact
# float32 search; they agree to float32 rounding unless a neighbour near-tie flips.
VALUE_ATOL = 1e-5

DIM, N_CLASSES = 128, 100
# skmetric-brute: the exact blockwise search of skmetric.neighbors on NumPy arrays;
# skmetric-faiss: the same metrics with kneighbors(backend="faiss") (exact flat index);
# skmetric-torch: the brute search on torch CPU tensors (not run by default).
METHODS = ("pml", "skmetric-brute", "skmetric-faiss")


def _embeddings(n, seed=0):
    """Float32 blobs made without a float64 temporary, so the baseline peak is the data."""
    rng = np.random.default_rng(seed)
    y = rng.integers(N_CLASSES, size=n)
    centers = rng.standard_normal((N_CLASSES, DIM), dtype=np.float32) * 0.6
    X = rng.standard_normal((n, DIM), dtype=np.float32)
    X += centers[y]
    return X, y


def _peak_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _limit_threads(threads):
    """Pin this process to ``threads`` cores and size every thread pool to match."""
    import torch
    from threadpoolctl import threadpool_limits

    if hasattr(os, "sched_setaffinity"):
        cores = sorted(os.sched_getaffinity(0))[:threads]
        os.sched_setaffinity(0, cores)
    torch.set_num_threads(threads)
    try:
        import faiss

        faiss.omp_set_num_threads(threads)
    except ImportError:
        pass
    return threadpool_limits(threads)


def _child(method, n, working_memory, threads):
    _limit_threads(threads)
    import torch

    X, y = _embeddings(n)
    if method == "pml":
        import logging

        from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator

        logging.getLogger("PML").setLevel(logging.ERROR)
        calc = AccuracyCalculator(
            include=("precision_at_1", "r_precision", "mean_average_precision_at_r"),
            k="max_bin_count", device=torch.device("cpu"))
        base = _peak_mib()
        start = time.perf_counter()
        res = calc.get_accuracy(X, y)
        elapsed = time.perf_counter() - start
        values = {"precision_at_1": res["precision_at_1"], "r_precision": res["r_precision"],
                  "map_at_r": res["mean_average_precision_at_r"]}
    else:
        from skmetric.metrics import retrieval_report

        data = torch.from_numpy(X) if method == "skmetric-torch" else X
        backend = "faiss" if method == "skmetric-faiss" else "brute"
        base = _peak_mib()
        start = time.perf_counter()
        res = retrieval_report(data, y, k=1, working_memory=working_memory, backend=backend)
        elapsed = time.perf_counter() - start
        values = {key: res[key] for key in ("precision_at_1", "r_precision", "map_at_r")}
    print(json.dumps({"time": elapsed, "peak_mib": _peak_mib() - base, "values": values,
                      "data_mib": X.nbytes / 2**20}))


def _run_child(method, n, working_memory, threads):
    out = subprocess.run(
        [sys.executable, __file__, "--child", method, "--sizes", str(n),
         "--threads", str(threads)]
        + ([] if working_memory is None else ["--working-memory", str(working_memory)]),
        capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _measure(methods, n, working_memory, threads, repeats):
    """Best time and largest peak of each method; repeats interleave the methods, so a
    burst of load on a shared machine hits them alike."""
    runs = {m: [] for m in methods}
    for _ in range(repeats):
        for m in methods:
            runs[m].append(_run_child(m, n, working_memory, threads))
    results = {}
    for m, rs in runs.items():
        results[m] = min(rs, key=lambda r: r["time"])
        results[m]["peak_mib"] = max(r["peak_mib"] for r in rs)
    return results


COLUMNS = ["n", "library", "time (s)", "speed-up vs PML", "peak memory rise (MiB)",
           "embeddings (MiB)", "MAP@R", "max abs diff vs PML"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--working-memory", type=float, default=None,
                        help="skmetric's working_memory in MiB (default: the library's)")
    parser.add_argument("--threads", type=int, default=2,
                        help="cores and threads of every side (default 2)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    add_common_args(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.threads = "2000", 1
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.child:
        _child(args.child, sizes[0], args.working_memory, args.threads)
        return
    run = Run("metrics", args)
    methods = args.methods.split(",")
    try:
        import pytorch_metric_learning  # noqa: F401
    except ImportError:
        methods = [m for m in methods if m != "pml"]
        run.note("pytorch-metric-learning is not installed: no PML rows, no speed-ups")
    caption = (f"precision@1 + R-precision + MAP@R, leave-one-out; dim {DIM}, {N_CLASSES} "
               f"classes, every side pinned to {args.threads} core(s) with {args.threads} "
               f"thread(s), skmetric working_memory={args.working_memory} MiB; values asserted "
               f"equal to PML's within {VALUE_ATOL:g} before the speed-ups")
    print(caption + "\n")
    rows = []
    for n in sizes:
        results = _measure(methods, n, args.working_memory, args.threads, args.repeats)
        ref = results.get("pml")
        for m, r in results.items():
            diff = None
            if ref and m != "pml":
                keys = sorted(ref["values"])
                diff = run.check_close(f"n={n} {m} metrics vs PML",
                                       [r["values"][k] for k in keys],
                                       [ref["values"][k] for k in keys], rtol=0,
                                       atol=VALUE_ATOL)
            speed = f"{ref['time'] / r['time']:.2f}×" if ref else None
            rows.append([n, m, f"{r['time']:.2f}", speed, f"{r['peak_mib']:.0f}",
                         f"{r['data_mib']:.0f}", f"{r['values']['map_at_r']:.4f}",
                         None if diff is None else f"{diff:.1e}"])
    print(run.table("metrics", "Retrieval metrics against PML's AccuracyCalculator", COLUMNS,
                    rows, caption))
    run.finish()


if __name__ == "__main__":
    main()
