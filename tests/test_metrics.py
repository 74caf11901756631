"""Tests of skmetric.metrics: retrieval, clustering, verification metrics and scorers."""

import pickle

import numpy as np
import pytest
from sklearn.base import BaseEstimator
from sklearn.cluster import KMeans
from sklearn.datasets import load_iris, load_wine
from sklearn.metrics import (
    adjusted_mutual_info_score,
    normalized_mutual_info_score,
    roc_auc_score,
)
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import skmetric
from skmetric import metrics as m

# ------------------------------------------------------------------- tiny hand-made cases

# 1-D integer points: the distance expansion is exact, so equal distances are exact ties.
# Query 0 (x=0) has references 1 and 2 both at distance 1; query 3 (x=3) has references
# 1 and 2 both at distance 2. Ties go to the smaller index. Point 4 (class 2) is lone.
TIE_X = np.array([[0.0], [1.0], [1.0], [3.0], [10.0]])
TIE_Y = np.array([0, 1, 0, 1, 2])
# Rankings (self excluded, ties by index):
#   q0: 1(c1) 2(c0) 3(c1) 4      R=1
#   q1: 2(c0) 0(c0) 3(c1) 4      R=1
#   q2: 1(c1) 0(c0) 3(c1) 4      R=1
#   q3: 1(c1) 2(c0) 0(c0) 4      R=1
TIE_EXPECTED = {
    "precision_at_1": [0, 0, 0, 1],
    "precision_at_2": [1 / 2, 0, 1 / 2, 1 / 2],
    "recall_at_2": [1, 0, 1, 1],
    "r_precision": [0, 0, 0, 1],
    "map_at_r": [0, 0, 0, 1],
    "mean_average_precision": [1 / 2, 1 / 3, 1 / 2, 1],
}


def test_hand_computed_ranking_with_ties_broken_by_reference_index():
    report = m.retrieval_report(TIE_X, TIE_Y, k=(1, 2), mean_ap=True, average=None)
    for name, expected in TIE_EXPECTED.items():
        values = report[name]
        np.testing.assert_allclose(values[:4], expected, err_msg=name)
        assert np.isnan(values[4]), f"{name}: the lone query must be NaN per query"
    assert report["n_lone_queries"] == 1 and report["n_queries"] == 5
    # The means leave the lone query out (pytorch-metric-learning's convention).
    assert m.precision_at_k(TIE_X, TIE_Y, k=1) == pytest.approx(1 / 4)
    assert m.precision_at_k(TIE_X, TIE_Y, k=2) == pytest.approx(3 / 8)
    assert m.recall_at_k(TIE_X, TIE_Y, k=2) == pytest.approx(3 / 4)
    assert m.r_precision(TIE_X, TIE_Y) == pytest.approx(1 / 4)
    assert m.map_at_r(TIE_X, TIE_Y) == pytest.approx(1 / 4)
    assert m.mean_average_precision(TIE_X, TIE_Y) == pytest.approx(7 / 12)


def test_hand_computed_map_at_r_with_several_relevant_references():
    X = np.arange(5.0)[:, None]
    y = np.array([0, 1, 0, 0, 1])
    # q0 ranks 1(c1) 2(c0) 3(c0) 4(c1): R=2, hits at ranks 2 and 3.
    ap_r = m.map_at_r(X, y, average=None)
    assert ap_r[0] == pytest.approx((0 + 1 / 2) / 2)
    assert m.r_precision(X, y, average=None)[0] == pytest.approx(1 / 2)
    assert m.mean_average_precision(X, y, average=None)[0] == pytest.approx((1 / 2 + 2 / 3) / 2)
    # max_k=1 caps R: MAP@1 and R-precision become precision at 1 (0 for q0).
    assert m.map_at_r(X, y, max_k=1, average=None)[0] == 0
    np.testing.assert_allclose(m.r_precision(X, y, max_k=1, average=None),
                               m.precision_at_k(X, y, k=1, average=None))


def test_separate_reference_set_hand_computed():
    Q = np.array([[0.0], [5.0]])
    R = np.array([[1.0], [-1.0], [4.0], [9.0]])
    # q0 (c0): refs 0 and 1 tie at distance 1 -> ref 0 (c1) first, then ref 1 (c0).
    # q1 (c1): ref 2 (c0) at 1, ref 3 (c1) at 4, ref 0 (c1) at 4 -> ref 0 first by index.
    qy, ry = np.array([0, 1]), np.array([1, 0, 0, 1])
    np.testing.assert_allclose(m.precision_at_k(Q, qy, R, ry, k=1, average=None), [0, 0])
    np.testing.assert_allclose(m.recall_at_k(Q, qy, R, ry, k=2, average=None), [1, 1])
    np.testing.assert_allclose(m.map_at_r(Q, qy, R, ry, average=None), [1 / 4, 1 / 4])
    np.testing.assert_allclose(m.mean_average_precision(Q, qy, R, ry, average=None),
                               [(1 / 2 + 2 / 3) / 2, (1 / 2 + 2 / 3) / 2])


def test_average_by_class_weights_classes_equally():
    X = np.arange(5.0)[:, None]
    y = np.array([0, 1, 0, 0, 1])
    per_query = m.precision_at_k(X, y, k=1, average=None)
    expected = np.mean([per_query[y == c].mean() for c in (0, 1)])
    assert m.precision_at_k(X, y, k=1, average="class") == pytest.approx(expected)
    assert m.precision_at_k(X, y, k=1) == pytest.approx(per_query.mean())


def test_all_lone_queries_give_nan_with_a_warning():
    X = np.arange(3.0)[:, None]
    with pytest.warns(UserWarning, match="No query has a reference of its class"):
        assert np.isnan(m.map_at_r(X, [0, 1, 2]))
    with pytest.warns(UserWarning):
        assert np.isnan(m.precision_at_k(X, [0, 1, 2], k=1))


def test_blockwise_results_do_not_depend_on_the_block_size(rng):
    X = rng.randn(120, 5)
    y = rng.randint(4, size=120)
    full = m.retrieval_report(X, y, k=(1, 3), mean_ap=True, average=None)
    tiny = m.retrieval_report(X, y, k=(1, 3), mean_ap=True, average=None,
                              working_memory=0.001)  # one query per block
    for name in full:
        np.testing.assert_allclose(tiny[name], full[name], err_msg=name)


def test_metric_and_mahalanobis_map_are_passed_to_the_engine(rng):
    X = rng.randn(80, 3)
    y = rng.randint(3, size=80)
    L = np.diag([1.0, 5.0, 0.2])
    via_L = m.map_at_r(X, y, metric="mahalanobis", L=L, average=None)
    np.testing.assert_allclose(via_L, m.map_at_r(X @ L.T, y, average=None))
    cos = m.precision_at_k(X, y, k=3, metric="cosine", average=None)
    unit = X / np.linalg.norm(X, axis=1, keepdims=True)
    np.testing.assert_allclose(cos, m.precision_at_k(unit, y, k=3, average=None))


# ----------------------------------------------------- agreement with pytorch-metric-learning


def _blobs(rng, n, n_classes, dim=8, spread=1.0):
    y = rng.randint(n_classes, size=n)
    centers = rng.randn(n_classes, dim) * spread
    return rng.randn(n, dim) + centers[y], y


@pytest.mark.parametrize("setting", ["same_set", "separate_reference", "ref_includes_query"])
def test_retrieval_agrees_with_pml_accuracy_calculator(rng, setting):
    torch = pytest.importorskip("torch")
    ac = pytest.importorskip("pytorch_metric_learning.utils.accuracy_calculator")
    X, y = _blobs(rng, 600, 12)
    # A lone query class: PML leaves such queries out of the mean, and so do we.
    y[0] = 99
    calc = ac.AccuracyCalculator(
        include=("precision_at_1", "r_precision", "mean_average_precision_at_r",
                 "mean_average_precision"),
        k=None, device=torch.device("cpu"))
    if setting == "same_set":
        args, kwargs, pml_args = (X, y), {}, (X, y)
    elif setting == "separate_reference":
        args, kwargs, pml_args = (X[:200], y[:200], X[200:], y[200:]), {}, (
            X[:200], y[:200], X[200:], y[200:])
    else:
        args, kwargs = (X[:200], y[:200], X, y), {"ref_includes_query": True}
        pml_args = (X[:200], y[:200], X, y, True)
    expected = calc.get_accuracy(*pml_args)
    got = m.retrieval_report(*args, k=1, mean_ap=True, **kwargs)
    for ours, theirs in [("precision_at_1", "precision_at_1"), ("r_precision", "r_precision"),
                         ("map_at_r", "mean_average_precision_at_r"),
                         ("mean_average_precision", "mean_average_precision")]:
        # PML searches in float32 (FAISS); with no ties the rankings are identical.
        assert got[ours] == pytest.approx(expected[theirs], rel=1e-6), ours


def test_average_by_class_agrees_with_pml_avg_of_avgs(rng):
    torch = pytest.importorskip("torch")
    ac = pytest.importorskip("pytorch_metric_learning.utils.accuracy_calculator")
    X, y = _blobs(rng, 300, 7)
    y[y == 6] = np.arange(np.sum(y == 6)) % 2 + 4  # unbalanced classes
    calc = ac.AccuracyCalculator(include=("precision_at_1", "mean_average_precision_at_r"),
                                 k="max_bin_count", avg_of_avgs=True,
                                 device=torch.device("cpu"))
    expected = calc.get_accuracy(X, y)
    assert m.precision_at_k(X, y, k=1, average="class") == pytest.approx(
        expected["precision_at_1"], rel=1e-6)
    assert m.map_at_r(X, y, average="class") == pytest.approx(
        expected["mean_average_precision_at_r"], rel=1e-6)


# ----------------------------------------------------------------------------- namespaces


def _namespaces():
    out = [pytest.param(lambda a: a, id="numpy")]
    out.append(pytest.param("torch", id="torch-cpu"))
    out.append(pytest.param("array_api_strict", id="array-api-strict"))
    return out


def _convert(kind, a):
    if kind == "torch":
        torch = pytest.importorskip("torch")
        return torch.asarray(a)
    if kind == "array_api_strict":
        xp = pytest.importorskip("array_api_strict")
        return xp.asarray(a)
    return kind(a)


@pytest.mark.parametrize("kind", _namespaces())
def test_namespaces_give_the_numpy_results(rng, kind):
    X, y = _blobs(rng, 150, 5, spread=0.7)
    Xc = _convert(kind, X)
    expected = m.retrieval_report(X, y, k=(1, 4), mean_ap=True, average=None)
    got = m.retrieval_report(Xc, y, k=(1, 4), mean_ap=True, average=None)
    for name in expected:
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-12, err_msg=name)
    sep = m.map_at_r(Xc[:50, ...], y[:50], Xc[50:, ...], _convert(kind, y[50:]))
    assert sep == pytest.approx(m.map_at_r(X[:50], y[:50], X[50:], y[50:]), rel=1e-12)
    ties = _convert(kind, TIE_X)
    assert m.precision_at_k(ties, TIE_Y, k=2) == pytest.approx(3 / 8)
    assert m.nmi_kmeans(Xc, y, random_state=0) == pytest.approx(
        m.nmi_kmeans(X, y, random_state=0))


def test_float32_embeddings_are_supported(rng):
    X, y = _blobs(rng, 200, 5)
    assert m.map_at_r(X.astype(np.float32), y) == pytest.approx(m.map_at_r(X, y), rel=1e-5)


# ----------------------------------------------------------------------------- clustering


def test_nmi_and_ami_match_sklearn_kmeans_directly(rng):
    X, y = _blobs(rng, 300, 4, spread=2.0)
    pred = KMeans(n_clusters=4, n_init="auto", random_state=3).fit_predict(X)
    assert m.nmi_kmeans(X, y, random_state=3) == pytest.approx(
        normalized_mutual_info_score(y, pred))
    assert m.ami_kmeans(X, y, random_state=3) == pytest.approx(
        adjusted_mutual_info_score(y, pred))
    pred6 = KMeans(n_clusters=6, n_init="auto", random_state=3).fit_predict(X)
    assert m.nmi_kmeans(X, y, n_clusters=6, random_state=3) == pytest.approx(
        normalized_mutual_info_score(y, pred6))
    # Well separated classes are recovered exactly; random embeddings are not.
    assert m.nmi_kmeans(np.eye(4)[y] * 100, y, random_state=0) == pytest.approx(1.0)
    assert m.ami_kmeans(rng.randn(300, 8), y, random_state=0) < 0.1


def test_nmi_bad_input():
    X = np.arange(8.0).reshape(4, 2)
    with pytest.raises(ValueError, match="at least 2 classes"):
        m.nmi_kmeans(X, [1, 1, 1, 1])
    with pytest.raises(ValueError, match="one label per row"):
        m.ami_kmeans(X, [0, 1, 0])
    with pytest.raises(ValueError, match="more than the 4 samples"):
        m.nmi_kmeans(X, [0, 1, 0, 1], n_clusters=5)
    with pytest.raises(ValueError, match="NaN"):
        m.nmi_kmeans(np.full((4, 2), np.nan), [0, 1, 0, 1])


# ---------------------------------------------------------------------------- verification


def test_verification_roc_matches_sklearn_with_tied_scores(rng):
    scores = np.round(rng.randn(200), 1)  # many ties
    y = np.where(rng.rand(200) < scores / 4 + 0.5, 1, -1)
    roc = m.verification_roc(scores, y)
    assert roc.auc == pytest.approx(roc_auc_score(y, scores))
    far, tar, thr, area = roc
    assert far[0] == tar[0] == 0 and far[-1] == tar[-1] == 1
    # Each point's rates are those of accepting score >= threshold.
    for f, t, th in zip(far[1:], tar[1:], thr[1:], strict=True):
        assert f == pytest.approx(np.mean(scores[y == -1] >= th))
        assert t == pytest.approx(np.mean(scores[y == 1] >= th))
    # Distances (negated scores) and {0, 1} labels give the same curve.
    dist = m.verification_roc(-scores, (y + 1) // 2, greater_is_similar=False)
    np.testing.assert_allclose(dist.far, far)
    np.testing.assert_allclose(dist.tar, tar)
    np.testing.assert_allclose(dist.thresholds[1:], -thr[1:])
    assert dist.auc == pytest.approx(area)


def test_tar_at_far_hand_computed():
    # Similar pairs score 0.9, 0.6, 0.4; dissimilar 0.8, 0.5, 0.1, 0.05.
    scores = np.array([0.9, 0.8, 0.6, 0.5, 0.4, 0.1, 0.05])
    y = np.array([1, -1, 1, -1, 1, -1, -1])
    assert m.tar_at_far(scores, y, far=0.0) == pytest.approx(1 / 3)
    assert m.tar_at_far(scores, y, far=0.2) == pytest.approx(1 / 3)  # 1/4 > 0.2
    np.testing.assert_allclose(m.tar_at_far(scores, y, far=[0.25, 0.5, 1.0]), [2 / 3, 1, 1])
    assert m.tar_at_far(-scores, y, far=0.25, greater_is_similar=False) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        m.tar_at_far(scores, y, far=1.5)


def test_equal_error_rate_hand_computed_and_interpolated():
    assert m.equal_error_rate([0.9, 0.8, 0.7, 0.6], [1, -1, 1, -1]) == pytest.approx(0.5)
    # Perfect separation: EER 0; reversed: EER 1.
    assert m.equal_error_rate([0.9, 0.8, 0.2, 0.1], [1, 1, 0, 0]) == 0
    assert m.equal_error_rate([0.1, 0.2, 0.8, 0.9], [1, 1, 0, 0]) == 1
    # (FAR, FRR) at thresholds 0.9, 0.7, 0.6, 0.5: (0, 2/3), (1/2, 2/3), (1/2, 1/3),
    # (1/2, 0). FAR - FRR goes from -1/6 to +1/6 between 0.7 and 0.6; interpolating
    # linearly, both rates are 1/2 halfway.
    scores = [0.9, 0.7, 0.6, 0.5, 0.3]
    y = [1, -1, 1, 1, -1]
    eer, thr = m.equal_error_rate(scores, y, return_threshold=True)
    assert eer == pytest.approx(0.5)
    assert thr in (0.7, 0.6)


def test_best_threshold_accuracy_hand_computed():
    scores = np.array([0.9, 0.8, 0.6, 0.5, 0.4])
    y = np.array([1, 1, -1, 1, -1])
    acc, thr = m.best_threshold_accuracy(scores, y)
    # Accepting the top 2 or the top 4 gives 4/5 correct; the first is kept.
    assert acc == pytest.approx(4 / 5)
    assert np.mean((scores >= thr) == (y == 1)) == pytest.approx(acc)
    dacc, dthr = m.best_threshold_accuracy(-scores, y, greater_is_similar=False)
    assert dacc == acc and dthr == pytest.approx(-thr)


@pytest.mark.parametrize(
    "scores, y, match",
    [
        ([0.1, 0.2], [1, 2], r"\{-1, 1\} or \{0, 1\}"),
        ([0.1, 0.2], [-1, 0], r"\{-1, 1\} or \{0, 1\}"),
        ([0.1, 0.2], [1, 1], "both similar"),
        ([0.1, 0.2, 0.3], [1, 0], "one label per pair"),
        ([0.1, np.nan], [1, 0], "NaN"),
        ([[0.1, 0.2]], [1, 0], "1-D"),
        ([0.1, 0.2], ["a", "b"], "numeric labels"),
    ],
)
def test_verification_bad_input(scores, y, match):
    for func in (m.verification_roc, m.tar_at_far, m.equal_error_rate,
                 m.best_threshold_accuracy):
        with pytest.raises(ValueError, match=match):
            func(scores, y)


def test_verification_needs_a_boolean_orientation_flag():
    with pytest.raises(TypeError, match="greater_is_similar"):
        m.verification_roc([0.1, 0.2], [1, 0], greater_is_similar="distances")


# ------------------------------------------------------------------------- retrieval errors


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda X, y: m.precision_at_k(X, y[:-1]), ValueError, "one label per row"),
        (lambda X, y: m.precision_at_k(X, y, k=0), ValueError,
         r"'k' parameter of precision_at_k must be an int in the range \[1, inf\)"),
        (lambda X, y: m.recall_at_k(X, y, k=2.5), ValueError,
         r"'k' parameter of recall_at_k must be an int"),
        (lambda X, y: m.precision_at_k(X, y, k=10), ValueError, "references available"),
        (lambda X, y: m.map_at_r(X, y, max_k=0), ValueError, "max_k"),
        (lambda X, y: m.map_at_r(np.where(X > 0, np.nan, X), y), ValueError, "NaN"),
        (lambda X, y: m.map_at_r(X[:, 0], y), ValueError, "2-D"),
        (lambda X, y: m.map_at_r(X, y, X), ValueError, "reference_labels is required"),
        (lambda X, y: m.map_at_r(X, y, X[:, :1], y), ValueError, "features"),
        (lambda X, y: m.map_at_r(X, y, average="macro"), ValueError, "average"),
        (lambda X, y: m.map_at_r(X[:1], y[:1]), ValueError, "at least 2 samples"),
        (lambda X, y: m.map_at_r(X, y, X[::-1], y[::-1], ref_includes_query=True),
         ValueError, "first len\\(query\\) references"),
        (lambda X, y: m.map_at_r(X[:3], y[:3], X + 1, y, ref_includes_query=True),
         ValueError, "first len\\(query\\) references"),
        (lambda X, y: m.map_at_r(X, y, ref_includes_query="yes"), TypeError, "bool"),
        (lambda X, y: m.retrieval_report(X, y, k=(20, 30)), ValueError, "Every k"),
        (lambda X, y: m.map_at_r(np.array([["a", "b"]] * 6), y), TypeError, "numeric"),
        (lambda X, y: m.map_at_r(X, y, metric="manhattan"), ValueError, "Unknown metric"),
    ],
)
def test_retrieval_bad_input(call, error, match):
    X = np.arange(12.0).reshape(6, 2) - 5
    y = np.array([0, 0, 1, 1, 2, 2])
    with pytest.raises(error, match=match):
        call(X, y)


def test_mixed_namespaces_are_refused():
    torch = pytest.importorskip("torch")
    X = np.arange(12.0).reshape(6, 2)
    y = np.array([0, 0, 1, 1, 2, 2])
    with pytest.raises(TypeError, match="same array library"):
        m.map_at_r(X, y, torch.asarray(X), y)


# -------------------------------------------------------------------------------- scorers


def _learner():
    """NCA when available (fast settings), else Covariance."""
    if hasattr(skmetric, "NCA"):
        return skmetric.NCA(max_iter=5, random_state=0), {"nca__max_iter": [1, 5]}
    return skmetric.Covariance(), {"covariance": [skmetric.Covariance(), "passthrough"]}


def test_retrieval_scorer_in_cross_val_score_equals_the_metric_on_each_fold():
    X, y = load_wine(return_X_y=True)
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    pipe = make_pipeline(StandardScaler(), skmetric.Covariance())
    scorer = m.make_retrieval_scorer("map_at_r")
    scores = cross_val_score(pipe, X, y, cv=cv, scoring=scorer)
    expected = []
    for train, test in cv.split(X, y):
        pipe.fit(X[train], y[train])
        expected.append(m.map_at_r(pipe.transform(X[test]), y[test]))
    np.testing.assert_allclose(scores, expected)
    # A Pipeline ending in a classifier is embedded by its transformers.
    knn = make_pipeline(StandardScaler(), skmetric.Covariance(), KNeighborsClassifier())
    np.testing.assert_allclose(cross_val_score(knn, X, y, cv=cv, scoring=scorer), expected)


def test_retrieval_scorers_in_grid_search():
    X, y = load_iris(return_X_y=True)
    learner, grid = _learner()
    pipe = make_pipeline(StandardScaler(), learner)
    # A transformer gets unshuffled KFold by default: stratify so each fold has every class.
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    search = GridSearchCV(pipe, grid, cv=cv, scoring={
        "map_at_r": m.make_retrieval_scorer("map_at_r"),
        "p1": m.make_retrieval_scorer("precision_at_1"),
        "r5": m.make_retrieval_scorer("recall_at_k", k=5),
        "nmi": m.make_retrieval_scorer("nmi", random_state=0),
    }, refit="map_at_r")
    search.fit(X, y)
    res = search.cv_results_
    for key in ("map_at_r", "p1", "r5", "nmi"):
        assert np.all((res[f"mean_test_{key}"] > 0.2) & (res[f"mean_test_{key}"] <= 1)), key
    assert np.all(res["mean_test_r5"] >= res["mean_test_p1"])  # recall@5 >= precision@1
    assert search.best_index_ == np.argmax(res["mean_test_map_at_r"])
    assert search.best_score_ == pytest.approx(np.max(res["mean_test_map_at_r"]))
    X_test = search.best_estimator_.transform(X)
    assert search.score(X, y) == pytest.approx(m.map_at_r(X_test, y))


def test_retrieval_scorer_errors():
    with pytest.raises(ValueError, match="Unknown retrieval scorer"):
        m.make_retrieval_scorer("accuracy")
    with pytest.raises(TypeError, match="unknown argument"):
        m.make_retrieval_scorer("map_at_r", kk=3)
    scorer = m.make_retrieval_scorer("precision_at_k", k=3)
    assert repr(scorer) == "make_retrieval_scorer('precision_at_k', k=3)"
    assert repr(pickle.loads(pickle.dumps(scorer))) == repr(scorer)  # for n_jobs > 1
    with pytest.raises(TypeError, match="needs a transformer"):
        scorer(KNeighborsClassifier().fit([[0], [1]], [0, 1]), [[0], [1]], [0, 1])


class _PairDistance(BaseEstimator):
    """A minimal pair learner: similarity = -||a - b|| after scaling by ``scale``."""

    def __init__(self, scale=1.0):
        self.scale = scale

    def fit(self, pairs, y):
        self.fitted_ = True
        return self

    def decision_function(self, pairs):
        pairs = np.asarray(pairs)
        return -np.linalg.norm((pairs[:, 0] - pairs[:, 1]) * self.scale, axis=1)


def test_pair_scorers_use_decision_function(rng):
    pairs = rng.randn(120, 2, 3)
    y = np.where(rng.rand(120) < 0.5, 1, -1)
    pairs[y == 1, 1] = pairs[y == 1, 0] + 0.5 * rng.randn(int(np.sum(y == 1)), 3)
    est = _PairDistance()
    s = est.decision_function(pairs)
    assert m.make_pair_scorer("roc_auc")(est, pairs, y) == pytest.approx(roc_auc_score(y, s))
    assert m.make_pair_scorer("eer")(est, pairs, y) == pytest.approx(-m.equal_error_rate(s, y))
    assert m.make_pair_scorer("tar_at_far", far=0.1)(est, pairs, y) == pytest.approx(
        m.tar_at_far(s, y, far=0.1))
    assert m.make_pair_scorer("accuracy")(est, pairs, y) == pytest.approx(
        m.best_threshold_accuracy(s, y)[0])
    cv_scores = cross_val_score(est, pairs, y, cv=3, scoring=m.make_pair_scorer("roc_auc"))
    assert np.all(cv_scores > 0.8)
    with pytest.raises(ValueError, match="Unknown pair scorer"):
        m.make_pair_scorer("map_at_r")
    with pytest.raises(ValueError, match="single far"):
        m.make_pair_scorer("tar_at_far", far=[0.1, 0.2])


def test_package_root_exports_the_metrics_module_and_scorers():
    assert skmetric.metrics is m
    assert skmetric.make_retrieval_scorer is m.make_retrieval_scorer
    for name in m.__all__:
        assert callable(getattr(m, name)), name


def test_pair_scorer_with_a_skmetric_pair_learner_in_grid_search(rng):
    if not hasattr(skmetric, "ITML"):
        pytest.skip("no pair learner in this build")
    X, y = load_iris(return_X_y=True)
    i, j = rng.randint(len(y), size=(2, 300))
    pairs = np.stack([X[i], X[j]], axis=1)
    labels = np.where(y[i] == y[j], 1, -1)
    search = GridSearchCV(skmetric.ITML(max_iter=20), {"gamma": [0.5, 2.0]}, cv=3,
                          scoring={"auc": m.make_pair_scorer("roc_auc"),
                                   "eer": m.make_pair_scorer("eer")}, refit="auc")
    search.fit(pairs, labels)
    res = search.cv_results_
    assert np.all(res["mean_test_auc"] > 0.8)
    assert np.all((res["mean_test_eer"] < 0) & (res["mean_test_eer"] > -0.3))
    best = search.best_estimator_
    assert search.score(pairs, labels) == pytest.approx(
        roc_auc_score(labels, best.decision_function(pairs)))
