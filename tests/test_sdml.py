"""SDML and SDML_Supervised: graphical lasso on the pair matrix, ill-posed cases, pair API."""

import warnings

import numpy as np
import pytest
from _tuple_scores import cv_tuple_scores
from sklearn.datasets import load_wine
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline

import skmetric.weakly_supervised._sdml as sdml_module
from skmetric import SDML, SDML_Supervised
from skmetric._supervised import draw_tuples


def _pairs(seed=0, n=60, n_constraints=60):
    """Three classes separated along feature 0, with a noisy feature 1."""
    rng = np.random.RandomState(seed)
    y = np.arange(n) % 3
    X = np.column_stack([y + 0.1 * rng.randn(n), 3 * rng.randn(n), rng.randn(n)])
    idx, y_pairs = draw_tuples(y, 2, n_constraints, random_state=seed)
    return X, idx, y_pairs


def _assert_psd(M):
    assert np.allclose(M, M.T)
    assert np.linalg.eigvalsh(M).min() > -1e-8 * np.abs(M).max()


def _pair_matrix(pairs, y, balance_param):
    """SDML's ``P = inv(M0) + eta sum_i y_i (a_i - b_i)(a_i - b_i)^T``, M0 = I, pair by pair."""
    P = np.eye(pairs.shape[2])
    for (a, b), label in zip(pairs, y, strict=True):
        P += balance_param * label * np.outer(a - b, a - b)
    return P


def test_sdml_well_posed_problem_is_solved_without_flooring():
    X, idx, y_pairs = _pairs()
    # Without sparsity the minimiser is exactly inv(P).
    exact = SDML(balance_param=1e-3, sparsity_param=0.0).fit(X[idx], y_pairs)
    P = _pair_matrix(X[idx], y_pairs, 1e-3)
    np.testing.assert_allclose(exact.get_mahalanobis_matrix(), np.linalg.inv(P), rtol=1e-10)
    sdml = SDML(balance_param=1e-3).fit(X[idx], y_pairs)
    assert sdml.n_floored_ == 0
    M = sdml.get_mahalanobis_matrix()
    _assert_psd(M)
    # With little sparsity, M stays close to it.
    assert np.allclose(M, np.linalg.inv(P), rtol=0.1, atol=0.05 * np.abs(M).max())
    d = sdml.pair_distance(X[idx])
    assert d[y_pairs == 1].mean() < d[y_pairs == -1].mean()


def test_sdml_ill_posed_problem_succeeds_by_flooring_eigenvalues():
    X, idx, y_pairs = _pairs()
    # balance_param=0.5 on these pairs makes P indefinite: the reference fails here.
    P = _pair_matrix(X[idx], y_pairs, 0.5)
    assert np.linalg.eigvalsh(P).min() < 0
    with pytest.warns(UserWarning, match="Lower balance_param"):
        sdml = SDML(balance_param=0.5).fit(X[idx], y_pairs)
    w = np.linalg.eigvalsh(P)
    assert sdml.n_floored_ == np.sum(w < 1e-3 * np.abs(w).max()) >= np.sum(w < 0)
    M = sdml.get_mahalanobis_matrix()
    _assert_psd(M)
    assert np.all(np.isfinite(sdml.components_))
    # The floored (dissimilar-dominated) directions get the largest weights.
    w, V = np.linalg.eigh(P)
    weights = np.einsum("ij,jk,ki->i", V.T, M, V)
    assert weights[w < 0].min() > weights[w > 0].max()


def test_sdml_ill_conditioned_covariance_prior_is_floored_without_warning():
    X, idx, y_pairs = _pairs()
    X = X * np.array([1e4, 1.0, 1e-2])  # features on very different scales
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        sdml = SDML(prior="covariance", balance_param=1e-5).fit(X[idx], y_pairs)
    assert sdml.n_floored_ >= 1
    _assert_psd(sdml.get_mahalanobis_matrix())
    assert sdml.score(X[idx], y_pairs) > 0.9


def test_sdml_sparsity_param_zeroes_off_diagonal_entries():
    rng = np.random.RandomState(0)
    X = rng.randn(80, 5)
    y = np.arange(80) % 2
    idx, y_pairs = draw_tuples(y, 2, 100, random_state=0)
    dense = SDML(balance_param=1e-3, sparsity_param=0.0).fit(X[idx], y_pairs)
    sparse = SDML(balance_param=1e-3, sparsity_param=0.5).fit(X[idx], y_pairs)
    off = ~np.eye(5, dtype=bool)
    n_zero_dense = np.sum(np.isclose(dense.get_mahalanobis_matrix()[off], 0, atol=1e-10))
    n_zero_sparse = np.sum(np.isclose(sparse.get_mahalanobis_matrix()[off], 0, atol=1e-10))
    assert n_zero_sparse > n_zero_dense


def test_sdml_graphical_lasso_failure_names_the_parameters_to_change(monkeypatch):
    def failing(*args, **kwargs):
        raise FloatingPointError("Non SPD result")

    monkeypatch.setattr(sdml_module, "graphical_lasso", failing)
    X, idx, y_pairs = _pairs()
    with pytest.raises(ValueError, match="balance_param.*sparsity_param.*prior='covariance'"):
        SDML().fit(X[idx], y_pairs)


def test_sdml_index_pairs_predict_and_calibrate():
    X, idx, y_pairs = _pairs()
    a = SDML(balance_param=1e-3).fit(X[idx], y_pairs)
    b = SDML(balance_param=1e-3, preprocessor=X).fit(idx, y_pairs)
    assert np.allclose(a.components_, b.components_)
    assert np.array_equal(a.predict(X[idx]), b.predict(idx))
    b.calibrate_threshold(idx, y_pairs, strategy="max_tnr", min_rate=0.9)
    assert np.mean(b.predict(idx)[y_pairs == 1] == 1) >= 0.9


def test_sdml_grid_search_on_pairs_picks_the_covariance_prior_by_pair_auc():
    # The identity prior stays near the Euclidean metric (near chance on these pairs,
    # whose feature 1 is large noise); the covariance prior rescales the features.
    X, idx, y_pairs = _pairs()
    learner, cv = SDML(balance_param=1e-2), StratifiedKFold(3)
    grid = GridSearchCV(learner, {"prior": ["identity", "covariance"]}, cv=cv)
    grid.fit(X[idx], y_pairs)
    expected = cv_tuple_scores(learner, X[idx], y_pairs, grid.cv_results_["params"], cv)
    np.testing.assert_allclose(grid.cv_results_["mean_test_score"], expected, rtol=1e-10)
    assert expected[0] < 0.65 and grid.best_score_ > 0.99
    assert grid.best_params_ == {"prior": "covariance"}


def test_sdml_rejects_bad_pairs_and_parameters():
    X, idx, y_pairs = _pairs()
    with pytest.raises(ValueError, match="2 samples per tuple"):
        SDML().fit(np.zeros((4, 3, 2)), [1, 1, -1, -1])
    with pytest.raises(ValueError, match=r"\+1 \(similar\) or -1"):
        SDML().fit(X[idx], np.where(y_pairs == 1, 1, 2))
    pairs = X[idx].copy()
    pairs[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        SDML().fit(pairs, y_pairs)
    for params, match in [({"balance_param": -1}, "balance_param"),
                          ({"sparsity_param": np.inf}, "sparsity_param"),
                          ({"prior": "bogus"}, "prior")]:
        with pytest.raises(ValueError, match=match):
            SDML(**params).fit(X[idx], y_pairs)


def test_sdml_supervised_rejects_single_class():
    X, _, _ = _pairs()
    with pytest.raises(ValueError, match="at least two classes"):
        SDML_Supervised().fit(X, np.ones(len(X)))


def test_sdml_supervised_improves_knn_on_unscaled_wine():
    X, y = load_wine(return_X_y=True)
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    knn = KNeighborsClassifier(n_neighbors=3)
    base = cross_val_score(knn, X, y, cv=cv).mean()
    sdml = SDML_Supervised(prior="covariance", balance_param=1e-5, random_state=0)
    learned = cross_val_score(make_pipeline(sdml, knn), X, y, cv=cv).mean()
    assert learned > base + 0.1
