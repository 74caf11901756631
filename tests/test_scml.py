"""SCML: objective and subgradient, bases, sparse PSD metrics, supervised k-NN gains, errors."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_wine
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline

from skmetric import SCML, Constraints, SCML_Supervised
from skmetric.weakly_supervised._scml import (
    _basis_distance_differences,
    _DistanceDifferences,
    _lda_directions,
    _minimize_scml,
    _scml_gradient,
    _scml_objective,
    _triplet_diffs_basis,
)


def _relevant_first_feature(n=90, d=5, seed=0):
    """Classes differ in feature 0 only; the other features are loud noise."""
    rng = np.random.RandomState(seed)
    y = np.arange(n) % 3
    X = 2.0 * rng.randn(n, d)
    X[:, 0] = 3 * y + 0.3 * rng.randn(n)
    return X, y


def test_distance_differences_give_the_metric_of_the_weighted_bases():
    rng = np.random.RandomState(0)
    triplets, basis, w = rng.randn(20, 3, 4), rng.randn(7, 4), rng.rand(7)
    D = _basis_distance_differences(triplets, basis)
    M = (basis.T * w) @ basis
    d_ap = np.einsum("ij,jk,ik->i", triplets[:, 0] - triplets[:, 1], M,
                     triplets[:, 0] - triplets[:, 1])
    d_an = np.einsum("ij,jk,ik->i", triplets[:, 0] - triplets[:, 2], M,
                     triplets[:, 0] - triplets[:, 2])
    np.testing.assert_allclose(D @ w, d_ap - d_an)
    # The factored form the optimiser uses agrees with the dense matrix.
    factored = _DistanceDifferences(triplets, basis)
    np.testing.assert_allclose(factored @ w, D @ w)
    np.testing.assert_allclose(factored.rows([3, 3, 0]), D[[3, 3, 0]])
    v = rng.randn(20)
    np.testing.assert_allclose(v @ factored, v @ D)


def test_repeated_pairs_are_projected_once():
    rng = np.random.RandomState(0)
    X = rng.randn(10, 3)
    triplets = X[[[0, 1, 2], [0, 1, 3], [0, 1, 4], [5, 6, 2]]]
    factored = _DistanceDifferences(triplets, rng.randn(4, 3))
    assert factored.pos.shape == (2, 4)  # (0, 1) appears three times
    assert factored.neg.shape == (4, 4)


def test_subgradient_matches_central_differences_away_from_kinks():
    rng = np.random.RandomState(1)
    D, w, beta = rng.randn(50, 8), rng.rand(8), 0.01
    grad = _scml_gradient(w, D, beta)
    h = 1e-7
    numeric = np.array([
        (_scml_objective(w + h * e, D, beta) - _scml_objective(w - h * e, D, beta)) / (2 * h)
        for e in np.eye(8)
    ])
    assert np.min(np.abs(1 + D @ w)) > 1e-4  # no triplet sits on a kink
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-8)
    expected = np.mean(np.maximum(1 + D @ w, 0)) + beta * w.sum()
    assert _scml_objective(w, D, beta) == pytest.approx(expected)


def test_optimiser_returns_sparse_non_negative_weights_that_lower_the_objective():
    X, y = _relevant_first_feature()
    triplets = X[Constraints(y).triplets(500, random_state=0)]
    basis = np.vstack([np.eye(5), np.random.RandomState(0).randn(10, 5)])
    D = _DistanceDifferences(triplets, basis)
    w = _minimize_scml(D, 1e-3, 5e-3, 2000, 100, 10, np.random.RandomState(0), None)
    assert np.all(w >= 0) and np.any(w > 0)
    assert _scml_objective(w, D, 1e-3) < _scml_objective(np.zeros(15), D, 1e-3) - 0.1
    # The relevant axis b = e_0 carries weight; most noise axes are left out.
    assert w[0] > 0 and np.count_nonzero(w[1:5]) <= 2


def test_lda_directions_agree_with_scikit_learn():
    X, y = load_wine(return_X_y=True)
    rng = np.random.RandomState(0)
    for m in (30, 178):
        idx = rng.choice(len(y), m, replace=False)
        ours = _lda_directions(X[idx], y[idx], 2)
        ref = LinearDiscriminantAnalysis().fit(X[idx], y[idx]).scalings_[:, :2].T
        ref /= np.linalg.norm(ref, axis=1, keepdims=True)
        np.testing.assert_allclose(np.abs(np.sum(ours * ref, axis=1)), 1.0, atol=1e-8)


def test_triplet_diffs_basis_spans_the_triplet_differences():
    X, y = _relevant_first_feature()
    triplets = X[Constraints(y).triplets(200, random_state=0)]
    basis = _triplet_diffs_basis(triplets, 25, np.random.RandomState(0))
    assert basis.shape == (25, 5)
    np.testing.assert_allclose(np.linalg.norm(basis, axis=1), 1.0)
    assert np.linalg.matrix_rank(basis) == 5
    # Default size: 80 * n_features.
    assert _triplet_diffs_basis(triplets, None, np.random.RandomState(0)).shape == (400, 5)


def test_fit_on_triplets_learns_a_sparse_psd_metric_that_satisfies_them():
    X, y = _relevant_first_feature()
    triplets = Constraints(y).triplets(400, random_state=0)
    scml = SCML(n_basis=40, max_iter=3000, output_iter=100, random_state=0,
                preprocessor=X).fit(triplets)
    M = scml.get_mahalanobis_matrix()
    np.testing.assert_allclose(M, M.T, atol=1e-10)
    assert np.linalg.eigvalsh(M).min() > -1e-10
    np.testing.assert_allclose(M, (scml.basis_.T * scml.basis_weights_) @ scml.basis_,
                               atol=1e-8)
    assert np.count_nonzero(scml.basis_weights_) < 40
    assert M[0, 0] > 3 * np.max(np.diag(M)[1:])
    d_ap = np.linalg.norm(X[triplets[:, 0]] - X[triplets[:, 1]], axis=1)
    d_an = np.linalg.norm(X[triplets[:, 0]] - X[triplets[:, 2]], axis=1)
    assert scml.score(triplets) > np.mean(d_ap < d_an) + 0.1
    assert scml.n_iter_ == 3000


def test_user_basis_is_used_as_given():
    X, y = _relevant_first_feature()
    triplets = Constraints(y).triplets(300, random_state=0)
    basis = np.eye(5)
    scml = SCML(basis=basis, max_iter=1000, output_iter=100, random_state=0,
                preprocessor=X).fit(triplets)
    np.testing.assert_array_equal(scml.basis_, basis)
    # With axis bases the metric is diagonal: a feature weighting.
    M = scml.get_mahalanobis_matrix()
    np.testing.assert_allclose(M, np.diag(scml.basis_weights_), atol=1e-10)


@pytest.mark.parametrize("params, match", [
    ({"basis": np.eye(3)}, "shape \\(n_basis, n_features\\)"),
    ({"basis": np.full((2, 5), np.nan)}, "NaN"),
    ({"basis": np.eye(5), "n_basis": 3}, "disagrees"),
    ({"basis": "lda"}, "basis"),
    ({"n_basis": 0}, "n_basis"),
    ({"n_basis": 2.5}, "n_basis"),
    ({"max_iter": 10, "output_iter": 20}, "output_iter"),
    ({"gamma": 0.0}, "gamma"),
    ({"batch_size": 0}, "batch_size"),
])
def test_bad_parameters_are_rejected(params, match):
    X, y = _relevant_first_feature()
    triplets = Constraints(y).triplets(50, random_state=0)
    with pytest.raises(ValueError, match=match):
        SCML(preprocessor=X, **params).fit(triplets)


def test_degenerate_triplets_cannot_build_a_basis():
    triplets = np.ones((10, 3, 4))
    with pytest.raises(ValueError, match="Cannot build the 'triplet_diffs' basis"):
        SCML().fit(triplets)


def test_supervised_basis_options_and_errors():
    X, y = _relevant_first_feature()
    fast = {"max_iter": 500, "output_iter": 100, "random_state": 0}
    lda = SCML_Supervised(**fast).fit(X, y)
    # Default 'lda' size: min(20 * n_features, 2 * n_samples * n_dirs - 1) bases.
    assert lda.basis_.shape == (100, 5)
    diffs = SCML_Supervised(basis="triplet_diffs", n_basis=30, **fast).fit(X, y)
    assert diffs.basis_.shape == (30, 5)
    with pytest.raises(ValueError, match="n_basis=.* is too large for basis='lda'"):
        SCML_Supervised(n_basis=2 * 90 * 2, **fast).fit(X, y)
    with pytest.warns(UserWarning, match="below the number of classes"):
        SCML_Supervised(n_basis=2, **fast).fit(X, y)
    with pytest.raises(ValueError, match="k_genuine"):
        SCML_Supervised(k_genuine=40, **fast).fit(X, y)
    with pytest.raises(ValueError, match="k_impostor"):
        SCML_Supervised(k_impostor=0, **fast).fit(X, y)
    with pytest.raises(ValueError, match="two classes"):
        SCML_Supervised(**fast).fit(X, np.zeros(len(y)))


def test_supervised_is_reproducible():
    X, y = _relevant_first_feature()
    fast = {"max_iter": 500, "output_iter": 100}
    a = SCML_Supervised(random_state=0, **fast).fit(X, y)
    b = SCML_Supervised(random_state=0, **fast).fit(X, y)
    np.testing.assert_array_equal(a.components_, b.components_)


def test_supervised_improves_knn_on_unscaled_wine():
    X, y = load_wine(return_X_y=True)
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    knn = KNeighborsClassifier(n_neighbors=3)
    euclidean = cross_val_score(knn, X, y, cv=cv).mean()
    scml = SCML_Supervised(max_iter=3000, random_state=0)
    learned = cross_val_score(make_pipeline(scml, knn), X, y, cv=cv).mean()
    assert learned > euclidean + 0.15


@pytest.mark.filterwarnings("ignore:SCML gave every basis a zero weight")
def test_grid_search_over_triplets():
    X, y = _relevant_first_feature()
    triplets = Constraints(y).triplets(300, random_state=0)
    search = GridSearchCV(
        SCML(n_basis=20, max_iter=500, output_iter=100, random_state=0, preprocessor=X),
        {"beta": [1e-5, 10.0]}, cv=3,
    ).fit(triplets)
    # A huge L1 penalty zeroes every weight, which satisfies no held-out triplet.
    scores = search.cv_results_["mean_test_score"]
    assert scores[0] > scores[1]
    assert search.best_params_ == {"beta": 1e-5}


def test_zero_metric_warns():
    X, y = _relevant_first_feature()
    triplets = Constraints(y).triplets(50, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(Warning, match="zero weight"):
            # beta = 100 zeroes every weight for any basis draw (10 gave some draws a
            # surviving weight); the seed keeps the test deterministic anyway.
            SCML(beta=100.0, n_basis=10, max_iter=100, output_iter=50, preprocessor=X,
                 random_state=0).fit(triplets)


def test_verbose_prints_progress(capsys):
    X, y = _relevant_first_feature()
    SCML_Supervised(max_iter=100, output_iter=50, verbose=True, random_state=0).fit(X, y)
    assert "[SCML_Supervised] iter 50" in capsys.readouterr().out
