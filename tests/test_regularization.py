"""Early stopping and shrinkage chosen by an inner cross-validation (skmetric._inner_cv)."""

import numpy as np
import pytest
from scipy.optimize import minimize
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.neighbors import KNeighborsClassifier, NeighborhoodComponentsAnalysis
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler
from sklearn.utils._param_validation import InvalidParameterError

from skmetric import LFDA, LMNN, MLKR, NCA, ITML_Supervised
from skmetric._inner_cv import choose_strength, iteration_checkpoints
from skmetric._nca import _nca_loss_grad


def _two_class(n, seed, noise):
    """One informative feature (classes 2 apart) and ``noise`` pure-noise features."""
    rng = np.random.RandomState(seed)
    y = rng.randint(0, 2, n)
    return np.hstack([rng.randn(n, 1) + 2 * y[:, None], rng.randn(n, noise)]), y


def _knn(m, Xtr, ytr, Xte, yte):
    return KNeighborsClassifier(3).fit(m.transform(Xtr), ytr).score(m.transform(Xte), yte)


def test_plain_nca_is_todays_lbfgs_run_and_agrees_with_sklearn():
    X, y = _two_class(120, 0, noise=3)
    plain = NCA(init="identity", tol=1e-5, early_stopping=False).fit(X, y)
    # Today's fit: L-BFGS from the identity on the same objective, nothing else.
    res = minimize(lambda f: (lambda lg: (lg[0], lg[1].ravel()))(
        _nca_loss_grad(f.reshape(4, 4), X, np.unique(y, return_inverse=True)[1])),
        np.eye(4).ravel(), method="L-BFGS-B", jac=True, tol=1e-5, options={"maxiter": 100})
    np.testing.assert_array_equal(plain.components_, res.x.reshape(4, 4))
    assert plain.auto_n_iter_ is None and plain.n_iter_ == res.nit
    ref = NeighborhoodComponentsAnalysis(init="identity", tol=1e-5).fit(X, y)
    ours_obj = _nca_loss_grad(plain.components_, X, y)[0]
    ref_obj = _nca_loss_grad(ref.components_, X, y)[0]
    assert ours_obj == pytest.approx(ref_obj, rel=1e-3)


def test_auto_stops_nca_early_where_the_plain_optimum_overfits():
    # 300 samples, one informative and five noise features: the plain optimum stretches
    # noise directions; the inner CV stops after one iteration, which generalises better.
    Xtr, ytr = _two_class(300, 2, noise=5)
    Xte, yte = _two_class(2000, 3, noise=5)
    auto = NCA(random_state=0).fit(Xtr, ytr)
    plain = NCA(random_state=0, early_stopping=False).fit(Xtr, ytr)
    assert 0 < auto.auto_n_iter_ < plain.n_iter_
    assert auto.n_iter_ == auto.auto_n_iter_
    assert _knn(auto, Xtr, ytr, Xte, yte) > _knn(plain, Xtr, ytr, Xte, yte) + 0.02


def test_auto_keeps_iterating_mlkr_while_held_out_error_falls():
    rng = np.random.RandomState(0)
    X = rng.randn(40, 20)
    y = np.sin(2 * X[:, 0]) + 0.5 * rng.randn(40)
    auto = MLKR(random_state=0).fit(X, y)
    plain = MLKR(random_state=0, early_stopping=False).fit(X, y)
    # Neither the initial map nor the plain optimum: a stopping point in between.
    assert 0 < auto.auto_n_iter_ < plain.n_iter_


def test_auto_is_the_plain_fit_when_no_inner_cv_is_possible():
    # Two samples per class cannot be split into three stratified folds.
    X, y = _two_class(40, 0, noise=2)
    X, y = X[np.r_[np.flatnonzero(y == 0)[:2], np.flatnonzero(y == 1)[:20]]], np.r_[
        [0, 0], [1] * 20]
    auto = NCA(init="identity", random_state=0).fit(X, y)
    plain = NCA(init="identity", random_state=0, early_stopping=False).fit(X, y)
    assert auto.auto_n_iter_ is None
    np.testing.assert_array_equal(auto.components_, plain.components_)


def test_lfda_shrinkage_zero_is_plain_lfda_and_auto_picks_from_the_grid():
    X, y = _two_class(90, 1, noise=4)
    plain = LFDA(k=7, shrinkage=0).fit(X, y)
    auto = LFDA(k=7).fit(X, y)
    assert auto.shrinkage_ in (1.0, 0.3, 0.1, 0.03, 0.01, 0.0)
    assert plain.shrinkage_ == 0.0
    same = LFDA(k=7, shrinkage=auto.shrinkage_).fit(X, y)
    np.testing.assert_allclose(auto.components_, same.components_)
    # Full shrinkage makes S_w a multiple of the identity: a different map than plain LFDA.
    full = LFDA(k=7, shrinkage=1.0).fit(X, y)
    assert not np.allclose(full.components_, plain.components_)


def test_itml_and_lmnn_auto_stop_within_the_plain_run():
    Xtr, ytr = _two_class(90, 4, noise=3)
    for est in (ITML_Supervised(random_state=0, early_stopping="auto"),
                LMNN(random_state=0, max_iter=60, early_stopping="auto")):
        est.fit(Xtr, ytr)
        assert est.auto_n_iter_ in iteration_checkpoints(est.max_iter)
        assert est.n_iter_ <= est.auto_n_iter_


def test_ties_go_to_the_most_regularised_strength():
    class Path(NCA):
        def _fit_path(self, X, y):
            L = np.eye(X.shape[1])
            return [(0, L), (5, 2 * L), (9, 3 * L)]  # the same neighbours: equal scores

    X, y = _two_class(60, 0, noise=1)
    best, scores = choose_strength(Path(), X, y, {"early_stopping": False}, random_state=0)
    assert best == 0 and scores[0] == scores[5] == scores[9]


@pytest.mark.parametrize("est, param, value", [
    (NCA(), "early_stopping", "yes"), (LMNN(), "early_stopping", 1.5),
    (ITML_Supervised(), "early_stopping", "never"), (MLKR(), "early_stopping", None),
    (LFDA(), "shrinkage", 1.5), (LFDA(), "shrinkage", "max"),
])
def test_invalid_strengths_are_refused(est, param, value):
    X, y = _two_class(30, 0, noise=1)
    with pytest.raises(InvalidParameterError, match=param):
        est.set_params(**{param: value}).fit(X, y)


def test_nested_cv_recipe_chooses_between_euclidean_and_learners():
    X, y = _two_class(120, 5, noise=2)
    pipe = Pipeline([("scale", MinMaxScaler()), ("metric", "passthrough"),
                     ("knn", KNeighborsClassifier(3))])
    grid = {"metric": ["passthrough", NCA(random_state=0), LFDA(k=7)]}
    inner = StratifiedKFold(3, shuffle=True, random_state=0)
    search = GridSearchCV(pipe, grid, cv=inner)
    outer = cross_val_score(search, X, y, cv=StratifiedKFold(3, shuffle=True, random_state=1))
    assert outer.shape == (3,) and np.all(outer > 0.6)
    search.fit(X, y)
    assert search.best_params_["metric"] in grid["metric"]
    assert search.best_score_ == pytest.approx(
        max(search.cv_results_["mean_test_score"]))
