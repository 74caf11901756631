"""Mahalanobis Metric for Clustering (MMC), on pairs and from class labels."""

from numbers import Integral, Real

import numpy as np
from scipy.linalg.lapack import dsyevd
from sklearn.base import BaseEstimator

from .._base import MahalanobisMixin, PairsClassifierMixin
from .._docstrings import FEATURES_IN, N_PAIRS, PAIRS_FITTED, fill_doc
from .._init import PRIOR_OPTIONS, components_from_metric, initialize_metric
from .._sklearn_compat import Interval, StrOptions
from .._supervised import N_CONSTRAINTS_CONSTRAINT, SupervisedTuplesMixin
from .._warn import progress, verbose_name


class _BaseMMC(MahalanobisMixin, BaseEstimator):
    """The MMC algorithm on labelled pairs; subclasses provide ``fit``."""

    _parameter_constraints: dict = {
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "max_proj": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, np.inf, closed="left")],
        "init": [StrOptions(set(PRIOR_OPTIONS)), "array-like"],
        "diagonal": ["boolean"],
        "diagonal_c": [Interval(Real, 0, np.inf, closed="left")],
        "solver": [StrOptions({"projections", "ratio"})],
        "verbose": ["verbose"],
        "preprocessor": ["array-like", callable, None],
        "random_state": ["random_state"],
    }

    def __init__(self, max_iter=100, max_proj=10000, tol=1e-3, init="identity",
                 diagonal=False, diagonal_c=1.0, solver="projections", verbose=False,
                 preprocessor=None, random_state=None):
        self.max_iter = max_iter
        self.max_proj = max_proj
        self.tol = tol
        self.init = init
        self.diagonal = diagonal
        self.diagonal_c = diagonal_c
        self.solver = solver
        self.verbose = verbose
        self.preprocessor = preprocessor
        self.random_state = random_state

    def _fit(self, pairs, y):
        """Learn ``components_`` from pairs (n, 2, d) and labels in {-1, +1}."""
        if self.diagonal and self.diagonal_c == 0:
            raise ValueError("diagonal_c must be > 0 with diagonal=True.")
        diff = pairs[:, 0] - pairs[:, 1]
        sim, dis = diff[y == 1], diff[y == -1]
        if not np.any(sim) or not np.any(dis):
            raise ValueError(
                "MMC needs at least one similar (+1) pair and one dissimilar (-1) pair of "
                "distinct samples."
            )
        points = np.unique(pairs.reshape(-1, pairs.shape[2]), axis=0)
        A0 = initialize_metric(points, self.init, self.random_state)
        if self.diagonal:
            w, self.n_iter_ = _fit_diagonal(sim, dis, np.diag(A0).copy(), self.diagonal_c,
                                            self.max_iter, self.tol, verbose_name(self))
            self.components_ = np.diag(np.sqrt(w))
        else:
            fit_full = _fit_full_projections if self.solver == "projections" else _fit_full_ratio
            A, self.n_iter_ = fit_full(sim, dis, A0, self.max_iter, self.max_proj, self.tol,
                                       verbose_name(self))
            self.components_ = components_from_metric(A)
        return self


# The Attributes and References sections of MMC and MMC_Supervised; {fitted_on} ends the
# attributes with those of what each is fitted on.
_MMC_DOC = {"mmc_fitted": """
    Attributes
    ----------
    components_ : ndarray of shape (n_features, n_features)
        The linear map L with ``L.T @ L = A``.
    n_iter_ : int
        Number of steps run.
    {fitted_on}

    References
    ----------
    .. [1] E. P. Xing, A. Y. Ng, M. I. Jordan and S. Russell. "Distance metric learning,
       with application to clustering with side-information". NIPS 2002.
"""}


@fill_doc(**_MMC_DOC, fitted_on=PAIRS_FITTED)
class MMC(PairsClassifierMixin, _BaseMMC):
    """Mahalanobis Metric for Clustering (MMC) on similar/dissimilar pairs.

    MMC (Xing et al., 2002) maximises the sum of distances between dissimilar pairs while
    keeping the sum of squared distances between similar pairs bounded:
    ``max_A sum_D ||d||_A  s.t.  sum_S ||s||_A^2 <= t, A PSD``.

    The full version has two solvers. ``solver='projections'`` (default) is the authors'
    algorithm, as in metric-learn and with the same results: a gradient step on
    ``sum_D ||d||_A`` orthogonal to the constraint's gradient, then alternating projections
    onto the constraint (with ``t`` 1% of the initial value) and the PSD cone; a step whose
    projections do not reach the constraint within ``max_proj`` rounds is rejected and the
    step size halved. When even the initial matrix cannot be projected in ``max_proj``
    rounds, every step is rejected and the initial metric is returned. Rounds that are
    bound to fail, because a run from a nearby start failed by a wider margin than the
    distance between the starts (both projections are non-expansive), are skipped.
    ``solver='ratio'`` uses that ``log sum_D ||d||_A - log(sum_S ||s||_A^2) / 2`` is
    invariant to the scale of A and runs projected gradient ascent on it over the PSD cone
    (one eigen-decomposition per step, backtracking), then scales A onto the constraint. It
    is much faster and reaches a higher value of the objective; that optimum is often of
    low rank, which can cost k-NN accuracy where the Euclidean metric is already good.

    The diagonal version (``diagonal=True``) minimises
    ``sum_S ||s||_a^2 - diagonal_c * log(sum_D ||d||_a)`` over non-negative diagonal
    weights ``a`` by projected Newton-Raphson with line search; it suits many features.

    Parameters
    ----------
    max_iter : int, default=100
        Maximum number of (accepted or rejected) gradient or Newton steps.
    max_proj : int, default=10000
        Maximum number of alternating projection rounds after a step (``'projections'``),
        or of step-size halvings in one step's backtracking (``'ratio'``).
    tol : float, default=1e-3
        Stop when the step (``'projections'``: step size relative to the norm of A) or the
        relative change of A (``'ratio'``) or of the objective (diagonal) falls below
        ``tol``.
    init : {'identity', 'covariance', 'random'} or ndarray, default='identity'
        The initial Mahalanobis matrix (only its diagonal for ``diagonal=True``).
    diagonal : bool, default=False
        Learn a diagonal matrix (feature weights) instead of a full one.
    diagonal_c : float, default=1.0
        Weight of the dissimilar term in the diagonal objective.
    solver : {'projections', 'ratio'}, default='projections'
        Optimiser of the full version (see above); ignored with ``diagonal=True``.
    verbose : bool, default=False
        Print the objective after each step.
    preprocessor : array-like or callable, default=None
        Data to index when pairs are given as an (n_pairs, 2) array of indices.
    random_state : int, RandomState instance or None, default=None
        Seeds the initial matrix of ``init='random'``.

    {mmc_fitted}

    Examples
    --------
    Pairs given as indices into the samples with ``preprocessor``:

    >>> import numpy as np
    >>> from skmetric import MMC
    >>> X = np.array([[1.2, 7.5], [1.3, 1.5], [6.4, 2.6], [6.2, 9.7]])
    >>> mmc = MMC(preprocessor=X).fit([[0, 1], [2, 3], [0, 2], [1, 3]], [1, 1, -1, -1])
    >>> mmc.predict([[0, 1], [1, 2]])
    array([ 1, -1])
    """


@fill_doc(**_MMC_DOC, fitted_on=FEATURES_IN, n_pairs=N_PAIRS)
class MMC_Supervised(SupervisedTuplesMixin, _BaseMMC):
    """MMC fitted on class labels: pairs are drawn with same class = similar.

    See :class:`MMC` for the algorithm.

    Parameters
    ----------
    max_iter, max_proj, init, diagonal, diagonal_c, solver, verbose, preprocessor
        As in :class:`MMC`.
    tol : float, default=1e-6
        As in :class:`MMC` (metric-learn's default for the supervised variant).
    {n_pairs}
    random_state : int, RandomState instance or None, default=None
        Seeds the drawing of pairs, and the initial matrix of ``init='random'``.

    {mmc_fitted}

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from skmetric import MMC_Supervised
    >>> X, y = make_classification(n_samples=80, n_features=3, n_redundant=0, random_state=0)
    >>> mmc = MMC_Supervised(random_state=0).fit(X, y)
    >>> mmc.transform(X).shape
    (80, 3)
    """

    _parameter_constraints: dict = {
        **_BaseMMC._parameter_constraints,
        **N_CONSTRAINTS_CONSTRAINT,
    }

    def __init__(self, max_iter=100, max_proj=10000, tol=1e-6, n_constraints=None,
                 init="identity", diagonal=False, diagonal_c=1.0, solver="projections",
                 verbose=False, preprocessor=None, random_state=None):
        super().__init__(max_iter=max_iter, max_proj=max_proj, tol=tol, init=init,
                         diagonal=diagonal, diagonal_c=diagonal_c, solver=solver,
                         verbose=verbose, preprocessor=preprocessor,
                         random_state=random_state)
        self.n_constraints = n_constraints


def _fit_full_projections(sim, dis, A0, max_iter, max_proj, tol, verbose):
    """Xing et al.'s algorithm: gradient ascent on ``sum_D ||d||_A`` along the direction
    orthogonal to the constraint's gradient, each step followed by alternating projections
    onto the constraint ``<W, A> <= t`` and the PSD cone.

    The constants are the authors' (also metric-learn's): ``t`` is 1% of the initial
    metric's value, the step starts at 0.1 on a unit-norm direction, grows by 5% after an
    accepted step and halves after a rejected one; projections stop at 1% excess.
    """
    W = sim.T @ sim
    w_sq = max(np.sum(W * W), 1e-300)
    t = max(np.sum(W * A0), 1e-300) / 100
    A_prev = A0.copy()
    r = _dissimilar_distances(A_prev, dis)
    obj_prev, direction = _log_sum(r), _ascent_direction(r, dis, W, w_sq)
    A, alpha, n_iter, failures = A0.copy(), 0.1, 0, []
    for n_iter in range(1, max_iter + 1):
        if _known_to_fail(A, failures, np.sqrt(w_sq), t):
            feasible = False
        else:
            start = A
            A, feasible, lowest = _project_onto_constraints(A, W, w_sq, t, max_proj)
            if not feasible:
                failures.append((start, lowest))
        if feasible:
            r = _dissimilar_distances(A, dis)
            obj = _log_sum(r)
        if feasible and (n_iter == 1 or obj > obj_prev):
            alpha *= 1.05
            A_prev, obj_prev, failures = A, obj, []
            direction = _ascent_direction(r, dis, W, w_sq)
        else:
            alpha /= 2
        A = A_prev + alpha * direction
        change = alpha / max(np.linalg.norm(A_prev), 1e-300)
        progress(verbose, f"step {n_iter}: log sum_D ||d||_A {obj_prev:.6g}, "
                          f"relative step {change:.3g}")
        if change < tol:
            break
    return A_prev, n_iter


def _project_onto_constraints(A, W, w_sq, t, max_proj):
    """Alternate projections onto ``<W, A> <= t`` and the PSD cone until within 1% of t.

    Returns the last iterate, whether it is within 1% of t, and the lowest ``<W, A>`` seen.
    """
    # This loop can run max_proj eigen-decompositions per step: keep it lean.
    w_flat = W.ravel()
    value = lowest = w_flat @ A.ravel()
    for _ in range(max_proj):
        if value > t:
            A = A - ((value - t) / w_sq) * W
        A = _psd_projection(A)
        value = w_flat @ A.ravel()
        lowest = min(lowest, value)
        if value < 1.01 * t:
            return A, True, lowest
    return A, False, lowest


def _known_to_fail(A, failures, w_norm, t):
    """Whether projecting from A must fail because a run from a nearby start failed.

    Both projections are non-expansive, so the k-th iterates from two starts stay within
    ``||A - start||`` of each other and their ``<W, .>`` within ``||W|| ||A - start||``:
    if that is below the failed run's margin over 1.01 t, every iterate from A stays above
    1.01 t too. This skips the max_proj eigen-decompositions of a doomed run exactly.
    """
    for start, lowest in failures:
        bound = w_norm * np.linalg.norm(A - start) * (1 + 1e-6) + 1e-9 * t
        if bound < lowest - 1.01 * t:
            return True
    return False


def _dissimilar_distances(A, dis):
    return np.sqrt(np.maximum(np.sum((dis @ A) * dis, axis=1), 0))


def _log_sum(r):
    total = r.sum()
    return np.log(total) if total > 0 else -np.inf


def _ascent_direction(r, dis, W, w_sq):
    """Unit-norm gradient of ``log sum_D ||d||_A`` (``r``: the distances ``||d||_A``) with
    its component along W removed."""
    # sqrt is not differentiable at 0: floor tiny distances relative to the largest one.
    inv = 1 / (2 * np.maximum(r, 1e-6 * max(r.max(), 1e-300)))
    grad = (dis.T * inv) @ dis / max(r.sum(), 1e-300)
    grad -= (np.sum(grad * W) / w_sq) * W
    return grad / max(np.linalg.norm(grad), 1e-300)


def _fit_full_ratio(sim, dis, A0, max_iter, max_proj, tol, verbose):
    """Projected gradient ascent of ``_full_objective`` over the PSD cone."""
    W = sim.T @ sim  # sum over similar pairs of s s^T: the constraint is <W, A> <= t
    t = max(np.sum(W * A0), 1e-12)
    A = _psd_projection(A0)
    obj, grad = _full_objective(A, dis, W)
    step = 0.1
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        direction = grad * (np.linalg.norm(A) / max(np.linalg.norm(grad), 1e-300))
        for _ in range(max_proj):
            candidate = _psd_projection(A + step * direction)
            new_obj, new_grad = _full_objective(candidate, dis, W)
            if new_obj > obj:
                break
            step /= 2
        else:
            break
        if new_obj <= obj:
            break
        change = np.linalg.norm(candidate - A) / np.linalg.norm(A)
        # The objective is scale invariant: rescale onto the constraint to stay bounded.
        scale = t / max(np.sum(W * candidate), 1e-300)
        A, obj, grad = candidate * scale, new_obj, new_grad / scale
        step *= 1.05
        progress(verbose, f"step {n_iter}: objective {obj:.6g}, relative change {change:.3g}")
        if change < tol:
            break
    return A * (t / max(np.sum(W * A), 1e-300)), n_iter


def _full_objective(A, dis, W):
    """``log sum_D ||d||_A - log(<W, A>) / 2`` and its gradient in A (scale invariant)."""
    r = _dissimilar_distances(A, dis)
    total = r.sum()
    f = np.sum(W * A)
    if total <= 0 or f <= 0:
        return -np.inf, np.zeros_like(A)
    inv = np.where(r > 0, 1 / (2 * np.maximum(r, 1e-300)), 0.0)
    grad = (dis.T * inv) @ dis / total - W / (2 * f)
    return np.log(total) - 0.5 * np.log(f), grad


def _psd_projection(A):
    """Nearest PSD matrix to the symmetric part of A (LAPACK reads one triangle).

    Calls LAPACK's syevd directly: it has a third of numpy.linalg.eigh's overhead on small
    matrices, and the authors' solver can call this thousands of times per step.
    """
    w, V, info = dsyevd(A)
    if info != 0:
        w, V = np.linalg.eigh(A)
    return (V * np.maximum(w, 0)) @ V.T


# -- diagonal version ----------------------------------------------------------------------

def _fit_diagonal(sim, dis, w, c, max_iter, tol, verbose):
    """Projected Newton-Raphson on ``_diagonal_objective`` over ``w >= 0``."""
    s_sum = np.sum(sim**2, axis=0)
    dis_sq = dis**2
    w = np.maximum(w, 0)
    # Along a ray t * w the objective is minimal at s_sum . (t w) = c / 2: start there.
    if s_sum @ w > 0:
        w = w * (c / (2 * (s_sum @ w)))
    obj, grad, hess = _diagonal_objective(w, s_sum, dis_sq, c, hessian=True)
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        candidate, new_obj = None, obj
        for direction in _diagonal_directions(w, grad, hess):
            candidate, new_obj = _line_search(w, direction, obj, s_sum, dis_sq, c)
            if new_obj < obj:
                break
        if not new_obj < obj:
            break  # no descent direction left: converged
        change = abs(obj - new_obj) / max(abs(obj), 1e-300)
        w = candidate
        obj, grad, hess = _diagonal_objective(w, s_sum, dis_sq, c, hessian=True)
        progress(verbose, f"diagonal step {n_iter}: objective {obj:.6g}")
        if change < tol:
            break
    return w, n_iter


def _diagonal_directions(w, grad, hess):
    """Projected Newton direction, then the scaled gradient as a fallback."""
    # Weights held at zero by a positive gradient are left out of the Newton system.
    free = ~((w <= 0) & (grad > 0))
    newton = np.zeros_like(w)
    if free.any():
        H = hess[np.ix_(free, free)]
        H = H + 1e-10 * max(np.trace(H), 1e-300) * np.eye(H.shape[0])
        try:
            newton[free] = np.linalg.solve(H, grad[free])
        except np.linalg.LinAlgError:
            newton[free] = grad[free]
    yield newton
    yield grad * (np.linalg.norm(w) / max(np.linalg.norm(grad), 1e-300))


def _line_search(w, direction, obj, s_sum, dis_sq, c):
    """Backtracking on ``max(w - lam * direction, 0)``; returns the point and objective."""
    lam = 1.0
    for _ in range(40):
        candidate = np.maximum(w - lam * direction, 0)
        new_obj = _diagonal_objective(candidate, s_sum, dis_sq, c)[0]
        if new_obj < obj:
            return candidate, new_obj
        lam /= 2
    return w, obj


def _diagonal_objective(w, s_sum, dis_sq, c, hessian=False):
    """``s_sum . w - c log sum_D sqrt(d^2 . w)``, its gradient and (optionally) Hessian."""
    r = np.sqrt(np.maximum(dis_sq @ w, 0))
    total = r.sum()
    if total <= 0:
        inf = np.full_like(w, np.nan)
        return np.inf, inf, (np.eye(len(w)) if hessian else None)
    inv = np.where(r > 0, 1 / np.maximum(r, 1e-300), 0.0)
    d_total = (dis_sq.T @ inv) / 2  # gradient of sum_D r
    obj = s_sum @ w - c * np.log(total)
    grad = s_sum - c * d_total / total
    if not hessian:
        return obj, grad, None
    # Hessian of -c log(total): c (grad total grad total^T / total^2 - hess total / total),
    # with hess total = -sum_D d^2 d^2^T / (4 r^3).
    h_total = -(dis_sq.T * (inv**3 / 4)) @ dis_sq
    hess = c * (np.outer(d_total, d_total) / total**2 - h_total / total)
    return obj, grad, hess
