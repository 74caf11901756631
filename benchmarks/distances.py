"""Benchmark skmetric's distance matrices and exact k-NN against scipy, scikit-learn and FAISS.

For each n (data n × d, float32 by default, d=64) it times

- the n × n Euclidean distance matrix: ``skmetric.pairwise_distances`` against
  ``scipy.spatial.distance.cdist``, ``sklearn.metrics.pairwise_distances`` and
  ``faiss.pairwise_distances`` (+ sqrt), skipped where the matrix cannot fit in memory;
- exact k-NN (k=10) of every point among all points: ``skmetric.kneighbors`` against
  ``sklearn.neighbors.NearestNeighbors(algorithm='brute')`` and ``faiss.IndexFlatL2``,

each in its own subprocess, reporting the best wall time of the repeats, the ratio to the
fastest reference and the peak extra resident memory of the call (ru_maxrss after minus
before, so the input data are not counted). Prints markdown tables.

    python benchmarks/distances.py                 # n in 1e3, 1e4, 1e5
    python benchmarks/distances.py --quick         # n in 1e3, 5e3
    python benchmarks/distances.py --sizes 2000,20000 --dtype float64
    python benchmarks/distances.py --device cuda   # also skmetric on torch-CUDA (GPU only)
"""

import argparse
import json
import os
import subprocess
import sys
import time

MATRIX_METHODS = ["skmetric", "scipy cdist", "sklearn pairwise_distances", "faiss pairwise"]
KNN_METHODS = ["skmetric", "sklearn NearestNeighbors", "faiss IndexFlatL2"]
REFERENCES = {"scipy cdist", "sklearn pairwise_distances", "faiss pairwise",
              "sklearn NearestNeighbors", "faiss IndexFlatL2"}


def _data(n, d, dtype, seed=0):
    import numpy as np

    return np.random.RandomState(seed).standard_normal((n, d)).astype(dtype)


def _run_case(task, method, n, d, k, dtype, repeats):
    """Child process: time one method on one size; print a JSON line."""
    import resource

    import numpy as np

    X = _data(n, d, dtype)
    call = _make_call(task, method, X, k)
    call_small = _make_call(task, method, X[:200], min(k, 199))
    call_small()  # imports and first-call set-up outside the measurement
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times, result = [], None
    for _ in range(repeats):
        result = None
        t0 = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - t0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    out = {"time": min(times), "peak_mib": peak / 1024}
    if task == "knn":
        ind = np.asarray(result[1] if isinstance(result, tuple) else result)
        np.save(_index_file(method, n), ind.astype(np.int64))
    print(json.dumps(out))


def _make_call(task, method, X, k):
    import numpy as np

    if method.startswith("skmetric"):
        if method == "skmetric torch-cuda":
            import torch

            Xt = torch.as_tensor(X, device="cuda")

            def gpu(fn):
                def run():
                    out = fn()
                    torch.cuda.synchronize()
                    return out
                return run
            if task == "matrix":
                from skmetric.distances import pairwise_distances
                return gpu(lambda: pairwise_distances(Xt, working_memory=4096))
            from skmetric.neighbors import kneighbors
            return gpu(lambda: tuple(a.cpu() for a in kneighbors(
                Xt, n_neighbors=k, exclude_self=False, working_memory=1024)))
        if task == "matrix":
            from skmetric.distances import pairwise_distances
            return lambda: pairwise_distances(X)
        from skmetric.neighbors import kneighbors
        return lambda: kneighbors(X, n_neighbors=k, exclude_self=False)
    if method == "scipy cdist":
        from scipy.spatial.distance import cdist
        return lambda: cdist(X, X)
    if method == "sklearn pairwise_distances":
        from sklearn.metrics import pairwise_distances
        return lambda: pairwise_distances(X)
    if method == "faiss pairwise":
        import faiss

        def faiss_matrix():
            D = faiss.pairwise_distances(X, X)
            np.maximum(D, 0, out=D)
            return np.sqrt(D, out=D)
        return faiss_matrix
    if method == "sklearn NearestNeighbors":
        from sklearn.neighbors import NearestNeighbors
        return lambda: NearestNeighbors(n_neighbors=k, algorithm="brute").fit(X).kneighbors(X)
    if method == "faiss IndexFlatL2":
        import faiss

        def faiss_knn():
            index = faiss.IndexFlatL2(X.shape[1])
            index.add(X)
            return index.search(X, k)
        return faiss_knn
    raise ValueError(method)


def _index_file(method, n):
    os.makedirs(os.path.join(os.path.dirname(__file__), "_out"), exist_ok=True)
    name = method.replace(" ", "_")
    return os.path.join(os.path.dirname(__file__), "_out", f"knn_{name}_{n}.npy")


def _spawn(task, method, n, args, repeats):
    cmd = [sys.executable, __file__, "--_child", task, method, str(n), str(args.dim),
           str(args.k), args.dtype, str(repeats)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _rounds(task, methods, n, args, rounds, inner):
    """Best time and largest peak of each method over interleaved rounds."""
    results = {}
    for r in range(rounds):
        for method in methods:
            print(f"{task} n={n} {method} (round {r + 1}/{rounds}) ...", file=sys.stderr,
                  flush=True)
            out = _spawn(task, method, n, args, inner)
            prev = results.get(method)
            if prev is None or "time" not in prev:
                results[method] = out
            elif "time" in out:
                prev["time"] = min(prev["time"], out["time"])
                prev["peak_mib"] = max(prev["peak_mib"], out["peak_mib"])
    return results


def _matrix_fits(n, dtype_bytes):
    """Whether the n × n matrix (float64 for cdist) fits in half the available memory."""
    try:
        avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        avail = 8 * 2**30
    return 2 * n * n * max(dtype_bytes, 8) < avail / 2


def _table(title, rows, methods):
    lines = [f"### {title}", "",
             "| n | method | time (s) | ratio to fastest reference | peak extra memory (MiB) |",
             "|---:|---|---:|---:|---:|"]
    for n, results in rows:
        ref_times = [r["time"] for m, r in results.items() if m in REFERENCES and "time" in r]
        best = min(ref_times) if ref_times else float("nan")
        for m in methods:
            r = results.get(m)
            if r is None:
                continue
            if "time" not in r:
                lines.append(f"| {n:,} | {m} | {r.get('error', 'skipped')} | | |")
                continue
            lines.append(f"| {n:,} | {m} | {r['time']:.3f} | {r['time'] / best:.2f} | "
                         f"{r['peak_mib']:.0f} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000",
                        help="comma-separated n (default 1000,10000,100000)")
    parser.add_argument("--quick", action="store_true", help="n in 1000,5000")
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--repeats", type=int, default=3,
                        help="interleaved rounds per case below n=50000")
    parser.add_argument("--large-repeats", type=int, default=1,
                        help="interleaved rounds per case from n=50000 (each is minutes)")
    parser.add_argument("--skip-matrix", action="store_true", help="k-NN only")
    parser.add_argument("--max-matrix-n", type=int, default=20000,
                        help="largest n for the n × n matrix (also limited by memory)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"],
                        help="'cuda' adds skmetric on torch-CUDA tensors")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per case")
    parser.add_argument("--_child", nargs=7, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._child:
        task, method, n, d, k, dtype, repeats = args._child
        _run_case(task, method, int(n), int(d), int(k), dtype, int(repeats))
        return
    import numpy as np

    sizes = [1000, 5000] if args.quick else [int(float(s)) for s in args.sizes.split(",")]
    skm = ["skmetric"] + (["skmetric torch-cuda"] if args.device == "cuda" else [])
    dtype_bytes = np.dtype(args.dtype).itemsize
    matrix_rows, knn_rows = [], []
    for n in sizes:
        # Rounds interleave the methods (a shared machine's load drifts); each case is a
        # fresh process. Small cases also repeat inside the process.
        rounds = args.large_repeats if n >= 50000 else args.repeats
        inner = 5 if n <= 2000 else 1
        if args.skip_matrix:
            pass
        elif n <= args.max_matrix_n and _matrix_fits(n, dtype_bytes):
            matrix_rows.append((n, _rounds("matrix", skm + MATRIX_METHODS[1:], n, args,
                                           rounds, inner)))
        else:
            matrix_rows.append((n, {"skmetric": {"error": "skipped: n × n does not fit"}}))
        results = _rounds("knn", skm + KNN_METHODS[1:], n, args, rounds, inner)
        knn_rows.append((n, results))
        ref = _index_file("faiss IndexFlatL2", n)
        for method in skm:
            if os.path.exists(ref) and os.path.exists(_index_file(method, n)):
                agree = np.mean(np.load(_index_file(method, n)) == np.load(ref))
                results[method]["agree"] = agree
    threads = os.cpu_count()
    print(f"Data: n × {args.dim} {args.dtype}, k={args.k}, {threads} CPU threads; "
          f"best of {args.repeats} interleaved rounds ({5 * args.repeats} runs for n <= 2000, "
          f"{args.large_repeats} round(s) from n=50000).\n")
    print(_table("n × n Euclidean distance matrix", matrix_rows, skm + MATRIX_METHODS[1:]))
    print()
    print(_table(f"Exact k-NN, k={args.k} (every point against all)", knn_rows,
                 skm + KNN_METHODS[1:]))
    print()
    for n, results in knn_rows:
        for method in skm:
            if "agree" in results.get(method, {}):
                print(f"- n={n:,}: {method} k-NN indices equal to FAISS's for "
                      f"{100 * results[method]['agree']:.3f}% of entries")


if __name__ == "__main__":
    main()
