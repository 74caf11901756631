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
