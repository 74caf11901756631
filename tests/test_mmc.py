"""MMC and MMC_Supervised: full and diagonal versions, gradients, pair API."""

import numpy as np
import pytest
from _tuple_scores import cv_tuple_scores
from scipy.optimize import approx_fprime, check_grad
from sklearn.datasets import load_wine
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline

from skmetric import MMC, MMC_Supervised
from skmetric._supervised import draw_tuples
from skmetric.weakly_supervised import _mmc as mmc_module
from skmetric.weakly_supervised._mmc import (
    _diagonal_objective,
    _full_objective,
    _project_onto_constraints,
)


def _pairs(seed=0, n=60, n_constraints=60):
    """Three classes separated along feature 0, with a large noisy feature 1."""
    rng = np.random.RandomState(seed)
    y = np.arange(n) % 3
    X = np.column_stack([y + 0.1 * rng.randn(n), 5 * rng.randn(n), rng.randn(n)])
    idx, y_pairs = draw_tuples(y, 2, n_constraints, random_state=seed)
    return X, idx, y_pairs


def _assert_psd(M):
    assert np.allclose(M, M.T)
    assert np.linalg.eigvalsh(M).min() > -1e-8 * np.abs(M).max()


def test_full_objective_gradient_matches_finite_differences():
    rng = np.random.RandomState(0)
    dis, sim = rng.randn(7, 3), rng.randn(5, 3)
    W = sim.T @ sim
    B = rng.randn(3, 3)
    A0 = B @ B.T + np.eye(3)

    def f(a):
        return _full_objective(a.reshape(3, 3), dis, W)[0]

    def g(a):
        return _full_objective(a.reshape(3, 3), dis, W)[1].ravel()

    assert check_grad(f, g, A0.ravel()) < 1e-5 * max(1, np.linalg.norm(g(A0.ravel())))
    # Scale invariance: the gradient is orthogonal to A.
    assert abs(np.sum(g(A0.ravel()) * A0.ravel())) < 1e-8


def test_diagonal_objective_gradient_and_hessian_match_finite_differences():
    rng = np.random.RandomState(1)
    s_sum = rng.rand(4)
    dis_sq = rng.randn(9, 4) ** 2
    w = rng.rand(4) + 0.5
    obj, grad, hess = _diagonal_objective(w, s_sum, dis_sq, 2.0, hessian=True)
    num_grad = approx_fprime(w, lambda v: _diagonal_objective(v, s_sum, dis_sq, 2.0)[0], 1e-7)
    assert np.allclose(grad, num_grad, rtol=1e-4, atol=1e-6)
    num_hess = np.array([
        approx_fprime(w, lambda v, k=k: _diagonal_objective(v, s_sum, dis_sq, 2.0)[1][k], 1e-7)
        for k in range(4)
    ])
    assert np.allclose(hess, num_hess, rtol=1e-3, atol=1e-5)


# The authors' algorithm needs a few thousand projection rounds per step here: 20 steps.
@pytest.mark.parametrize("params", [{"solver": "projections", "max_iter": 20},
                                    {"solver": "ratio"}, {"diagonal": True}],
                         ids=["projections", "ratio", "diagonal"])
def test_mmc_improves_its_objective_and_separates_pairs(params):
    X, idx, y_pairs = _pairs()
    mmc = MMC(**params).fit(X[idx], y_pairs)
    M = mmc.get_mahalanobis_matrix()
    _assert_psd(M)
    if params.get("diagonal"):
        assert np.allclose(M, np.diag(np.diag(M)))
    diff = X[idx[:, 0]] - X[idx[:, 1]]
    W = diff[y_pairs == 1].T @ diff[y_pairs == 1]
    dis = diff[y_pairs == -1]
    assert _full_objective(M, dis, W)[0] > _full_objective(np.eye(3), dis, W)[0]
    # The noisy feature is down-weighted relative to the informative one.
    assert M[1, 1] < 0.1 * M[0, 0]
    assert mmc.score(X[idx], y_pairs) > 0.95
    assert 1 <= mmc.n_iter_ <= mmc.max_iter


def test_ratio_solver_reaches_at_least_the_projection_solvers_objective():
    X, idx, y_pairs = _pairs()
    diff = X[idx[:, 0]] - X[idx[:, 1]]
    W, dis = diff[y_pairs == 1].T @ diff[y_pairs == 1], diff[y_pairs == -1]
    values = [_full_objective(MMC(**params).fit(X[idx], y_pairs)
                              .get_mahalanobis_matrix(), dis, W)[0]
              for params in ({"solver": "projections", "max_iter": 20}, {"solver": "ratio"})]
    assert values[1] >= values[0] - 1e-9


@pytest.mark.parametrize("solver, bound", [("ratio", 1 + 1e-8), ("projections", 1.01 / 100)])
def test_mmc_full_metric_satisfies_the_similarity_constraint(solver, bound):
    X, idx, y_pairs = _pairs()
    mmc = MMC(solver=solver, max_iter=20).fit(X[idx], y_pairs)
    diff = X[idx[:, 0]] - X[idx[:, 1]]
    sim = diff[y_pairs == 1]
    # t is the constraint's value at the (identity) initial matrix, 1% of it for the
    # authors' algorithm; their projections stop within 1% of t.
    t = np.sum(sim**2)
    assert np.einsum("ij,jk,ik->", sim, mmc.get_mahalanobis_matrix(), sim) <= t * bound


def test_constraint_projection_lands_in_both_sets():
    rng = np.random.RandomState(0)
    sim = rng.randn(20, 4)
    W = sim.T @ sim
    t = np.trace(W) / 100
    A, feasible, lowest = _project_onto_constraints(np.eye(4) + rng.randn(4, 4) * 0.01,
                                                    W, np.sum(W * W), t, 10000)
    assert feasible
    _assert_psd(A)
    assert np.sum(W * A) < 1.01 * t
    assert lowest == pytest.approx(np.sum(W * A))


def test_projection_solver_skips_exactly_the_rounds_bound_to_fail(monkeypatch):
    # With 3 rounds per step many projections fail by a wide margin, so later starts close
    # to a failed one are skipped; running every round must give the same metric.
    X, idx, y_pairs = _pairs()
    calls = []
    project = mmc_module._project_onto_constraints

    def counting(*args):
        calls.append(1)
        return project(*args)

    monkeypatch.setattr(mmc_module, "_project_onto_constraints", counting)
    fast = MMC(max_proj=3, max_iter=60).fit(X[idx], y_pairs)
    n_fast = len(calls)
    monkeypatch.setattr(mmc_module, "_known_to_fail", lambda *args: False)
    calls.clear()
    slow = MMC(max_proj=3, max_iter=60).fit(X[idx], y_pairs)
    assert n_fast < len(calls) == slow.n_iter_
    assert fast.n_iter_ == slow.n_iter_
    np.testing.assert_array_equal(fast.components_, slow.components_)


def test_projection_solver_keeps_the_initial_metric_when_it_cannot_project_it():
    # The authors' algorithm rejects every step whose projections do not reach the
    # constraint; if even the initial matrix's do not, the initial metric is returned.
    X, idx, y_pairs = _pairs()
    mmc = MMC(max_proj=1).fit(X[idx], y_pairs)
    np.testing.assert_allclose(mmc.get_mahalanobis_matrix(), np.eye(3), atol=1e-12)
    assert np.allclose(MMC(max_proj=1, solver="ratio").fit(X[idx], y_pairs)
                       .get_mahalanobis_matrix()[1, 1], 0, atol=0.1)


def test_mmc_index_pairs_predict_and_calibrate():
    X, idx, y_pairs = _pairs()
    a = MMC(max_iter=30).fit(X[idx], y_pairs)
    b = MMC(max_iter=30, preprocessor=X).fit(idx, y_pairs)
    assert np.allclose(a.components_, b.components_)
    assert np.array_equal(a.predict(X[idx]), b.predict(idx))
    assert set(np.unique(b.predict(idx))) <= {-1, 1}
    b.calibrate_threshold(idx, y_pairs, strategy="accuracy")
    assert np.mean(b.predict(idx) == y_pairs) > 0.9


def test_mmc_grid_search_on_pairs_picks_the_diagonal_solver_by_pair_auc():
    # With max_proj=1 the full solver keeps the Euclidean metric (no better than chance on
    # these pairs), while the diagonal solver learns to ignore the noisy feature.
    X, idx, y_pairs = _pairs()
    learner, cv = MMC(max_iter=30, max_proj=1), StratifiedKFold(3)
    grid = GridSearchCV(learner, {"diagonal": [False, True]}, cv=cv).fit(X[idx], y_pairs)
    expected = cv_tuple_scores(learner, X[idx], y_pairs, grid.cv_results_["params"], cv)
    np.testing.assert_allclose(grid.cv_results_["mean_test_score"], expected, rtol=1e-10)
    assert expected[0] < 0.6 and grid.best_score_ > 0.99
    assert grid.best_params_ == {"diagonal": True}


def test_mmc_rejects_bad_pairs_and_parameters():
    X, idx, y_pairs = _pairs()
    with pytest.raises(ValueError, match="2 samples per tuple"):
        MMC().fit(np.zeros((4, 4, 2)), [1, 1, -1, -1])
    with pytest.raises(ValueError, match=r"\+1 \(similar\) or -1"):
        MMC().fit(X[idx], y_pairs * 2)
    pairs = X[idx].copy()
    pairs[1, 1, 2] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        MMC().fit(pairs, y_pairs)
    with pytest.raises(ValueError, match="one similar"):
        MMC().fit(X[idx][y_pairs == -1], y_pairs[y_pairs == -1])
    same = X[idx].copy()
    same[y_pairs == 1, 1] = same[y_pairs == 1, 0]  # every similar pair is a sample twice
    with pytest.raises(ValueError, match="distinct samples"):
        MMC().fit(same, y_pairs)
    for params, match in [({"max_iter": 0}, "max_iter"), ({"max_proj": 1.5}, "max_proj"),
                          ({"tol": -1.0}, "tol"), ({"diagonal": "yes"}, "diagonal"),
                          ({"diagonal": True, "diagonal_c": 0}, "diagonal_c"),
                          ({"init": "bogus"}, "init"), ({"solver": "newton"}, "solver")]:
        with pytest.raises(ValueError, match=match):
            MMC(**params).fit(X[idx], y_pairs)


def test_mmc_supervised_rejects_single_class():
    X, _, _ = _pairs()
    with pytest.raises(ValueError, match="at least two classes"):
        MMC_Supervised().fit(X, np.zeros(len(X)))


@pytest.mark.parametrize("params", [{"solver": "projections", "max_iter": 20},
                                    {"solver": "ratio"}, {"diagonal": True}],
                         ids=["projections", "ratio", "diagonal"])
def test_mmc_supervised_improves_knn_on_unscaled_wine(params):
    X, y = load_wine(return_X_y=True)
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    knn = KNeighborsClassifier(n_neighbors=3)
    base = cross_val_score(knn, X, y, cv=cv).mean()
    mmc = MMC_Supervised(**params, random_state=0)
    learned = cross_val_score(make_pipeline(mmc, knn), X, y, cv=cv).mean()
    assert learned > base + 0.1
