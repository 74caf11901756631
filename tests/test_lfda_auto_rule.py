"""LFDA's 'auto' rule (issue 21): Euclidean distance or plain LFDA, by 2 inner folds.

The rule is re-implemented here from its description, with scikit-learn's parts only:
``StratifiedKFold(2, shuffle=True)`` seeded as every 'auto' learner's inner folds, LFDA
fitted at the fixed strengths ``inf`` and 0 on each inner training fold, scikit-learn's
3-NN accuracy plus half the neighbour purity on the held-out fold, the better mean score
winning, ties going to Euclidean distance. Big folds are scored in single precision.
"""

import math

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_iris, load_wine, make_classification
from sklearn.model_selection import StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import MinMaxScaler
from sklearn.utils import check_random_state

import skmetric._compute._inner_cv as inner_cv
import skmetric.supervised._lfda as lfda_module
from skmetric import LFDA
from skmetric._compute._inner_cv import SPLIT_SEED

pytestmark = pytest.mark.filterwarnings(
    "ignore:The local within-class scatter matrix is singular")  # noise32, by design


def reference_auto(X, y, k=7, n_components=None):
    """``(strength, {inf: score, 0.0: score})`` of the rule, from scikit-learn's parts."""
    seed = check_random_state(SPLIT_SEED).randint(np.iinfo(np.int32).max)
    folds = StratifiedKFold(2, shuffle=True, random_state=seed).split(X, y)
    scores = {math.inf: 0.0, 0.0: 0.0}
    for train, valid in folds:
        for strength in scores:
            lfda = LFDA(k=k, n_components=n_components,
                        prior_strength=strength).fit(X[train], y[train])
            knn = KNeighborsClassifier(n_neighbors=3).fit(lfda.transform(X[train]), y[train])
            Z = lfda.transform(X[valid])
            neighbours = knn.kneighbors(Z, return_distance=False)
            purity = np.mean(y[train][neighbours] == y[valid][:, None])
            scores[strength] += (knn.score(Z, y[valid]) + 0.5 * purity) / 2
    best = math.inf if scores[math.inf] >= scores[0.0] - 1e-12 else 0.0
    return best, scores


def _scaled(loader, rows=None):
    X, y = loader(return_X_y=True)
    if rows is not None:
        X, y = X[rows], y[rows]
    return MinMaxScaler().fit_transform(X), y


def _noise32():
    """Two informative features, 30 noise ones, 60 samples: plain LFDA stretches the noise.
    Labels 5 and 3 (classes are codes inside LFDA, in sorted order)."""
    X, y = make_classification(n_samples=60, n_features=32, n_informative=2, n_redundant=0,
                               n_clusters_per_class=2, class_sep=1.5, shuffle=False,
                               random_state=0)
    return MinMaxScaler().fit_transform(X), np.array([5, 3])[y]


CASES = {
    "iris": lambda: _scaled(load_iris),
    "wine": lambda: _scaled(load_wine),
    "breast_cancer": lambda: _scaled(load_breast_cancer),
    "noise32": _noise32,
}


@pytest.mark.parametrize("name", list(CASES))
def test_auto_is_the_better_of_euclidean_and_plain_lfda_on_two_inner_folds(name):
    X, y = CASES[name]()
    auto = LFDA(k=7).fit(X, y)  # 'auto' is the default
    strength, scores = reference_auto(X, y)
    assert list(auto.prior_scores_) == [math.inf, 0.0]
    np.testing.assert_allclose(list(auto.prior_scores_.values()), list(scores.values()),
                               rtol=1e-12)
    assert auto.prior_strength_ == strength
    np.testing.assert_array_equal(auto.components_,
                                  LFDA(k=7, prior_strength=strength).fit(X, y).components_)


def test_the_four_cases_see_both_outcomes():
    """The cases above are not all decided the same way (a rule stuck on one candidate
    would pass a test that only sees that one)."""
    chosen = {name: reference_auto(*CASES[name]())[0] for name in CASES}
    assert set(chosen.values()) == {math.inf, 0.0}, chosen


@pytest.mark.parametrize("single", [False, True])
def test_big_folds_are_scored_in_single_precision(monkeypatch, single):
    X, y = CASES["breast_cancer"]()  # 284 x 285 validation-by-training pairs a fold
    monkeypatch.setattr(lfda_module, "AUTO_SINGLE_ABOVE", 80_000 if single else 81_000)
    seen = []
    real = inner_cv._nearest

    def spy(Ls, X_train, X_valid, k):
        seen.append({Ls.dtype, X_train.dtype, X_valid.dtype})
        return real(Ls, X_train, X_valid, k)

    monkeypatch.setattr(inner_cv, "_nearest", spy)
    auto = LFDA(k=7).fit(X, y)
    assert seen == [{np.dtype(np.float32 if single else np.float64)}] * 2
    # No distances tie to 1e-7 here: the same neighbours, the same scores as in float64.
    strength, scores = reference_auto(X, y)
    np.testing.assert_allclose(list(auto.prior_scores_.values()), list(scores.values()),
                               rtol=1e-12)
    assert auto.prior_strength_ == strength


@pytest.mark.parametrize("n_components", [None, 2])
def test_the_prior_is_scored_as_euclidean_distance_or_its_projection(n_components):
    """A square map's ``inf`` point (orthogonal rows of equal norm) has the neighbours of
    Euclidean distance, which 'auto' scores in its place; a map to fewer dimensions is
    scored by its own ``inf`` point, a projection onto the plain map's row space."""
    X, y = CASES["wine"]()
    auto = LFDA(k=7, n_components=n_components).fit(X, y)
    strength, scores = reference_auto(X, y, n_components=n_components)
    np.testing.assert_allclose(list(auto.prior_scores_.values()), list(scores.values()),
                               rtol=1e-12)
    assert auto.prior_strength_ == strength


@pytest.mark.parametrize(("smallest", "auto_runs"), [(3, False), (4, True)])
def test_classes_too_small_for_two_inner_folds_keep_plain_lfda(smallest, auto_runs):
    # An inner training fold needs 2 samples of every class (LFDA's within-class scatter):
    # 4 in all with 2 folds.
    X, y = CASES["wine"]()
    rows = np.r_[np.flatnonzero(y == 0)[:smallest], np.flatnonzero(y != 0)]
    X, y = X[rows], y[rows]
    auto = LFDA(k=7).fit(X, y)
    if auto_runs:
        strength, scores = reference_auto(X, y)
        assert auto.prior_scores_ == pytest.approx(scores, rel=1e-12)
        assert auto.prior_strength_ == strength
    else:
        assert auto.prior_scores_ == {}
        assert auto.prior_strength_ == 0.0
        np.testing.assert_array_equal(auto.components_,
                                      LFDA(k=7, prior_strength=0).fit(X, y).components_)
