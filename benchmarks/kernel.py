"""Kernel PCA benchmark: skmetric.KernelPCA (exact and Nyström landmarks) vs scikit-learn.

The exact version is compared with scikit-learn's ``KernelPCA``, the landmark version with
scikit-learn's ``Nystroem`` + ``PCA`` (the same approximation: the Nyström feature map,
centred, then its principal components). Each case runs in its own subprocess so that its
peak memory (ru_maxrss) is its own. Prints markdown tables: fit+transform time and peak
memory per n, and the k-NN accuracy of both landmark versions against the exact one on
digits.

Agreement, asserted before any ratio is printed: skmetric's exact embedding equals
scikit-learn's, and skmetric's landmark embedding equals ``Nystroem`` + ``PCA`` built on the
*same* landmarks (up to the sign of each component, ``EMBED_ATOL``), at every n up to
``CHECK_MAX_N`` (the smallest n above it); on digits, the two landmark versions (each with
its own random landmarks) are within ``ACC_POINTS`` points of k-NN accuracy.

    python benchmarks/kernel.py                  # n in 2000, 10000, 50000
    python benchmarks/kernel.py --quick          # n = 1000, 200 landmarks
"""

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np
from _common import Run, add_common_args

EXACT_LIMIT_GB = 12.0  # the exact kernel (n² float64) is skipped above this
EMBED_ATOL = 1e-8
CHECK_MAX_N = 5000
ACC_POINTS = 2.0
IMPLS = ("sklearn", "skmetric-exact", "sklearn-nystroem-pca", "skmetric-landmarks")


def _nystroem_pca(n_landmarks, n_components, gamma, random_state=0):
    from sklearn.decomposition import PCA
    from sklearn.kernel_approximation import Nystroem
    from sklearn.pipeline import make_pipeline

    # svd_solver="full": the exact principal components of the feature map, like skmetric's
    # eigendecomposition (the randomized solver is faster but inexact on flat spectra).
    return make_pipeline(
        Nystroem(kernel="rbf", gamma=gamma, n_components=n_landmarks,
                 random_state=random_state),
        PCA(n_components=n_components, svd_solver="full"))


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
    elif impl == "sklearn-nystroem-pca":
        _nystroem_pca(n_landmarks, n_components, params["gamma"]).fit_transform(X)
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


def check_embeddings(run, n, d, n_components, n_landmarks):
    """Assert skmetric == scikit-learn (exact) and == Nystroem + PCA on the same landmarks."""
    from sklearn.decomposition import KernelPCA as SkKernelPCA
    from sklearn.kernel_approximation import Nystroem

    from skmetric import KernelPCA

    X = np.random.RandomState(0).randn(n, d)
    params = dict(n_components=n_components, kernel="rbf", gamma=1.0 / d, random_state=0)
    if n * n * 8 / 1e9 <= EXACT_LIMIT_GB:
        run.check_close(f"n={n} exact embedding vs scikit-learn KernelPCA (signs aligned)",
                        *_aligned(KernelPCA(**params).fit_transform(X),
                                  SkKernelPCA(**params).fit_transform(X)), atol=EMBED_ATOL)
    ours = KernelPCA(**params, n_landmarks=n_landmarks)
    Z = ours.fit_transform(X)
    pipe = _nystroem_pca(n_landmarks, n_components, params["gamma"])
    pipe.steps[0] = ("nystroem", Nystroem(kernel="rbf", gamma=params["gamma"],
                                          n_components=n_landmarks).fit(ours.landmarks_))
    ref = pipe.steps[1][1].fit_transform(pipe.steps[0][1].transform(X))
    run.check_close(f"n={n} landmark embedding vs Nystroem + PCA on the same {n_landmarks} "
                    "landmarks (signs aligned)", *_aligned(Z, ref), atol=EMBED_ATOL)


def _aligned(ours, ref):
    signs = np.sign(np.sum(ours * ref, axis=0))
    signs[signs == 0] = 1
    return ours, ref * signs


def speed_table(run, sizes, d, n_components, n_landmarks):
    rows = []
    checked = False
    for n in sizes:
        if n <= CHECK_MAX_N or not checked:
            check_embeddings(run, n, d, n_components, n_landmarks)
            checked = True
        kernel_gb = n * n * 8 / 1e9
        results = {}
        for impl in IMPLS:
            if impl in ("sklearn", "skmetric-exact") and kernel_gb > EXACT_LIMIT_GB:
                results[impl] = {"skipped": f"needs {kernel_gb:.0f} GB for its kernel"}
                continue
            results[impl] = _run_case(impl, n, d, n_components, n_landmarks)
            print(f"  n={n} {impl}: {results[impl]}", file=sys.stderr, flush=True)
        ref = results["sklearn"].get("time")
        ref_ny = results["sklearn-nystroem-pca"].get("time")
        for impl, r in results.items():
            label = {"skmetric-landmarks": f"skmetric, {n_landmarks} landmarks",
                     "sklearn-nystroem-pca": f"sklearn Nystroem + PCA, {n_landmarks} "
                                             "landmarks"}.get(impl, impl)
            if "time" not in r:
                rows.append([n, label, r.get("skipped", r.get("error")), None, None, None])
                continue
            ratio = f"{r['time'] / ref:.2f}" if ref else None
            ratio_ny = (f"{r['time'] / ref_ny:.2f}" if ref_ny and "landmarks" in label
                        else None)
            rows.append([n, label, f"{r['time']:.2f}", f"{r['peak_mb']:.0f}", ratio, ratio_ny])
    return run.table("speed", "Kernel PCA fit+transform",
                     ["n", "method", "fit+transform (s)", "peak memory (MB)",
                      "time vs sklearn exact", "time vs sklearn Nystroem + PCA"], rows)


def accuracy_table(run, n_landmarks_list, n_components):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline

    from skmetric import KernelPCA

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    params = dict(n_components=n_components, kernel="rbf", gamma=0.02)

    def acc(first):
        return cross_val_score(make_pipeline(first, KNeighborsClassifier(3)), X, y,
                               cv=cv).mean()

    exact = acc(KernelPCA(**params))
    rows = [["exact kernel PCA", f"{exact:.4f}", None]]
    for m in n_landmarks_list:
        scores = {}
        for method in ("uniform", "kmeans++"):
            scores[method] = acc(KernelPCA(**params, n_landmarks=m, landmark_method=method,
                                           random_state=0))
            rows.append([f"{m} landmarks ({method})", f"{scores[method]:.4f}",
                         f"{100 * (scores[method] - exact):+.2f}"])
        ny = acc(_nystroem_pca(m, n_components, params["gamma"]))
        rows.append([f"{m} landmarks (sklearn Nystroem + PCA, uniform)", f"{ny:.4f}",
                     f"{100 * (ny - exact):+.2f}"])
        gap = 100 * abs(scores["uniform"] - ny)
        run.check(f"digits, {m} uniform landmarks: skmetric vs Nystroem + PCA accuracy",
                  gap <= ACC_POINTS, f"{gap:.2f} points apart (allowed {ACC_POINTS})")
    return run.table("accuracy", "Landmark accuracy on digits",
                     ["digits, 5-fold CV, 3-NN", "accuracy", "vs exact (points)"], rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=lambda s: [int(float(v)) for v in s.split(",")],
                        default=[2000, 10000, 50000])
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--n-components", type=int, default=10)
    parser.add_argument("--n-landmarks", type=int, default=1000)
    add_common_args(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.n_landmarks = [1000], 200
    run = Run("kernel", args)
    print(f"## Kernel PCA (rbf, d={args.dim}, {args.n_components} components)\n")
    print(speed_table(run, args.sizes, args.dim, args.n_components, args.n_landmarks))
    print("\n## Landmark accuracy on digits\n")
    print(accuracy_table(run, [200] if args.quick else [200, 500], 30))
    run.finish()


if __name__ == "__main__":
    main()
