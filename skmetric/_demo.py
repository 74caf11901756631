"""The skmetric demo: k-NN accuracy of each learner against the Euclidean baseline.

Run ``python -m skmetric --help`` for the options.
"""

import argparse
import sys
import time

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits, load_iris, load_wine
from sklearn.model_selection import StratifiedKFold, cross_validate
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from ._covariance import Covariance

DATASETS = {
    "digits": load_digits,
    "wine": load_wine,
    "iris": load_iris,
    "breast_cancer": load_breast_cancer,
}


def _learners():
    """Demo learners: name -> factory(random_state). Fast settings keep the demo < 2 min."""
    learners = {"Covariance": lambda rs: Covariance()}
    return learners


SCALERS = {"none": None, "standard": StandardScaler, "minmax": MinMaxScaler}


def _pipeline(learner, scale, n_neighbors):
    steps = [] if SCALERS[scale] is None else [SCALERS[scale]()]
    if learner is not None:
        steps.append(learner)
    steps.append(KNeighborsClassifier(n_neighbors=n_neighbors))
    return make_pipeline(*steps)


def run_demo(datasets, learners, folds=5, n_neighbors=3, scale="none", random_state=0,
             stream=None):
    """Cross-validate every learner on every dataset; return a list of result rows."""
    stream = sys.stderr if stream is None else stream
    factories = _learners()
    unknown = [name for name in learners if name not in factories]
    if unknown:
        raise ValueError(f"Unknown learner(s) {unknown}; choose from {sorted(factories)}.")
    unknown = [name for name in datasets if name not in DATASETS]
    if unknown:
        raise ValueError(f"Unknown dataset(s) {unknown}; choose from {sorted(DATASETS)}.")
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=random_state)
    rows = []
    jobs = [(d, name) for d in datasets for name in ["euclidean", *learners]]
    for step, (dataset, name) in enumerate(jobs, 1):
        X, y = DATASETS[dataset](return_X_y=True)
        learner = None if name == "euclidean" else factories[name](random_state)
        print(f"[{step}/{len(jobs)}] {dataset}: {name} ...", file=stream, end=" ", flush=True)
        start = time.perf_counter()
        res = cross_validate(_pipeline(learner, scale, n_neighbors), X, y, cv=cv)
        elapsed = time.perf_counter() - start
        print(f"{elapsed:.1f}s", file=stream, flush=True)
        rows.append({
            "dataset": dataset,
            "learner": name,
            "accuracy": float(np.mean(res["test_score"])),
            "std": float(np.std(res["test_score"])),
            "fit_time": float(np.mean(res["fit_time"])),
        })
    return rows


def format_table(rows, n_neighbors):
    """A markdown table of the rows, with the gain over the Euclidean baseline."""
    base = {r["dataset"]: r["accuracy"] for r in rows if r["learner"] == "euclidean"}
    lines = [
        f"| dataset | learner | {n_neighbors}-NN accuracy | vs euclidean | fit time (s) |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        gain = r["accuracy"] - base[r["dataset"]]
        lines.append(
            f"| {r['dataset']} | {r['learner']} | {r['accuracy']:.3f} ± {r['std']:.3f} | "
            f"{gain:+.3f} | {r['fit_time']:.3f} |"
        )
    return "\n".join(lines)


def _csv_list(text):
    return [item.strip() for item in text.split(",") if item.strip()]


def build_parser():
    learners = sorted(_learners())
    parser = argparse.ArgumentParser(
        prog="python -m skmetric",
        description="Compare k-NN accuracy in each learned metric with the Euclidean "
        "baseline, by stratified cross-validation on scikit-learn's bundled data.",
    )
    parser.add_argument("--datasets", type=_csv_list, default=["digits", "wine"],
                        help=f"comma-separated, from {sorted(DATASETS)} (default: digits,wine)")
    parser.add_argument("--learners", type=_csv_list, default=learners,
                        help=f"comma-separated, from {learners} (default: all)")
    parser.add_argument("--folds", type=int, default=5, help="CV folds (default: 5)")
    parser.add_argument("--neighbors", type=int, default=3, help="k of k-NN (default: 3)")
    parser.add_argument("--scale", choices=sorted(SCALERS), default="none",
                        help="feature scaling before the learner (default: none)")
    parser.add_argument("--random-state", type=int, default=0)
    parser.add_argument("--output", help="also write the table to this file (markdown)")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.folds < 2:
        build_parser().error("--folds must be at least 2")
    try:
        rows = run_demo(args.datasets, args.learners, args.folds, args.neighbors, args.scale,
                        args.random_state)
    except ValueError as exc:
        build_parser().error(str(exc))
    table = format_table(rows, args.neighbors)
    print(table)
    if args.output:
        with open(args.output, "w") as f:
            f.write(table + "\n")
    return 0
