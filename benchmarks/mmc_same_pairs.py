"""MMC on the very same pairs: skmetric against metric-learn 0.7.0.

``classical.py`` lets each library draw its own constraints, so its MMC rows differ by the
draw as much as by the algorithm. Here one set of pairs per dataset (skmetric's
``Constraints.pairs``, 20 * n_classes**2 of each kind, on the MinMax-scaled training part
of a stratified 3-fold split) goes to both ``MMC(tol=1e-6)`` fits, so the rows compare the
algorithms alone: Xing et al.'s objective ``log sum_D ||d||_A - log(sum_S ||s||_A^2) / 2``
at the learned matrix (scale-free), 3-NN accuracy on the held-out part, steps and fit time.
metric-learn runs in ``benchmarks/.ml-venv`` (see ``classical.py``), both sides on 1 thread.

Agreement, asserted before the table: skmetric's ``solver='projections'`` (the authors'
algorithm, the one metric-learn runs) reaches metric-learn's objective within
``OBJECTIVE_RTOL`` and its accuracy within ``ACC_POINTS`` points. ``--quick`` (iris only)
and ``--no-metric-learn`` run skmetric alone and say so (no reference, no ratio).

Run ``.venv/bin/python benchmarks/mmc_same_pairs.py [--datasets iris,wine,breast_cancer,digits]
[--solvers projections,ratio] [--quick] [--record]``.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import Run, add_common_args
from sklearn import datasets as sk_datasets
from sklearn.model_selection import StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import MinMaxScaler
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DATASETS = ["iris", "wine", "breast_cancer", "digits"]
OBJECTIVE_RTOL = 1e-3
ACC_POINTS = 2.0


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
    parser.add_argument("--no-metric-learn", action="store_true")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    add_common_args(parser)
    args = parser.parse_args(argv)
    if args.worker:
        _metric_learn_worker(json.loads(args.worker))
        return
    from classical import ensure_ml_venv

    from skmetric import MMC

    run = Run("mmc_same_pairs", args)
    if args.quick:
        args.datasets, args.no_metric_learn = "iris", True
    solvers = args.solvers.split(",")
    with tempfile.TemporaryDirectory() as folder:
        paths = {d: str(_save_pairs(d, folder)) for d in args.datasets.split(",")}
        ml, python, reason = {}, None, "--quick / --no-metric-learn"
        if not args.no_metric_learn:
            python, reason = ensure_ml_venv(sys.stderr)
        if python is not None:
            done = subprocess.run([str(python), __file__, "--worker", json.dumps(paths)],
                                  capture_output=True, text=True)
            ml = json.loads(done.stdout) if done.returncode == 0 else {}
            reason = None if ml else done.stderr.strip().splitlines()[-1]
        if not ml:
            run.note(f"metric-learn rows not run: {reason}")
        with threadpool_limits(1):
            ours = {(d, s): _evaluate(MMC, p, solver=s)
                    for d, p in paths.items() for s in solvers}
    rows = []
    for dataset in paths:
        ref = ml.get(dataset)
        if ref is not None and "projections" in solvers:
            mine = ours[dataset, "projections"]
            run.check_close(f"{dataset}: MMC objective, skmetric (projections) vs "
                            "metric-learn", mine["objective"], ref["objective"],
                            rtol=OBJECTIVE_RTOL, atol=0)
            gap = 100 * abs(mine["accuracy"] - ref["accuracy"])
            run.check(f"{dataset}: 3-NN accuracy, skmetric (projections) vs metric-learn",
                      gap <= ACC_POINTS, f"{gap:.1f} points apart (allowed {ACC_POINTS})")
        entries = [("metric-learn", ref)] + [(f"skmetric ({s})", ours[dataset, s])
                                             for s in solvers]
        for label, r in entries:
            if r is None:
                rows.append([dataset, label, f"not run: {reason}", None, None, None, None])
                continue
            ratio = f"{r['time'] / ref['time']:.2f}" if ref and label != "metric-learn" else None
            rows.append([dataset, label, f"{r['objective']:.4f}", f"{r['accuracy']:.3f}",
                         r["n_iter"], f"{r['time']:.2f}", ratio])
    print(run.table("mmc", "MMC on the same pairs",
                    ["dataset", "library (solver)", "objective", "3-NN accuracy", "steps",
                     "fit (s)", "fit time vs metric-learn"], rows))
    run.finish()


if __name__ == "__main__":
    main()
