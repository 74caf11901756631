"""Every warning of the classical learners and the constraint generator points at the
user's line (this file), not into skmetric or scikit-learn.

A fixed ``stacklevel`` is right for one call path only (``fit`` called directly, through a
``Pipeline``, through ``_fit_context`` or a ``*_Supervised`` wrapper all differ), so the
library routes its warnings through ``skmetric._warn.warn_user``; this checks each warning
on a direct call and, where the learner is a transformer, inside a ``Pipeline``.
"""

import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_iris
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline

from skmetric import (
    LFDA,
    LMNN,
    NCA,
    RCA,
    SCML,
    SDML,
    Constraints,
    SCML_Supervised,
)


def _warnings_of(call, match):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()
    found = [w for w in caught if match in str(w.message)]
    assert found, f"no warning matching {match!r}: {[str(w.message) for w in caught]}"
    return found


def _assert_points_here(call, match):
    for w in _warnings_of(call, match):
        assert w.filename == __file__, (w.filename, w.lineno, str(w.message))


def _iris():
    X, y = load_iris(return_X_y=True)
    return X, y


def _wide_two_classes(rng=0):
    # More features than samples per class: LFDA's local within-class scatter is singular.
    X = np.random.default_rng(rng).normal(size=(12, 30))
    return X, np.repeat([0, 1], 6)


def _rank_deficient_chunks():
    # Chunks of two samples each in 8 dimensions: 3 chunks give a within-chunk covariance of
    # rank 3, while the chunked samples span 6 dimensions.
    X = np.random.default_rng(0).normal(size=(6, 8))
    return X, np.array([0, 0, 1, 1, 2, 2])


# (learner, data, the warning's text): each learner's fit emits it.
_FIT_CASES = {
    "lfda-singular-scatter": (LFDA(n_components=2, prior_strength=0), _wide_two_classes,
                              "within-class scatter matrix is singular"),
    "rca-rank": (RCA(), _rank_deficient_chunks, "within-chunk covariance has rank"),
    "nca-batch-not-converged": (NCA(batch_size=50, max_iter=1, verbose=1, prior_strength=0,
                                    random_state=0), _iris, "NCA did not converge"),
    "lmnn-k-renamed": (LMNN(k=3, max_iter=5, prior_strength=0), _iris,
                       "k was renamed n_neighbors"),
    "lmnn-not-converged": (LMNN(max_iter=1, verbose=1, prior_strength=0), _iris,
                           "did not converge in 1 iterations"),
    "stuck-at-init": (NCA(prior_strength=0), lambda: (_iris()[0] * 1e20, _iris()[1]),
                      "stopped at its initialisation"),
    "scml-few-bases": (SCML_Supervised(n_basis=2, max_iter=200, output_iter=100,
                                       random_state=0), _iris,
                       "below the number of classes"),
}


@pytest.mark.parametrize("case", list(_FIT_CASES))
def test_fit_warnings_point_at_the_callers_line(case, capsys):
    learner, data, match = _FIT_CASES[case]
    X, y = data()
    _assert_points_here(lambda: clone(learner).fit(X, y), match)
    # Through a Pipeline the call path is deeper; the warning still names this file.
    pipe = make_pipeline(clone(learner), KNeighborsClassifier(n_neighbors=1))
    _assert_points_here(lambda: pipe.fit(X, y), match)


def test_scml_zero_metric_warning_points_at_the_callers_line():
    X, y = _iris()
    triplets = Constraints(y).triplets(50, random_state=0)
    _assert_points_here(lambda: SCML(preprocessor=X, beta=1e6, max_iter=200, output_iter=100,
                                     random_state=0).fit(triplets), "zero weight")


def test_scml_triplet_diffs_warning_points_at_the_callers_line():
    X, y = _iris()
    # One informative triplet among 99 whose samples coincide: most rounds of the basis
    # search draw no difference at all, so fewer bases than asked for are found.
    triplets = np.array([[0, 1, 50]] + [[0, 0, 0]] * 99)
    scml = SCML(preprocessor=X, basis="triplet_diffs", n_basis=40, max_iter=200,
                output_iter=100, random_state=0)
    _assert_points_here(lambda: scml.fit(triplets), "'triplet_diffs' bases could be built")


def test_sdml_warning_points_at_the_callers_line():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 3))
    pairs = np.stack([X[:10], X[10:]], axis=1)
    y = -np.ones(10)  # dissimilar pairs only, strongly weighted: the prior is outweighed
    _assert_points_here(lambda: SDML(balance_param=100.0, prior="identity").fit(pairs, y),
                        "non-positive eigenvalue")


def test_constraints_warning_points_at_the_callers_line():
    y = np.array([0, 0, 1, 1])  # one similar pair per class: 2 distinct similar pairs
    _assert_points_here(lambda: Constraints(y).positive_negative_pairs(10, random_state=0),
                        "distinct similar pairs could be generated")
