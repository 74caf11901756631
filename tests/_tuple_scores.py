"""Tuple learners' scores computed from ``components_`` alone, to check ``score`` and searches.

A pair learner's score is the ROC AUC of ``-d(a, b)`` against the pair labels; a triplet
learner's, the fraction of (a, p, n) with ``d(a, p) < d(a, n)``; a quadruplet learner's, of
(a, b, c, d) with ``d(a, b) < d(c, d)``; d is the Euclidean distance after ``components_``.
"""

import warnings

import numpy as np
from sklearn.base import clone
from sklearn.metrics import roc_auc_score


def tuple_score(components, tuples, labels=None):
    """The score of the metric ``components`` on tuples of samples (n_tuples, size, d)."""
    Z = tuples @ np.asarray(components).T
    first = np.linalg.norm(Z[:, 0] - Z[:, 1], axis=1)
    if tuples.shape[1] == 2:
        return roc_auc_score(labels, -first)
    second = np.linalg.norm(Z[:, 0 if tuples.shape[1] == 3 else 2] - Z[:, -1], axis=1)
    return float(np.mean(first < second))


def cv_tuple_scores(learner, tuples, labels, candidates, cv):
    """Mean held-out ``tuple_score`` over the folds of ``cv``, one per parameter dict."""
    means = []
    for params in candidates:
        scores = []
        for train, test in cv.split(tuples, labels):
            fitted = clone(learner).set_params(**params)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # convergence warnings of the fast settings
                if labels is None:
                    fitted.fit(tuples[train])
                else:
                    fitted.fit(tuples[train], labels[train])
            scores.append(tuple_score(fitted.components_, tuples[test],
                                      None if labels is None else labels[test]))
        means.append(np.mean(scores))
    return np.array(means)
