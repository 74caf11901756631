"""Learned maps pulled toward their prior, with a strength chosen by an inner CV.

The better optimum of a metric learner's objective often generalises worse on small data
than a metric closer to its prior (Euclidean, the identity map or ITML's ``M0``). Two
pieces serve LMNN, LFDA and ITML_Supervised:

- :func:`geodesic_map`: the point of the affine-invariant geodesic from the prior metric
  to the learned one, at a fraction ``1 / (1 + strength)`` of the way (strength 0: the
  learned map, infinity: the prior);
- :func:`choose_strength`: the strength whose maps score best by 3-NN accuracy on held-out
  inner folds of the training data (so it uses the training data only), among candidates
  that always include the prior, so 'auto' can fall back to it where learning does not help.
"""

import numpy as np
from scipy import linalg
from sklearn.model_selection import StratifiedKFold

# Candidate strengths of 'auto': geodesic fractions 1, 3/4, 1/2, 1/4 and 0 (the prior).
STRENGTHS = (0.0, 1.0 / 3.0, 1.0, 3.0, np.inf)
# Inner folds and the fixed seed of their split (an 'auto' fit is a function of the data).
N_SPLITS = 3
SPLIT_SEED = 0
# Neighbours of the validation score (the k-NN rule most benchmarks report).
N_NEIGHBORS = 3


def geodesic_map(L, L0, strength):
    """A map whose metric lies on the geodesic from ``L0^T L0`` to ``L^T L``.

    With ``W = L L0^+ = U S V^T`` (the learned map expressed on the prior's output), the map
    ``diag(S^t) V^T L0`` with ``t = 1 / (1 + strength)`` has the metric
    ``M0^(1/2) (M0^(-1/2) M M0^(-1/2))^t M0^(1/2)``, the affine-invariant (and LogDet)
    geodesic between the prior metric ``M0`` and the learned ``M``, when ``L0`` is square
    and invertible. ``t = 1`` gives ``L`` up to a rotation (the same distances), ``t = 0``
    the prior's distances on the row space of ``W`` (all of them when ``W`` is square and
    invertible).

    Parameters
    ----------
    L : ndarray of shape (n_components, n_features)
        The learned map.
    L0 : ndarray of shape (n_prior, n_features)
        The prior map (the identity for Euclidean distances).
    strength : float
        Non-negative; 0 returns ``L`` itself, ``np.inf`` the prior.
    """
    if strength == 0:
        return L
    W = L @ linalg.pinv(L0)
    _, s, Vt = linalg.svd(W, full_matrices=False)
    t = 0.0 if np.isinf(strength) else 1.0 / (1.0 + strength)
    return (s**t)[:, None] * (Vt @ L0)


def choose_strength(fit_path, X, y, strengths=STRENGTHS, min_train_count=1):
    """The strength whose maps give the best mean 3-NN accuracy on held-out inner folds.

    Parameters
    ----------
    fit_path : callable
        ``fit_path(X_train, y_train, strengths) -> [L, ...]``, one map per strength.
    X, y : ndarray
        Validated training samples and integer class codes.
    strengths : sequence of float
        Candidates, from the least to the most regularised; ties go to the later one.
    min_train_count : int
        Samples of each class the learner needs in an inner training fold.

    Returns
    -------
    strength : float
        The chosen strength; the plain one, ``strengths[0]``, when a class is too small for
        the inner folds (fewer than ``N_SPLITS`` samples, or inner training folds with
        fewer than ``min_train_count``).
    scores : ndarray
        Mean held-out accuracy of each strength.
    """
    strengths = list(strengths)
    scores = np.zeros(len(strengths))
    smallest = np.bincount(y).min()
    if smallest < N_SPLITS or smallest * (N_SPLITS - 1) // N_SPLITS < min_train_count:
        return strengths[0], scores
    cv = StratifiedKFold(n_splits=N_SPLITS, shuffle=True, random_state=SPLIT_SEED)
    for train, valid in cv.split(X, y):
        for i, L in enumerate(fit_path(X[train], y[train], strengths)):
            scores[i] += knn_accuracy(X[train] @ L.T, y[train], X[valid] @ L.T, y[valid])
    scores /= N_SPLITS
    best = np.flatnonzero(scores >= scores.max() - 1e-12)[-1]
    return strengths[best], scores


def knn_accuracy(Z_train, y_train, Z_valid, y_valid):
    """k-NN accuracy (majority vote, ties to the smallest class code) from train to valid."""
    k = min(N_NEIGHBORS, Z_train.shape[0])
    sq = np.einsum("ij,ij->i", Z_train, Z_train)
    block = max(1, (1 << 22) // max(Z_train.shape[0], 1))
    correct = 0
    n_classes = int(max(y_train.max(), y_valid.max())) + 1
    for start in range(0, Z_valid.shape[0], block):
        Zv = Z_valid[start:start + block]
        # The squared norm of the validation row is the same for all its candidates.
        D = sq[None, :] - 2.0 * Zv @ Z_train.T
        idx = np.argpartition(D, k - 1, axis=1)[:, :k] if k < D.shape[1] else \
            np.broadcast_to(np.arange(D.shape[1]), D.shape)
        votes = np.zeros((Zv.shape[0], n_classes))
        np.add.at(votes, (np.arange(Zv.shape[0])[:, None], y_train[idx]), 1.0)
        correct += int(np.sum(np.argmax(votes, axis=1) == y_valid[start:start + block]))
    return correct / Z_valid.shape[0]
