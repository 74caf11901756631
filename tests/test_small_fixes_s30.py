"""Small fixes of the thirtieth session: verbose prefixes, the EER scorer's sign, continued
training on data of another shape, failed set_params on deep embedders, and short epochs of
the class-balanced sampler.

Each test's docstring or comment says what the old behaviour was.
"""

import math
import re

import numpy as np
import pytest
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.datasets import load_iris
from sklearn.metrics import get_scorer

from skmetric import (
    ITML,
    LMNN,
    MLKR,
    MMC,
    NCA,
    ITML_Supervised,
    LSML_Supervised,
    MMC_Supervised,
    SCML_Supervised,
)
from skmetric.metrics import make_pair_scorer

# -- verbose output: one prefix rule ------------------------------------------------------


class _MyNCA(NCA):
    pass


class _MyLMNN(LMNN):
    pass


class _MyMLKR(MLKR):
    pass


def _iris():
    X, y = load_iris(return_X_y=True)
    return X[::3], y[::3]


def _pairs(X, y):
    i, j = np.triu_indices(len(y), 1)
    keep = np.random.RandomState(0).choice(len(i), 60, replace=False)
    i, j = i[keep], j[keep]
    return np.stack([X[i], X[j]], axis=1), np.where(y[i] == y[j], 1, -1)


@pytest.mark.parametrize("learner, data", [
    # *_Supervised printed the base's name ([ITML], [MMC], [MMC diagonal], [LSML]) while
    # SCML_Supervised printed its own; a subclass of NCA, LMNN or MLKR printed the parent's.
    (ITML_Supervised(max_iter=3, prior_strength="auto", random_state=0), "labels"),
    (ITML(max_iter=3), "pairs"),
    (MMC_Supervised(max_iter=3, random_state=0), "labels"),
    (MMC_Supervised(max_iter=3, diagonal=True, random_state=0), "labels"),
    (MMC(max_iter=3, solver="ratio"), "pairs"),
    (LSML_Supervised(max_iter=3, tol=0, random_state=0), "labels"),
    (SCML_Supervised(k_genuine=1, k_impostor=2, max_iter=20, output_iter=10,
                     random_state=0), "labels"),
    (_MyNCA(max_iter=3), "labels"),
    (_MyNCA(max_iter=2, batch_size=10, random_state=0), "labels"),
    (_MyLMNN(n_neighbors=1, max_iter=3, min_iter=0, prior_strength="auto",
             random_state=0), "labels"),
    (_MyMLKR(max_iter=3, prior_strength="auto", random_state=0), "targets"),
], ids=lambda p: type(p).__name__ if not isinstance(p, str) else p)
def test_every_verbose_line_is_prefixed_with_the_constructed_class_name(learner, data, capsys):
    X, y = _iris()
    learner.set_params(verbose=True)
    if data == "pairs":
        learner.fit(*_pairs(X, y))
    elif data == "targets":
        learner.fit(X, X[:, 0])
    else:
        learner.fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    assert lines, "verbose=True printed nothing"
    name = type(learner).__name__
    assert [line for line in lines if not line.startswith(f"[{name}] ")] == []


# -- the EER scorer's sign ----------------------------------------------------------------


class _Perfect(RegressorMixin, BaseEstimator):
    def fit(self, X, y):
        return self

    def predict(self, X):
        return X[:, 0]

    def decision_function(self, pairs):
        return -np.abs(pairs[:, 0, 0] - pairs[:, 1, 0])


def test_a_perfect_eer_scores_minus_zero_as_scikit_learns_negated_losses():
    """A perfect EER scores -0.0, as scikit-learn's neg_* scorers score a perfect
    prediction (-1 * 0.0): kept, and documented, rather than special-cased."""
    X = np.arange(6.0)[:, None]
    sklearn_perfect = get_scorer("neg_mean_squared_error")(_Perfect(), X, X[:, 0])
    pairs = np.array([[[0.0], [0.0]], [[1.0], [1.0]], [[0.0], [5.0]], [[1.0], [9.0]]])
    y = np.array([1, 1, -1, -1])
    for name in ("eer", "neg_eer"):
        ours = make_pair_scorer(name)(_Perfect(), pairs, y)
        assert ours == 0.0 == sklearn_perfect
        assert math.copysign(1, ours) == math.copysign(1, sklearn_perfect) == -1
    doc = re.sub(r"\s+", " ", make_pair_scorer.__doc__)
    assert "-0.0" in doc


# -- deep embedders -------------------------------------------------------------------------

torch = pytest.importorskip("torch")
pytest.importorskip("skorch")
from sklearn.base import clone  # noqa: E402

from skmetric.deep import MetricEmbedder  # noqa: E402
from skmetric.deep._sampler import ClassBalancedBatchSampler  # noqa: E402


def _blobs(n_features=5):
    rng = np.random.RandomState(0)
    y = np.repeat(np.arange(4), 10)
    return (rng.randn(40, n_features) + 3 * y[:, None]).astype(np.float32), y


def _embedder(**params):
    return MetricEmbedder(**{"embedding_dim": 2, "max_epochs": 1, "batch_size": 8,
                             "samples_per_class": 2, "verbose": 0, "random_state": 0,
                             **params})


@pytest.mark.parametrize("how", ["warm_start", "partial_fit"])
@pytest.mark.parametrize("as_list", [False, True])
def test_continued_training_on_samples_of_another_shape_says_how_to_start_over(how, as_list):
    """Was scikit-learn's "X has 7 features, but MetricEmbedder is expecting 5 features as
    input", which said neither why (training continues) nor how to start over."""
    X, y = _blobs()
    emb = _embedder(warm_start=how == "warm_start").fit(X, y)
    X7 = _blobs(7)[0]
    with pytest.raises(ValueError, match=r"X has 7 features, but MetricEmbedder is expecting "
                       r"5 features as input: partial_fit and fit with warm_start=True "
                       r"continue.*warm_start=False.*sklearn\.base\.clone"):
        (emb.fit if how == "warm_start" else emb.partial_fit)(X7.tolist() if as_list else X7, y)
    assert clone(emb).fit(X7, y).transform(X7).shape == (40, 2)  # what the message offers
    assert emb.set_params(warm_start=False).fit(X7, y).input_shape_ == (7,)


@pytest.mark.parametrize("params, error", [
    ({"loss__margni": 0.1}, TypeError),
    ({"batch_size": 16, "loss__margni": 0.1}, TypeError),
    ({"module__foo": 1}, TypeError),
    ({"miner__eps": 1}, TypeError),
])
def test_a_failed_set_params_leaves_a_fitted_embedder_as_it_was(params, error):
    """The refused parameter used to stay stored: get_params held it and every later fit
    failed on it again (a network or loss rebuilt before the failure stayed too)."""
    X, y = _blobs()
    emb = _embedder(loss="contrastive").fit(X, y)
    before = emb.get_params(deep=False)
    loss, module = emb.loss_, emb.module_
    weights = {k: v.clone() for k, v in module.state_dict().items()}
    with pytest.raises(error):
        emb.set_params(**params)
    after = emb.get_params(deep=False)  # (deep adds new callback copies at each call)
    assert after.keys() == before.keys()
    assert all(after[k] is before[k] for k in before)
    assert emb.loss_ is loss and emb.module_ is module
    assert all(torch.equal(v, weights[k]) for k, v in module.state_dict().items())
    emb.set_params(warm_start=True).fit(X, y)  # continues: nothing refused lingers
    clone(emb).fit(X, y)


def test_short_epochs_of_few_classes_are_documented():
    """With fewer classes than batch_size // samples_per_class, batches are smaller than
    batch_size while an epoch still draws n_samples // batch_size of them: iris with
    batch_size=128, m=4 trains on one batch of 12 samples per epoch, while the sampler's
    docstring said every sample was used about once per epoch. No warning: the demo's
    defaults would raise it on every data set of few classes (a longer epoch instead was
    measured 3-45 times slower on the docs' and tests' fits)."""
    labels = np.repeat(np.arange(3), 50)
    sampler = ClassBalancedBatchSampler(labels, 4, 128, random_state=0)
    assert [len(batch) for batch in sampler] == [12]
    assert [len(batch) for batch in ClassBalancedBatchSampler(labels, 4, 12,
                                                              random_state=0)] == [12] * 12
    doc = re.sub(r"\s+", " ", ClassBalancedBatchSampler.__doc__)
    assert "every sample is used about once per epoch" not in doc
    assert "an epoch uses only part of the samples" in doc
