"""Regularisation strength chosen by an internal cross-validation on the training data.

On small data the optimum of a metric learner's objective often generalises worse than a
map closer to its prior (the identity or the initial map): NCA, for one, can blow its map
up to a hard 1-NN rule that fits the training set and nothing else. A learner regularised
towards its prior describes a *path* of maps indexed by a strength, from the prior itself
(strength ``inf``) to its plain optimum (``0``).

- :func:`penalised_path` computes such a path for a learner fitted by L-BFGS: it minimises
  ``loss(L) + s * scale * ||L - L0||_F^2`` for each strength ``s`` of a descending grid,
  each fit warm-started from the previous one.
- :func:`choose_strength` fits a path on the training part of each of ``N_SPLITS`` inner
  folds (:func:`inner_folds`) and scores each map on the held-out part
  (:func:`knn_score` for classes, :func:`kernel_regression_score` for real targets). The
  strength with the best mean score wins, ties going to the strongest one, so the prior
  (Euclidean distance, for an identity prior) is kept unless a learned map does better.

Only the data passed in (a training set) and ``random_state`` are used.
"""

import math
from typing import NamedTuple

import numpy as np
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.neighbors import NearestNeighbors
from sklearn.utils import check_random_state

from ._lbfgs import minimize_lbfgs

__all__ = ["N_SPLITS", "N_NEIGHBORS", "PATH_TOL", "STRENGTHS", "Choice", "choose_strength",
           "inner_folds", "kernel_regression_score", "knn_score", "penalised_path",
           "prior_penalty"]

# Inner folds: three keep an 'auto' NCA fit within 2-4 times the plain fit (measured on the
# pyDML-Stats datasets, benchmarks/accuracy.py).
N_SPLITS = 3
# L-BFGS tolerance of the path's fits, at least: they only rank strengths, and a tight one
# doubled the cost of 'auto' for no better choice (NCA on the pyDML-Stats datasets).
PATH_TOL = 1e-3
# Neighbours of the validation score (the 3-NN rule most benchmarks report).
N_NEIGHBORS = 3
# Strengths compared by 'auto', strongest first: the prior, a half-decade grid, the plain
# optimum. No finer: the more candidates the inner CV compares, the more its
# noisy maximum favours one that was lucky on the held-out folds.
STRENGTHS = (math.inf, 1e-2, 1e-3, 1e-4, 0.0)


def prior_penalty(loss_grad, L0, strength, scale, backend):
    """``loss_grad`` plus ``strength * scale * ||L - L0||_F^2`` and its gradient.

    ``scale`` makes the strength comparable across datasets (e.g. the number of samples
    for an objective that sums over them). A zero strength returns ``loss_grad`` itself,
    so the plain objective is evaluated exactly as without the penalty.
    """
    if strength == 0:
        return loss_grad
    weight = float(strength) * float(scale)
    prior = backend.asarray(np.asarray(L0, dtype=np.float64))

    def penalised(L):
        loss, grad = loss_grad(L)
        diff = L - prior
        return loss + weight * backend.xp.sum(diff * diff), grad + (2.0 * weight) * diff

    return penalised


def penalised_path(loss_grad, L0, strengths, backend, *, scale, max_iter, tol=None):
    """Maps minimising the penalised objective for each strength, strongest first.

    Parameters
    ----------
    loss_grad : callable
        ``loss_grad(L) -> (loss, grad)`` on ``backend`` (see
        :func:`~skmetric._compute._lbfgs.minimize_lbfgs`).
    L0 : ndarray of shape (n_components, n_features)
        The prior map, and the start of the first fit.
    strengths : sequence of float
        Descending; ``inf`` stands for the prior itself (no fit).
    backend : Backend
    scale : float
        Multiplies every strength (see :func:`prior_penalty`).
    max_iter : int
        L-BFGS iterations of each fit.
    tol : float, default=None
        L-BFGS tolerance of each fit, raised to :data:`PATH_TOL` when smaller (or None).

    Returns
    -------
    path : list of (strength, ndarray)
        One NumPy map per strength, in the order given. Each fit starts from the previous
        map, so a long path costs little more than its last fit.
    """
    path, L = [], np.asarray(L0, dtype=np.float64)
    tol = PATH_TOL if tol is None else max(tol, PATH_TOL)
    for strength in strengths:
        if not math.isinf(strength):
            objective = prior_penalty(loss_grad, L0, strength, scale, backend)
            L = minimize_lbfgs(objective, L, backend, max_iter=max_iter, tol=tol).x
        path.append((strength, L))
    return path


class Choice(NamedTuple):
    """Outcome of :func:`choose_strength`."""

    strength: float
    """The chosen strength; None when ``y`` could not be split into inner folds."""
    scores: dict
    """Each strength's mean held-out score (higher is better)."""
    start: object
    """The mean over the inner folds of the maps at ``strength`` (NumPy), a warm start
    for the final fit on all the data; None with ``strength``."""


def inner_folds(y, *, random_state=None, classification=True, n_splits=N_SPLITS):
    """``n_splits`` (train, validation) index pairs of ``y``, or None when too few samples.

    Stratified for classes (None unless every class has ``n_splits`` samples), plain
    shuffled folds for real targets. Seeded by ``random_state`` only.
    """
    y = np.asarray(y)
    if y.shape[0] < 4 * n_splits:
        return None
    seed = check_random_state(random_state).randint(np.iinfo(np.int32).max)
    if classification:
        _, counts = np.unique(y, return_counts=True)
        if counts.min() < n_splits or counts.size < 2:
            return None
        cv = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    else:
        cv = KFold(n_splits=n_splits, shuffle=True, random_state=seed)
    return list(cv.split(np.zeros((y.shape[0], 1)), y))


def choose_strength(fit_path, X, y, *, random_state=None, classification=True,
                    n_splits=N_SPLITS):
    """The strength whose maps score best on held-out inner folds of ``(X, y)``.

    Parameters
    ----------
    fit_path : callable
        ``fit_path(X_train, y_train) -> [(strength, L), ...]``, ordered from the strongest
        regularisation (the prior) to the weakest, with the same strengths on every call;
        ``L`` is a NumPy map applied as ``X @ L.T``.
    X, y : ndarray
        Validated training samples (NumPy) and targets (class codes or real values).
    random_state : int, RandomState instance or None
        Seeds the inner folds.
    classification : bool, default=True
        Score maps by k-NN accuracy (classes) or kernel regression error (real y).
    n_splits : int, default=N_SPLITS

    Returns
    -------
    choice : Choice
        The strength, every strength's score and the mean inner map at the strength.
    """
    folds = inner_folds(y, random_state=random_state, classification=classification,
                        n_splits=n_splits)
    if folds is None:
        return Choice(None, {}, None)
    score = knn_score if classification else kernel_regression_score
    totals, maps = {}, {}
    for train, valid in folds:
        for strength, L in fit_path(X[train], y[train]):
            s = score(X[train] @ L.T, y[train], X[valid] @ L.T, y[valid])
            totals[strength] = totals.get(strength, 0.0) + s / len(folds)
            maps[strength] = maps.get(strength, 0.0) + L / len(folds)
    strengths = list(totals)
    values = np.array([totals[s] for s in strengths])
    # Ties (common with accuracies on small folds) go to the strongest regularisation.
    best = strengths[int(np.flatnonzero(values >= values.max() - 1e-12)[0])]
    return Choice(best, totals, maps[best])


def knn_score(Z_train, y_train, Z_valid, y_valid, n_neighbors=N_NEIGHBORS):
    """k-NN accuracy plus half the neighbour purity (a smoother tie-breaker), in [0, 1.5]."""
    k = min(n_neighbors, Z_train.shape[0])
    if Z_valid.shape[0] * Z_train.shape[0] <= 1 << 20:
        # Small folds: one distance matrix is cheaper than building a search tree.
        D = np.sum(Z_train**2, axis=1)[None, :] - 2.0 * Z_valid @ Z_train.T
        idx = np.argpartition(D, k - 1, axis=1)[:, :k] if k < D.shape[1] else np.argsort(D)
    else:
        idx = NearestNeighbors(n_neighbors=k).fit(Z_train).kneighbors(
            Z_valid, return_distance=False)
    labels = y_train[idx]
    purity = np.mean(labels == y_valid[:, None], axis=1)
    # Majority vote, ties to the smallest label (as KNeighborsClassifier's mode does).
    classes = np.unique(y_train)
    votes = np.sum(labels[:, :, None] == classes[None, None, :], axis=1)
    predicted = classes[np.argmax(votes, axis=1)]
    return float(np.mean(predicted == y_valid) + 0.5 * np.mean(purity))


def kernel_regression_score(Z_train, y_train, Z_valid, y_valid):
    """Minus the mean squared error of Gaussian kernel regression from train to valid."""
    sq = (np.sum(Z_valid**2, axis=1)[:, None] + np.sum(Z_train**2, axis=1)[None, :]
          - 2.0 * Z_valid @ Z_train.T)
    logits = -np.maximum(sq, 0.0)
    logits -= logits.max(axis=1, keepdims=True)
    K = np.exp(logits)
    pred = K @ y_train / K.sum(axis=1)
    return -float(np.mean((pred - y_valid) ** 2))
