"""Tests written for the mutants of ``_compute/_inner_cv.py`` and ``_compute/_toward_prior.py``
that survived the 'auto' tests (seventh session, tests/README.md "the inner CV and the
prior paths").

Each checks behaviour against an independent reference: scikit-learn's ``StratifiedKFold``,
``KFold``, ``KNeighborsClassifier``; the Nadaraya-Watson estimate written with scipy's
``cdist`` and ``softmax``; the penalised objective written out by hand; closed forms.
"""

import math

import numpy as np
import pytest
from scipy.linalg import expm, logm, sqrtm
from scipy.spatial.distance import cdist
from scipy.special import softmax
from sklearn.datasets import load_iris
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_random_state

import skmetric._compute._inner_cv as inner_cv
import skmetric._compute._toward_prior as toward_prior
from skmetric._compute._backend import resolve_backend
from skmetric._compute._inner_cv import (
    PATH_TOL,
    choose_strength,
    inner_folds,
    kernel_regression_score,
    knn_scores,
    penalised_path,
    prior_penalty,
)
from skmetric._compute._lbfgs import minimize_lbfgs
from skmetric._compute._toward_prior import (
    GEODESIC_STRENGTHS,
    geodesic_map,
    geodesic_path,
    scaled_euclidean_path,
)
from skmetric.supervised._nca import _nca_loss_grad


def _backend():
    return resolve_backend(np.zeros((2, 2)), None, dtype="float64")


def _smooth(L):
    """A smooth objective with a non-trivial minimum: sum(sin(L)) + |L|^4 / 4."""
    return np.sum(np.sin(L)) + np.sum(L**2) ** 2 / 4, np.cos(L) + np.sum(L**2) * L


# --- prior_penalty and penalised_path ---------------------------------------------------

@pytest.mark.parametrize("strength", [0.25, 1.0, 3.0])
def test_prior_penalty_adds_the_weighted_squared_distance_at_every_strength(strength):
    rng = np.random.RandomState(0)
    L0, L = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    scale = 7.0
    loss, grad = prior_penalty(_smooth, L0, strength, scale, _backend())(L)
    plain, plain_grad = _smooth(L)
    assert loss == pytest.approx(plain + strength * scale * np.sum((L - L0) ** 2), rel=1e-14)
    np.testing.assert_allclose(grad, plain_grad + 2 * strength * scale * (L - L0), rtol=1e-14)
    assert prior_penalty(_smooth, L0, 0.0, scale, _backend()) is _smooth


def _iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X)[::3], y[::3]


def _by_hand(X, y, L0, strength, scale):
    """NCA's loss plus ``strength * scale * ||L - L0||^2``, written out."""
    def objective(L):
        loss, grad = _nca_loss_grad(L, X, y)
        weight = strength * scale
        return loss + weight * np.sum((L - L0) ** 2), grad + 2 * weight * (L - L0)
    return objective


def test_penalised_path_keeps_a_tolerance_looser_than_the_paths():
    X, y = _iris()
    L0 = np.eye(4)
    strengths = (math.inf, 1e-2, 0.0)
    path = penalised_path(lambda L: _nca_loss_grad(L, X, y), L0, strengths, _backend(),
                          scale=X.shape[0], max_iter=50, tol=0.3)
    # The reference: each fit by hand, warm-started, at the looser tolerance 0.3.
    L, loose = L0, []
    for strength in strengths[1:]:
        L = minimize_lbfgs(_by_hand(X, y, L0, strength, X.shape[0]), L, _backend(),
                           max_iter=50, tol=0.3).x
        loose.append(L)
    for (_, got), expected in zip(path[1:], loose, strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
    # At PATH_TOL the fits go further: the tolerance given is what made the difference.
    tight = minimize_lbfgs(_by_hand(X, y, L0, 1e-2, X.shape[0]), L0, _backend(),
                           max_iter=50, tol=PATH_TOL).x
    assert np.abs(tight - loose[0]).max() > 1e-3


def test_penalised_path_maps_are_float64_for_an_integer_prior():
    X, y = _iris()
    strengths = (math.inf, 1e-2)
    ints = penalised_path(lambda L: _nca_loss_grad(L, X, y), np.eye(4, dtype=int), strengths,
                          _backend(), scale=X.shape[0], max_iter=20)
    floats = penalised_path(lambda L: _nca_loss_grad(L, X, y), np.eye(4), strengths,
                            _backend(), scale=X.shape[0], max_iter=20)
    for (_, got), (_, expected) in zip(ints, floats, strict=True):
        assert got.dtype == np.float64
        np.testing.assert_array_equal(got, expected)


# --- k-NN scores ------------------------------------------------------------------------

def _sklearn_score(Z_train, y_train, Z_valid, y_valid, k=3):
    """k-NN accuracy plus half the neighbour purity, with scikit-learn's k-NN."""
    knn = KNeighborsClassifier(n_neighbors=k).fit(Z_train, y_train)
    neighbours = knn.kneighbors(Z_valid, return_distance=False)
    purity = np.mean(y_train[neighbours] == y_valid[:, None])
    return knn.score(Z_valid, y_valid) + 0.5 * purity


@pytest.mark.parametrize("k", [1, 5])
def test_knn_scores_uses_its_n_neighbors(k):
    rng = np.random.RandomState(0)
    Z = rng.standard_normal((60, 3))
    y = (Z[:, 0] + 0.8 * rng.standard_normal(60) > 0).astype(int)
    expected = _sklearn_score(Z[:40], y[:40], Z[40:], y[40:], k)
    [got] = knn_scores([np.eye(3)], Z[:40], y[:40], Z[40:], y[40:], n_neighbors=k)
    assert got == pytest.approx(expected, rel=1e-14)
    assert expected != pytest.approx(_sklearn_score(Z[:40], y[:40], Z[40:], y[40:], 3))


# --- kernel regression ------------------------------------------------------------------

def _nadaraya_watson_score(Z_train, y_train, Z_valid, y_valid):
    """Minus the mean squared error of the Gaussian-kernel (Nadaraya-Watson) estimate."""
    weights = softmax(-cdist(Z_valid, Z_train, "sqeuclidean"), axis=1)
    return -np.mean((weights @ y_train - y_valid) ** 2)


@pytest.mark.parametrize("case", ["near", "far", "coincident"])
def test_kernel_regression_score_is_nadaraya_watsons(case):
    rng = np.random.RandomState(1)
    Z_train = rng.standard_normal((11, 3))
    y_train = rng.standard_normal(11)
    Z_valid = 0.7 * rng.standard_normal((7, 3))
    y_valid = rng.standard_normal(7)
    if case == "far":
        # Squared distances from 3e3 to 1.3e5, a different scale per row: exp underflows
        # unless each row is shifted by its own maximum.
        Z_valid = Z_valid + 30.0 * np.arange(1, 8)[:, None]
    if case == "coincident":
        # Validation samples on training samples, close together: squared distances of 0
        # (the kernel's maximum, the expanded form clipped at 0) next to small ones.
        Z_train, Z_valid = 0.05 * Z_train, 0.05 * Z_train[[0, 3, 5, 6, 8, 9, 10]]
    got = kernel_regression_score(Z_train, y_train, Z_valid, y_valid)
    assert np.isfinite(got)
    assert got == pytest.approx(_nadaraya_watson_score(Z_train, y_train, Z_valid, y_valid),
                                rel=1e-9)


@pytest.mark.parametrize("search", ["stacked", "tree"])
def test_knn_scores_count_classes_absent_from_training_as_errors(monkeypatch, search):
    # Validation labels 0 (below every training class), 2 (between) and 9 (above): no
    # neighbour can carry them, so they are errors of purity 0, as in scikit-learn.
    if search == "tree":
        monkeypatch.setattr(inner_cv, "_BRUTE_PAIRS", 10)
    rng = np.random.RandomState(2)
    X_train = rng.standard_normal((30, 2))
    y_train = np.repeat([1, 3, 5], 10)
    X_train[:, 0] += y_train
    X_valid = rng.standard_normal((12, 2))
    y_valid = np.array([0, 1, 2, 3, 5, 9, 1, 3, 5, 9, 0, 2])
    X_valid[:, 0] += np.clip(y_valid, 1, 5)
    maps = [np.eye(2), np.diag([1.0, 0.1])]
    expected = [_sklearn_score(X_train @ L.T, y_train, X_valid @ L.T, y_valid) for L in maps]
    np.testing.assert_allclose(knn_scores(maps, X_train, y_train, X_valid, y_valid),
                               expected, rtol=1e-14)
    assert max(expected) < 1.5 * 7 / 12  # the five absent labels do count as errors


def test_knn_scores_search_and_blocks_follow_the_documented_bounds(monkeypatch):
    """Up to ``_BRUTE_PAIRS`` validation-by-training pairs: stacked arg-min sweeps, as
    many maps at a time as ``_BLOCK_ELEMENTS`` distances allow (at least one); above:
    scikit-learn's trees. The scores are scikit-learn's either way."""
    rng = np.random.RandomState(3)
    # 7 validation and 11 training samples of 5 features: no product of a shape's sizes
    # other than 7 * 11 is 77.
    X_train, X_valid = rng.standard_normal((11, 5)), rng.standard_normal((7, 5))
    y_train, y_valid = rng.randint(0, 2, 11), rng.randint(0, 2, 7)
    maps = [rng.standard_normal((5, 5)) for _ in range(5)]
    expected = [_sklearn_score(X_train @ L.T, y_train, X_valid @ L.T, y_valid) for L in maps]
    stacked, trees = [], []
    real_nearest, real_nn = inner_cv._nearest, inner_cv.NearestNeighbors

    def nearest(Ls, *args):
        stacked.append(Ls.shape[0])
        return real_nearest(Ls, *args)

    def nn(*args, **kwargs):
        trees.append(1)
        return real_nn(*args, **kwargs)

    monkeypatch.setattr(inner_cv, "_nearest", nearest)
    monkeypatch.setattr(inner_cv, "NearestNeighbors", nn)
    for brute, block, maps_a_call, n_trees in [
            (77, 2 * 77, [2, 2, 1], 0),   # exactly _BRUTE_PAIRS pairs: still stacked
            (77, 3 * 77 - 1, [2, 2, 1], 0),
            (77, 76, [1, 1, 1, 1, 1], 0),  # a block smaller than one map's distances
            (76, 10 * 77, [], 5)]:         # one pair more than _BRUTE_PAIRS: trees
        stacked.clear()
        trees.clear()
        monkeypatch.setattr(inner_cv, "_BRUTE_PAIRS", brute)
        monkeypatch.setattr(inner_cv, "_BLOCK_ELEMENTS", block)
        scores = knn_scores(maps, X_train, y_train, X_valid, y_valid)
        np.testing.assert_allclose(scores, expected, rtol=1e-14)
        assert stacked == maps_a_call and len(trees) == n_trees


# --- inner folds -------------------------------------------------------------------------

def _sklearn_folds(y, seed, n_splits=3, classification=True):
    """scikit-learn's folds, seeded by the first draw of ``seed`` (the documented rule)."""
    draw = check_random_state(seed).randint(np.iinfo(np.int32).max)
    cv = (StratifiedKFold if classification else KFold)(n_splits, shuffle=True,
                                                        random_state=draw)
    return list(cv.split(np.zeros((len(y), 1)), y))


def _assert_same_folds(folds, expected):
    assert len(folds) == len(expected)
    for (train, valid), (train_ref, valid_ref) in zip(folds, expected, strict=True):
        np.testing.assert_array_equal(train, train_ref)
        np.testing.assert_array_equal(valid, valid_ref)


@pytest.mark.parametrize("classification", [True, False])
def test_inner_folds_seeded_by_a_random_state_instance(classification):
    y = np.repeat([0, 1, 2], 8)
    if not classification:
        y = np.random.RandomState(0).standard_normal(24)
    rs = np.random.RandomState(11)
    folds = inner_folds(y, random_state=rs, classification=classification)
    _assert_same_folds(folds, _sklearn_folds(y, np.random.RandomState(11),
                                             classification=classification))
    # The instance gave one draw, as it would to the rest of a fit.
    reference = np.random.RandomState(11)
    reference.randint(np.iinfo(np.int32).max)
    assert rs.randint(1000) == reference.randint(1000)
    # And an instance in any state is not NumPy's global generator.
    np.random.seed(0)  # noqa: NPY002 (the global generator, which must not be used)
    _assert_same_folds(inner_folds(y, random_state=np.random.RandomState(5),
                                   classification=classification),
                       _sklearn_folds(y, 5, classification=classification))


@pytest.mark.parametrize("n_splits", [2, 3])
def test_inner_folds_need_four_samples_per_fold(n_splits):
    for n in (4 * n_splits, 4 * n_splits - 1):
        real = np.linspace(0.0, 1.0, n)
        classes = np.arange(n) % 2  # two classes of at least n_splits samples each
        for y, classification in ((real, False), (classes, True)):
            folds = inner_folds(y, random_state=3, classification=classification,
                                n_splits=n_splits)
            if n < 4 * n_splits:
                assert folds is None
            else:
                _assert_same_folds(folds, _sklearn_folds(y, 3, n_splits, classification))


# --- choose_strength --------------------------------------------------------------------

def _never_called(X_train, y_train):
    raise AssertionError("no inner fold should be fitted")


@pytest.mark.parametrize("classification", [True, False])
def test_choose_strength_without_inner_folds_is_an_empty_choice(classification):
    X = np.random.RandomState(0).standard_normal((12, 2))
    # 11 samples (fewer than 4 per fold), or a class of 2 (fewer than one per fold).
    for y in (np.repeat([0, 1], [5, 6]), np.repeat([0, 1], [2, 10])):
        if not classification and y.size == 12:
            continue  # real targets only need the samples
        choice = choose_strength(_never_called, X[:y.size], y,
                                 classification=classification)
        assert choice == (None, {}, None)
        assert choice.strength is None and choice.scores == {} and choice.start is None


@pytest.mark.parametrize(("single_above", "dtype"), [(162, np.float64), (161, np.float32)])
def test_choose_strength_scores_in_single_precision_only_above_single_above(
        monkeypatch, single_above, dtype):
    # Three classes of 9: every inner fold has 18 training and 9 validation samples,
    # 162 pairs.
    rng = np.random.RandomState(4)
    y = np.repeat([0, 1, 2], 9)
    X = rng.standard_normal((27, 3)) + y[:, None]
    seen = []
    real = inner_cv._nearest

    def nearest(Ls, X_train, X_valid, k):
        seen.append((X_train.shape[0] * X_valid.shape[0], {Ls.dtype, X_train.dtype,
                                                            X_valid.dtype}))
        return real(Ls, X_train, X_valid, k)

    monkeypatch.setattr(inner_cv, "_nearest", nearest)
    paths = [(math.inf, np.eye(3)), (0.0, np.diag([1.0, 0.5, 0.0]))]
    choose_strength(lambda X_train, y_train: paths, X, y, single_above=single_above)
    assert seen == [(162, {np.dtype(dtype)})] * 3


def _fold_scores(strong, weak):
    """A fake knn_scores: the same two scores on every fold."""
    return lambda maps, *args, **kwargs: np.array([strong, weak])


def test_choose_strength_ties_within_1e_12_go_to_the_stronger_boundary_included(
        monkeypatch):
    rng = np.random.RandomState(5)
    y = np.repeat([0, 1], 15)
    X = rng.standard_normal((30, 2))
    path = [(math.inf, np.eye(2)), (0.0, 2 * np.eye(2))]
    weak = 1.5  # its mean over the three folds is 1.5 exactly
    # A fold score whose mean over the folds (summed in thirds, as the mean is) is
    # exactly 1.5 - 1e-12 in floats, and the next float below that mean.
    target = weak - 1e-12
    strong = target
    while (strong / 3 + strong / 3) + strong / 3 != target:
        strong = np.nextafter(strong, 2.0 if (strong / 3 + strong / 3) + strong / 3 < target
                              else 0.0)
    below = np.nextafter(strong, 0.0)
    assert (below / 3 + below / 3) + below / 3 < target
    for score, expected in [(strong, math.inf), (below, 0.0)]:
        monkeypatch.setattr(inner_cv, "knn_scores", _fold_scores(score, weak))
        choice = choose_strength(lambda X_train, y_train: path, X, y, random_state=0)
        assert choice.scores[0.0] == weak
        assert choice.strength == expected
        np.testing.assert_array_equal(choice.start, dict(path)[expected])


# --- paths toward the prior (_toward_prior.py) --------------------------------------------

def _affine_invariant_geodesic(M0, M, t):
    """``M0^(1/2) (M0^(-1/2) M M0^(-1/2))^t M0^(1/2)`` by scipy's expm and logm."""
    root = sqrtm(M0).real
    inv_root = np.linalg.inv(root)
    return root @ expm(t * logm(inv_root @ M @ inv_root).real) @ root


def test_geodesic_path_without_the_plain_end_is_the_geodesic():
    rng = np.random.RandomState(6)
    L0, L = rng.standard_normal((3, 3)), rng.standard_normal((3, 3))
    strengths = (math.inf, 3.0, 1.0)
    path = geodesic_path(L, L0, strengths)
    assert [s for s, _ in path] == list(strengths)
    for strength, G in path:
        t = 1.0 / (1.0 + strength)
        np.testing.assert_allclose(G.T @ G, _affine_invariant_geodesic(L0.T @ L0, L.T @ L, t),
                                   rtol=1e-8, atol=1e-10)


def _count_factorisations(monkeypatch):
    calls = []
    for name in ("svd", "pinv"):
        real = getattr(toward_prior.linalg, name)

        def spy(*args, _real=real, _name=name, **kwargs):
            calls.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(toward_prior.linalg, name, spy)
    return calls


def test_paths_factorise_once_and_not_at_all_for_the_plain_map(monkeypatch):
    """As documented: one pseudo-inverse and one SVD serve a whole geodesic path, one SVD a
    scaled-Euclidean path, and a path of strength 0 alone needs neither."""
    rng = np.random.RandomState(7)
    L0, L = rng.standard_normal((3, 3)), rng.standard_normal((2, 3))
    calls = _count_factorisations(monkeypatch)
    geodesic_path(L, L0, GEODESIC_STRENGTHS)
    assert sorted(calls) == ["pinv", "svd"]
    for strengths in ([0.0], [0.0, 0.0]):
        calls.clear()
        assert [G for _, G in geodesic_path(L, L0, strengths)] == [L] * len(strengths)
        assert [G for _, G in scaled_euclidean_path(L, strengths)] == [L] * len(strengths)
        assert calls == []
    scaled_euclidean_path(L, GEODESIC_STRENGTHS)
    assert calls == ["svd"]


@pytest.mark.parametrize("case", ["small gains", "rank one", "one row"])
def test_scaled_euclidean_path_is_the_geodesic_from_the_largest_gain(case):
    rng = np.random.RandomState(8)
    L = {"small gains": 0.05 * rng.standard_normal((3, 3)),  # largest gain below 1
         "rank one": np.outer(rng.standard_normal(3), rng.standard_normal(4)),
         "one row": rng.standard_normal((1, 4))}[case]
    top = np.linalg.norm(L, 2)
    # The prior's end of a map of lower rank than its rows is not unique (any orthonormal
    # completion of its row space): compared at finite strengths only.
    strengths = (1.0, 0.25) if case == "rank one" else (math.inf, 1.0, 0.25)
    for strength, G in scaled_euclidean_path(L, strengths):
        expected = geodesic_map(L, top * np.eye(L.shape[1]), strength)
        # The same metric, whatever the signs of the rows.
        np.testing.assert_allclose(G.T @ G, expected.T @ expected, rtol=1e-10,
                                   atol=1e-12 * top**2)
    # A single strength 1 is a point of the path, not the plain map (but for a map of
    # rank one, whose path is constant: one gain, the largest).
    G = scaled_euclidean_path(L, [1.0])[0][1]
    assert np.allclose(G.T @ G, L.T @ L) == (np.linalg.matrix_rank(L) == 1)


def test_scaled_euclidean_path_of_the_zero_map():
    """No gain to scale by: the path stays the zero map, and its prior end is Euclidean
    distance itself (orthonormal rows), the fallback gain being 1."""
    L = np.zeros((2, 4))
    path = scaled_euclidean_path(L, (math.inf, 1.0, 0.0))
    G = path[0][1]
    np.testing.assert_allclose(G @ G.T, np.eye(2), atol=1e-15)
    for _, G in path[1:]:
        np.testing.assert_array_equal(G, L)
