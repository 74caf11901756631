"""MLKR: metric learning for kernel regression (Weinberger & Tesauro, 2007)."""

import time
from numbers import Integral, Real

import array_api_compat
import numpy as np
from sklearn.base import BaseEstimator

from .._base import MahalanobisMixin
from .._compute._backend import resolve_backend, to_host
from .._compute._inner_cv import STRENGTHS, choose_strength, penalised_path, prior_penalty
from .._compute._lbfgs import minimize_lbfgs
from .._docstrings import FEATURES_IN, fill_doc
from .._init import INIT_OPTIONS, initial_components, warn_if_stuck_at_init
from .._sklearn_compat import Interval, StrOptions
from .._validation import fit_context
from .._warn import progress, verbose_name

# Rows of the n x n kernel handled at once: bounds the memory of one objective evaluation
# to a few arrays of _BLOCK_ELEMENTS floats instead of O(n^2).
_BLOCK_ELEMENTS = 2**22


@fill_doc(features_in=FEATURES_IN)
class MLKR(MahalanobisMixin, BaseEstimator):
    """Metric learning for kernel regression.

    Learns a linear map ``L`` that minimises the leave-one-out squared error of
    Nadaraya-Watson kernel regression with a Gaussian kernel in the learned space,
    ``yhat_i = sum_{j != i} k_ij y_j / sum_{j != i} k_ij`` with
    ``k_ij = exp(-||L (x_i - x_j)||^2)``. It is the regression counterpart of NCA: the
    targets ``y`` are real numbers. The objective is minimised with L-BFGS; its memory is
    O(n * block) rather than O(n^2), and the numerical code is written once against the
    Array API, so it runs in NumPy or in torch (CPU or CUDA) as ``device`` says.

    Parameters
    ----------
    n_components : int, default=None
        Dimension of the learned space; None keeps the number of features (or the number
        of rows of an ``init`` array).
    init : {'auto', 'pca', 'identity', 'random'} or ndarray of shape \
            (n_components, n_features), default='auto'
        Initial ``L``. 'auto' is 'pca' when ``n_components`` reduces the dimension and
        'identity' otherwise ('lda' does not apply to regression targets).
    tol : float, default=None
        Convergence tolerance of L-BFGS (scipy's default when None).
    max_iter : int, default=1000
        Maximum number of L-BFGS iterations.
    verbose : bool, default=False
        Print the objective at each iteration to stdout.
    preprocessor : array-like or callable, default=None
        Data to index when ``X`` is given as a 1-D array of sample indices.
    random_state : int, RandomState instance or None, default=None
        Seeds ``init='random'`` and the PCA initialisation.
    device : {None, 'cpu', 'cuda', 'auto'} or torch.device, default=None
        Where the objective and gradient are computed. None: NumPy, or torch on the input's
        device when ``X`` is a torch tensor. 'cpu' / 'cuda' / a torch device: torch on that
        device. 'auto': torch on CUDA when available, else NumPy. The optimiser and the
        fitted ``components_`` stay in NumPy float64.
    prior_strength : float >= 0 or 'auto', default=0.0
        Strength ``lambda`` of the penalty ``lambda * n_samples * var(y) * ||L - L0||_F^2``
        towards the initial map ``L0`` (the scale makes ``lambda`` comparable with the
        summed squared error). 0 (the default) minimises the plain MLKR objective, as
        metric-learn does. 'auto' picks ``lambda`` from ``inf`` (``L0`` itself), 1e-2,
        1e-3, 1e-4 and 0 by the kernel-regression error of the maps fitted on 3 inner
        folds of the training data (seeded by ``random_state``, 0 when None; ties go to
        the stronger penalty), then fits all the data with it.

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
        The learned linear map L.
    n_iter_ : int
        Number of L-BFGS iterations run (0 when 'auto' kept the initial map).
    prior_strength_ : float
        The penalty strength used (``inf``: ``components_`` is the initial map).
    {features_in}

    References
    ----------
    .. [1] K. Q. Weinberger and G. Tesauro. "Metric Learning for Kernel Regression".
       AISTATS 2007.

    Examples
    --------
    >>> import numpy as np
    >>> from skmetric import MLKR
    >>> rng = np.random.RandomState(0)
    >>> X = rng.randn(60, 3)
    >>> y = np.sin(X[:, 0])
    >>> mlkr = MLKR(n_components=2, random_state=0).fit(X, y)
    >>> mlkr.transform(X).shape
    (60, 2)
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left"), None],
        "init": [StrOptions(set(INIT_OPTIONS)), "array-like"],
        "tol": [Interval(Real, 0, None, closed="neither"), None],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "verbose": ["verbose"],
        "preprocessor": ["array-like", callable, None],
        "random_state": ["random_state"],
        "device": "no_validation",  # checked by resolve_backend
        "prior_strength": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"})],
    }

    def __init__(self, n_components=None, init="auto", tol=None, max_iter=1000, verbose=False,
                 preprocessor=None, random_state=None, device=None, prior_strength=0.0):
        self.n_components = n_components
        self.init = init
        self.tol = tol
        self.max_iter = max_iter
        self.verbose = verbose
        self.preprocessor = preprocessor
        self.random_state = random_state
        self.device = device
        self.prior_strength = prior_strength

    _requires_y = True  # regression targets: any real values

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Learn ``L`` by minimising the leave-one-out kernel regression error.

        Parameters
        ----------
        X : array-like or torch.Tensor of shape (n_samples, n_features)
            Training samples (or 1-D indices into ``preprocessor``).
        y : array-like of shape (n_samples,)
            Real-valued regression targets, in any units: they are centred and scaled
            by a power of two first, which leaves the learned map unchanged.

        Returns
        -------
        self : object
        """
        backend = resolve_backend(X, self.device, dtype="float64",
                                  namespaces=("numpy", "torch"), learner="MLKR")
        X, y = self._validate_samples(to_host(X), _real_targets(to_host(y)), reset=True,
                                      ensure_min_samples=2, y_numeric=True, dtype=np.float64)
        y = _unit_targets(y)
        if isinstance(self.init, str) and self.init == "lda":
            raise ValueError("init='lda' needs class labels; MLKR regresses real targets. "
                             "Use 'auto', 'pca', 'identity', 'random' or an array.")
        L0 = initial_components(self.init, self.n_components, X, None,
                                random_state=self.random_state)
        X_dev, y_dev = backend.asarray(X), backend.asarray(y)

        name = verbose_name(self)

        def report(it, objective):
            progress(name, f"iter {it:4d}  objective {objective:.6e}  "
                           f"({time.perf_counter() - start:.2f}s)")

        progress(name, f"fitting {L0.shape[0]}x{L0.shape[1]} map on {X.shape[0]} samples "
                       f"({backend.name}, device {backend.device})")
        self.prior_strength_, warm = self._strength(X, y, backend)
        start = time.perf_counter()  # the final fit's time, after the inner CV of 'auto'
        if np.isinf(self.prior_strength_):  # the initial map scored best: keep it
            self.components_, self.n_iter_ = L0, 0
            warn_if_stuck_at_init("MLKR", X, L0, L0)
            return self
        objective = prior_penalty(lambda L: _loss_grad(L, X_dev, y_dev), L0,
                                  self.prior_strength_, _penalty_scale(y), backend)
        res = minimize_lbfgs(objective, L0 if warm is None else warm, backend,
                             max_iter=self.max_iter, tol=self.tol, callback=report, warn="MLKR")
        self.components_ = res.x
        self.n_iter_ = res.n_iter
        warn_if_stuck_at_init("MLKR", X, self.components_, L0)
        return self

    def _strength(self, X, y, backend):
        """The penalty strength (``prior_strength`` or the inner-CV choice of 'auto') and
        the map to start the final fit from (None: the initial map)."""
        if self.prior_strength != "auto":
            return float(self.prior_strength), None

        def fit_path(X_train, y_train):
            L0 = initial_components(self.init, self.n_components, X_train, None,
                                    random_state=self.random_state)
            Xb, yb = backend.asarray(X_train), backend.asarray(y_train)
            return penalised_path(lambda L: _loss_grad(L, Xb, yb), L0, STRENGTHS, backend,
                                  scale=_penalty_scale(y_train), max_iter=self.max_iter,
                                  tol=self.tol)

        choice = choose_strength(fit_path, X, y, random_state=self.random_state,
                                 classification=False, verbose=verbose_name(self),
                                 strengths=STRENGTHS)
        if choice.strength is None:
            return 0.0, None
        return choice.strength, choice.start


def _real_targets(y):
    """``y`` as float64 when its values are numbers; a ValueError naming MLKR's regression
    targets otherwise (numpy's "could not convert string to float" said nothing of them).
    None is passed on, for scikit-learn's "requires y" error."""
    if y is None:
        return y
    y = np.asarray(y)
    if y.dtype.kind == "c":  # astype would keep the real part with only a ComplexWarning
        raise ValueError(f"Complex data not supported: y is complex (dtype {y.dtype}), and "
                         "MLKR regresses real-valued targets. Pass real numbers, e.g. y.real "
                         "or np.abs(y).")
    try:
        return y.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"MLKR regresses real-valued targets; y has non-numeric values (dtype {y.dtype}, "
            f"e.g. {y.ravel()[:3].tolist()}). For class labels, use a classification learner "
            "such as NCA or LMNN; else convert y to numbers."
        ) from exc


def _unit_targets(y):
    """The targets centred and divided by the power of two that brings their standard
    deviation into [0.5, 1).

    The map MLKR learns does not depend on the units of y: ``yhat - y`` is unchanged by a
    shift of y and proportional to its scale, so the loss and the prior penalty (both
    proportional to ``var(y)``) only change by a common factor. L-BFGS's stopping tests do
    not scale along (they are absolute below a loss of 1): on targets in small units (1e-3)
    it stopped after a step or at the start. Centring also keeps ``yhat - y`` from
    cancelling on targets far from zero.
    """
    y = y - np.mean(y)
    spread = float(np.std(y))
    if spread == 0:
        return y
    return y / np.ldexp(1.0, int(np.frexp(spread)[1]))


def _penalty_scale(y):
    """n * var(y): the size of the summed squared error the penalty is weighed against."""
    variance = float(np.var(y))
    return y.shape[0] * (variance if variance > 0 else 1.0)


def _loss_grad(L, X, y, block_rows=None):
    """Leave-one-out kernel regression error of ``L`` and its gradient (Array API).

    ``L`` (m, d), ``X`` (n, d) and ``y`` (n,) share one namespace and device. With
    ``D_ij = ||L (x_i - x_j)||^2`` and ``P`` the row softmax of ``-D`` without its diagonal,
    ``yhat = P y`` and the loss is ``sum_i e_i^2``, ``e = yhat - y``. Its derivative in
    ``D_ij`` is ``W_ij = 2 e_i P_ij (yhat_i - y_j)`` and the gradient in ``L`` is
    ``2 (S Z)^T X`` with ``Z = X L^T`` and ``S = diag(W 1 + W^T 1) - W - W^T``. The rows of
    W sum to 0 (rows of P sum to 1), and ``W Z``, ``W^T Z`` and ``W^T 1`` factor through two
    products with P, so W is never formed. Rows are processed in blocks so that no n x n
    array is held. Returns (loss as a 0-d array, gradient of shape (m, d)).
    """
    xp = array_api_compat.array_namespace(L, X, y)
    dev = array_api_compat.device(X)
    n, m = X.shape[0], L.shape[0]
    if block_rows is None:
        block_rows = max(1, min(n, _BLOCK_ELEMENTS // n))
    Z = X @ L.T
    sq = xp.sum(Z * Z, axis=1)
    y_col = y[:, None]
    # P @ [Z, y*Z, y] gives P Z, P (y Z) and yhat in one product.
    right = xp.concat([Z, y_col * Z, y_col], axis=1)
    cols = xp.arange(n, device=dev)
    inf = xp.asarray(xp.inf, dtype=X.dtype, device=dev)
    col_sum = xp.zeros(n, dtype=X.dtype, device=dev)
    WtZ = xp.zeros(Z.shape, dtype=X.dtype, device=dev)
    loss = xp.zeros((), dtype=X.dtype, device=dev)
    WZ_rows = []
    for start in range(0, n, block_rows):
        stop = min(start + block_rows, n)
        Zb = Z[start:stop, :]
        D = sq[start:stop, None] + sq[None, :] - 2.0 * (Zb @ Z.T)
        # Leave one out: a sample never predicts itself (kernel weight exp(-inf) = 0).
        D = xp.where(xp.arange(start, stop, device=dev)[:, None] == cols[None, :], inf, D)
        # Shift by the row minimum so far-away rows do not underflow to 0 / 0.
        K = xp.exp(xp.min(D, axis=1, keepdims=True) - D)
        P = K / xp.sum(K, axis=1, keepdims=True)
        R = P @ right
        yhat = R[:, 2 * m]
        err = yhat - y[start:stop]
        loss = loss + xp.sum(err * err)
        a, b = (2.0 * err * yhat)[:, None], (2.0 * err)[:, None]
        WZ_rows.append(a * R[:, :m] - b * R[:, m:2 * m])
        Q = P.T @ xp.concat([a * Zb, b * Zb, a, b], axis=1)
        WtZ = WtZ + Q[:, :m] - y_col * Q[:, m:2 * m]
        col_sum = col_sum + Q[:, 2 * m] - y * Q[:, 2 * m + 1]
    SZ = col_sum[:, None] * Z - xp.concat(WZ_rows, axis=0) - WtZ
    return loss, 2.0 * (SZ.T @ X)
