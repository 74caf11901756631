"""MMC on the very same pairs: skmetric against metric-learn 0.7.0.

``classical.py`` lets each library draw its own constraints, so its MMC rows differ by the
draw as much as by the algorithm. Here one set of pairs per dataset (skmetric's
``Constraints.pairs``, 20 * n_classes**2 of each kind, on the MinMax-scaled training part
of a stratified 3-fold split) goes to both ``MMC(tol=1e-6)`` fits, so the rows compare the
algorithms alone: Xing et al.'s objective ``log sum_D ||d||_A - log(sum_S ||s||_A^2) / 2``
at the learned matrix (scale-free), 3-NN accuracy on the held-out part, steps and fit time.
metric-learn runs in ``benchmarks/.ml-venv`` (see ``classical.py``), both sides on 1 thread.

Run ``.venv/bin/python benchmarks/mmc_same_pairs.py [--datasets iris,wine,breast_cancer,digits]
[--solvers projections,ratio]``.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn import datasets as sk_datasets
from sklearn.model_selection import StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import MinMaxScaler
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DATASETS = ["iris", "wine", "breast_cancer", "digits"]


def _objective(pairs, y_pairs, L):
    diff = (pairs[:, 0] - pairs[:, 1]) @ L.T
    sq = np.sum(diff**2, axis=1)
    return np.log(np.sqrt(sq[y_pairs == -1]).sum()) - 0.5 * np.log(sq[y_pairs == 1].sum())


def _evaluate(MMC, path, **params):
    """Fit MMC on the saved pairs; the objective, 3-NN accuracy, steps and fit time."""
    data = np.load(path)
    pairs = data["X_train"][data["pair_idx"]]
    start = time.perf_counter()
    mmc = MMC(tol=1e-6, **params).fit(pairs, data["y_pairs"])
    elapsed = time.perf_counter() - start
    L = mmc.components_
    knn = KNeighborsClassifier(3).fit(data["X_train"] @ L.T, data["y_train"])
    return {"objective": float(_objective(pairs, data["y_pairs"], L)),
            "accuracy": float(knn.score(data["X_test"] @ L.T, data["y_test"])),
            "n_iter": int(mmc.n_iter_), "time": elapsed}


def _save_pairs(dataset, folder):
    from skmetric import Constraints

    X, y = getattr(sk_datasets, f"load_{dataset}")(return_X_y=True)
    train, test = next(StratifiedKFold(3, shuffle=True, random_state=0).split(X, y))
    scaler = MinMaxScaler().fit(X[train])
    n_pairs = 20 * len(np.unique(y)) ** 2
    pair_idx, y_pairs = Constraints(y[train]).pairs(n_pairs, random_state=0)
    path = Path(folder) / f"{dataset}.npz"
    np.savez(path, X_train=scaler.transform(X[train]), X_test=scaler.transform(X[test]),
             y_train=y[train], y_test=y[test], pair_idx=pair_idx, y_pairs=y_pairs)
    return path


def _metric_learn_worker(paths):
    from metric_learn import MMC

    with threadpool_limits(1):
        print(json.dumps({name: _evaluate(MMC, path) for name, path in paths.items()}))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--solvers", default="projections,ratio")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        _metric_learn_worker(json.loads(args.worker))
        return
    from classical import ensure_ml_venv

    from skmetric import MMC

    with tempfile.TemporaryDirectory() as folder:
        paths = {d: str(_save_pairs(d, folder)) for d in args.datasets.split(",")}
        python, reason = ensure_ml_venv(sys.stderr)
        ml = {}
        if python is not None:
            done = subprocess.run([str(python), __file__, "--worker", json.dumps(paths)],
                                  capture_output=True, text=True)
            ml = json.loads(done.stdout) if done.returncode == 0 else {}
            reason = None if ml else done.stderr.strip().splitlines()[-1]
        with threadpool_limits(1):
            ours = {(d, s): _evaluate(MMC, p, solver=s)
                    for d, p in paths.items() for s in args.solvers.split(",")}
    print("| dataset | library (solver) | objective | 3-NN accuracy | steps | fit (s) |")
    print("|---|---|---|---|---|---|")
    for dataset in paths:
        rows = [("metric-learn", ml.get(dataset))]
        rows += [(f"skmetric ({s})", ours[dataset, s]) for s in args.solvers.split(",")]
        for label, r in rows:
            if r is None:
                print(f"| {dataset} | {label} | not run: {reason} | | | |")
                continue
            print(f"| {dataset} | {label} | {r['objective']:.4f} | {r['accuracy']:.3f} | "
                  f"{r['n_iter']} | {r['time']:.2f} |")


if __name__ == "__main__":
    main()
