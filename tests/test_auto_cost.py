"""The cheaper 'auto' of LFDA and ITML_Supervised, and the one seeding rule of inner folds.

'auto' (issue 21) picks ``prior_strength`` by an inner 3-fold cross-validation. Its cost was
cut without changing what it chooses: one SVD per geodesic path, every strength of a fold
scored by one stacked k-NN pass, scikit-learn's stratified folds without its validation.
These tests pin the choices and maps of the code before (commit 8ac085c) and check each
faster part against an independent reference: scikit-learn's StratifiedKFold and
KNeighborsClassifier, and :func:`geodesic_map` strength by strength. Every learner with
'auto' seeds its inner folds by one rule (:func:`split_seed`).
"""

import math

import numpy as np
import pytest
from sklearn.datasets import (
    load_breast_cancer,
    load_digits,
    load_iris,
    load_wine,
    make_classification,
    make_regression,
)
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import MinMaxScaler
from sklearn.utils import check_random_state

import skmetric._compute._inner_cv as inner_cv
from skmetric import LFDA, LMNN, MLKR, NCA, ITML_Supervised
from skmetric._compute._inner_cv import (
    N_SPLITS,
    SPLIT_SEED,
    inner_folds,
    knn_scores,
    split_seed,
)
from skmetric._compute._toward_prior import (
    GEODESIC_STRENGTHS,
    geodesic_map,
    geodesic_path,
    scaled_euclidean_path,
)

# MLKR's few iterations here only need to be deterministic, not converged.
pytestmark = pytest.mark.filterwarnings("ignore:MLKR did not converge")


def _digits500():
    X, y = load_digits(return_X_y=True)
    return X[:500], y[:500]


def _noise32():
    return make_classification(n_samples=60, n_features=32, n_informative=2, n_redundant=0,
                               n_clusters_per_class=2, class_sep=1.5, shuffle=False,
                               random_state=0)


DATA = {
    "iris": lambda: load_iris(return_X_y=True),
    "wine": lambda: load_wine(return_X_y=True),
    "breast_cancer": lambda: load_breast_cancer(return_X_y=True),
    "digits500": _digits500,
    "noise32": _noise32,
    "blobs40": lambda: make_classification(n_samples=150, n_features=40, n_informative=5,
                                           n_classes=3, random_state=1),
}

# 'auto' of the code before the speed-up (commit 8ac085c), on MinMax-scaled data:
# (learner, data, prior_strength_, prior_scores_ values, components_ summary).
BEFORE = [
    ("LFDA", "iris", 0.0,
     [1.4255555555555555, 1.42, 1.4222222222222223, 1.4288888888888889, 1.4355555555555555],
     [150.11729981779726, 11969.944390527296, 4.9923721082500965, 3.9343589977529048]),
    ("LFDA", "wine", 1.0,
     [1.4334902699309477, 1.476647834274953, 1.4794569993722535, 1.4748430634023855,
      1.473901443816698],
     [59.103140454097314, 1402.1007497565192, 1.3521996778925935, 2.4832853722480746]),
    ("LFDA", "breast_cancer", 1.0,
     [1.4499226461214767, 1.451084501376899, 1.4613199665831245, 1.4507967449487917,
      1.4490268882081747],
     [708.0858266563798, 295229.7219313724, 199.15270708205907, 17.951090221905776]),
    ("LFDA", "digits500", 3.0,
     [1.4636409911101493, 1.4749677352123063, 1.47300379161356, 1.4600076954524686,
      1.4466969675107615],
     [156.03222298720814, 3649.5878276183676, -5.221583439972589e-17, 3.5133175883604683e-22]),
    ("LFDA", "noise32", math.inf,
     [1.0527777777777776, 1.0222222222222221, 0.9305555555555556, 0.8805555555555555,
      0.8722222222222222],
     [118.9516246134124, 2048.8917873980768, 1.8709724847382212, -1.0970859553983028]),
    ("ITML_Supervised", "wine", 1.0 / 3.0,
     [1.4334902699309477, 1.4400502197112366, 1.4672473320778405, 1.4747802887633394,
      1.4701663527934714],
     [-3.8943921160180253, 12.657121819756249, -0.8709596503494733, -0.16850301448690927]),
    ("ITML_Supervised", "breast_cancer", math.inf,
     [1.4499226461214767, 1.4484714873603761, 1.4472910671741082, 1.4443547139453572,
      1.4425755747393174],
     [-7.802997394072539, 29.999999999999996, -0.03151471875897671, 0.020449868272905236]),
    ("ITML_Supervised", "blobs40", 0.0,
     [0.73, 0.7466666666666666, 0.7922222222222222, 0.8188888888888889, 0.8244444444444443],
     [-2.6579231847876104, 29.237392682354415, 0.07242808799579485, 0.26479616541892936]),
]


def _make(learner, strength="auto"):
    if learner == "LFDA":
        return LFDA(k=7, prior_strength=strength)
    return ITML_Supervised(n_constraints=120, random_state=0, prior_strength=strength)


@pytest.mark.parametrize(("learner", "data", "strength", "scores", "summary"), BEFORE,
                         ids=[f"{c[0]}-{c[1]}" for c in BEFORE])
def test_auto_chooses_and_fits_as_before(learner, data, strength, scores, summary):
    X, y = DATA[data]()
    X = MinMaxScaler().fit_transform(X)
    auto = _make(learner).fit(X, y)
    assert auto.prior_strength_ == strength
    assert list(auto.prior_scores_) == list(GEODESIC_STRENGTHS)
    # The same k-NN results: the scores are those of before, to the last bits.
    np.testing.assert_allclose(list(auto.prior_scores_.values()), scores, rtol=1e-13)
    L = auto.components_
    # LFDA's path now comes from one SVD of its map: the same map to rounding.
    np.testing.assert_allclose([L.sum(), (L**2).sum(), L[0, 0], L[-1, 1]], summary,
                               rtol=1e-11, atol=1e-13)
    # And 'auto' is the fit at the chosen strength, exactly.
    np.testing.assert_array_equal(L, _make(learner, strength).fit(X, y).components_)


def test_inner_folds_are_scikit_learns_stratified_folds():
    rng = np.random.RandomState(0)
    names = np.array(["b", "a", "d", "c", "f", "e"])
    checked = 0
    for _ in range(150):
        n, n_classes = rng.randint(12, 120), rng.randint(2, 7)
        y = rng.randint(0, n_classes, n)
        if rng.rand() < 0.5:
            y = names[y]  # labels whose sorted order is not their order of appearance
        random_state = rng.randint(1000)
        folds = inner_folds(y, random_state=random_state)
        counts = np.unique(y, return_counts=True)[1]
        if counts.min() < N_SPLITS or counts.size < 2:
            assert folds is None
            continue
        seed = check_random_state(random_state).randint(np.iinfo(np.int32).max)
        expected = StratifiedKFold(N_SPLITS, shuffle=True, random_state=seed).split(
            np.zeros((n, 1)), y)
        for (train, valid), (train_ref, valid_ref) in zip(folds, expected, strict=True):
            np.testing.assert_array_equal(train, train_ref)
            np.testing.assert_array_equal(valid, valid_ref)
        checked += 1
    assert checked > 100


def _sklearn_score(Z_train, y_train, Z_valid, y_valid):
    knn = KNeighborsClassifier(n_neighbors=3).fit(Z_train, y_train)
    neighbours = knn.kneighbors(Z_valid, return_distance=False)
    purity = np.mean(y_train[neighbours] == y_valid[:, None])
    return knn.score(Z_valid, y_valid) + 0.5 * purity


@pytest.mark.parametrize("search", ["stacked", "tree"])
def test_knn_scores_are_scikit_learns_3nn_accuracy_plus_half_purity(monkeypatch, search):
    rng = np.random.RandomState(0)
    X = rng.standard_normal((90, 5))
    y = np.array(["x", "y", "z"])[rng.randint(0, 3, 90)]
    X[y == "y", 0] += 1.5  # a signal some maps keep and others lose
    train, valid = np.arange(60), np.arange(60, 90)
    # Square maps, one that drops the signal, and maps to fewer dimensions: several
    # shapes, so the stacked search also handles maps it cannot stack together.
    maps = [np.eye(5), np.diag([0.0, 1, 1, 1, 1]), rng.standard_normal((5, 5)),
            rng.standard_normal((2, 5)), np.eye(5)[:1]]
    if search == "tree":
        monkeypatch.setattr(inner_cv, "_BRUTE_PAIRS", 10)
    if search == "stacked":
        monkeypatch.setattr(inner_cv, "_BLOCK_ELEMENTS", 2 * 60 * 30)  # two maps a block
    scores = knn_scores(maps, X[train], y[train], X[valid], y[valid])
    expected = [_sklearn_score(X[train] @ L.T, y[train], X[valid] @ L.T, y[valid])
                for L in maps]
    np.testing.assert_allclose(scores, expected, rtol=1e-14)
    assert len(set(np.round(expected, 6))) >= 3  # the maps do score differently


def test_knn_scores_votes_ties_to_the_smallest_label():
    # Neighbours 0, 1, 2 (labels a, b, c): a three-way tie, won by 'a' as in scikit-learn.
    X_train = np.array([[0.0], [0.1], [-0.2], [5.0], [5.1], [5.2]])
    y_train = np.array(["a", "b", "c", "c", "c", "c"])
    X_valid = np.array([[0.0], [5.05]])
    for y_valid in (np.array(["a", "c"]), np.array(["b", "c"])):
        got = knn_scores([np.eye(1)], X_train, y_train, X_valid, y_valid)[0]
        assert got == pytest.approx(_sklearn_score(X_train, y_train, X_valid, y_valid))


def test_geodesic_path_is_geodesic_map_strength_by_strength():
    rng = np.random.RandomState(0)
    L0 = rng.standard_normal((4, 4))  # ITML's general prior
    for L in (rng.standard_normal((4, 4)), rng.standard_normal((2, 4))):
        path = geodesic_path(L, L0, GEODESIC_STRENGTHS)
        assert [s for s, _ in path] == list(GEODESIC_STRENGTHS)
        for strength, G in path:
            # One SVD for the path, the same operations: the same maps, bit for bit.
            np.testing.assert_array_equal(G, geodesic_map(L, L0, strength))
        assert path[-1][1] is L


@pytest.mark.parametrize("shape", [(4, 4), (2, 4)])
def test_scaled_euclidean_path_is_the_geodesic_from_the_scaled_identity(shape):
    rng = np.random.RandomState(1)
    L = rng.standard_normal(shape)
    L[-1] *= 1e-3  # a small gain: its direction must survive at every strength
    L0 = np.linalg.norm(L, 2) * np.eye(shape[1])
    path = scaled_euclidean_path(L, GEODESIC_STRENGTHS)
    assert [s for s, _ in path] == list(GEODESIC_STRENGTHS)
    for strength, G in path:
        expected = geodesic_map(L, L0, strength)
        # Maps equal up to the signs of their rows: compare the metrics they define.
        np.testing.assert_allclose(G.T @ G, expected.T @ expected, rtol=1e-12, atol=1e-14)
    assert path[-1][1] is L
    # The prior's end: orthogonal rows of L's largest gain (Euclidean distance, scaled).
    G = path[0][1]
    top2 = np.linalg.norm(L, 2) ** 2
    np.testing.assert_allclose(G @ G.T, top2 * np.eye(shape[0]), rtol=1e-12, atol=1e-14 * top2)
    # Strength 0 alone needs no SVD and returns the map itself.
    assert scaled_euclidean_path(L, [0.0])[0][1] is L
    assert scaled_euclidean_path(np.zeros(shape), [1.0])[0][1].shape == shape


# --- One seeding rule for the inner folds of every learner with 'auto' ------------------

def test_split_seed_is_random_state_or_the_fixed_seed():
    assert split_seed(None) == SPLIT_SEED == 0
    assert split_seed(7) == 7
    rs = np.random.RandomState(3)
    assert split_seed(rs) is rs


def _classification():
    X, y = load_wine(return_X_y=True)
    rows = np.r_[0:20, 60:80, 130:150]
    return MinMaxScaler().fit_transform(X[rows]), y[rows]


AUTO_LEARNERS = {
    "NCA": lambda rs: NCA(max_iter=5, random_state=rs),
    "MLKR": lambda rs: MLKR(max_iter=5, random_state=rs, prior_strength="auto"),
    "LMNN": lambda rs: LMNN(max_iter=5, random_state=rs, prior_strength="auto"),
    "LFDA": lambda rs: LFDA(k=5),
    "ITML_Supervised": lambda rs: ITML_Supervised(n_constraints=40, max_iter=20,
                                                  random_state=rs),
}


def _data(name):
    if name == "MLKR":
        X, y = make_regression(n_samples=60, n_features=4, random_state=0)
        return X / 100, y / 100
    return _classification()


def _expected_folds(name, y, seed):
    """The folds the rule asks for, drawn with scikit-learn's own splitters."""
    draw = check_random_state(seed).randint(np.iinfo(np.int32).max)
    cv = (KFold if name == "MLKR" else StratifiedKFold)(N_SPLITS, shuffle=True,
                                                       random_state=draw)
    return list(cv.split(np.zeros((y.shape[0], 1)), y))


@pytest.mark.parametrize("random_state", [None, 7])
@pytest.mark.parametrize("name", list(AUTO_LEARNERS))
def test_every_auto_learner_seeds_its_inner_folds_by_the_one_rule(monkeypatch, name,
                                                                 random_state):
    X, y = _data(name)
    seen = []
    real = inner_cv.inner_folds

    def spy(*args, **kwargs):
        folds = real(*args, **kwargs)
        seen.append(folds)
        return folds

    monkeypatch.setattr(inner_cv, "inner_folds", spy)
    np.random.seed(12345)  # noqa: NPY002 (the global generator None must not draw from)
    AUTO_LEARNERS[name](random_state).fit(X, y)
    assert len(seen) == 1
    # LFDA has no random_state: always SPLIT_SEED; the others: theirs, SPLIT_SEED for None.
    seed = SPLIT_SEED if random_state is None or name == "LFDA" else random_state
    for (train, valid), (train_ref, valid_ref) in zip(seen[0], _expected_folds(name, y, seed),
                                                      strict=True):
        np.testing.assert_array_equal(train, train_ref)
        np.testing.assert_array_equal(valid, valid_ref)


@pytest.mark.parametrize("name", ["NCA", "MLKR", "LMNN", "LFDA"])
def test_auto_without_random_state_is_deterministic(name):
    """Learners whose plain fit is deterministic stay so with 'auto' and random_state=None,
    whatever the state of NumPy's global generator."""
    X, y = _data(name)
    fits = []
    for global_seed in (1, 2):
        np.random.seed(global_seed)  # noqa: NPY002 (the global generator, on purpose)
        fits.append(AUTO_LEARNERS[name](None).fit(X, y))
    a, b = fits
    assert a.prior_strength_ == b.prior_strength_
    if hasattr(a, "prior_scores_"):
        assert a.prior_scores_ and a.prior_scores_ == b.prior_scores_
    # NCA and MLKR also start their final fit from the mean of the inner maps.
    np.testing.assert_array_equal(a.components_, b.components_)
