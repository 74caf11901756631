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

from _common import Run, add_common_args

MATRIX_METHODS = ["skmetric", "scipy cdist", "sklearn pairwise_distances", "faiss pairwise"]
KNN_METHODS = ["skmetric", "sklearn NearestNeighbors", "faiss IndexFlatL2"]
REFERENCES = {"scipy cdist", "sklearn pairwise_distances", "faiss pairwise",
              "sklearn NearestNeighbors", "faiss IndexFlatL2"}
# Agreement: every distance matrix within MATRIX_ATOL of float64 SciPy on its first
# CHECK_ROWS rows (float32: the expanded form ||x||² - 2x·y + ||y||² loses up to
# sqrt(eps·||x||²) ≈ 5e-3 near zero distances, e.g. FAISS's diagonal; distances here are ~11);
# k-NN distances within KNN_RTOL (relative) and MATRIX_ATOL (absolute: the self-match at
# distance ~0 has the same float32 cancellation error) of FAISS's, and indices equal to FAISS's
# in at least KNN_MIN_SHARE of the entries (float32 near-ties may swap two neighbours).
CHECK_ROWS = 64
MATRIX_ATOL = {"float32": 1e-2, "float64": 1e-6}
KNN_RTOL = {"float32": 1e-4, "float64": 1e-9}
KNN_MIN_SHARE = 0.999


def _data(n, d, dtype, seed=0):
    import numpy as np

    return np.random.RandomState(seed).standard_normal((n, d)).astype(dtype)


def _run_case(task, method, n, d, k, dtype, repeats):
    """Child process: time one method on one size; print a JSON line.

    Besides the time, the child measures its own result's error against a float64 SciPy
    reference on the first rows (distance matrix) or saves its neighbour indices and
    distances (k-NN), so the parent can check that every side computed the same thing.
    """
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
        dist, ind = result
        np.save(_index_file(method, n), np.asarray(ind).astype(np.int64))
        dist = np.asarray(dist, dtype=np.float64)
        if method.startswith("faiss"):  # FAISS returns squared distances
            dist = np.sqrt(np.maximum(dist, 0))
        np.save(_index_file(method, n, "dist"), dist)
    else:
        from scipy.spatial.distance import cdist

        rows = min(n, CHECK_ROWS)
        ref = cdist(X[:rows].astype(np.float64), X.astype(np.float64))
        out["max_abs_err"] = float(np.max(np.abs(np.asarray(result[:rows]) - ref)))
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
            return gpu(lambda: tuple(a.cpu().numpy() for a in kneighbors(
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


def _index_file(method, n, what="ind"):
    os.makedirs(os.path.join(os.path.dirname(__file__), "_out"), exist_ok=True)
    name = method.replace(" ", "_")
    return os.path.join(os.path.dirname(__file__), "_out", f"knn_{what}_{name}_{n}.npy")


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


def _table_rows(rows, methods):
    out = []
    for n, results in rows:
        ref_times = [r["time"] for m, r in results.items() if m in REFERENCES and "time" in r]
        best = min(ref_times) if ref_times else float("nan")
        for m in methods:
            r = results.get(m)
            if r is None:
                continue
            if "time" not in r:
                out.append([f"{n:,}", m, r.get("error", "skipped"), None, None])
                continue
            out.append([f"{n:,}", m, f"{r['time']:.3f}", f"{r['time'] / best:.2f}",
                        f"{r['peak_mib']:.0f}"])
    return out


COLUMNS = ["n", "method", "time (s)", "ratio to fastest reference", "peak extra memory (MiB)"]


def _check_matrix(run, n, results, dtype):
    for method, r in results.items():
        if "max_abs_err" in r:
            run.check(f"n={n} {method} distance matrix vs float64 scipy (first "
                      f"{CHECK_ROWS} rows)", r["max_abs_err"] <= MATRIX_ATOL[dtype],
                      f"max abs error {r['max_abs_err']:.2e} <= {MATRIX_ATOL[dtype]:g}")


def _check_knn(run, n, methods, dtype):
    """Every side's neighbour distances and indices against FAISS's (or scikit-learn's)."""
    import numpy as np

    ref_name = next((m for m in ("faiss IndexFlatL2", "sklearn NearestNeighbors")
                     if os.path.exists(_index_file(m, n))), None)
    if ref_name is None:
        run.note(f"n={n}: no reference k-NN finished, nothing to compare against")
        return
    ref_ind = np.load(_index_file(ref_name, n))
    ref_dist = np.load(_index_file(ref_name, n, "dist"))
    for method in methods:
        if method == ref_name or not os.path.exists(_index_file(method, n)):
            continue
        run.check_close(f"n={n} {method} k-NN distances vs {ref_name}",
                        np.load(_index_file(method, n, "dist")), ref_dist,
                        rtol=KNN_RTOL[dtype], atol=MATRIX_ATOL[dtype])
        run.check_same(f"n={n} {method} k-NN indices vs {ref_name}",
                       np.load(_index_file(method, n)), ref_ind, min_share=KNN_MIN_SHARE)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000",
                        help="comma-separated n (default 1000,10000,100000)")
    parser.add_argument("--quick", action="store_true",
                        help="n = 1000 only, 1 round (the test suite's smoke run)")
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
    add_common_args(parser)
    args = parser.parse_args(argv)
    if args._child:
        task, method, n, d, k, dtype, repeats = args._child
        _run_case(task, method, int(n), int(d), int(k), dtype, int(repeats))
        return
    import numpy as np

    run = Run("distances", args)
    if args.quick:
        sizes, args.repeats = [1000], 1
    else:
        sizes = [int(float(s)) for s in args.sizes.split(",")]
    skm = ["skmetric"] + (["skmetric torch-cuda"] if args.device == "cuda" else [])
    dtype_bytes = np.dtype(args.dtype).itemsize
    matrix_rows, knn_rows = [], []
    for n in sizes:
        # Rounds interleave the methods (a shared machine's load drifts); each case is a
        # fresh process. Small cases also repeat inside the process.
        rounds = args.large_repeats if n >= 50000 else args.repeats
        inner = 5 if n <= 2000 and not args.quick else 1
        if args.skip_matrix:
            pass
        elif n <= args.max_matrix_n and _matrix_fits(n, dtype_bytes):
            results = _rounds("matrix", skm + MATRIX_METHODS[1:], n, args, rounds, inner)
            _check_matrix(run, n, results, args.dtype)
            matrix_rows.append((n, results))
        else:
            matrix_rows.append((n, {"skmetric": {"error": "skipped: n × n does not fit"}}))
        for method in skm + KNN_METHODS[1:]:  # no stale files from an earlier run
            for what in ("ind", "dist"):
                if os.path.exists(_index_file(method, n, what)):
                    os.remove(_index_file(method, n, what))
        results = _rounds("knn", skm + KNN_METHODS[1:], n, args, rounds, inner)
        _check_knn(run, n, skm + KNN_METHODS[1:], args.dtype)
        knn_rows.append((n, results))
    threads = os.cpu_count()
    caption = (f"Data: n × {args.dim} {args.dtype}, k={args.k}, {threads} CPU threads; best of "
               f"{args.repeats} interleaved rounds ({5 * args.repeats} runs for n <= 2000, "
               f"{args.large_repeats} round(s) from n=50000). Agreement checked before the "
               f"ratios: matrices within {MATRIX_ATOL[args.dtype]:g} of float64 SciPy, k-NN "
               f"distances within rtol {KNN_RTOL[args.dtype]:g} (atol "
               f"{MATRIX_ATOL[args.dtype]:g}) of FAISS and indices equal in "
               f">= {100 * KNN_MIN_SHARE:.1f}% of entries.")
    print(caption + "\n")
    if matrix_rows:
        print("### n × n Euclidean distance matrix\n")
        print(run.table("matrix", "n × n Euclidean distance matrix", COLUMNS,
                        _table_rows(matrix_rows, skm + MATRIX_METHODS[1:]), caption))
        print()
    title = f"Exact k-NN, k={args.k} (every point against all)"
    print(f"### {title}\n")
    print(run.table("knn", title, COLUMNS, _table_rows(knn_rows, skm + KNN_METHODS[1:]),
                    caption))
    run.finish()


if __name__ == "__main__":
    main()
