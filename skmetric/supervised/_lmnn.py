"""Large Margin Nearest Neighbour (LMNN): pull target neighbours in, push impostors out."""

import time
from numbers import Integral, Real

import array_api_compat
import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.neighbors import NearestNeighbors

from .._array_api import array_namespace, to_numpy
from .._base import MahalanobisMixin
from .._compute._inner_cv import N_SPLITS, choose_strength, silent
from .._compute._lbfgs import minimize_lbfgs
from .._docstrings import FEATURES_IN, LINEAR_INIT, fill_doc
from .._init import INIT_OPTIONS, initial_components, warn_if_stuck_at_init
from .._sklearn_compat import Interval, StrOptions
from .._supervised import (
    LabelledLearnerMixin,
    check_class_sizes,
    enough_per_class,
    validate_labelled,
)
from .._warn import progress, verbose_name, warn_user

# Elements of one (anchors x samples) distance block: bounds the impostor search's memory.
_BLOCK_ELEMENTS = 1 << 22
# Impostor pairs processed at once in the loss: bounds the loss's temporaries.
_PAIR_CHUNK = 1 << 20
# The strengths 'auto' compares: the prior map (inf) and the plain objective (0); each
# candidate costs a fit.
_AUTO_STRENGTHS = (np.inf, 0.0)
# L-BFGS iterations between two impostor searches.
_ROUND_ITERS = 25
# Most candidate impostor pairs kept; beyond, the loss is evaluated exactly in blocks of
# anchors instead, so memory never grows like n_samples^2.
_MAX_PAIRS = 1 << 22
# Candidate impostors lie within (1 + _SLACK) times the margin radius, so that the set
# found at the start of a round still holds the active ones while L moves.
_SLACK = 0.5


@fill_doc(init=LINEAR_INIT, features_in=FEATURES_IN)
class LMNN(LabelledLearnerMixin, MahalanobisMixin, BaseEstimator):
    """Large Margin Nearest Neighbour metric learning.

    LMNN [1]_ learns a linear map ``L`` under which each sample's ``n_neighbors`` target
    neighbours (nearest samples of its class, found in the initial space) are close and
    samples of other classes (impostors) stay at least a unit margin further away. It
    minimises, with ``d_ij = ||L (x_i - x_j)||^2``,

    ``regularization * sum_{i, j->i} d_ij
    + (1 - regularization) * sum_{i, j->i, l: y_l != y_i} max(0, 1 + d_ij - d_il)``

    where ``j->i`` runs over the target neighbours of ``i``.

    The default solver is L-BFGS on ``L`` (on features scaled to unit variance, which
    leaves the objective unchanged) with the exact (sub)gradient. Impostors are searched in
    blocks of anchors, only within a slightly enlarged margin, and re-searched every 25 to
    200 iterations; the solver only stops after a round that missed no active impostor.
    When the candidates are too many to store, the objective is evaluated exactly block by
    block instead, so memory stays O(block * n_samples), never O(n_samples^2).
    ``solver='gd'`` is the reference's gradient descent with an adaptive step
    (``learn_rate``, halved on failure and raised 1% on success).

    The distances, impostor search, objective and gradient are written once against the
    Array API: NumPy by default, torch (CPU or CUDA) with ``device`` or when ``X`` is a torch
    tensor; the optimiser runs on the host.

    Parameters
    ----------
    {init}
    n_neighbors : int, default=3
        Number of target neighbours per sample; every class needs ``n_neighbors + 1``
        samples.
    min_iter : int, default=50
        Minimum number of iterations before the convergence test may stop the solver.
    max_iter : int, default=1000
        Maximum number of iterations.
    learn_rate : float, default=1e-7
        Initial step size of ``solver='gd'`` (L-BFGS chooses its own steps, and warns when
        ``learn_rate`` is set).
    regularization : float in [0, 1], default=0.5
        Weight of the pull term; ``1 - regularization`` weighs the push (hinge) term.
    convergence_tol : float, default=0.001
        'lbfgs': stop when a round of iterations lowers the objective by less than this
        fraction; 'gd': stop when an iteration changes it by less than this amount.
    verbose : bool or int, default=False
        Print the objective, the number of active triplets and the elapsed time at each
        iteration, and the outcome of each impostor re-search ('lbfgs').
    preprocessor : array-like or callable, default=None
        Data to index when ``X`` is given as a 1-D array of sample indices.
    n_components : int, default=None
        Dimension of the learned space; None means ``n_features`` (or the number of rows
        of an ``init`` array).
    random_state : int, RandomState instance or None, default=None
        Seeds ``init='random'`` and the PCA of ``init='pca'``.
    solver : {'lbfgs', 'gd'}, default='lbfgs'
        Optimiser, see above.
    k : int, default='deprecated'
        Old name of ``n_neighbors`` (metric-learn < 0.6); setting it warns and overrides.
    device : {'cpu', 'cuda', 'auto'}, str or torch.device, default=None
        Where to compute. None: NumPy, or the device of a torch ``X``. 'cpu' or 'cuda'
        (or 'cuda:1', a torch.device): torch on that device, in float64. 'auto': torch on
        CUDA when available, else NumPy. ``components_`` is always a NumPy array.
    prior_strength : float >= 0 or 'auto', default=0.3
        Pull toward the initial map ``L0``: the objective gains ``prior_strength *
        n_samples * min_c trace((L - c L0) C (L - c L0)^T)`` (C the covariance of X), the
        mean squared distance by which the map moves the centred samples away from a
        multiple of ``L0``. The default 0.3 weighs that per-sample cost at 0.3 of one
        sample's LMNN terms: one rule for every dataset, which on the pyDML-Stats
        protocol kept every dataset at most 0.7 point and digits at most 0.17 below
        Euclidean 3-NN accuracy, where the plain objective lost up to 1.3 and 0.28, and
        fell short of the published gains by less than strength 1 did (split seeds 0-3,
        ``benchmarks/README.md``).
        0 is the plain objective (metric-learn's), ``np.inf`` gives ``L0`` itself (no
        optimisation). 'auto' picks ``inf`` or 0 by an inner 3-fold cross-validation on
        the training data (3-NN score, folds seeded by ``random_state``, 0 when None).

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
        The learned linear map L.
    n_iter_ : int
        Number of iterations run.
    objective_ : float
        Objective at ``components_`` (with the prior penalty).
    prior_strength_ : float
        The strength used: ``prior_strength``, or the one 'auto' chose.
    prior_scores_ : dict
        With 'auto': the mean inner-CV score of each candidate strength (empty when the
        classes were too small for the inner folds, which means 0).
    {features_in}

    References
    ----------
    .. [1] K. Q. Weinberger, J. Blitzer, L. K. Saul. "Distance Metric Learning for Large
       Margin Nearest Neighbor Classification". NIPS 2005.

    Examples
    --------
    >>> from skmetric import LMNN
    >>> from sklearn.datasets import load_iris
    >>> X, y = load_iris(return_X_y=True)
    >>> lmnn = LMNN(n_neighbors=3, max_iter=50, random_state=0).fit(X, y)
    >>> lmnn.get_mahalanobis_matrix().shape
    (4, 4)
    """

    _parameter_constraints: dict = {
        "init": [StrOptions(set(INIT_OPTIONS)), "array-like"],
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "min_iter": [Interval(Integral, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "learn_rate": [Interval(Real, 0, None, closed="neither")],
        "regularization": [Interval(Real, 0, 1, closed="both")],
        "convergence_tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "preprocessor": ["array-like", callable, None],
        "n_components": [Interval(Integral, 1, None, closed="left"), None],
        "random_state": ["random_state"],
        "solver": [StrOptions({"lbfgs", "gd"})],
        "k": [StrOptions({"deprecated"}), Interval(Integral, 1, None, closed="left")],
        "device": "no_validation",  # checked by resolve_backend
        "prior_strength": [Interval(Real, 0, None, closed="both"), StrOptions({"auto"})],
    }
    _namespaces = ("numpy", "torch")

    def __init__(self, init="auto", n_neighbors=3, min_iter=50, max_iter=1000, learn_rate=1e-7,
                 regularization=0.5, convergence_tol=0.001, verbose=False, preprocessor=None,
                 n_components=None, random_state=None, solver="lbfgs", k="deprecated",
                 device=None, prior_strength=0.3):
        self.init = init
        self.n_neighbors = n_neighbors
        self.min_iter = min_iter
        self.max_iter = max_iter
        self.learn_rate = learn_rate
        self.regularization = regularization
        self.convergence_tol = convergence_tol
        self.verbose = verbose
        self.preprocessor = preprocessor
        self.n_components = n_components
        self.random_state = random_state
        self.solver = solver
        self.k = k
        self.device = device
        self.prior_strength = prior_strength

    def _report(self, it, objective, active, start):
        progress(verbose_name(self), f"{f'{it}/{self.max_iter}':>10} {objective:>16.6e} "
                                     f"{active:>10d} {time.perf_counter() - start:>11.2f}")

    def _fit_samples(self, X, y, backend):
        n_neighbors = self.n_neighbors
        if self.k != "deprecated":
            warn_user("LMNN's parameter k was renamed n_neighbors; k will be removed.",
                      FutureWarning)
            n_neighbors = self.k
        if self.solver == "lbfgs" and self.learn_rate != 1e-7:  # not the default: meant
            warn_user("LMNN's learn_rate is the step size of solver='gd' (metric-learn's "
                      "gradient descent); solver='lbfgs', the default, chooses its own steps "
                      "and ignores it. Pass solver='gd' to use it.", UserWarning)
        X, classes, codes, counts = validate_labelled(self, X, y)
        check_class_sizes("LMNN", classes, counts, n_neighbors, parameter="n_neighbors")
        strength = self.prior_strength
        if strength == "auto":
            strength = self._choose_strength(X, codes, counts, n_neighbors, backend)
        self.prior_strength_ = float(strength)
        start = time.perf_counter()
        L, self.n_iter_, converged, self.objective_, L0 = self._fit_map(
            X, codes, n_neighbors, self.prior_strength_, backend)
        if self.verbose:
            if not converged:
                warn_user(f"[LMNN] did not converge in {self.max_iter} iterations.",
                          ConvergenceWarning)
            progress(verbose_name(self), f"objective {self.objective_:.6e}, {self.n_iter_} "
                                         f"iterations in {time.perf_counter() - start:.2f}s")
        if self.prior_strength_ < np.inf:
            warn_if_stuck_at_init("LMNN", X, L, L0)
        self.components_ = L
        return self

    def _choose_strength(self, X, codes, counts, n_neighbors, backend):
        """'auto': the prior (inf) or the plain objective (0), by inner cross-validation.

        Each candidate costs a fit, so only these two compete (about 2 plain fits in all).
        Classes too small for ``n_neighbors + 1`` samples in every inner training fold
        keep the plain objective.
        """
        if not enough_per_class(counts, n_neighbors, N_SPLITS):
            self.prior_scores_ = {}
            return 0.0
        quiet = silent(self)  # the inner fits do not print their iterations
        choice = choose_strength(
            lambda Xt, yt: [(s, quiet._fit_map(Xt, yt, n_neighbors, s, backend)[0])
                            for s in _AUTO_STRENGTHS], X, codes,
            random_state=self.random_state, verbose=verbose_name(self),
            strengths=_AUTO_STRENGTHS)
        self.prior_scores_ = choice.scores
        return choice.strength or 0.0

    def _fit_map(self, X, codes, n_neighbors, strength, backend):
        """``(L, n_iter, converged, objective, L0)`` of one fit on host arrays ``X``, ``codes``."""
        L0 = initial_components(self.init, self.n_components, X, codes,
                                random_state=self.random_state)
        targets = _select_target_neighbors(X @ L0.T, codes, n_neighbors)
        if np.isinf(strength):  # the limit: the prior map itself
            L0_b, X_b, codes_b, targets_b = (backend.asarray(a) for a in (L0, X, codes, targets))
            return L0, 0, True, _lmnn_objective(L0_b, X_b, codes_b, targets_b,
                                                self.regularization)[0], L0
        prior = _PriorPenalty.for_samples(L0, X, strength)
        # Target neighbours are found once, on the host; the rest runs on the backend.
        X, codes, targets = (backend.asarray(a) for a in (X, codes, targets))
        progress(verbose_name(self),
                 f"{'iter':>10} {'objective':>16} {'active':>10} {'elapsed (s)':>11}")
        fit = self._fit_lbfgs if self.solver == "lbfgs" else self._fit_gd
        L, n_iter, converged = fit(L0, X, codes, targets, prior, backend)
        objective = _lmnn_objective(backend.asarray(L), X, codes, targets,
                                    self.regularization, prior)[0]
        return L, n_iter, converged, objective, L0

    def _fit_lbfgs(self, L, X, codes, targets, prior, backend):
        """L-BFGS in rounds; each round works on the impostor candidates found at its start.

        When there are too many candidates to store, the round evaluates the loss exactly
        by blocks of anchors (no candidates, so nothing can be missed). ``L`` is a NumPy
        array (scipy drives the optimisation on the host); ``X``, ``codes`` and ``targets``
        live in the compute namespace, to which each iterate is copied.
        """
        xp, reg = backend.xp, self.regularization
        # Optimise over L * scale on X / scale: the same objective (X L^T is unchanged) but
        # far better conditioned when features have very different scales.
        scale = to_numpy(xp.std(X, axis=0))
        scale[scale <= 1e-12 * max(scale.max(), 1.0)] = 1.0
        X, L = X / backend.asarray(scale), L * scale
        prior = None if prior is None else prior.rescaled(scale)

        def project(L):
            return X @ backend.asarray(L).T

        state = {"iter": 0, "active": 0, "t0": time.perf_counter()}
        candidates = _find_impostors(project(L), codes, targets, 1.0 + _SLACK, _MAX_PAIRS)
        budget = _ROUND_ITERS
        while True:
            state["start"], state["history"] = None, []

            def loss_grad(L, candidates=candidates):
                if candidates is None:
                    loss, grad, active = _lmnn_loss_grad_blocked(L, X, codes, targets, reg)
                else:
                    loss, grad, active = _lmnn_loss_grad(L, X, targets, *candidates, reg)
                loss, grad, active = _with_prior((loss, grad, active), prior, L)
                state["active"] = active
                if state["start"] is None:
                    state["start"] = loss
                return loss, grad

            def callback(it, objective):
                state["history"].append(objective)
                self._report(state["iter"] + it, objective, state["active"], state["t0"])

            res = minimize_lbfgs(loss_grad, L, backend,
                                 max_iter=min(budget, self.max_iter - state["iter"]),
                                 ftol=1e-10, gtol=1e-10, callback=callback)
            state["iter"] += res.n_iter
            L = res.x
            # Search again at the new L: the round is valid only if it saw every active pair.
            searched = candidates
            Z = project(L)
            candidates = _find_impostors(Z, codes, targets, 1.0 + _SLACK, _MAX_PAIRS)
            missed = searched is not None and (
                candidates is None or _missed_impostors(Z, targets, searched, candidates)
            )
            if missed and candidates is not None:
                # Impostors that barely add to the objective do not justify another round.
                exact = _with_prior(_lmnn_loss_grad(backend.asarray(L), X, targets, *candidates,
                                                     reg), prior, backend.asarray(L))[0]
                missed = exact - float(res.fun) > self.convergence_tol * abs(exact)
            # Gain over the round's last _ROUND_ITERS iterations, all on its candidates.
            window = ([state["start"]] + state["history"])[-_ROUND_ITERS - 1:]
            small_gain = window[0] - window[-1] <= self.convergence_tol * abs(window[0])
            stalled = res.n_iter == 0
            done = not missed and (stalled or (small_gain and state["iter"] >= self.min_iter))
            progress(verbose_name(self), f"impostors re-searched at iteration {state['iter']}: "
                     + ("active ones were missed, next round on the new set" if missed
                        else "none missed, converged" if done
                        else "none missed, still improving"))
            if done:
                return L / scale, state["iter"], True
            if state["iter"] >= self.max_iter:
                return L / scale, state["iter"], False
            # Restarting L-BFGS forgets its curvature: lengthen rounds while none misses.
            budget = _ROUND_ITERS if missed else min(2 * budget, 8 * _ROUND_ITERS)

    def _fit_gd(self, L, X, codes, targets, prior, backend):
        """The reference's gradient descent: halve the step on failure, raise it 1% on success."""
        reg, lr = self.regularization, self.learn_rate
        L = backend.asarray(L)
        objective, grad, active = _lmnn_objective(L, X, codes, targets, reg, prior)
        start = time.perf_counter()
        for it in range(1, self.max_iter + 1):
            while True:
                L_next = L - lr * grad
                obj_next, grad_next, active = _lmnn_objective(L_next, X, codes, targets, reg,
                                                              prior)
                if obj_next <= objective or lr < 1e-300:
                    break
                lr /= 2
            delta = obj_next - objective
            L, objective, grad = L_next, obj_next, grad_next
            lr *= 1.01
            self._report(it, objective, active, start)
            if it >= self.min_iter and abs(delta) < self.convergence_tol:
                return to_numpy(L), it, True
        return to_numpy(L), self.max_iter, False


def _select_target_neighbors(Z, codes, n_neighbors):
    """Indices (n_samples, n_neighbors) of each sample's nearest same-class samples in Z."""
    targets = np.empty((Z.shape[0], n_neighbors), dtype=np.intp)
    for c in np.unique(codes):
        members = np.flatnonzero(codes == c)
        nn = NearestNeighbors(n_neighbors=n_neighbors).fit(Z[members])
        targets[members] = members[nn.kneighbors(return_distance=False)]
    return targets


def _target_distances(Z, targets):
    """Squared distances (n_samples, n_neighbors) from each sample to its targets."""
    xp = array_namespace(Z, targets)
    n, k = targets.shape
    T = xp.reshape(xp.take(Z, xp.reshape(targets, (-1,)), axis=0), (n, k, Z.shape[1]))
    diff = Z[:, None, :] - T
    return xp.sum(diff * diff, axis=2)


def _index_dtype(xp):
    # NumPy stores the (many) pairs as int32 to halve their memory; torch indexes in int64.
    return xp.int32 if array_api_compat.is_numpy_namespace(xp) else xp.int64


def _find_impostors(Z, codes, targets, scale=1.0, max_pairs=None):
    """Pairs (i, l) of different classes with ``d_il < scale * (1 + max_j d_ij)``.

    Distances are computed for blocks of anchors against all samples, so memory stays
    O(block * n_samples) plus the pairs found. Returns ``(anchors, impostors)`` sorted by
    anchor (arrays of Z's namespace and device), or None as soon as more than
    ``max_pairs`` pairs are found.
    """
    xp = array_namespace(Z, codes, targets)
    index = _index_dtype(xp)
    n = Z.shape[0]
    radii = scale * (1.0 + xp.max(_target_distances(Z, targets), axis=1))
    sq = xp.sum(Z * Z, axis=1)
    block = max(1, _BLOCK_ELEMENTS // n)
    found_i, found_l, total = [], [], 0
    for s in range(0, n, block):
        e = min(n, s + block)
        D = sq[s:e, None] + sq[None, :] - 2.0 * (Z[s:e, :] @ Z.T)
        hit = (D < radii[s:e, None]) & (codes[s:e, None] != codes[None, :])
        i, l = xp.nonzero(hit)
        found_i.append(xp.astype(i + s, index))
        found_l.append(xp.astype(l, index))
        total += int(i.shape[0])
        if max_pairs is not None and total > max_pairs:
            return None
    return xp.concat(found_i), xp.concat(found_l)


def _missed_impostors(Z, targets, searched, candidates):
    """Whether an active impostor pair at Z is absent from the pairs ``searched``."""
    xp = array_namespace(Z, targets)
    cand_i, cand_l = candidates
    radii = 1.0 + xp.max(_target_distances(Z, targets), axis=1)
    diff = xp.take(Z, cand_i, axis=0) - xp.take(Z, cand_l, axis=0)
    inside = xp.sum(diff * diff, axis=1) < xp.take(radii, cand_i)
    n = Z.shape[0]
    active = xp.astype(cand_i[inside], xp.int64) * n + xp.astype(cand_l[inside], xp.int64)
    if active.shape[0] == 0:
        return False
    if searched[0].shape[0] == 0:
        return True
    # Membership test by binary search in the sorted keys of the pairs searched.
    seen = xp.sort(xp.astype(searched[0], xp.int64) * n + xp.astype(searched[1], xp.int64))
    pos = xp.searchsorted(seen, active)
    pos = xp.where(pos < seen.shape[0], pos, seen.shape[0] - 1)
    return not bool(xp.all(xp.take(seen, pos) == active))


def _pair_distances(Z, a, b):
    """Squared distances ``||z_a - z_b||^2`` of pairs sorted by ``a``.

    Many pairs (a sizeable fraction of all) are cheaper to read off blocks of the dense
    distance matrix, computed by matrix products, than to gather row by row.
    """
    xp = array_namespace(Z, a, b)
    dev = array_api_compat.device(Z)
    n, n_pairs = Z.shape[0], a.shape[0]
    if n_pairs * 16 < n * n or bool(xp.any(a[1:] < a[:-1])):
        out = [xp.zeros(0, dtype=Z.dtype, device=dev)]
        for s in range(0, n_pairs, _PAIR_CHUNK):
            diff = (xp.take(Z, a[s:s + _PAIR_CHUNK], axis=0)
                    - xp.take(Z, b[s:s + _PAIR_CHUNK], axis=0))
            out.append(xp.sum(diff * diff, axis=1))
        return xp.concat(out)
    sq = xp.sum(Z * Z, axis=1)
    block = max(1, _BLOCK_ELEMENTS // n)
    starts = xp.asarray(list(range(0, n + block, block)), dtype=a.dtype, device=dev)
    bounds = [int(v) for v in to_numpy(xp.searchsorted(a, starts))]
    out = []
    for blk, start in enumerate(range(0, n, block)):
        lo, hi = bounds[blk], bounds[blk + 1]
        if lo == hi:
            continue
        D = sq[start:start + block, None] + sq[None, :] - 2.0 * (Z[start:start + block, :] @ Z.T)
        flat = xp.astype(a[lo:hi] - start, xp.int64) * n + xp.astype(b[lo:hi], xp.int64)
        out.append(xp.take(xp.reshape(D, (-1,)), flat))
    return xp.concat(out)


def _lmnn_objective(L, X, codes, targets, regularization, prior=None):
    """Exact objective, gradient and active-triplet count (impostors searched at L)."""
    found = _find_impostors(X @ L.T, codes, targets, max_pairs=_MAX_PAIRS)
    if found is None:
        out = _lmnn_loss_grad_blocked(L, X, codes, targets, regularization)
    else:
        out = _lmnn_loss_grad(L, X, targets, *found, regularization)
    return _with_prior(out, prior, L)


class _PriorPenalty:
    """``weight * trace((L - L0) C (L - L0)^T)``: how far the map moves the samples from
    where the prior map ``L0`` puts them (C is their covariance), times ``weight``.

    It is the mean squared displacement ``||(L - L0)(x - mean)||^2`` over the samples, so
    it does not depend on the units of the features; ``weight = strength * n_samples``
    makes ``strength`` a cost per sample, on the scale of the LMNN terms of one sample.
    """

    def __init__(self, L0, C, weight):
        self.L0, self.C, self.weight = L0, C, weight

    @classmethod
    def for_samples(cls, L0, X, strength):
        """The penalty of ``strength`` for samples ``X`` (None when ``strength`` is 0)."""
        if strength == 0:
            return None
        centred = X - X.mean(axis=0)
        return cls(L0, centred.T @ centred / X.shape[0], strength * X.shape[0])

    def rescaled(self, scale):
        """The same penalty for ``L * scale`` acting on ``X / scale``."""
        return _PriorPenalty(self.L0 * scale, self.C / np.outer(scale, scale), self.weight)

    def value_grad(self, L):
        xp = array_namespace(L)
        dev = array_api_compat.device(L)
        L0 = xp.asarray(self.L0, device=dev)
        C = xp.asarray(self.C, device=dev)
        LC, L0C = L @ C, L0 @ C
        # Distance to the ray {c L0}: the scale of L changes no k-NN result, so it is free.
        # A prior that moves no sample (L0 C L0^T = 0: constant features) is 0 on the
        # whole ray; every c is then as close, and c = 0 leaves the plain spread of L.
        spread0 = float(xp.sum(L0C * L0))
        c = float(xp.sum(LC * L0)) / spread0 if spread0 > 0 else 0.0
        D = LC - c * L0C
        value = float(xp.sum(LC * L)) - c * float(xp.sum(LC * L0))
        return self.weight * value, (2.0 * self.weight) * D


def _with_prior(out, prior, L):
    """``(loss, grad, n_active)`` plus the prior penalty at ``L`` (unchanged without one)."""
    if prior is None:
        return out
    loss, grad, n_active = out
    value, g = prior.value_grad(L)
    return loss + value, grad + g, n_active


def _lmnn_loss_grad(L, X, targets, imp_i, imp_l, regularization):
    """LMNN objective over the impostor pairs ``(imp_i, imp_l)`` and its gradient.

    Parameters
    ----------
    L : array of shape (n_components, n_features)
    X : array of shape (n_samples, n_features)
    targets : array of int of shape (n_samples, n_neighbors)
        Target neighbours of each sample.
    imp_i, imp_l : arrays of int of shape (n_pairs,)
        Anchor and impostor of each candidate pair, best sorted by anchor (other pairs
        count as inactive).
    regularization : float
        Weight of the pull term.

    All arrays share one Array API namespace and device (NumPy, or torch on any device).

    Returns
    -------
    loss : float
    grad : array of shape (n_components, n_features)
    n_active : int
        Number of triplets (i, j, l) with a positive hinge.
    """
    xp = array_namespace(L, X, targets, imp_i, imp_l)
    dev = array_api_compat.device(X)
    n, k = targets.shape
    push = 1.0 - regularization
    Z = X @ L.T
    d_t = _target_distances(Z, targets)
    loss = regularization * xp.sum(d_t)
    # counts[i, j]: active triplets through the target pair (i, targets[i, j]).
    counts = xp.zeros((n, k), dtype=X.dtype, device=dev)
    imp_w = [xp.zeros(0, dtype=X.dtype, device=dev)]
    n_active = 0
    d_imp = _pair_distances(Z, imp_i, imp_l)
    for s in range(0, imp_i.shape[0], _PAIR_CHUNK):
        a = imp_i[s:s + _PAIR_CHUNK]
        margin = 1.0 + xp.take(d_t, a, axis=0) - d_imp[s:s + _PAIR_CHUNK, None]
        active = xp.astype(margin > 0, X.dtype)
        loss = loss + push * xp.sum(margin * active)
        per_pair = xp.sum(active, axis=1)
        n_active += int(xp.sum(per_pair))
        imp_w.append(-push * per_pair)
        counts = counts + xp.stack([_bincount(a, active[:, j], n) for j in range(k)], axis=1)
    imp_w = xp.concat(imp_w)
    # Gradient: 2 sum_pairs w (z_a - z_b)(x_a - x_b)^T = 2 Z^T Lap(W) X for the pair graph W.
    keep = imp_w != 0
    anchors = xp.reshape(xp.broadcast_to(xp.arange(n, device=dev)[:, None], (n, k)), (-1,))
    rows = xp.concat([anchors, xp.astype(imp_i[keep], xp.int64)])
    cols = xp.concat([xp.astype(xp.reshape(targets, (-1,)), xp.int64),
                      xp.astype(imp_l[keep], xp.int64)])
    weights = xp.concat([xp.reshape(regularization + push * counts, (-1,)), imp_w[keep]])
    lap_X = _laplacian_product(rows, cols, weights, X)
    return float(loss), 2.0 * (Z.T @ lap_X), n_active


def _bincount(index, weights, n):
    """Sums of ``weights`` per value of ``index`` in ``n`` bins (not in the Array API)."""
    if isinstance(index, np.ndarray):
        return np.bincount(index, weights=weights, minlength=n)
    import torch

    return torch.bincount(index, weights=weights, minlength=n)


def _laplacian_product(rows, cols, weights, X):
    """``Lap(W) @ X`` for the graph ``W`` with edges ``rows -> cols`` (duplicates add up).

    ``Lap(W) = diag(out- plus in-degree) - W - W^T``, so that ``Z^T Lap(W) X`` is
    ``sum_edges w (z_r - z_c)(x_r - x_c)^T``. W is sparse: scipy's for NumPy, torch's on
    the tensors' device otherwise (the Array API has no sparse arrays).
    """
    n = X.shape[0]
    degree = _bincount(rows, weights, n) + _bincount(cols, weights, n)
    if isinstance(X, np.ndarray):
        W = sparse.csr_matrix((weights, (rows, cols)), shape=(n, n))
    else:
        import torch

        W = torch.sparse_coo_tensor(torch.stack([rows, cols]), weights, (n, n),
                                    check_invariants=False)
    return degree[:, None] * X - W @ X - W.T @ X


def _lmnn_loss_grad_blocked(L, X, codes, targets, regularization):
    """Exact LMNN objective and gradient, by blocks of anchors against all samples.

    The same values as ``_lmnn_loss_grad`` over all impostors, without storing them:
    memory is O(block * n_samples), time O(n_samples^2 * (n_components + n_features)).
    """
    xp = array_namespace(L, X, codes, targets)
    dev = array_api_compat.device(X)
    n, k = targets.shape
    push = 1.0 - regularization
    Z = X @ L.T
    d_t = _target_distances(Z, targets)
    sq = xp.sum(Z * Z, axis=1)
    loss = regularization * xp.sum(d_t)
    counts, WX, degree = [], [], []
    WtX = xp.zeros(X.shape, dtype=X.dtype, device=dev)
    in_degree = xp.zeros(n, dtype=X.dtype, device=dev)
    n_active = 0
    block = max(1, _BLOCK_ELEMENTS // n)
    for s in range(0, n, block):
        e = min(n, s + block)
        D = sq[s:e, None] + sq[None, :] - 2.0 * (Z[s:e, :] @ Z.T)
        other = codes[s:e, None] != codes[None, :]
        count = xp.zeros(D.shape, dtype=X.dtype, device=dev)
        block_counts = []
        for j in range(k):
            margin = (1.0 + d_t[s:e, j, None]) - D
            active = xp.astype((margin > 0) & other, X.dtype)
            margin *= active
            loss = loss + push * xp.sum(margin)
            del margin
            block_counts.append(xp.sum(active, axis=1))
            count += active
        counts.append(xp.stack(block_counts, axis=1))
        n_active += int(xp.sum(count))
        # Impostor pairs (i, l) weigh -push per active triplet through them.
        count *= -push
        WX.append(count @ X)
        WtX = WtX + count.T @ X[s:e, :]
        degree.append(xp.sum(count, axis=1))
        in_degree = in_degree + xp.sum(count, axis=0)
    degree = xp.concat(degree) + in_degree
    lap_X = degree[:, None] * X - xp.concat(WX) - WtX
    anchors = xp.reshape(xp.broadcast_to(xp.arange(n, device=dev)[:, None], (n, k)), (-1,))
    weights = xp.reshape(regularization + push * xp.concat(counts), (-1,))
    lap_X = lap_X + _laplacian_product(anchors, xp.astype(xp.reshape(targets, (-1,)), xp.int64),
                                       weights, X)
    return float(loss), 2.0 * (Z.T @ lap_X), n_active
