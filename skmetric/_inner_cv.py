"""Regularisation strength chosen by an internal cross-validation on the training data.

The better optimum of a metric learner's objective often generalises worse on small data
than a map that stays closer to its prior (the identity or the initial map). Each learner
describes a *path* of maps from its prior to the plain optimum, indexed by a strength:

- iterative learners (NCA, LMNN, MLKR, ITML_Supervised) record their iterates, the strength
  being the number of iterations (early stopping; 0 is the initial map);
- LFDA shrinks its local within-class scatter towards a multiple of the identity.

:func:`choose_strength` fits the path on the training part of each inner fold and scores
every point of it on the held-out part; the strength with the best mean score wins, ties
going to the most regularised one. The learner then fits all the data with that strength.
"""

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.neighbors import NearestNeighbors

# Inner folds: three keep an 'auto' fit within about 2-4 times the plain fit (measured).
N_SPLITS = 3
# Neighbours of the validation score (the 3-NN rule most benchmarks report).
N_NEIGHBORS = 3


def iteration_checkpoints(max_iter):
    """Iteration counts at which iterates are compared: 0, 1, 3, 10, 30, ... and max_iter.

    A coarse grid: the more candidates the inner CV compares, the more its noisy maximum
    favours one that was lucky on the held-out folds.
    """
    points = [0] + [t for t in (1, 3, 10, 30, 100, 300, 1000, 3000, 10000) if t < max_iter]
    if points[-1] != max_iter:
        points.append(max_iter)
    return points


class PathRecorder:
    """Collects ``(n_iter, L)`` at :func:`iteration_checkpoints` during an optimisation."""

    def __init__(self, max_iter):
        self.wanted = set(iteration_checkpoints(max_iter))
        self.path = []

    def __call__(self, n_iter, L):
        if n_iter in self.wanted:
            self.path.append((n_iter, np.array(L, dtype=np.float64, copy=True)))

    def finish(self, n_iter, L, max_iter):
        """Close the path: a run that converged early stays at its last iterate."""
        if not self.path or self.path[-1][0] != n_iter:
            self.path.append((n_iter, np.array(L, dtype=np.float64, copy=True)))
        last = self.path[-1][1]
        self.path += [(t, last) for t in sorted(self.wanted) if t > n_iter]
        return self.path


def inner_cv_feasible(y, classification=True):
    """Whether y allows :data:`N_SPLITS` inner folds (every class in every fold)."""
    if not classification:
        return y.shape[0] >= 4 * N_SPLITS
    _, counts = np.unique(y, return_counts=True)
    return counts.min() >= N_SPLITS and y.shape[0] >= 4 * N_SPLITS


def choose_strength(estimator, X, y, plain_params, classification=True, random_state=None):
    """The strength whose maps score best on held-out inner folds.

    Parameters
    ----------
    estimator : estimator with a ``_fit_path(X, y)`` method
        Returns ``[(strength, L), ...]`` ordered from the most regularised map to the
        plain optimum, with the same strengths on every call.
    X, y : ndarray
        Validated training samples and targets.
    plain_params : dict
        Parameters that make a clone fit the plain path (no inner CV of its own).
    classification : bool
        Score maps by k-NN accuracy (classes) or by kernel regression error (real y).
    random_state : int, RandomState instance or None
        Seeds the inner folds.

    Returns
    -------
    strength : the chosen strength
    scores : dict mapping each strength to its mean held-out score
    """
    seed = np.random.RandomState(random_state) if not isinstance(
        random_state, np.random.RandomState) else random_state
    cv_cls = StratifiedKFold if classification else KFold
    cv = cv_cls(n_splits=N_SPLITS, shuffle=True, random_state=seed.randint(2**31 - 1))
    quiet = {"verbose": False} if "verbose" in estimator.get_params() else {}
    inner = clone(estimator).set_params(**plain_params, **quiet, preprocessor=None)
    score = _knn_score if classification else _kernel_regression_score
    totals = {}
    for train, valid in cv.split(X, y):
        for strength, L in inner._fit_path(X[train], y[train]):
            s = score(X[train] @ L.T, y[train], X[valid] @ L.T, y[valid])
            totals[strength] = totals.get(strength, 0.0) + s / N_SPLITS
    strengths = list(totals)
    values = np.array([totals[s] for s in strengths])
    # Ties (common with accuracies on small folds) go to the most regularised map.
    best = strengths[int(np.flatnonzero(values >= values.max() - 1e-12)[0])]
    return best, totals


def _knn_score(Z_train, y_train, Z_valid, y_valid):
    """3-NN accuracy plus neighbour purity (a smoother tie-breaker), both in [0, 1]."""
    k = min(N_NEIGHBORS, Z_train.shape[0])
    if Z_valid.shape[0] * Z_train.shape[0] <= 1 << 20:
        # Small folds: one distance matrix is cheaper than building a search tree.
        D = np.sum(Z_train**2, axis=1)[None, :] - 2.0 * Z_valid @ Z_train.T
        idx = np.argpartition(D, k - 1, axis=1)[:, :k] if k < D.shape[1] else np.argsort(D)
    else:
        idx = NearestNeighbors(n_neighbors=k).fit(Z_train).kneighbors(
            Z_valid, return_distance=False)
    same = y_train[idx] == y_valid[:, None]
    purity = same.mean(axis=1)
    # Majority vote, ties to the smallest label (as KNeighborsClassifier's mode does).
    classes = np.unique(y_train)
    votes = (y_train[idx][:, :, None] == classes[None, None, :]).sum(axis=1)
    predicted = classes[np.argmax(votes, axis=1)]
    return float(np.mean(predicted == y_valid) + 0.5 * np.mean(purity))


def _kernel_regression_score(Z_train, y_train, Z_valid, y_valid):
    """Minus the mean squared error of Gaussian kernel regression from train to valid."""
    sq = (np.sum(Z_valid**2, axis=1)[:, None] + np.sum(Z_train**2, axis=1)[None, :]
          - 2.0 * Z_valid @ Z_train.T)
    logits = -np.maximum(sq, 0.0)
    logits -= logits.max(axis=1, keepdims=True)
    K = np.exp(logits)
    pred = K @ y_train / K.sum(axis=1)
    return -float(np.mean((pred - y_valid) ** 2))
