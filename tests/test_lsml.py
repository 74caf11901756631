"""LSML: objective and gradient, optimisation, weights and priors, supervised k-NN gains."""

import numpy as np
import pytest
from sklearn.datasets import load_wine
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline

from skmetric import LSML, Constraints, LSML_Supervised
from skmetric.weakly_supervised._lsml import _lsml_gradient, _lsml_loss


def _relevant_first_feature(n=60, d=4, seed=0, scale=1.0):
    """Classes differ in feature 0 only; the other features are loud noise."""
    rng = np.random.RandomState(seed)
    y = np.arange(n) % 3
    X = 3.0 * rng.randn(n, d)
    X[:, 0] = y + 0.1 * rng.randn(n)
    return scale * X, y


def _random_problem(seed=0, n=30, d=3):
    rng = np.random.RandomState(seed)
    vab, vcd = rng.randn(n, d), rng.randn(n, d)
    vcd[0] = 0.0  # a quadruplet with c == d: its (zero) term must not break the gradient
    A = rng.randn(d, d)
    M = A @ A.T + 0.5 * np.eye(d)
    B = rng.randn(d, d)
    prior_inv = B @ B.T + np.eye(d)
    w = rng.rand(n)
    return M, vab, vcd, w / w.sum(), prior_inv


def test_loss_matches_its_definition():
    M, vab, vcd, w, prior_inv = _random_problem()
    expected = np.trace(M @ prior_inv) - np.log(np.linalg.det(M))
    for i in range(len(w)):
        dab, dcd = vab[i] @ M @ vab[i], vcd[i] @ M @ vcd[i]
        if dab > dcd:
            expected += w[i] * (np.sqrt(dab) - np.sqrt(dcd)) ** 2
    assert _lsml_loss(M, vab, vcd, w, prior_inv) == pytest.approx(expected, rel=1e-10)
    # Outside the positive definite cone the loss is infinite (the step search backs off).
    assert _lsml_loss(-M, vab, vcd, w, prior_inv) == np.inf


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gradient_matches_central_differences(seed):
    M, vab, vcd, w, prior_inv = _random_problem(seed)
    grad = _lsml_gradient(M, vab, vcd, w, prior_inv)
    np.testing.assert_allclose(grad, grad.T)
    rng = np.random.RandomState(10 + seed)
    h = 1e-6
    for _ in range(5):
        E = rng.randn(*M.shape)
        E = (E + E.T) / 2
        numeric = (_lsml_loss(M + h * E, vab, vcd, w, prior_inv)
                   - _lsml_loss(M - h * E, vab, vcd, w, prior_inv)) / (2 * h)
        assert np.sum(grad * E) == pytest.approx(numeric, rel=1e-5, abs=1e-7)


def test_fit_learns_the_relevant_feature_and_satisfies_quadruplets():
    # At this scale the residuals outweigh the LogDet pull towards the identity prior.
    X, y = _relevant_first_feature(scale=10.0)
    quadruplets = Constraints(y).quadruplets(300, random_state=0)
    lsml = LSML(preprocessor=X).fit(quadruplets)
    M = lsml.get_mahalanobis_matrix()
    # Feature 0 separates the classes, so it gets by far the largest weight.
    assert M[0, 0] > 10 * np.max(np.diag(M)[1:])
    np.testing.assert_allclose(M, M.T, atol=1e-10)
    assert np.linalg.eigvalsh(M).min() > 0
    # More quadruplets hold in the learned metric than in the Euclidean one.
    diff_ab = X[quadruplets[:, 0]] - X[quadruplets[:, 1]]
    diff_cd = X[quadruplets[:, 2]] - X[quadruplets[:, 3]]
    euclidean = np.mean(np.linalg.norm(diff_ab, axis=1) < np.linalg.norm(diff_cd, axis=1))
    assert lsml.score(quadruplets) > euclidean + 0.2
    assert 1 <= lsml.n_iter_ <= 1000
    assert lsml.predict(quadruplets).shape == (300,)
    assert set(np.unique(lsml.predict(quadruplets))) <= {-1, 1}


def test_optimiser_reaches_a_stationary_point_on_unscaled_features():
    # Wine's features span four orders of magnitude; the natural-gradient steps still
    # drive the gradient below tol well within max_iter.
    X, y = load_wine(return_X_y=True)
    q = Constraints(y).quadruplets(180, random_state=0)
    lsml = LSML(tol=1e-3, preprocessor=X).fit(q)
    assert lsml.n_iter_ < 200
    vab, vcd = X[q[:, 0]] - X[q[:, 1]], X[q[:, 2]] - X[q[:, 3]]
    w = np.full(len(q), 1 / len(q))
    M = lsml.get_mahalanobis_matrix()
    grad = _lsml_gradient(M, vab, vcd, w, np.eye(13))
    assert np.linalg.norm(grad) < 1e-2
    # It is a better optimum than the identity prior it started from.
    assert _lsml_loss(M, vab, vcd, w, np.eye(13)) < _lsml_loss(np.eye(13), vab, vcd, w,
                                                               np.eye(13))


def test_tol_stops_early_and_max_iter_caps_the_iterations():
    X, y = _relevant_first_feature()
    quadruplets = Constraints(y).quadruplets(100, random_state=0)
    assert LSML(tol=1e6, preprocessor=X).fit(quadruplets).n_iter_ == 1
    assert LSML(max_iter=3, tol=0, preprocessor=X).fit(quadruplets).n_iter_ == 3


def test_zero_weight_is_the_same_as_dropping_the_quadruplet():
    X, y = _relevant_first_feature()
    q = Constraints(y).quadruplets(80, random_state=1)
    weights = np.ones(len(q))
    weights[::4] = 0.0
    weighted = LSML(preprocessor=X).fit(q, weights=3 * weights)  # scale does not matter
    dropped = LSML(preprocessor=X).fit(q[weights > 0])
    np.testing.assert_allclose(weighted.components_, dropped.components_, atol=1e-8)


@pytest.mark.parametrize("weights, match", [
    (np.ones(5), "one weight per quadruplet"),
    (-np.ones(80), "non-negative"),
    (np.zeros(80), "not all zero"),
    (np.full(80, np.nan), "finite"),
])
def test_bad_weights_are_rejected(weights, match):
    X, y = _relevant_first_feature()
    q = Constraints(y).quadruplets(80, random_state=1)
    with pytest.raises(ValueError, match=match):
        LSML(preprocessor=X).fit(q, weights=weights)


def test_priors():
    X, y = _relevant_first_feature()
    q = Constraints(y).quadruplets(80, random_state=1)
    a = LSML(prior="random", random_state=3, max_iter=5, preprocessor=X).fit(q)
    b = LSML(prior="random", random_state=3, max_iter=5, preprocessor=X).fit(q)
    np.testing.assert_array_equal(a.components_, b.components_)
    # 'covariance' is the inverse covariance of the samples the quadruplets use.
    cov = LSML(prior="covariance", preprocessor=X).fit(q)
    used = np.unique(X[q].reshape(-1, X.shape[1]), axis=0)
    explicit = LSML(prior=np.linalg.inv(np.cov(used, rowvar=False)), preprocessor=X).fit(q)
    np.testing.assert_allclose(cov.get_mahalanobis_matrix(), explicit.get_mahalanobis_matrix(),
                               rtol=1e-8, atol=1e-10)
    identity = LSML(preprocessor=X).fit(q).get_mahalanobis_matrix()
    assert not np.allclose(cov.get_mahalanobis_matrix(), identity, rtol=0.05)
    # The LogDet regulariser needs an invertible prior: singular priors get a clear error.
    X_collinear = np.hstack([X, X[:, :1]])
    with pytest.raises(ValueError, match="strictly positive definite prior"):
        LSML(prior="covariance", preprocessor=X_collinear).fit(q)
    with pytest.raises(ValueError, match="strictly positive definite prior"):
        LSML(prior=np.diag([1.0, 1.0, 1.0, 0.0]), preprocessor=X).fit(q)
    with pytest.raises(ValueError, match="not positive semi-definite"):
        LSML(prior=-np.eye(4), preprocessor=X).fit(q)
    with pytest.raises(ValueError, match="prior"):
        LSML(prior="lda", preprocessor=X).fit(q)


def test_grid_search_over_quadruplets_picks_by_quadruplet_score():
    X, y = _relevant_first_feature(scale=10.0)
    q = Constraints(y).quadruplets(150, random_state=0)
    search = GridSearchCV(LSML(preprocessor=X), {"max_iter": [1, 300]}, cv=3).fit(q)
    scores = search.cv_results_["mean_test_score"]
    # Held-out quadruplets are satisfied more often after more iterations.
    assert scores[1] > scores[0] + 0.1
    assert search.best_params_ == {"max_iter": 300}
    assert search.best_estimator_.score(q) == pytest.approx(search.best_estimator_.score(X[q]))


def test_supervised_is_reproducible_and_respects_n_constraints():
    X, y = _relevant_first_feature()
    a = LSML_Supervised(n_constraints=50, random_state=0).fit(X, y)
    b = LSML_Supervised(n_constraints=50, random_state=0).fit(X, y)
    c = LSML_Supervised(n_constraints=50, random_state=1).fit(X, y)
    np.testing.assert_array_equal(a.components_, b.components_)
    assert not np.allclose(a.components_, c.components_)
    with pytest.raises(ValueError, match="one weight per quadruplet"):
        LSML_Supervised(n_constraints=50, weights=np.ones(10)).fit(X, y)
    with pytest.raises(ValueError, match="n_constraints"):
        LSML_Supervised(n_constraints=0).fit(X, y)
    with pytest.raises(ValueError, match="two classes"):
        LSML_Supervised().fit(X, np.zeros(len(y)))


def test_supervised_improves_knn_on_unscaled_wine():
    X, y = load_wine(return_X_y=True)
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    knn = KNeighborsClassifier(n_neighbors=3)
    euclidean = cross_val_score(knn, X, y, cv=cv).mean()
    learned = cross_val_score(make_pipeline(LSML_Supervised(random_state=0), knn), X, y,
                              cv=cv).mean()
    assert learned > euclidean + 0.15


def test_verbose_prints_progress(capsys):
    X, y = _relevant_first_feature()
    LSML_Supervised(max_iter=2, tol=0, verbose=True, random_state=0).fit(X, y)
    assert "[LSML_Supervised] iter 1" in capsys.readouterr().out
