"""NCA's (and MLKR's) penalty towards the initial map and the inner CV choosing its strength."""

import math

import numpy as np
import pytest
from scipy.optimize import check_grad
from sklearn.datasets import load_iris, load_wine
from sklearn.neighbors import NeighborhoodComponentsAnalysis
from sklearn.preprocessing import MinMaxScaler, StandardScaler

import skmetric.supervised._mlkr as mlkr_module
import skmetric.supervised._nca as nca_module
from skmetric import MLKR, NCA
from skmetric._compute import _inner_cv
from skmetric._compute._backend import resolve_backend
from skmetric._compute._inner_cv import (
    STRENGTHS,
    choose_strength,
    inner_folds,
    knn_scores,
    penalised_path,
    prior_penalty,
)
from skmetric._compute._lbfgs import minimize_lbfgs
from skmetric.supervised._nca import _nca_loss_grad


def _wine():
    X, y = load_wine(return_X_y=True)
    return MinMaxScaler().fit_transform(X), y


def _numpy_backend(X):
    return resolve_backend(X, None, dtype="float64")


def test_penalised_gradient_matches_finite_differences(rng):
    X, y = _wine()
    L0 = rng.standard_normal((3, X.shape[1]))
    L = L0 + 0.5 * rng.standard_normal(L0.shape)
    objective = prior_penalty(lambda M: _nca_loss_grad(M, X, y), L0, 3e-3, X.shape[0],
                              _numpy_backend(X))

    def f(v):
        return float(objective(v.reshape(L.shape))[0])

    def g(v):
        return objective(v.reshape(L.shape))[1].ravel()

    assert check_grad(f, g, L.ravel()) < 1e-6 * np.linalg.norm(g(L.ravel()))
    # The penalty itself: strength * scale * ||L - L0||^2 on top of the plain loss.
    plain = _nca_loss_grad(L, X, y)[0]
    assert f(L.ravel()) == pytest.approx(plain + 3e-3 * X.shape[0] * np.sum((L - L0) ** 2))


def test_zero_strength_is_todays_nca_and_scikit_learns():
    X, y = _wine()
    ours = NCA(prior_strength=0, random_state=0).fit(X, y)
    # Exactly the plain objective under the same L-BFGS driver (no penalty term at all).
    plain = minimize_lbfgs(lambda L: _nca_loss_grad(L, X, y), np.eye(X.shape[1]),
                           _numpy_backend(X), max_iter=100, tol=1e-5)
    np.testing.assert_array_equal(ours.components_, plain.x)
    assert ours.n_iter_ == plain.n_iter and ours.prior_strength_ == 0.0
    ref = NeighborhoodComponentsAnalysis(max_iter=100, random_state=0).fit(X, y)
    np.testing.assert_allclose(ours.components_, ref.components_, rtol=1e-4, atol=1e-4)


def test_infinite_strength_limit_is_the_prior(rng):
    X, y = _wine()
    L0 = rng.standard_normal((4, X.shape[1]))
    gaps = [np.linalg.norm(NCA(init=L0, prior_strength=lam).fit(X, y).components_ - L0)
            for lam in (0.0, 1e-3, 1e-1, 1e3)]
    # Stronger penalties stay closer to the prior, and a huge one keeps it.
    assert gaps[0] > gaps[1] > gaps[2] > gaps[3]
    assert gaps[3] < 1e-3 * gaps[0]


def test_auto_strength_is_inner_cv_choice_and_deterministic():
    X, y = _wine()
    a = NCA(random_state=1).fit(X, y)
    b = NCA(random_state=1).fit(X, y)
    np.testing.assert_array_equal(a.components_, b.components_)
    assert a.prior_strength_ == b.prior_strength_ and a.prior_strength_ in STRENGTHS
    # The final fit (started from the inner maps' mean) minimises the same penalised
    # objective as an explicit strength started from the prior, to the solver's tolerance.
    assert 0 < a.prior_strength_ < math.inf
    explicit = NCA(prior_strength=a.prior_strength_, random_state=1).fit(X, y)
    assert a.objective_ == pytest.approx(explicit.objective_, rel=1e-2)


def test_auto_sees_only_the_training_data(monkeypatch):
    X, y = _wine()
    train = np.arange(0, X.shape[0], 2)
    seen = []
    real = nca_module.choose_strength

    def spy(fit_path, X_fit, y_fit, **kwargs):
        def recording_path(X_inner, y_inner):
            seen.append(X_inner)
            return fit_path(X_inner, y_inner)
        return real(recording_path, X_fit, y_fit, **kwargs)

    monkeypatch.setattr(nca_module, "choose_strength", spy)
    NCA(random_state=0).fit(X[train], y[train])
    assert len(seen) == _inner_cv.N_SPLITS
    train_rows = {row.tobytes() for row in X[train]}
    for X_inner in seen:
        # Every inner training row is a training row; none of the held-out half.
        assert {row.tobytes() for row in X_inner} <= train_rows
        assert X_inner.shape[0] < train.size


def test_inner_folds_partition_and_depend_on_random_state_only():
    y = np.repeat([0, 1, 2], 10)
    folds = inner_folds(y, random_state=3)
    assert len(folds) == _inner_cv.N_SPLITS
    valid = np.sort(np.concatenate([v for _, v in folds]))
    np.testing.assert_array_equal(valid, np.arange(y.size))
    for train, v in folds:
        assert not set(train) & set(v)
        assert set(np.unique(y[v])) == {0, 1, 2}  # stratified
    again = inner_folds(y, random_state=3)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(folds, again, strict=True))
    other = inner_folds(y, random_state=4)
    assert not all(np.array_equal(a[1], b[1]) for a, b in zip(folds, other, strict=True))
    # A class with fewer samples than folds cannot be stratified: no inner CV.
    assert inner_folds(np.r_[y, 7, 7], random_state=0) is None


def test_choose_strength_prefers_the_stronger_on_ties_and_the_better_map():
    rng = np.random.RandomState(0)
    y = np.repeat([0, 1], 30)
    X = np.c_[y + 0.1 * rng.standard_normal(60), 5 * rng.standard_normal(60)]
    good, bad = np.diag([1.0, 0.0]), np.diag([0.0, 1.0])

    def path(maps):
        return lambda X_train, y_train: list(maps)

    # The informative map wins wherever it sits on the path.
    assert choose_strength(path([(math.inf, bad), (0.0, good)]), X, y,
                           random_state=0).strength == 0.0
    choice = choose_strength(path([(math.inf, good), (1e-3, bad)]), X, y, random_state=0)
    assert choice.strength == math.inf
    np.testing.assert_array_equal(choice.start, good)
    # Equal maps score equally: the strongest regularisation (the prior) is kept.
    assert choose_strength(path([(math.inf, good), (1e-2, good), (0.0, good)]), X, y,
                           random_state=0).strength == math.inf


def test_auto_keeps_the_prior_when_learning_does_not_help():
    """Labels unrelated to X: no learned map beats the prior on held-out folds, and 'auto'
    returns the initial map itself."""
    rng = np.random.RandomState(0)
    X = rng.uniform(size=(90, 4))
    y = np.repeat([0, 1, 2], 30)
    fits = [NCA(random_state=seed).fit(X, y) for seed in range(3)]
    chosen = [nca.prior_strength_ for nca in fits]
    assert chosen.count(math.inf) >= 2, chosen
    choice = fits[chosen.index(math.inf)]
    np.testing.assert_array_equal(choice.components_, np.eye(4))
    assert choice.n_iter_ == 0


def test_penalised_path_is_warm_started_and_ordered():
    X, y = _wine()
    backend = _numpy_backend(X)
    L0 = np.eye(X.shape[1])
    path = penalised_path(lambda L: _nca_loss_grad(L, X, y), L0, STRENGTHS, backend,
                          scale=X.shape[0], max_iter=100, tol=1e-5)
    assert [s for s, _ in path] == list(STRENGTHS)
    assert path[0][1] is not None and np.array_equal(path[0][1], L0)
    gaps = [np.linalg.norm(L - L0) for _, L in path]
    assert all(a <= b + 1e-9 for a, b in zip(gaps, gaps[1:], strict=False))
    # Its last map minimises the plain objective (as a fit from L0 does, to tolerance).
    plain = NCA(prior_strength=0).fit(X, y)
    assert _nca_loss_grad(path[-1][1], X, y)[0] <= plain.objective_ + 1e-3 * abs(
        plain.objective_)


def test_knn_scores_is_accuracy_plus_half_purity():
    Z_train = np.array([[0.0], [0.1], [0.2], [1.0], [1.1], [1.2]])
    y_train = np.array([0, 0, 1, 1, 1, 1])
    Z_valid = np.array([[0.05], [1.05]])
    # Query 0: neighbours 0, 0, 1 -> predicts 0 (right), purity 2/3; query 1: 1, 1, 1.
    [score] = knn_scores([np.eye(1)], Z_train, y_train, Z_valid, np.array([0, 1]))
    assert score == pytest.approx(1.0 + 0.5 * (2 / 3 + 1) / 2)


def test_batch_mode_takes_a_fixed_strength_and_auto_means_plain(rng):
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    L0 = rng.standard_normal((2, 4))
    free = NCA(init=L0, batch_size=50, max_iter=20, random_state=0).fit(X, y)
    tied = NCA(init=L0, batch_size=50, max_iter=20, prior_strength=10.0,
               random_state=0).fit(X, y)
    assert free.prior_strength_ == 0.0 and tied.prior_strength_ == 10.0
    assert np.linalg.norm(tied.components_ - L0) < 0.5 * np.linalg.norm(free.components_ - L0)


@pytest.mark.parametrize("value", [-1.0, "strong", None, [0.1]])
def test_bad_regularization_is_refused_with_its_name(value):
    X, y = load_iris(return_X_y=True)
    with pytest.raises((ValueError, TypeError), match="prior_strength"):
        NCA(prior_strength=value).fit(X, y)


# -- MLKR: the same penalty and inner CV, scored by kernel regression ------------------------

def _regression(n=90, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, 4)
    return X, np.sin(X[:, 0]) + 0.1 * rng.randn(n)


def test_mlkr_penalised_gradient_matches_finite_differences(rng):
    X, y = _regression()
    L0 = np.eye(2, 4)
    L = L0 + 0.3 * rng.standard_normal(L0.shape)
    scale = mlkr_module._penalty_scale(y)
    assert scale == pytest.approx(y.size * np.var(y))
    objective = prior_penalty(lambda M: mlkr_module._loss_grad(M, X, y), L0, 1e-2, scale,
                              _numpy_backend(X))

    def f(v):
        return float(objective(v.reshape(L.shape))[0])

    def g(v):
        return objective(v.reshape(L.shape))[1].ravel()

    assert check_grad(f, g, L.ravel(), epsilon=1e-6) < 1e-5 * np.linalg.norm(g(L.ravel()))


def test_mlkr_zero_strength_is_the_plain_fit_and_large_strength_the_prior():
    X, y = _regression()
    ours = MLKR(max_iter=50).fit(X, y)  # the default: prior_strength=0
    y_fit = mlkr_module._unit_targets(y)  # MLKR fits centred targets of unit scale
    plain = minimize_lbfgs(lambda L: mlkr_module._loss_grad(L, X, y_fit), np.eye(4),
                           _numpy_backend(X), max_iter=50)
    np.testing.assert_array_equal(ours.components_, plain.x)
    assert ours.prior_strength_ == 0.0
    tied = MLKR(max_iter=50, prior_strength=1e4).fit(X, y)
    assert np.abs(tied.components_ - np.eye(4)).max() < 1e-3
    assert np.abs(ours.components_ - np.eye(4)).max() > 0.1


def test_mlkr_auto_is_deterministic_and_never_worse_than_the_prior_inside():
    X, y = _regression()
    a = MLKR(max_iter=50, prior_strength="auto", random_state=0).fit(X, y)
    b = MLKR(max_iter=50, prior_strength="auto", random_state=0).fit(X, y)
    np.testing.assert_array_equal(a.components_, b.components_)
    assert a.prior_strength_ in STRENGTHS
    # The first feature carries the signal: some learning beats the identity here.
    assert a.prior_strength_ < math.inf
    with pytest.raises(ValueError, match="prior_strength"):
        MLKR(prior_strength=-1.0).fit(X, y)
