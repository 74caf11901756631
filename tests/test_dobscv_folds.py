"""DOB-SCV folds of benchmarks/_pydml.py (``--cv dobscv``), checked against the definition.

DOB-SCV (Moreno-Torres, Sáez, Herrera 2012): per class, while samples are left, a random
one and its ``k - 1`` nearest same-class samples still left form a group whose ``i``-th
member goes to fold ``i``. The checks: the folds partition the data, each class is spread
over the folds within one sample, every group is its pick and the pick's nearest left
same-class samples (distances from scipy's ``cdist``), a brute-force re-implementation
draws the same groups, and the split is a function of the seed.
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from sklearn.datasets import load_iris, load_wine
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import MinMaxScaler

sys.path.append(str(Path(__file__).resolve().parents[1] / "benchmarks"))

import _pydml  # noqa: E402
import accuracy  # noqa: E402


def _blobs(seed=0):
    """Uneven classes (23, 17, 9 samples), features on very different scales, a few
    duplicated rows (ties)."""
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1, 2], [23, 17, 9])
    X = rng.standard_normal((y.size, 4)) * [1.0, 10.0, 0.1, 100.0] + y[:, None]
    X[5] = X[3]
    X[30] = X[31]
    return X, y


DATA = {"blobs": _blobs(), "iris": load_iris(return_X_y=True),
        "wine": load_wine(return_X_y=True)}


@pytest.mark.parametrize("name", list(DATA))
@pytest.mark.parametrize("k", [3, 10])
def test_folds_partition_and_balance_each_class(name, k):
    X, y = DATA[name]
    fold_of = _pydml.dobscv_fold_ids(X, y, k, seed=0)
    assert fold_of.shape == y.shape and set(np.unique(fold_of)) <= set(range(k))
    for label in np.unique(y):
        counts = np.bincount(fold_of[y == label], minlength=k)
        assert counts.max() - counts.min() <= 1, (label, counts)
    # protocol_folds: each sample in exactly one test fold, the rest in its training part.
    folds = list(_pydml.protocol_folds(X, y, k, 0, cv="dobscv"))
    assert len(folds) == k
    for j, (Xtr, ytr, Xte, yte) in enumerate(folds):
        assert len(yte) == np.sum(fold_of == j) and len(ytr) + len(yte) == len(y)
        np.testing.assert_array_equal(yte, y[fold_of == j])
        np.testing.assert_array_equal(ytr, y[fold_of != j])
        # min-max scaled on the training part of this fold
        scaler = MinMaxScaler().fit(X[fold_of != j])
        np.testing.assert_allclose(Xte, scaler.transform(X[fold_of == j]))
        np.testing.assert_allclose(Xtr, scaler.transform(X[fold_of != j]))


@pytest.mark.parametrize("name", list(DATA))
@pytest.mark.parametrize("k", [3, 10])
def test_each_group_is_a_pick_and_its_nearest_left_same_class_samples(name, k):
    X, y = DATA[name]
    Z = MinMaxScaler().fit_transform(X)  # the scaling the neighbours are taken on
    groups = _pydml.dobscv_groups(X, y, k, seed=1)
    # the i-th member of a group goes to fold i
    fold_of = _pydml.dobscv_fold_ids(X, y, k, seed=1)
    for group in groups:
        np.testing.assert_array_equal(fold_of[group], np.arange(len(group)))
    np.testing.assert_array_equal(np.sort(np.concatenate(groups)), np.arange(len(y)))
    used = set()
    for group in groups:
        label = y[group[0]]
        assert np.all(y[group] == label)
        left = [i for i in np.flatnonzero(y == label) if i not in used]
        assert set(group) <= set(left)
        assert len(group) == min(k, len(left))
        dist = cdist(Z[group[:1]], Z[left])[0]
        by_index = dict(zip(left, dist, strict=True))
        inside = [by_index[i] for i in group]
        outside = [by_index[i] for i in left if i not in set(group)]
        # members by increasing distance from the pick, none farther than a left-out sample
        assert np.all(np.diff(inside[1:]) >= 0)
        if outside:
            assert max(inside) <= min(outside) + 1e-12
        used |= set(group.tolist())


def _brute_force_groups(X, y, k, seed):
    """DOB-SCV written out with Python lists and scipy's cdist (same random draws)."""
    Z = MinMaxScaler().fit_transform(X)
    rng = np.random.default_rng(seed)
    groups = []
    for label in sorted(set(y.tolist())):
        left = [i for i in range(len(y)) if y[i] == label]
        while left:
            pick = left[rng.integers(len(left))]
            # squared distances to 12 decimals: the tie rule of dobscv_groups
            dist = np.round(cdist(Z[[pick]], Z[left], "sqeuclidean")[0], 12)
            others = sorted((d, i) for d, i in zip(dist, left, strict=True) if i != pick)
            group = [pick] + [i for _, i in others[:k - 1]]
            groups.append(group)
            left = [i for i in left if i not in group]
    return groups


@pytest.mark.parametrize("name", list(DATA))
@pytest.mark.parametrize("seed", [0, 7])
def test_groups_match_a_brute_force_implementation(name, seed):
    X, y = DATA[name]
    ours = [g.tolist() for g in _pydml.dobscv_groups(X, y, 10, seed)]
    assert ours == _brute_force_groups(X, y, 10, seed)


@pytest.mark.parametrize("seed", range(12))
def test_groups_match_brute_force_with_duplicated_rows(seed):
    # _blobs has rows 3 = 5 and 30 = 31: a pick's duplicate must not go before it.
    X, y = DATA["blobs"]
    ours = [g.tolist() for g in _pydml.dobscv_groups(X, y, 4, seed)]
    assert ours == _brute_force_groups(X, y, 4, seed)


def test_split_is_a_function_of_the_seed():
    X, y = DATA["wine"]
    first = _pydml.dobscv_fold_ids(X, y, 10, seed=3)
    np.testing.assert_array_equal(first, _pydml.dobscv_fold_ids(X, y, 10, seed=3))
    assert np.any(first != _pydml.dobscv_fold_ids(X, y, 10, seed=4))


def test_stratified_scheme_is_unchanged_and_the_default():
    X, y = DATA["iris"]
    default = list(_pydml.protocol_folds(X, y, 5, 2))
    splits = StratifiedKFold(n_splits=5, shuffle=True, random_state=2).split(X, y)
    for (Xtr, ytr, Xte, yte), (train, test) in zip(default, splits, strict=True):
        np.testing.assert_array_equal(yte, y[test])
        np.testing.assert_array_equal(ytr, y[train])
        scaler = MinMaxScaler().fit(X[train])
        np.testing.assert_allclose(Xte, scaler.transform(X[test]))
        np.testing.assert_allclose(Xtr, scaler.transform(X[train]))


def test_too_few_folds_is_refused():
    X, y = DATA["iris"]
    with pytest.raises(ValueError, match="at least 2"):
        _pydml.dobscv_groups(X, y, 1, seed=0)


def test_dobscv_runs_record_beside_the_stratified_ones():
    parser = _pydml.add_protocol_args(argparse.ArgumentParser(), "iris", "0")
    assert _pydml.record_name("nca_reference", parser.parse_args([])) == "nca_reference"
    dob = parser.parse_args(["--cv", "dobscv"])
    assert _pydml.record_name("nca_reference", dob) == "nca_reference-dobscv"
    args = accuracy._parse_args(["--learners", "NCA"])
    assert accuracy._run_name(args) == "accuracy-nca"
    args = accuracy._parse_args(["--learners", "NCA", "--cv", "dobscv"])
    assert accuracy._run_name(args) == "accuracy-nca-dobscv"
