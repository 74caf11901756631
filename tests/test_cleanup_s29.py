"""Eighth session's maintenance: behaviour pinned before each refactor.

- ``scripts/mutation.py``'s summaries: ``survived`` counts every survivor (uncovered ones,
  mutmut's "no tests", among them) and summaries of older scripts read as before.
"""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.model_selection import StratifiedKFold

import skmetric.weakly_supervised._itml as itml_module
from skmetric import ITML, LFDA, LMNN
from skmetric._init import components_from_metric
from skmetric._supervised import check_class_sizes, enough_per_class

ROOT = Path(__file__).resolve().parent.parent


# --- scripts/mutation.py: one meaning of 'survived' ---------------------------------------

@pytest.fixture(scope="module")
def mutation():
    spec = importlib.util.spec_from_file_location("_mutation_s29", ROOT / "scripts" / "mutation.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _summarise(mutation, tmp_path, codes):
    module = "skmetric/x.py"
    (tmp_path / "mutants" / "skmetric").mkdir(parents=True, exist_ok=True)
    keys = {f"skmetric.x.x_f__mutmut_{i}": c for i, c in enumerate(codes)}
    (tmp_path / "mutants" / (module + ".meta")).write_text(json.dumps({"exit_code_by_key": keys}))
    return mutation.summarise(tmp_path, module, 1.0)


def test_summary_counts_uncovered_mutants_among_the_survivors(mutation, tmp_path):
    """Exit codes 1/3 killed, 36 timeout, 0 survived, 33/5 no tests, None not checked: the
    summary's survived is 0's and the no-tests' together, its row prints exactly that, the
    score is killed (with timeouts) over killed + survived."""
    d = _summarise(mutation, tmp_path, [1, 3, 36, 0, 33, 5, 5, None])
    assert (d["killed"], d["timeout"], d["survived"], d["survived_no_tests"],
            d["not_checked"]) == (2, 1, 4, 3, 1)
    assert "no_tests" not in d
    assert len(d["survivors"]) == d["survived"]
    assert d["score"] == round(3 / 7, 4)
    assert mutation.row(d) == "| `skmetric/x.py` | {} | 8 | 3 | 4 | 1 | 42.9 % |".format(d["date"])
    # A summary carrying survived_no_tests is read as it is, re-checked or not.
    assert mutation.row(dict(d, rechecked=4)) == mutation.row(d)


# Summaries written by the earlier scripts, and the rows those scripts printed for them:
# until the seventh session 'no_tests' stayed out of 'survived' and the score, and a merged
# re-check kept the first run's 'no_tests' apart (its row: 'survived' alone); in the seventh
# session a first run's row added 'no_tests', a merged re-check had folded them in.
_LEGACY = [
    ({"killed": 74, "timeout": 0, "survived": 15, "no_tests": 12, "not_checked": 0,
      "score": 0.8315, "mutants": 101}, "| 74 | 27 | 0 | 83.2 % |"),
    ({"killed": 83, "timeout": 0, "survived": 6, "no_tests": 12, "not_checked": 0,
      "score": 0.9326, "mutants": 101, "rechecked": 15}, "| 83 | 6 | 0 | 93.3 % |"),
    ({"killed": 37, "timeout": 0, "survived": 3, "no_tests": 12, "not_checked": 0,
      "score": 0.7115, "mutants": 52}, "| 37 | 15 | 0 | 71.2 % |"),
    ({"killed": 40, "timeout": 1, "survived": 11, "no_tests": 0, "not_checked": 0,
      "score": 0.7885, "mutants": 52, "rechecked": 15}, "| 41 | 11 | 0 | 78.8 % |"),
]


@pytest.mark.parametrize("legacy, expected", _LEGACY)
def test_summaries_of_earlier_scripts_give_the_rows_they_gave(mutation, legacy, expected):
    d = dict(legacy, module="skmetric/x.py", date="2026-11-30", suspicious=0)
    assert mutation.row(d).endswith(f"| {d['mutants']} {expected}")
    upgraded = mutation.upgrade(d)
    assert "no_tests" not in upgraded and d["no_tests"] == legacy["no_tests"]  # not modified
    assert upgraded["survived_no_tests"] == (None if "rechecked" in d else d["no_tests"])


def test_recheck_of_an_earlier_scripts_first_run(mutation, tmp_path):
    """A seventh-session first run (1 killed, 1 survived, 2 uncovered) re-checked today: the
    re-check kills one of the 3 survivors, one uncovered is left: 2 killed, 2 survived."""
    before = {"module": "skmetric/x.py", "date": "2026-11-30", "mutants": 4, "killed": 1,
              "timeout": 0, "survived": 1, "no_tests": 2, "not_checked": 0, "skipped": 0,
              "suspicious": 0, "score": 0.25, "survivors": ["a", "b", "c"]}
    recheck = _summarise(mutation, tmp_path, [1, 0, 33])
    merged = mutation.merge(before, recheck)
    assert (merged["killed"], merged["survived"], merged["survived_no_tests"],
            merged["rechecked"], merged["score"]) == (2, 2, 1, 3, 0.5)
    assert "no_tests" not in merged
    assert mutation.row(merged).endswith("| 4 | 2 | 2 | 0 | 50.0 % |")
    # Re-checked again: the merged summary is today's, read as it is.
    again = mutation.merge(merged, _summarise(mutation, tmp_path / "2", [1, 33]))
    assert (again["killed"], again["survived"], again["survived_no_tests"]) == (3, 1, 1)


# --- ITML's map of its learned matrix: components_from_metric -----------------------------

def _pairs(rng, n=40, d=4):
    X = rng.standard_normal((n, 2, d))
    return X, np.where(np.arange(n) % 2 == 0, 1, -1)


def _learned(monkeypatch, A):
    """ITML's projections replaced by one returning ``A`` (after 1 sweep)."""
    monkeypatch.setattr(itml_module, "_itml_projections", lambda *args: (A.copy(), 1))


def test_itml_map_of_its_learned_matrix(monkeypatch):
    """The map of the learned matrix A (prior_strength=0): ``L.T @ L == A``, rows by
    ascending eigenvalue (each row's squared norm one eigenvalue of A)."""
    rng = np.random.RandomState(0)
    B = rng.standard_normal((4, 4))
    A = B @ B.T + 0.1 * np.eye(4)
    _learned(monkeypatch, A)
    L = ITML(prior_strength=0).fit(*_pairs(rng)).components_
    np.testing.assert_allclose(L.T @ L, A, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.sum(L**2, axis=1), np.linalg.eigvalsh(A), rtol=1e-12)


@pytest.mark.parametrize("negative", [-1e-3, -1e-20])
def test_itml_learned_matrix_with_a_negative_eigenvalue_lost_precision(monkeypatch, negative):
    """A learned matrix with a negative eigenvalue, beyond round-off (-1e-3) or not (-1e-20),
    has lost a direction of the prior: ITML's own message, which says what to do, not a
    generic 'not positive semi-definite'."""
    rng = np.random.RandomState(1)
    V, _ = np.linalg.qr(rng.standard_normal((4, 4)))
    _learned(monkeypatch, (V * [negative, 1.0, 2.0, 3.0]) @ V.T)
    with pytest.raises(ValueError) as err:
        ITML(prior_strength=0).fit(*_pairs(rng))
    assert str(err.value).startswith(
        "ITML lost numerical precision: the learned matrix has rank 3 where the prior has rank 4")
    assert "StandardScaler" in str(err.value)


def _nearest_psd_checks(M, L):
    """``P = L.T @ L`` is M's projection onto the PSD cone (Moreau: ``M = P - N`` with P and
    N PSD and ``P N = 0``)."""
    P = L.T @ L
    N = P - M
    scale = np.abs(M).max()
    assert np.linalg.eigvalsh(P).min() >= -1e-12 * scale
    assert np.linalg.eigvalsh(N).min() >= -1e-12 * scale
    np.testing.assert_allclose(P @ N, 0, atol=1e-12 * scale**2)


def test_components_from_metric_clips_with_an_infinite_tolerance():
    rng = np.random.RandomState(2)
    V, _ = np.linalg.qr(rng.standard_normal((5, 5)))
    w = np.array([-2.0, -1e-3, 0.5, 1.0, 4.0])
    M = (V * w) @ V.T
    with pytest.raises(ValueError, match="not positive semi-definite"):
        components_from_metric(M)
    L = components_from_metric(M, tol=np.inf)
    assert L.shape == (5, 5)
    _nearest_psd_checks(M, L)
    L2, clipped = components_from_metric(M, tol=np.inf, return_eigenvalues=True)
    np.testing.assert_array_equal(L2, L)
    np.testing.assert_allclose(clipped, [0, 0, 0.5, 1.0, 4.0], atol=1e-14)
    # Of a PSD matrix: its eigenvalues, ascending, and L.T @ L == M.
    P = (V * np.abs(w)) @ V.T
    L, eig = components_from_metric(P, return_eigenvalues=True)
    np.testing.assert_allclose(eig, np.sort(np.abs(w)), rtol=1e-12)
    np.testing.assert_allclose(L.T @ L, P, atol=1e-13)


# --- The class-size rule of LMNN and LFDA: check_class_sizes / enough_per_class -----------

def _labelled(sizes, seed=0):
    """Three features, classes 'a', 'b', ... of the given sizes, shifted apart."""
    rng = np.random.RandomState(seed)
    y = np.repeat(np.array(list("abcdefgh")[:len(sizes)]), sizes)
    codes = np.unique(y, return_inverse=True)[1]
    return rng.standard_normal((len(y), 3)) + 2.0 * codes[:, None], y


def test_lfda_needs_two_samples_per_class_whatever_k():
    """k is capped at n_c - 1, so a class of 2 fits with k=7 (or k=1); a class of 1 has no
    neighbour to scale by."""
    X, y = _labelled([2, 9, 9])
    for k in (None, 1, 7):
        assert LFDA(k=k, prior_strength=0).fit(X, y).components_.shape == (3, 3)
    X, y = _labelled([1, 9, 9])
    with pytest.raises(ValueError, match="at least 2 samples per class"):
        LFDA(prior_strength=0).fit(X, y)


def test_lfda_message_names_the_class_and_what_to_do():
    X, y = _labelled([9, 1, 9])
    with pytest.raises(ValueError) as err:
        LFDA(k=3).fit(X, y)
    assert str(err.value) == (
        "Class 'b' has only 1 sample(s); LFDA needs at least 2 samples per class: a sample's "
        "local scale is its distance to its k-th nearest neighbour in its class (k capped at "
        "the class size - 1). Drop the small classes or merge them into others.")


def test_lmnn_message_names_every_class_too_small():
    """Classes 'a' (2) and 'c' (1) are both too small for n_neighbors=2; 'b' (3) is not."""
    X, y = _labelled([2, 3, 1, 9])
    with pytest.raises(ValueError) as err:
        LMNN(n_neighbors=2, max_iter=2, min_iter=0).fit(X, y)
    assert str(err.value) == (
        "Classes ['a', 'c'] have only 2, 1 sample(s); LMNN with n_neighbors=2 needs at least "
        "n_neighbors + 1 = 3 per class. Lower n_neighbors or drop the small classes.")


def test_check_class_sizes_shows_five_small_classes_at_most():
    counts = np.array([1, 1, 5, 1, 1, 1, 1, 1])
    with pytest.raises(ValueError) as err:
        check_class_sizes("X", np.arange(8), counts, 1)
    assert str(err.value).startswith(
        "Classes [0, 1, 3, 4, 5] (and 2 more) have only 1, 1, 1, 1, 1 sample(s); X needs at "
        "least 2 samples per class. Drop")
    check_class_sizes("X", np.arange(3), np.array([2, 7, 2]), 1)  # no error


def _smallest_training_share(c, n_splits):
    """The fewest samples of a class of c that a StratifiedKFold training part keeps."""
    y = np.repeat([0, 1], [c, n_splits * 3])
    folds = StratifiedKFold(n_splits).split(np.zeros((len(y), 1)), y)
    return min(np.sum(y[train] == 0) for train, _ in folds)


@pytest.mark.parametrize("n_splits", [2, 3, 5])
def test_enough_per_class_in_stratified_training_folds(n_splits):
    """The rule of LMNN's (3 folds) and LFDA's (2 folds) 'auto': every class keeps
    n_neighbors + 1 samples in every inner training part (by scikit-learn's folds)."""
    for c in range(n_splits, 30):
        share = _smallest_training_share(c, n_splits)
        for n_neighbors in range(1, 8):
            assert enough_per_class(np.array([40, c]), n_neighbors, n_splits) == (
                share >= n_neighbors + 1), (c, n_neighbors)
    assert enough_per_class(np.array([3, 4]), 2) and not enough_per_class(np.array([3, 2]), 2)
