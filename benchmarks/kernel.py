"""Kernel PCA benchmark: skmetric.KernelPCA (exact and Nyström landmarks) vs scikit-learn.

Each case runs in its own subprocess so that its peak memory (ru_maxrss) is its own. Prints
markdown tables: fit+transform time and peak memory per n, and the k-NN accuracy of the
landmark version against the exact one on digits.

    python benchmarks/kernel.py                  # n in 2000, 10000, 50000
    python benchmarks/kernel.py --sizes 2000 --quick
"""

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np

EXACT_LIMIT_GB = 12.0  # the exact kernel (n² float64) is skipped above this


def _case(impl, n, d, n_components, n_landmarks):
    """Fit+transform one configuration; return time (s) and peak RSS (MB)."""
    from sklearn.decomposition import KernelPCA as SkKernelPCA

    from skmetric import KernelPCA

    X = np.random.RandomState(0).randn(n, d)
    params = dict(n_components=n_components, kernel="rbf", gamma=1.0 / d, random_state=0)
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    if impl == "sklearn":
        SkKernelPCA(**params).fit_transform(X)
    elif impl == "skmetric-exact":
        KernelPCA(**params).fit_transform(X)
    else:
        KernelPCA(**params, n_landmarks=n_landmarks).fit_transform(X)
    elapsed = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"time": elapsed, "peak_mb": peak, "base_mb": base_rss}


def _run_case(impl, n, d, n_components, n_landmarks):
    code = (
        "import json, sys; sys.path.insert(0, 'benchmarks');"
        "from kernel import _case;"
        f"print(json.dumps(_case({impl!r}, {n}, {d}, {n_components}, {n_landmarks})))"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if res.returncode != 0:
        return {"error": res.stderr.strip().splitlines()[-1] if res.stderr else "failed"}
    return json.loads(res.stdout.strip().splitlines()[-1])


def speed_table(sizes, d, n_components, n_landmarks):
    lines = [
        "| n | method | fit+transform (s) | peak memory (MB) | time vs sklearn exact |",
        "|---|---|---|---|---|",
    ]
    for n in sizes:
        kernel_gb = n * n * 8 / 1e9
        results = {}
        for impl in ("sklearn", "skmetric-exact", "skmetric-landmarks"):
            if impl != "skmetric-landmarks" and kernel_gb > EXACT_LIMIT_GB:
                results[impl] = {"skipped": f"needs {kernel_gb:.0f} GB for its kernel"}
                continue
            results[impl] = _run_case(impl, n, d, n_components, n_landmarks)
            print(f"  n={n} {impl}: {results[impl]}", file=sys.stderr, flush=True)
        ref = results["sklearn"].get("time")
        for impl, r in results.items():
            label = impl if impl != "skmetric-landmarks" else f"skmetric, {n_landmarks} landmarks"
            if "time" in r:
                ratio = f"{r['time'] / ref:.2f}" if ref else "n/a"
                lines.append(f"| {n} | {label} | {r['time']:.2f} | {r['peak_mb']:.0f} | {ratio} |")
            else:
                lines.append(f"| {n} | {label} | {r.get('skipped', r.get('error'))} | | |")
    return "\n".join(lines)


def accuracy_table(n_landmarks_list, n_components):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline

    from skmetric import KernelPCA

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    params = dict(n_components=n_components, kernel="rbf", gamma=0.02)

    def acc(**extra):
        pipe = make_pipeline(KernelPCA(**params, **extra), KNeighborsClassifier(3))
        return cross_val_score(pipe, X, y, cv=cv).mean()

    exact = acc()
    lines = [
        "| digits, 5-fold CV, 3-NN | accuracy | vs exact (points) |",
        "|---|---|---|",
        f"| exact kernel PCA | {exact:.4f} | |",
    ]
    for m in n_landmarks_list:
        for method in ("uniform", "kmeans++"):
            a = acc(n_landmarks=m, landmark_method=method, random_state=0)
            lines.append(f"| {m} landmarks ({method}) | {a:.4f} | {100 * (a - exact):+.2f} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=lambda s: [int(float(v)) for v in s.split(",")],
                        default=[2000, 10000, 50000])
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--n-components", type=int, default=10)
    parser.add_argument("--n-landmarks", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="small sizes only")
    args = parser.parse_args(argv)
    sizes = [s for s in args.sizes if s <= 2000] if args.quick else args.sizes
    print(f"## Kernel PCA (rbf, d={args.dim}, {args.n_components} components)\n")
    print(speed_table(sizes, args.dim, args.n_components, args.n_landmarks))
    print("\n## Landmark accuracy on digits\n")
    print(accuracy_table([200, 500] if not args.quick else [200], 30))


if __name__ == "__main__":
    main()
