"""Kill tests for the mutants that survived the own tests of ``skmetric/metrics/_clustering.py``
and ``skmetric/metrics/_scorers.py`` (mutation testing, tests/README.md).

References are independent of the code under test: scikit-learn's ``KMeans`` and mutual
information scores, the metric functions called directly on each fold, hand-made cases.
"""

import re

import numpy as np
import pytest
import sklearn
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_mutual_info_score, normalized_mutual_info_score
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

import skmetric
from skmetric import metrics as m


def _exact(message):
    return "^" + re.escape(message) + "$"


# ----------------------------------------------------------------------------- clustering


@pytest.mark.parametrize("method", ["min", "geometric", "arithmetic", "max"])
def test_average_method_reaches_the_mutual_information(method):
    # 3 clusters for 2 classes: H(clusters) != H(labels), so the four normalizers differ.
    rng = np.random.RandomState(0)
    X = np.concatenate([rng.randn(20, 2), rng.randn(20, 2) + 6, rng.randn(20, 2) + [0, 6]])
    y = np.repeat([0, 1, 0], 20)
    pred = KMeans(n_clusters=3, n_init="auto", random_state=0).fit_predict(X)
    nmi = m.nmi_kmeans(X, y, 3, random_state=0, average_method=method)
    ami = m.ami_kmeans(X, y, 3, random_state=0, average_method=method)
    assert nmi == pytest.approx(normalized_mutual_info_score(y, pred, average_method=method))
    assert ami == pytest.approx(adjusted_mutual_info_score(y, pred, average_method=method))
    assert type(nmi) is float and type(ami) is float
    if method != "arithmetic":  # the default normalizer gives another value
        assert nmi != pytest.approx(normalized_mutual_info_score(y, pred))
        assert ami != pytest.approx(adjusted_mutual_info_score(y, pred))


def test_n_init_and_random_state_reach_kmeans():
    # Structureless points: k-means' local optimum depends on the seed and the restarts.
    rng = np.random.RandomState(1)
    X = rng.rand(60, 2)
    y = rng.randint(3, size=60)
    refs = {}
    for seed in range(4):
        for n_init in (1, 10):
            pred = KMeans(n_clusters=5, n_init=n_init, random_state=seed).fit_predict(X)
            refs[seed, n_init] = normalized_mutual_info_score(y, pred)
            got = m.nmi_kmeans(X, y, n_clusters=5, random_state=seed, n_init=n_init)
            assert got == pytest.approx(refs[seed, n_init]), (seed, n_init)
    assert len({round(v, 12) for v in refs.values()}) > 2  # the test can see both settings
    assert any(refs[s, 1] != pytest.approx(refs[s, 10]) for s in range(4))


def test_two_classes_and_one_cluster_per_sample_are_allowed():
    X = np.array([[0.0], [1.0], [5.0], [9.0]])
    y = np.array([0, 1, 0, 1])
    # n_clusters == n_samples: every point its own cluster.
    assert m.nmi_kmeans(X, y, 4, random_state=0) == pytest.approx(
        normalized_mutual_info_score(y, [0, 1, 2, 3]))
    # The number of classes (2) is the default number of clusters: {0, 1} and {5, 9}.
    assert m.nmi_kmeans(X, y, random_state=0) == pytest.approx(
        normalized_mutual_info_score(y, [0, 0, 1, 1]))
    assert m.ami_kmeans(X, [0, 0, 1, 1], random_state=0) == pytest.approx(1.0)


def test_clustering_error_messages_in_full():
    X = np.arange(8.0).reshape(4, 2)
    with pytest.raises(ValueError, match=_exact(
            "NMI/AMI need labels of at least 2 classes; got 1. Evaluate on data with several "
            "classes.")):
        m.ami_kmeans(X, [3, 3, 3, 3])
    with pytest.raises(ValueError, match=_exact("n_clusters=5 is more than the 4 samples.")):
        m.ami_kmeans(X, [0, 1, 0, 1], n_clusters=5)
    with pytest.raises(ValueError, match=_exact(
            "labels must be 1-D with one label per row of embeddings (4); got shape (3,).")):
        m.nmi_kmeans(X, [0, 1, 0])
    with pytest.raises(ValueError, match="^embeddings contains NaN or infinity"):
        m.nmi_kmeans(np.full((4, 2), np.inf), [0, 1, 0, 1])


def test_n_clusters_is_checked_without_sklearn_parameter_validation():
    # validate_params is skipped under this config (nested scikit-learn calls set it):
    # the function's own check still names the parameter.
    X = np.arange(8.0).reshape(4, 2)
    with sklearn.config_context(skip_parameter_validation=True):
        with pytest.raises(ValueError, match=_exact(
                "n_clusters must be an integer >= 1; got 0.")):
            m.nmi_kmeans(X, [0, 1, 0, 1], 0)


# -------------------------------------------------------------------------------- scorers

_NAMES = {
    "precision_at_1": lambda E, y: m.precision_at_k(E, y, k=1),
    "precision_at_k": lambda E, y: m.precision_at_k(E, y, k=3),
    "recall_at_k": lambda E, y: m.recall_at_k(E, y, k=3),
    "r_precision": lambda E, y: m.r_precision(E, y),
    "map_at_r": lambda E, y: m.map_at_r(E, y),
    "mean_average_precision": lambda E, y: m.mean_average_precision(E, y),
    "nmi": lambda E, y: m.nmi_kmeans(E, y, 2, random_state=0),
    "ami": lambda E, y: m.ami_kmeans(E, y, 2, random_state=0),
}
_KWARGS = {"precision_at_k": {"k": 3}, "recall_at_k": {"k": 3},
           "nmi": {"n_clusters": 2, "random_state": 0},
           "ami": {"n_clusters": 2, "random_state": 0}}


def test_every_retrieval_scorer_in_grid_search_equals_its_metric_on_each_fold():
    rng = np.random.RandomState(0)
    X = rng.randn(90, 4)
    y = np.repeat([0, 1, 2], 30)
    X[:, 0] += y  # weakly separated: metrics well inside (0, 1)
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    grid = {"covariance": [skmetric.Covariance(), "passthrough"]}
    pipe = Pipeline([("scale", StandardScaler()), ("covariance", skmetric.Covariance())])
    scoring = {name: m.make_retrieval_scorer(name, **_KWARGS.get(name, {})) for name in _NAMES}
    res = GridSearchCV(pipe, grid, cv=cv, scoring=scoring, refit=False).fit(X, y).cv_results_
    for i, params in enumerate(res["params"]):
        est = pipe.set_params(**params)
        for fold, (train, test) in enumerate(cv.split(X, y)):
            E = est.fit(X[train], y[train]).transform(X[test])
            for name, metric in _NAMES.items():
                assert res[f"split{fold}_test_{name}"][i] == pytest.approx(
                    metric(E, y[test]), abs=1e-12), (name, params, fold)
    # precision@1 is not precision@3: the default k=1 of "precision_at_1" is used.
    assert not np.allclose(res["mean_test_precision_at_1"], res["mean_test_precision_at_k"])


def test_retrieval_scorer_keyword_checks_and_reprs():
    with pytest.raises(TypeError, match=re.escape(
            "Scorer 'map_at_r' got unknown argument(s) ['aa', 'zz']; it accepts "
            "['reference', 'reference_labels', 'max_k',")):
        m.make_retrieval_scorer("map_at_r", zz=1, aa=2)
    with pytest.raises(TypeError, match=re.escape("unknown argument(s) ['query_labels']")):
        m.make_retrieval_scorer("map_at_r", query_labels=[0, 1])  # a positional argument
    with pytest.raises(ValueError, match=re.escape(
            "Unknown retrieval scorer 'roc_auc'; choose from ['ami', 'map_at_r', "
            "'mean_average_precision', 'nmi', 'precision_at_1', 'precision_at_k', "
            "'r_precision', 'recall_at_k'].")):
        m.make_retrieval_scorer("roc_auc")
    assert repr(m.make_retrieval_scorer("nmi", n_clusters=3, random_state=0)) == (
        "make_retrieval_scorer('nmi', n_clusters=3, random_state=0)")
    assert repr(m.make_retrieval_scorer("precision_at_1")) == (
        "make_retrieval_scorer('precision_at_1', k=1)")
    assert repr(m.make_retrieval_scorer("map_at_r")) == "make_retrieval_scorer('map_at_r')"


def test_retrieval_scorer_needs_labels_and_a_transformer():
    X = np.array([[0.0], [1.0], [5.0], [6.0]])
    y = np.array([0, 0, 1, 1])
    scorer = m.make_retrieval_scorer("precision_at_1")
    with pytest.raises(ValueError, match=_exact("The 'precision_at_1' scorer needs class "
                                                "labels y.")):
        scorer(StandardScaler().fit(X), X, None)
    knn_only = Pipeline([("knn", KNeighborsClassifier(1))]).fit(X, y)
    with pytest.raises(TypeError, match=_exact(
            "A retrieval scorer needs a transformer (or a Pipeline of transformers) to embed X; "
            "Pipeline has no transform method.")):
        scorer(knn_only, X, y)
    # A Pipeline of two steps ending in a classifier is embedded by its first step.
    pipe = make_pipeline(StandardScaler(), KNeighborsClassifier(1)).fit(X, y)
    value = scorer(pipe, X, y)
    assert type(value) is float and value == pytest.approx(1.0)


class _Pairs:
    """A fitted pair learner's stand-in: similarity = minus the pair's distance."""

    def decision_function(self, pairs):
        pairs = np.asarray(pairs, dtype=float)
        return -np.abs(pairs[:, 0] - pairs[:, 1])


def test_pair_scorers_equal_the_metrics_with_their_signs():
    rng = np.random.RandomState(0)
    y = np.repeat([1, -1], 50)
    pairs = rng.rand(100, 2)
    pairs[:50, 1] = pairs[:50, 0] + 0.2 * rng.randn(50)
    s = _Pairs().decision_function(pairs)
    eer = m.equal_error_rate(s, y)
    assert 0 < eer < 0.5
    for name in ("eer", "neg_eer"):
        value = m.make_pair_scorer(name)(_Pairs(), pairs, y)
        assert type(value) is float and value == pytest.approx(-eer)
    assert m.make_pair_scorer("tar_at_far")(_Pairs(), pairs, y) == pytest.approx(
        m.tar_at_far(s, y))  # the metric's default far
    for far in (0, 1, 0.25, np.float64(0.5)):
        assert m.make_pair_scorer("tar_at_far", far=far)(_Pairs(), pairs, y) == pytest.approx(
            m.tar_at_far(s, y, far=far)), far
    acc, _ = m.best_threshold_accuracy(s, y)
    assert m.make_pair_scorer("accuracy")(_Pairs(), pairs, y) == pytest.approx(acc)
    assert m.make_pair_scorer("roc_auc")(_Pairs(), pairs, y) == pytest.approx(
        m.verification_roc(s, y).auc)


@pytest.mark.parametrize("far", [-0.01, 1.01, 2, True, "0.1", None])
def test_pair_scorer_rejects_a_far_outside_0_1(far):
    with pytest.raises(ValueError, match=_exact(
            f"far must be a number in [0, 1] (a false accept rate); got {far!r}.")):
        m.make_pair_scorer("tar_at_far", far=far)


def test_pair_scorer_keyword_checks_and_reprs():
    with pytest.raises(TypeError, match=_exact(
            "Scorer 'tar_at_far' got unknown argument(s) ['y']; it accepts "
            "['far', 'greater_is_similar'].")):
        m.make_pair_scorer("tar_at_far", y=[1, -1])
    with pytest.raises(ValueError, match=_exact("A scorer needs a single far; got a sequence.")):
        m.make_pair_scorer("tar_at_far", far=[0.1])
    with pytest.raises(ValueError, match=re.escape(
            "Unknown pair scorer 'nmi'; choose from ['accuracy', 'eer', 'neg_eer', 'roc_auc', "
            "'tar_at_far'].")):
        m.make_pair_scorer("nmi")
    assert repr(m.make_pair_scorer("tar_at_far", far=0.01, greater_is_similar=False)) == (
        "make_pair_scorer('tar_at_far', far=0.01, greater_is_similar=False)")
    assert repr(m.make_pair_scorer("roc_auc")) == "make_pair_scorer('roc_auc')"
