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
  (:func:`knn_scores` for classes, :func:`kernel_regression_score` for real targets). The
  strength with the best mean score wins, ties going to the strongest one, so the prior
  (Euclidean distance, for an identity prior) is kept unless a learned map does better.

Only the data passed in (a training set) and the learner's ``random_state`` are used. One
rule seeds the inner folds of every learner (:func:`split_seed`): its ``random_state``, or
:data:`SPLIT_SEED` when that is None or the learner has none.
"""

import copy
import functools
import math
import numbers
from typing import NamedTuple

import numpy as np
from sklearn.model_selection import KFold
from sklearn.neighbors import NearestNeighbors
from sklearn.utils import check_random_state

from .._warn import progress
from ._lbfgs import minimize_lbfgs

__all__ = ["N_SPLITS", "N_NEIGHBORS", "PATH_TOL", "SPLIT_SEED", "STRENGTHS", "Choice",
           "choose_strength", "inner_folds", "kernel_regression_score", "knn_scores",
           "penalised_path", "prior_penalty", "silent", "split_seed"]

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
# Seed of the inner folds when the learner's random_state is None or it has none (LFDA):
# the folds then add no randomness of their own, so 'auto' is as deterministic as the plain
# fit (a function of the data for LFDA, for NCA with its default init, ...).
SPLIT_SEED = 0
# Distances computed at once by knn_scores (32 MiB); folds with more validation-by-training
# pairs than _BRUTE_PAIRS are searched with a tree instead.
_BLOCK_ELEMENTS = 1 << 22
_BRUTE_PAIRS = 1 << 20


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


def split_seed(random_state):
    """The seed of the inner folds: ``random_state``, or :data:`SPLIT_SEED` when None.

    A learner passes its ``random_state`` (LFDA, which has none, passes None): an int or a
    RandomState instance seeds the folds as it seeds the rest of the fit, and None, which
    elsewhere means NumPy's global generator, gives the fixed folds of ``SPLIT_SEED``, so an
    'auto' fit stays reproducible wherever the plain fit is.
    """
    return SPLIT_SEED if random_state is None else random_state


def inner_folds(y, *, random_state=None, classification=True, n_splits=N_SPLITS):
    """``n_splits`` (train, validation) index pairs of ``y``, or None when too few samples.

    Stratified for classes (None unless every class has ``n_splits`` samples), plain
    shuffled folds for real targets. Seeded by ``split_seed(random_state)`` only.
    """
    y = np.asarray(y)
    if y.shape[0] < 4 * n_splits:
        return None
    seed = _fold_seed(split_seed(random_state))
    if not classification:
        cv = KFold(n_splits=n_splits, shuffle=True, random_state=seed)
        return list(cv.split(np.zeros((y.shape[0], 1)), y))
    _, first, codes, counts = np.unique(y, return_index=True, return_inverse=True,
                                        return_counts=True)
    if counts.min() < n_splits or counts.size < 2:
        return None
    return _stratified_folds(codes, first, n_splits, seed)


def _fold_seed(random_state):
    """The seed of the fold splitter: the first draw of ``random_state`` (an int's draw is
    cached: seeding a generator costs about a tenth of a plain LFDA fit on iris)."""
    if isinstance(random_state, numbers.Integral):
        return _int_fold_seed(int(random_state))
    return check_random_state(random_state).randint(np.iinfo(np.int32).max)


@functools.lru_cache(maxsize=64)
def _int_fold_seed(seed):
    return int(np.random.RandomState(seed).randint(np.iinfo(np.int32).max))


def _stratified_folds(codes, first, n_splits, seed):
    """The folds of ``StratifiedKFold(n_splits, shuffle=True, random_state=seed)``.

    The same assignment as scikit-learn's (checked against it by the tests), without the
    validation of its public ``split``, which cost a third of an 'auto' LFDA fit's extra
    time on the smallest datasets. ``codes`` are class codes, ``first`` the index of each
    class's first sample.
    """
    # Classes numbered by first appearance; each fold gets its round-robin share of each.
    encoded = np.argsort(np.argsort(first))[codes]
    order = np.sort(encoded)
    allocation = np.array([np.bincount(order[i::n_splits], minlength=first.size)
                           for i in range(n_splits)])
    test_fold = np.empty(codes.shape[0], dtype=np.intp)
    rng = np.random.RandomState(seed)
    for c in range(first.size):
        folds = np.repeat(np.arange(n_splits), allocation[:, c])
        rng.shuffle(folds)
        test_fold[encoded == c] = folds
    indices = np.arange(codes.shape[0])
    return [(indices[test_fold != i], indices[test_fold == i]) for i in range(n_splits)]


def choose_strength(fit_path, X, y, *, random_state=None, classification=True,
                    n_splits=N_SPLITS, single_above=None, verbose=None, strengths=None):
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
        The learner's ``random_state``: seeds the inner folds (see :func:`split_seed`).
    classification : bool, default=True
        Score maps by k-NN accuracy (classes) or kernel regression error (real y).
    n_splits : int, default=N_SPLITS
    single_above : int, default=None
        Classes only: a fold with more validation-by-training pairs than this is scored in
        single precision (half the time of the distances; neighbours at distances equal to
        about 1e-7 may swap). For a learner whose fit costs less than scoring its maps on
        big data (LFDA). None: double precision always.
    verbose : str, default=None
        The learner's ``verbose_name`` (None when it is quiet): what runs is printed
        before the inner fits (which print nothing themselves: ``fit_path`` fits a
        :func:`silent` copy) and each strength's score after, so that the inner fits' time
        is accounted for and their output is not taken for the final fit's.
    strengths : sequence of float, default=None
        The candidates, named in that first line.

    Returns
    -------
    choice : Choice
        The strength, every strength's score and the mean inner map at the strength.
    """
    folds = inner_folds(y, random_state=random_state, classification=classification,
                        n_splits=n_splits)
    if folds is None:
        progress(verbose, f"too few samples for inner {n_splits}-fold CV: "
                          "prior_strength 'auto' keeps the plain objective (0)")
        return Choice(None, {}, None)
    among = "" if strengths is None else f" among {', '.join(f'{s:g}' for s in strengths)}"
    progress(verbose, f"choosing prior_strength{among} by inner {n_splits}-fold CV")
    totals, maps = {}, {}
    for train, valid in folds:
        X_train, y_train, X_valid, y_valid = X[train], y[train], X[valid], y[valid]
        path = fit_path(X_train, y_train)
        if classification:
            single = single_above is not None and train.size * valid.size > single_above
            scores = knn_scores([L for _, L in path], X_train, y_train, X_valid, y_valid,
                                dtype=np.float32 if single else np.float64)
        else:
            scores = [kernel_regression_score(X_train @ L.T, y_train, X_valid @ L.T, y_valid)
                      for _, L in path]
        for (strength, L), s in zip(path, scores, strict=True):
            totals[strength] = totals.get(strength, 0.0) + s / len(folds)
            maps[strength] = maps.get(strength, 0.0) + L / len(folds)
    strengths = list(totals)
    values = np.array([totals[s] for s in strengths])
    # Ties (common with accuracies on small folds) go to the strongest regularisation.
    best = strengths[int(np.flatnonzero(values >= values.max() - 1e-12)[0])]
    progress(verbose, "prior_strength 'auto': "
             + ", ".join(f"{s:g}: {v:.4f}" for s, v in totals.items()) + f" -> {best:g}")
    return Choice(best, totals, maps[best])


def silent(learner):
    """A shallow copy of ``learner`` with ``verbose`` off, for the inner fits of 'auto'.

    Its fit-time private state (e.g. ``_fit_scale``) is kept; what it sets on itself does
    not reach ``learner``.
    """
    quiet = copy.copy(learner)
    quiet.verbose = False
    return quiet


def knn_scores(maps, X_train, y_train, X_valid, y_valid, n_neighbors=N_NEIGHBORS,
               dtype=np.float64):
    """The validation score of each map ``L`` (applied as ``X @ L.T``) of a path, in one pass.

    A map's score is the ``n_neighbors``-NN accuracy on ``(X_valid, y_valid)`` plus half the
    neighbour purity (the mean fraction of neighbours of the right class, a smoother
    tie-breaker), in [0, 1.5]; the score of fixed features ``Z`` is that of the identity map.
    The maps of a path share the fold: its labels are encoded once, and the distances of
    all maps are formed by one stacked product and searched by ``n_neighbors`` arg-min
    sweeps (cheaper than a partition for a few neighbours; among equal distances the first
    training sample counts). Folds with more than ``_BRUTE_PAIRS`` validation-by-training
    pairs are searched with scikit-learn's trees, map by map, in bounded memory. Samples
    and maps are cast to ``dtype`` (float32 halves the time of the distances).
    """
    X_train, X_valid = X_train.astype(dtype, copy=False), X_valid.astype(dtype, copy=False)
    maps = [np.asarray(L, dtype=dtype) for L in maps]
    classes, codes = np.unique(y_train, return_inverse=True)
    # Validation labels as codes of the training classes (-1: a class absent from training).
    position = np.minimum(np.searchsorted(classes, y_valid), classes.size - 1)
    truth = np.where(classes[position] == y_valid, position, -1)
    k = min(n_neighbors, X_train.shape[0])
    n_pairs = X_valid.shape[0] * X_train.shape[0]
    if n_pairs > _BRUTE_PAIRS:
        return np.array([_vote(codes[NearestNeighbors(n_neighbors=k).fit(X_train @ L.T)
                                     .kneighbors(X_valid @ L.T, return_distance=False)],
                               truth, classes.size) for L in maps])
    # Maps of one shape are stacked, as many at a time as _BLOCK_ELEMENTS distances allow.
    step = max(1, _BLOCK_ELEMENTS // n_pairs) if len({L.shape for L in maps}) == 1 else 1
    return np.concatenate([
        _vote(codes[_nearest(np.stack(maps[i:i + step]), X_train, X_valid, k)], truth,
              classes.size) for i in range(0, len(maps), step)])


def _nearest(Ls, X_train, X_valid, k):
    """``(n_maps, n_valid, k)`` indices of the k nearest training samples under each map."""
    Z_train = X_train @ Ls.transpose(0, 2, 1)
    # |t|^2 - 2 v.t: the squared distance less |v|^2, which ranks no neighbour differently.
    D = (X_valid @ Ls.transpose(0, 2, 1)) @ (-2.0 * Z_train).transpose(0, 2, 1)
    D += np.sum(Z_train**2, axis=2)[:, None, :]
    idx = np.empty(D.shape[:2] + (k,), dtype=np.intp)
    maps, rows = np.indices(D.shape[:2], sparse=True)
    for j in range(k):
        idx[:, :, j] = np.argmin(D, axis=2)
        D[maps, rows, idx[:, :, j]] = np.inf
    return idx


def _vote(labels, truth, n_classes):
    """The score of neighbour labels ``(..., n_valid, k)`` against ``truth`` (n_valid,),
    both class codes."""
    purity = np.mean(labels == truth[:, None], axis=-1)
    votes = np.sum(labels[..., None] == np.arange(n_classes), axis=-2)
    # Majority vote, ties to the smallest label (as KNeighborsClassifier's mode does).
    predicted = np.argmax(votes, axis=-1)
    return np.mean(predicted == truth, axis=-1) + 0.5 * np.mean(purity, axis=-1)


def kernel_regression_score(Z_train, y_train, Z_valid, y_valid):
    """Minus the mean squared error of Gaussian kernel regression from train to valid."""
    sq = (np.sum(Z_valid**2, axis=1)[:, None] + np.sum(Z_train**2, axis=1)[None, :]
          - 2.0 * Z_valid @ Z_train.T)
    logits = -np.maximum(sq, 0.0)
    logits -= logits.max(axis=1, keepdims=True)
    K = np.exp(logits)
    pred = K @ y_train / K.sum(axis=1)
    return -float(np.mean((pred - y_valid) ** 2))
