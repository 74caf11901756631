"""LMNN at equal work: the objective each library reaches, and the time to reach the same one.

skmetric's LMNN runs L-BFGS and metric-learn's (0.7.0) runs gradient descent with an adaptive
step; they stop on different rules, so their fit times alone compare different amounts of
work. This script fits both on the same data with the same objective (``init='identity'``,
so both choose the target neighbours in the input space; ``n_neighbors=3``,
``regularization=0.5``), evaluates both final maps with one exact objective function
(skmetric's ``_lmnn_objective``, the same formula as metric-learn's ``_loss_grad``), and
reports

- the objective each side reached and its total fit time;
- the time skmetric took to first reach an objective at or below metric-learn's final one
  (from its per-iteration trace), i.e. the time to do the same work.

Agreement, asserted before the ratios: skmetric's final objective is no more than
``OBJECTIVE_RTOL`` above metric-learn's (else "time to the same objective" is undefined),
and the 3-NN accuracies of the two maps (hold-out split) are within ``ACC_POINTS`` points.

metric-learn runs in ``benchmarks/.ml-venv`` (see classical.py). ``--quick`` (and any run
where that environment is missing) runs skmetric only and prints why the metric-learn rows
are missing.

    python benchmarks/lmnn_equal_work.py [--datasets wine,breast_cancer] [--quick] [--record]
"""

import argparse
import json
import subprocess
import sys
import time

import numpy as np
from _common import Run, add_common_args
from sklearn import datasets as sk_datasets
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import MinMaxScaler
from threadpoolctl import threadpool_limits

import skmetric
from skmetric.supervised._lmnn import _lmnn_objective, _select_target_neighbors

OBJECTIVE_RTOL = 0.01
ACC_POINTS = 2.0
PARAMS = {"n_neighbors": 3, "init": "identity", "regularization": 0.5, "max_iter": 1000}


class _TracedLMNN(skmetric.LMNN):
    """skmetric's LMNN recording (seconds since fit began, objective) at every iteration."""

    def fit(self, X, y):
        self.trace_, self._t0 = [], time.perf_counter()
        return super().fit(X, y)

    def _report(self, it, objective, active, t0):
        self.trace_.append((time.perf_counter() - self._t0, float(objective)))


def _data(name):
    X, y = getattr(sk_datasets, f"load_{name}")(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
    scaler = MinMaxScaler().fit(Xtr)
    return scaler.transform(Xtr), scaler.transform(Xte), ytr, yte


def objective(L, X, y, n_neighbors):
    """The LMNN objective of map ``L`` with target neighbours chosen in the input space."""
    codes = np.unique(y, return_inverse=True)[1]
    targets = _select_target_neighbors(X, codes, n_neighbors)
    return float(_lmnn_objective(np.asarray(L, dtype=float), X, codes, targets,
                                 PARAMS["regularization"])[0])


def _accuracy(L, Xtr, Xte, ytr, yte):
    knn = KNeighborsClassifier(3).fit(Xtr @ L.T, ytr)
    return float(knn.score(Xte @ L.T, yte))


def _metric_learn(Xtr, ytr, threads, timeout):
    from classical import ML_WORKER, ensure_ml_venv

    python, reason = ensure_ml_venv(sys.stderr)
    if python is None:
        return None, reason
    job = {"fit": {"class": "LMNN", "kwargs": {**PARAMS, "random_state": 0},
                   "X": Xtr.tolist(), "y": ytr.tolist()}, "threads": threads}
    done = subprocess.run([str(python), str(ML_WORKER)], input=json.dumps(job),
                          capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        return None, f"metric-learn worker failed: {done.stderr.strip()[-200:]}"
    return json.loads(done.stdout), None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="wine,breast_cancer")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-metric-learn", action="store_true")
    parser.add_argument("--ml-timeout", type=float, default=3600)
    add_common_args(parser)
    args = parser.parse_args(argv)
    run = Run("lmnn_equal_work", args)
    datasets = ["iris"] if args.quick else args.datasets.split(",")
    use_ml = not (args.quick or args.no_metric_learn)
    if not use_ml:
        run.note("metric-learn side not run (--quick / --no-metric-learn): skmetric rows only, "
                 "no ratios")
    rows = []
    for name in datasets:
        Xtr, Xte, ytr, yte = _data(name)
        with threadpool_limits(args.threads):
            # prior_strength=0: metric-learn's objective (skmetric's default pulls toward init).
            ours = _TracedLMNN(**PARAMS, random_state=0, prior_strength=0)
            start = time.perf_counter()
            ours.fit(Xtr, ytr)
            t_ours = time.perf_counter() - start
        f_ours = objective(ours.components_, Xtr, ytr, PARAMS["n_neighbors"])
        run.check_close(f"{name}: skmetric objective_ vs the shared objective function",
                        ours.objective_, f_ours, rtol=1e-9)
        acc_ours = _accuracy(ours.components_, Xtr, Xte, ytr, yte)
        ml, reason = _metric_learn(Xtr, ytr, args.threads, args.ml_timeout) if use_ml else (
            None, "not run")
        if ml is None:
            if use_ml:
                run.note(f"{name}: metric-learn rows missing: {reason}")
            rows.append([name, f"{f_ours:.6g}", None, f"{t_ours:.3f}", None, None, None,
                         ours.n_iter_, None, f"{acc_ours:.3f}", None])
            continue
        L_ml = np.asarray(ml["components"])
        f_ml = objective(L_ml, Xtr, ytr, PARAMS["n_neighbors"])
        acc_ml = _accuracy(L_ml, Xtr, Xte, ytr, yte)
        run.check(f"{name}: skmetric reaches metric-learn's objective",
                  f_ours <= f_ml * (1 + OBJECTIVE_RTOL),
                  f"skmetric {f_ours:.6g} vs metric-learn {f_ml:.6g} "
                  f"(allowed {100 * OBJECTIVE_RTOL:g}% above)")
        run.check(f"{name}: 3-NN hold-out accuracy, skmetric vs metric-learn",
                  abs(acc_ours - acc_ml) * 100 <= ACC_POINTS,
                  f"{acc_ours:.3f} vs {acc_ml:.3f} (allowed {ACC_POINTS} points)")
        reached = next((t for t, f in ours.trace_ if f <= f_ml), None)
        if reached is None:  # the final evaluation met it, not an iterate's
            reached = t_ours
        rows.append([name, f"{f_ours:.6g}", f"{f_ml:.6g}", f"{t_ours:.3f}",
                     f"{ml['fit_time']:.3f}", f"{reached:.3f}",
                     f"{reached / ml['fit_time']:.3f}", ours.n_iter_, ml["n_iter"],
                     f"{acc_ours:.3f}", f"{acc_ml:.3f}"])
    columns = ["dataset", "skmetric objective", "metric-learn objective", "skmetric fit (s)",
               "metric-learn fit (s)", "skmetric time to metric-learn's objective (s)",
               "ratio at equal objective", "skmetric iterations", "metric-learn iterations",
               "skmetric 3-NN acc", "metric-learn 3-NN acc"]
    caption = (f"LMNN (n_neighbors=3, init='identity', regularization=0.5), MinMaxScaler, "
               f"70/30 stratified split, {args.threads} thread(s); objectives evaluated by one "
               "exact function; ratio = skmetric's time to reach metric-learn's final "
               "objective / metric-learn's fit time")
    print(caption + "\n")
    print(run.table("lmnn", "LMNN at equal objective", columns, rows, caption))
    run.finish()


if __name__ == "__main__":
    main()
