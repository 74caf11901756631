"""``prior_strength`` of LMNN, LFDA and ITML: the pull toward the prior metric (issue 21).

LMNN adds a penalty to its objective (checked against finite differences and a brute-force
minimum); LFDA and ITML move the learned metric along the geodesic toward the prior
(checked against scipy's matrix powers). ``prior_strength=0`` is the plain objective,
pinned to the values of the code before this parameter existed; ``np.inf`` is the prior;
'auto' is chosen by an inner cross-validation on the training data (LFDA's rule is
recomputed with scikit-learn's folds and k-NN in test_lfda_auto_rule.py).
"""

import numpy as np
import pytest
from scipy import linalg
from scipy.optimize import minimize_scalar
from scipy.spatial.distance import pdist
from sklearn.datasets import load_wine, make_classification
from sklearn.preprocessing import MinMaxScaler

from skmetric import ITML, LFDA, LMNN, ITML_Supervised
from skmetric._compute._toward_prior import GEODESIC_STRENGTHS, geodesic_map
from skmetric.supervised._lmnn import (
    _lmnn_objective,
    _PriorPenalty,
    _select_target_neighbors,
)


@pytest.fixture(scope="module")
def wine90():
    """90 wine samples (30 per class), MinMax-scaled: the pyDML-Stats preprocessing."""
    X, y = load_wine(return_X_y=True)
    X = MinMaxScaler().fit_transform(X)
    rows = np.r_[0:30, 60:90, 130:160]
    return X[rows], y[rows]


def _summary(L):
    return [np.sum(L), np.sum(L**2), L[0, 0], L[-1, 1]]


# Values of the code before prior_strength existed (commit 54b2d34, same calls).
PLAIN_LMNN = ([14.057075882501366, 50.96223831678611, 0.7943545451831338,
               0.44274010379570494], 61.817258915813454, 40)
PLAIN_LFDA = [62.23559682630206, 1390.6160999889594, 1.4477679839422408, 0.7867905067890236]
PLAIN_ITML = ([-3.695504538713948, 13.41164696704754, -0.10692399494482119,
               -0.47150373994173367], 26)


def test_prior_strength_zero_is_the_plain_fit_of_before(wine90):
    X, y = wine90
    # Every default pulls toward the prior (LMNN: 1, LFDA and ITML_Supervised: 'auto'):
    # the plain objective is prior_strength=0.
    lmnn = LMNN(n_neighbors=3, max_iter=40, random_state=0, prior_strength=0).fit(X, y)
    np.testing.assert_allclose(_summary(lmnn.components_), PLAIN_LMNN[0], rtol=1e-9)
    assert lmnn.objective_ == pytest.approx(PLAIN_LMNN[1], rel=1e-9)
    assert lmnn.n_iter_ == PLAIN_LMNN[2]
    lfda = LFDA(k=5, prior_strength=0).fit(X, y)
    np.testing.assert_allclose(_summary(lfda.components_), PLAIN_LFDA, rtol=1e-9)
    itml = ITML_Supervised(n_constraints=60, random_state=0, prior_strength=0).fit(X, y)
    np.testing.assert_allclose(_summary(itml.components_), PLAIN_ITML[0], rtol=1e-9)
    assert itml.n_iter_ == PLAIN_ITML[1]
    for fitted in (lmnn, lfda, itml):
        assert fitted.prior_strength_ == 0.0


def _distance_to_ray(L, L0, C):
    """``min_c trace((L - c L0) C (L - c L0)^T)``, by a scalar minimiser."""
    def f(c):
        D = L - c * L0
        return np.trace(D @ C @ D.T)
    return minimize_scalar(f).fun


def test_lmnn_prior_penalty_is_the_scale_free_distance_to_the_prior():
    rng = np.random.RandomState(0)
    X = rng.standard_normal((30, 4)) @ rng.standard_normal((4, 4))
    L0, L = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    strength = 0.7
    penalty = _PriorPenalty.for_samples(L0, X, strength)
    value, grad = penalty.value_grad(L)
    C = np.cov(X, rowvar=False, bias=True)
    assert value == pytest.approx(strength * 30 * _distance_to_ray(L, L0, C), rel=1e-8)
    # The scale of L is free: any multiple of the prior costs nothing.
    assert penalty.value_grad(2.5 * L0)[0] == pytest.approx(0.0, abs=1e-9)
    assert penalty.value_grad(3.0 * L)[0] == pytest.approx(9.0 * value, rel=1e-10)
    eps = 1e-6
    numeric = np.zeros_like(L)
    for idx in np.ndindex(*L.shape):
        step = np.zeros_like(L)
        step[idx] = eps
        numeric[idx] = (penalty.value_grad(L + step)[0]
                        - penalty.value_grad(L - step)[0]) / (2 * eps)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-6)
    # On features divided by scale, L * scale gives the same value.
    scale = np.array([0.5, 2.0, 3.0, 0.1])
    assert penalty.rescaled(scale).value_grad(L * scale)[0] == pytest.approx(value, rel=1e-10)


def test_lmnn_objective_with_the_prior_matches_finite_differences(wine90):
    X, y = wine90
    X = X[:, :5]
    targets = _select_target_neighbors(X, y, 3)
    L0 = np.eye(5)
    prior = _PriorPenalty.for_samples(L0, X, 0.3)
    L = np.random.RandomState(1).uniform(0.5, 1.5, (5, 5))
    loss, grad, _ = _lmnn_objective(L, X, y, targets, 0.5, prior)
    plain, plain_grad, _ = _lmnn_objective(L, X, y, targets, 0.5)
    value, pgrad = prior.value_grad(L)
    assert loss == pytest.approx(plain + value, rel=1e-12)
    np.testing.assert_allclose(grad, plain_grad + pgrad, rtol=1e-12)
    eps = 1e-7
    for idx in [(0, 0), (1, 3), (4, 2), (2, 4)]:
        step = np.zeros_like(L)
        step[idx] = eps
        numeric = (_lmnn_objective(L + step, X, y, targets, 0.5, prior)[0]
                   - _lmnn_objective(L - step, X, y, targets, 0.5, prior)[0]) / (2 * eps)
        assert grad[idx] == pytest.approx(numeric, rel=1e-4, abs=1e-4)


def test_lmnn_strength_pulls_toward_the_prior_map(wine90):
    X, y = wine90
    C = np.cov(X, rowvar=False, bias=True)
    L0 = np.eye(X.shape[1])
    distances = []
    for strength in (0.0, 0.1, 1.0, 10.0):
        lmnn = LMNN(init="identity", max_iter=100, prior_strength=strength).fit(X, y)
        distances.append(_distance_to_ray(lmnn.components_, L0, C))
    assert np.all(np.diff(distances) < 0), distances
    assert distances[-1] < 0.1 * distances[0]
    prior = LMNN(init="identity", prior_strength=np.inf).fit(X, y)
    np.testing.assert_array_equal(prior.components_, L0)
    assert prior.n_iter_ == 0 and prior.prior_strength_ == np.inf
    assert prior.objective_ == pytest.approx(_lmnn_objective(
        L0, X, y, _select_target_neighbors(X, y, 3), 0.5)[0])


def _geodesic_metric(M0, M, t):
    """``M0^(1/2) (M0^(-1/2) M M0^(-1/2))^t M0^(1/2)`` with scipy's matrix powers."""
    root = linalg.sqrtm(M0).real
    inv_root = linalg.inv(root)
    return root @ linalg.fractional_matrix_power(inv_root @ M @ inv_root, t).real @ root


def test_geodesic_map_follows_the_affine_invariant_geodesic():
    rng = np.random.RandomState(0)
    L0, L = rng.standard_normal((4, 4)), rng.standard_normal((4, 4))
    M0, M = L0.T @ L0, L.T @ L
    for strength in (1.0 / 3.0, 1.0, 3.0):
        G = geodesic_map(L, L0, strength)
        np.testing.assert_allclose(G.T @ G, _geodesic_metric(M0, M, 1 / (1 + strength)),
                                   rtol=1e-7, atol=1e-9)
    assert geodesic_map(L, L0, 0.0) is L
    G = geodesic_map(L, L0, np.inf)
    np.testing.assert_allclose(G.T @ G, M0, rtol=1e-10, atol=1e-10)
    # A map of lower rank toward the identity: the Euclidean metric on its row space.
    R = rng.standard_normal((2, 4))
    G = geodesic_map(R, np.eye(4), np.inf)
    np.testing.assert_allclose(G @ G.T, np.eye(2), atol=1e-12)
    np.testing.assert_allclose(G.T @ G, linalg.orth(R.T) @ linalg.orth(R.T).T, atol=1e-12)


def test_infinite_strength_gives_the_prior(wine90):
    X, y = wine90
    lfda = LFDA(k=5, prior_strength=np.inf).fit(X, y)
    ratio = pdist(lfda.transform(X)) / pdist(X)  # Euclidean distance, scaled
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-10)
    assert ratio[0] == pytest.approx(np.linalg.norm(LFDA(k=5, prior_strength=0).fit(
        X, y).components_, 2))
    near = LFDA(k=5, prior_strength=1e8).fit(X, y)
    ratio = pdist(near.transform(X)) / pdist(X)
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-6)
    for prior in ("identity", "covariance"):
        plain = ITML_Supervised(n_constraints=60, random_state=0, prior=prior).fit(X, y)
        itml = ITML_Supervised(n_constraints=60, random_state=0, prior=prior,
                               prior_strength=np.inf).fit(X, y)
        prior_metric = itml.get_mahalanobis_matrix()
        if prior == "identity":
            np.testing.assert_allclose(prior_metric, np.eye(X.shape[1]), atol=1e-12)
        else:  # the inverse covariance of the samples in the pairs: not a multiple of I
            assert np.linalg.cond(prior_metric) > 10
        assert not np.allclose(plain.get_mahalanobis_matrix(), prior_metric, rtol=1e-2)
        # Halfway (strength 1), the geodesic between the two.
        half = ITML_Supervised(n_constraints=60, random_state=0, prior=prior,
                               prior_strength=1.0).fit(X, y)
        np.testing.assert_allclose(
            half.get_mahalanobis_matrix(),
            _geodesic_metric(prior_metric, plain.get_mahalanobis_matrix(), 0.5),
            rtol=1e-6, atol=1e-9)


def test_auto_falls_back_to_euclidean_where_learning_hurts():
    # Two informative features, 30 noise ones, few samples: LFDA's plain map stretches the
    # noise; 'auto' keeps (close to) the Euclidean metric and scores at least as well.
    X, y = make_classification(n_samples=60, n_features=32, n_informative=2,
                               n_redundant=0, n_clusters_per_class=2, class_sep=1.5,
                               shuffle=False, random_state=0)
    auto = LFDA(prior_strength="auto").fit(X, y)
    assert auto.prior_strength_ >= 1.0, auto.prior_scores_
    assert auto.prior_scores_[np.inf] >= auto.prior_scores_[0.0]


@pytest.mark.parametrize("learner", ["LMNN", "ITML_Supervised"])
def test_auto_equals_the_fit_at_the_chosen_strength(wine90, learner):
    X, y = wine90
    if learner == "LMNN":
        make = lambda s: LMNN(max_iter=30, random_state=0, prior_strength=s)  # noqa: E731
        candidates = (np.inf, 0.0)
    else:
        make = lambda s: ITML_Supervised(n_constraints=60, random_state=0,  # noqa: E731
                                         prior_strength=s)
        candidates = GEODESIC_STRENGTHS
    auto = make("auto").fit(X, y)
    assert list(auto.prior_scores_) == list(candidates)
    values = np.array(list(auto.prior_scores_.values()))
    assert auto.prior_strength_ == candidates[np.flatnonzero(values >= values.max() - 1e-12)[0]]
    fixed = make(auto.prior_strength_).fit(X, y)
    np.testing.assert_array_equal(auto.components_, fixed.components_)
    np.testing.assert_array_equal(make("auto").fit(X, y).components_, auto.components_)


def test_auto_with_classes_too_small_for_inner_folds_is_plain():
    X, y = make_classification(n_samples=40, n_features=4, n_informative=3, n_redundant=0,
                               random_state=0)
    y[:2] = 2  # a class of two samples: no 3 inner folds can each hold it
    auto = LFDA(k=1, prior_strength="auto").fit(X, y)
    assert auto.prior_strength_ == 0.0
    np.testing.assert_array_equal(auto.components_, LFDA(k=1).fit(X, y).components_)
    # LMNN needs n_neighbors + 1 per class in every inner training fold.
    y = np.repeat([0, 1], [5, 35])
    auto = LMNN(n_neighbors=3, max_iter=10, prior_strength="auto").fit(X, y)
    assert auto.prior_strength_ == 0.0


@pytest.mark.parametrize("estimator", [LMNN(), LFDA(), ITML_Supervised(), ITML()])
@pytest.mark.parametrize("value", [-0.5, "bogus", [1.0]])
def test_bad_prior_strength_is_refused(estimator, value):
    X, y = make_classification(n_samples=30, n_features=4, random_state=0)
    with pytest.raises(ValueError, match="prior_strength"):
        estimator.set_params(prior_strength=value).fit(X, y)


def test_itml_on_pairs_refuses_auto():
    pairs = np.random.RandomState(0).standard_normal((8, 2, 3))
    with pytest.raises(ValueError, match=r"prior_strength.*must be a float"):
        ITML(prior_strength="auto").fit(pairs, np.repeat([1, -1], 4))


def test_metric_learn_names_still_work_with_a_prior_strength(wine90):
    X, y = wine90
    # LMNN's metric-learn 'regularization' is the pull weight of its objective, not this.
    lmnn = LMNN(regularization=0.8, max_iter=20, prior_strength=0.5).fit(X, y)
    L = lmnn.components_
    targets = _select_target_neighbors(X, y, 3)
    prior = _PriorPenalty.for_samples(np.eye(X.shape[1]), X, 0.5)
    assert lmnn.objective_ == pytest.approx(_lmnn_objective(L, X, y, targets, 0.8, prior)[0])
    with pytest.warns(FutureWarning, match="renamed n_neighbors"):
        LMNN(k=2, max_iter=5, prior_strength="auto").fit(X, y)
    itml = ITML_Supervised(gamma=0.5, n_constraints=60, random_state=0,
                           prior_strength=1.0).fit(X, y)
    assert itml.components_.shape == (13, 13)
