"""ITML and ITML_Supervised: Bregman projections on pairs, pair API, supervised variant."""

import numpy as np
import pytest
from _tuple_scores import cv_tuple_scores
from sklearn.datasets import load_wine
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline

from skmetric import ITML, ITML_Supervised, wrap_pairs
from skmetric._supervised import draw_tuples
from skmetric.weakly_supervised._itml import _itml_projections


def _blobs(seed=0, n=60):
    """Three classes separated along feature 0, with a large noisy feature 1."""
    rng = np.random.RandomState(seed)
    y = np.arange(n) % 3
    X = np.column_stack([y + 0.1 * rng.randn(n), 10 * rng.randn(n), rng.randn(n)])
    return X, y


def _pairs(seed=0, n_constraints=60):
    X, y = _blobs(seed)
    idx, y_pairs = draw_tuples(y, 2, n_constraints, random_state=seed)
    return X, idx, y_pairs


def _assert_psd(M):
    assert np.allclose(M, M.T)
    assert np.linalg.eigvalsh(M).min() > -1e-8 * np.abs(M).max()


def test_itml_learns_metric_that_separates_similar_from_dissimilar_pairs():
    X, idx, y_pairs = _pairs()
    itml = ITML().fit(X[idx], y_pairs)
    M = itml.get_mahalanobis_matrix()
    _assert_psd(M)
    # The noisy feature 1 is shrunk relative to the informative feature 0.
    assert M[1, 1] / M[0, 0] < 0.1
    assert itml.score(X[idx], y_pairs) > 0.95
    d = itml.pair_distance(X[idx])
    assert d[y_pairs == 1].mean() < d[y_pairs == -1].mean()
    assert 1 <= itml.n_iter_ <= itml.max_iter
    assert itml.bounds_.shape == (2,) and itml.bounds_[0] < itml.bounds_[1]


def test_itml_index_pairs_with_preprocessor_match_feature_pairs():
    X, idx, y_pairs = _pairs()
    a = ITML(max_iter=50).fit(X[idx], y_pairs)
    b = ITML(max_iter=50, preprocessor=X).fit(idx, y_pairs)
    assert np.allclose(a.components_, b.components_)
    assert np.allclose(a.decision_function(X[idx]), b.decision_function(idx))
    assert a.threshold_ == pytest.approx(b.threshold_)


def test_itml_predict_and_calibrate_threshold():
    X, idx, y_pairs = _pairs()
    itml = ITML().fit(X[idx], y_pairs, calibration_params={"strategy": "f_beta", "beta": 2})
    pred = itml.predict(X[idx])
    assert set(np.unique(pred)) <= {-1, 1}
    assert np.mean(pred == y_pairs) > 0.8
    itml.calibrate_threshold(X[idx], y_pairs, strategy="max_tpr", min_rate=0.9)
    tnr = np.mean(itml.predict(X[idx])[y_pairs == -1] == -1)
    assert tnr >= 0.9


def test_itml_bounds_parameter_and_fit_argument():
    X, idx, y_pairs = _pairs()
    given = ITML(bounds=(0.5, 3.0), max_iter=20).fit(X[idx], y_pairs)
    assert np.allclose(given.bounds_, [0.5, 3.0])
    in_fit = ITML(max_iter=20).fit(X[idx], y_pairs, bounds=[0.5, 3.0])
    assert np.allclose(in_fit.components_, given.components_)
    with pytest.raises(ValueError, match="bounds must be two"):
        ITML(bounds=[1.0, 2.0, 3.0]).fit(X[idx], y_pairs)


def test_itml_projections_satisfy_hard_constraints_with_infinite_gamma():
    rng = np.random.RandomState(1)
    diff = rng.randn(6, 3)
    y = np.array([1, 1, 1, -1, -1, -1])
    sq_bounds = np.array([0.5, 8.0])
    A, _ = _itml_projections(diff, y, np.eye(3), sq_bounds, np.inf, 5000, 1e-9, False)
    sq = np.einsum("ij,jk,ik->i", diff, A, diff)
    assert np.all(sq[y == 1] <= sq_bounds[0] * (1 + 1e-3))
    assert np.all(sq[y == -1] >= sq_bounds[1] * (1 - 1e-3))
    _assert_psd(A)


def test_itml_identical_pair_is_ignored_not_nan():
    X, idx, y_pairs = _pairs()
    pairs = X[idx]
    pairs[0, 1] = pairs[0, 0]
    itml = ITML(max_iter=20).fit(pairs, y_pairs)
    assert np.all(np.isfinite(itml.components_))


def test_itml_grid_search_on_pairs_uses_pair_score():
    X, idx, y_pairs = _pairs()
    learner, cv = ITML(max_iter=30), StratifiedKFold(3)
    grid = GridSearchCV(learner, {"gamma": [0.1, 1.0, 10.0]}, cv=cv).fit(X[idx], y_pairs)
    # The scores are the held-out pair AUCs, recomputed here from components_.
    expected = cv_tuple_scores(learner, X[idx], y_pairs, grid.cv_results_["params"], cv)
    np.testing.assert_allclose(grid.cv_results_["mean_test_score"], expected, rtol=1e-10)
    # gamma reaches the learner: little slack (gamma=0.1) fits the noisy pairs worse.
    assert expected[0] < 0.9 and grid.best_score_ > 0.99
    assert grid.best_params_ == {"gamma": 1.0}  # ties with 10.0 go to the first


@pytest.mark.parametrize(
    "pairs_shape, labels, match",
    [
        ((10, 3, 3), None, "2 samples per tuple"),
        ((10, 3), None, "3-D array"),
        ((10, 2, 3), np.r_[np.ones(5), np.full(5, 2.0)], r"\+1 \(similar\) or -1"),
        ((10, 2, 3), np.ones(9), "one label per pair"),
    ],
)
def test_itml_rejects_bad_pairs(pairs_shape, labels, match):
    pairs = np.random.RandomState(0).randn(*pairs_shape)
    y = np.r_[np.ones(5), -np.ones(5)] if labels is None else labels
    with pytest.raises(ValueError, match=match):
        ITML().fit(pairs, y)


def test_itml_rejects_nan_pairs_and_bad_parameters():
    X, idx, y_pairs = _pairs()
    pairs = X[idx].copy()
    pairs[2, 0, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        ITML().fit(pairs, y_pairs)
    for params, match in [({"gamma": 0}, "gamma"), ({"max_iter": 0}, "max_iter"),
                          ({"tol": -1}, "tol"), ({"prior": "bogus"}, "prior")]:
        with pytest.raises(ValueError, match=match):
            ITML(**params).fit(X[idx], y_pairs)


def test_itml_supervised_errors_on_single_class_and_bad_n_constraints():
    X, y = _blobs()
    with pytest.raises(ValueError, match="at least two classes"):
        ITML_Supervised().fit(X, np.zeros(len(X)))
    with pytest.raises(ValueError, match="two or more samples"):
        ITML_Supervised().fit(X[:3], [0, 1, 2])
    with pytest.raises(ValueError, match="n_constraints"):
        ITML_Supervised(n_constraints=0).fit(X, y)


def test_itml_supervised_equals_itml_on_the_same_drawn_pairs():
    X, y = _blobs()
    sup = ITML_Supervised(n_constraints=40, max_iter=50, random_state=3).fit(X, y)
    idx, y_pairs = draw_tuples(y, 2, 40, random_state=3)
    pairs, y_wrapped = wrap_pairs(X, (idx[y_pairs == 1, 0], idx[y_pairs == 1, 1],
                                      idx[y_pairs == -1, 0], idx[y_pairs == -1, 1]))
    weak = ITML(max_iter=50).fit(pairs, y_wrapped)
    assert np.allclose(sup.components_, weak.components_)


def test_itml_supervised_improves_knn_on_unscaled_wine():
    X, y = load_wine(return_X_y=True)
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    knn = KNeighborsClassifier(n_neighbors=3)
    base = cross_val_score(knn, X, y, cv=cv).mean()
    pipe = make_pipeline(ITML_Supervised(max_iter=100, random_state=0), knn)
    learned = cross_val_score(pipe, X, y, cv=cv).mean()
    assert learned > base + 0.1
