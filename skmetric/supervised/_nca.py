"""Neighbourhood Components Analysis (NCA): a linear map maximising stochastic 1-NN accuracy."""

import time
from numbers import Integral, Real

import array_api_compat
import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state

from .._base import MahalanobisMixin
from .._compute._backend import to_numpy
from .._compute._inner_cv import (
    STRENGTHS,
    choose_strength,
    penalised_path,
    prior_penalty,
)
from .._compute._lbfgs import minimize_lbfgs
from .._docstrings import FEATURES_IN, LINEAR_INIT, fill_doc
from .._init import INIT_OPTIONS, initial_components, warn_if_stuck_at_init
from .._sklearn_compat import Interval, StrOptions
from .._supervised import LabelledLearnerMixin, validate_labelled
from .._warn import progress, verbose_name, warn_user

# Elements of one (queries x samples) block: bounds the memory of a loss evaluation.
_BLOCK_ELEMENTS = 1 << 22
# L-BFGS tolerance when tol=None: scikit-learn's NeighborhoodComponentsAnalysis default.
_LBFGS_TOL = 1e-5


@fill_doc(init=LINEAR_INIT, features_in=FEATURES_IN)
class NCA(LabelledLearnerMixin, MahalanobisMixin, BaseEstimator):
    """Neighbourhood Components Analysis.

    NCA learns a linear map ``L`` that maximises the expected number of samples whose
    stochastic nearest neighbour has their class [1]_: sample ``i`` picks ``j`` as its
    neighbour with probability ``p_ij = softmax_j(-||L x_i - L x_j||^2)`` (``p_ii = 0``) and
    the objective is ``-sum_i sum_{j in class(i)} p_ij``, minimised by L-BFGS.

    With ``batch_size`` the objective is minimised by Adam on mini-batches of queries
    compared against all samples, so memory is O(batch_size * n_samples) instead of
    O(n_samples^2). The full-batch mode also evaluates the objective in blocks of queries,
    so its memory stays bounded, but each evaluation costs O(n_samples^2) time.

    The loss and gradient are written once against the Array API: NumPy by default, torch
    (CPU or CUDA) with ``device`` or when ``X`` is a torch tensor.

    On small data the optimum often blows the map up into a hard 1-NN rule that fits the
    training set only. ``prior_strength`` adds ``lambda * n_samples * ||L - L0||_F^2``, a
    pull towards the initial map ``L0`` (the identity by default: Euclidean distance);
    ``'auto'`` chooses ``lambda`` by an inner 3-fold cross-validation on the training
    data, among a grid that includes ``L0`` itself (no learning) and 0 (the plain
    objective, scikit-learn's and metric-learn's NCA).

    Parameters
    ----------
    {init}
    n_components : int, default=None
        Dimension of the learned space; None means ``n_features`` (or the number of rows
        of an ``init`` array).
    max_iter : int, default=100
        Maximum number of L-BFGS iterations, or of epochs (passes over the queries) with
        ``batch_size``.
    tol : float, default=None
        Convergence tolerance. Full mode: L-BFGS's ``tol`` (its ``ftol`` and ``gtol``);
        None means 1e-5, scikit-learn's default, so both stop at the same iteration.
        Batch mode: stop when an epoch's objective improves by less than ``tol`` relative
        to its size (None means 1e-4).
    verbose : bool or int, default=False
        Print the objective and the elapsed time at each iteration (epoch).
    preprocessor : array-like or callable, default=None
        Data to index when ``X`` is given as a 1-D array of sample indices.
    random_state : int, RandomState instance or None, default=None
        Seeds ``init='random'``, the PCA of ``init='pca'`` and the mini-batch order.
    batch_size : int, default=None
        Number of queries per stochastic step; None runs full-batch L-BFGS.
    device : {'cpu', 'cuda', 'auto'}, str or torch.device, default=None
        Where to compute. None: NumPy, or the device of a torch ``X``. 'cpu' or 'cuda'
        (or 'cuda:1', a torch.device): torch on that device, in float64. 'auto': torch on CUDA when
        available, else NumPy. ``components_`` is always a NumPy array.
    prior_strength : float >= 0 or 'auto', default='auto'
        Strength ``lambda`` of the penalty ``lambda * n_samples * ||L - L0||_F^2`` towards
        the initial map ``L0``. 0 minimises the plain NCA objective (scikit-learn's and
        metric-learn's). 'auto' picks ``lambda`` from ``inf`` (``L0`` itself), 1e-2, 1e-3,
        1e-4 and 0 by the 3-NN accuracy of the maps fitted on stratified inner
        folds of the training data (seeded by ``random_state``, 0 when None; ties go to the stronger
        penalty), then fits all the data with it; about 2-4 times the cost of a plain
        fit. When a class has fewer than 3 samples, and with ``batch_size`` (large data),
        'auto' means 0.

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
        The learned linear map L.
    n_iter_ : int
        Number of iterations (epochs with ``batch_size``) run.
    objective_ : float
        Final objective, ``-sum_i p_i`` plus the penalty (batch mode: over the last epoch).
    prior_strength_ : float
        The penalty strength used: ``prior_strength``, or the one 'auto' chose (``inf``
        means ``components_`` is the initial map).
    {features_in}

    See Also
    --------
    sklearn.neighbors.NeighborhoodComponentsAnalysis : the same objective, full batch only.

    References
    ----------
    .. [1] J. Goldberger, G. Hinton, S. Roweis, R. Salakhutdinov. "Neighbourhood
       Components Analysis". NIPS 2004.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skmetric import NCA
    >>> X, y = load_iris(return_X_y=True)
    >>> nca = NCA(n_components=2, max_iter=20, random_state=0).fit(X, y)
    >>> nca.transform(X).shape
    (150, 2)
    """

    _parameter_constraints: dict = {
        "init": [StrOptions(set(INIT_OPTIONS)), "array-like"],
        "n_components": [Interval(Integral, 1, None, closed="left"), None],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left"), None],
        "verbose": ["verbose"],
        "preprocessor": ["array-like", callable, None],
        "random_state": ["random_state"],
        "batch_size": [Interval(Integral, 1, None, closed="left"), None],
        "device": "no_validation",  # checked by resolve_backend
        "prior_strength": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"})],
    }

    def __init__(self, init="auto", n_components=None, max_iter=100, tol=None, verbose=False,
                 preprocessor=None, random_state=None, batch_size=None, device=None,
                 prior_strength="auto"):
        self.init = init
        self.n_components = n_components
        self.max_iter = max_iter
        self.tol = tol
        self.verbose = verbose
        self.preprocessor = preprocessor
        self.random_state = random_state
        self.batch_size = batch_size
        self.device = device
        self.prior_strength = prior_strength

    _namespaces = ("numpy", "torch")

    def _fit_samples(self, X, y, backend):
        X, _, codes, counts = validate_labelled(self, X, y)
        if counts.max() < 2:
            raise ValueError(
                "NCA needs at least one class with two or more samples: a sample is pulled "
                "towards the other samples of its class, and every class in y has a single "
                "sample."
            )
        rng = check_random_state(self.random_state)
        L0 = initial_components(self.init, self.n_components, X, codes, random_state=rng)
        Xd, yd = backend.asarray(X), backend.asarray(codes)

        start = time.perf_counter()
        self.prior_strength_, warm = self._strength(X, codes, backend)
        if np.isinf(self.prior_strength_):  # the initial map scored best: keep it
            L, self.n_iter_ = L0, 0
            self.objective_ = float(_nca_loss_grad(backend.asarray(L0), Xd, yd, backend.xp)[0])
        elif self.batch_size is None:
            L, self.objective_, self.n_iter_ = self._fit_lbfgs(L0, Xd, yd, backend, warm)
        else:
            L, self.objective_, self.n_iter_ = self._fit_minibatch(L0, Xd, yd, backend.xp, rng)
        progress(verbose_name(self), f"training took {time.perf_counter() - start:.2f}s")
        # Also when 'auto' kept L0: on badly scaled samples no map could move from it.
        warn_if_stuck_at_init("NCA", X, L, L0)
        self.components_ = L
        return self

    def _strength(self, X, codes, backend):
        """The penalty strength, ``prior_strength`` or the inner-CV choice of 'auto', and
        the map to start the fit from (None: the initial map)."""
        if self.prior_strength != "auto":
            return float(self.prior_strength), None
        if self.batch_size is not None:
            return 0.0, None
        tol = _LBFGS_TOL if self.tol is None else self.tol

        def fit_path(X_train, y_train):
            L0 = initial_components(self.init, self.n_components, X_train, y_train,
                                    random_state=self.random_state)
            Xb, yb = backend.asarray(X_train), backend.asarray(y_train)
            return penalised_path(lambda L: _nca_loss_grad(L, Xb, yb, backend.xp), L0,
                                  STRENGTHS, backend, scale=X_train.shape[0],
                                  max_iter=self.max_iter, tol=tol)

        choice = choose_strength(fit_path, X, codes, random_state=self.random_state,
                                 verbose=verbose_name(self), strengths=STRENGTHS)
        if choice.strength is None:
            return 0.0, None
        # The inner maps at that strength are close to the final one: start from them.
        return choice.strength, choice.start

    def _fit_lbfgs(self, L0, X, y, backend, start=None):
        # scipy's own default (ftol 2.2e-9) runs about twice the iterations of scikit-learn's
        # tol=1e-5 for a gain in the 5th significant digit of the objective.
        tol = _LBFGS_TOL if self.tol is None else self.tol
        t0, name = time.perf_counter(), verbose_name(self)
        progress(name, f"{'iter':>10} {'objective':>16} {'elapsed (s)':>11}")

        def report(it, objective):
            progress(name, f"{f'{it}/{self.max_iter}':>10} {objective:>16.6e} "
                           f"{time.perf_counter() - t0:>11.2f}")

        objective = prior_penalty(lambda L: _nca_loss_grad(L, X, y, backend.xp), L0,
                                  self.prior_strength_, X.shape[0], backend)
        res = minimize_lbfgs(objective, L0 if start is None else start, backend,
                             max_iter=self.max_iter, tol=tol,
                             callback=report, warn="NCA" if self.verbose else None)
        return res.x, res.fun, res.n_iter

    def _fit_minibatch(self, L0, X, y, xp, rng):
        """Adam on mini-batches of queries; each step costs O(batch_size * n) memory."""
        n = X.shape[0]
        dev = array_api_compat.device(X)
        batch = min(self.batch_size, n)
        tol = 1e-4 if self.tol is None else self.tol
        # Adam moves each entry by about lr per step: scale it to the initial map's entries.
        lr = 1e-2 * float(np.max(np.abs(L0))) if np.any(L0) else 1e-2
        beta1, beta2, eps = 0.9, 0.999, 1e-8
        L = xp.asarray(L0, dtype=X.dtype, device=dev)
        prior, weight = L, 2.0 * self.prior_strength_
        m = xp.zeros_like(L)
        v = xp.zeros_like(L)
        step, previous = 0, None
        t0, name = time.perf_counter(), verbose_name(self)
        progress(name, f"{'epoch':>10} {'objective':>16} {'elapsed (s)':>11}")
        for epoch in range(1, self.max_iter + 1):
            order = rng.permutation(n)
            total = 0.0
            for begin in range(0, n, batch):
                rows = xp.asarray(order[begin:begin + batch], device=dev)
                loss, grad = _nca_loss_grad(L, X, y, xp, rows=rows)
                if weight:  # the batch's share (rows / n) of the penalty on all n samples
                    diff = L - prior
                    loss = float(loss) + weight / 2 * rows.shape[0] * float(xp.sum(diff * diff))
                    grad = grad + weight * rows.shape[0] * diff
                total += float(loss)
                step += 1
                m = beta1 * m + (1 - beta1) * grad
                v = beta2 * v + (1 - beta2) * grad * grad
                m_hat = m / (1 - beta1**step)
                v_hat = v / (1 - beta2**step)
                L = L - lr * m_hat / (xp.sqrt(v_hat) + eps)
            progress(name, f"{f'{epoch}/{self.max_iter}':>10} {total:>16.6e} "
                           f"{time.perf_counter() - t0:>11.2f}")
            if previous is not None and abs(previous - total) <= tol * max(abs(total), 1.0):
                break
            previous = total
        else:
            if self.verbose:
                warn_user(f"NCA did not converge in max_iter={self.max_iter} epochs; "
                          "increase max_iter or tol.", ConvergenceWarning)
        return to_numpy(L), total, epoch


def _nca_loss_grad(L, X, y, xp=None, rows=None):
    """NCA objective ``-sum_i p_i`` over the queries ``rows`` (all by default) and its gradient.

    Parameters
    ----------
    L : array of shape (n_components, n_features)
    X : array of shape (n_samples, n_features)
    y : array of shape (n_samples,)
        Integer class codes.
    xp : namespace, default=None
        The Array API namespace of the arrays (inferred when None).
    rows : array of int, default=None
        Indices of the query samples; their neighbours are drawn from all samples.

    Returns
    -------
    loss : float
    grad : array of shape (n_components, n_features)
    """
    xp = array_api_compat.array_namespace(L, X) if xp is None else xp
    n = X.shape[0]
    dev = array_api_compat.device(X)
    Z = X @ L.T
    sq = xp.sum(Z * Z, axis=1)
    all_idx = xp.arange(n, device=dev)
    whole = rows is None and n <= max(1, _BLOCK_ELEMENTS // n)
    if rows is None:
        rows = all_idx
    n_rows = rows.shape[0]
    block = max(1, _BLOCK_ELEMENTS // n)
    loss = 0.0
    col_weight = xp.zeros(n, dtype=X.dtype, device=dev)
    grad = xp.zeros(L.shape, dtype=X.dtype, device=dev)
    for begin in range(0, n_rows, block):
        r = rows[begin:begin + block]
        if whole:
            Zq, Xq, sq_q, y_q = Z, X, sq, y
        else:
            Zq, Xq = xp.take(Z, r, axis=0), xp.take(X, r, axis=0)
            sq_q, y_q = xp.take(sq, r), xp.take(y, r)
        # Logits -||z_i - z_j||^2, built in place to spare n^2 temporaries.
        P = Zq @ Z.T
        P *= 2.0
        P -= sq_q[:, None]
        P -= sq[None, :]
        # A sample is never its own neighbour: p_ii = 0.
        P[r[:, None] == all_idx[None, :]] = -xp.inf
        # Log-sum-exp shift; every row has a finite entry since n >= 2.
        P -= xp.max(P, axis=1, keepdims=True)
        P = xp.exp(P)
        P /= xp.sum(P, axis=1, keepdims=True)
        W = xp.where(y_q[:, None] == y[None, :], P, 0.0)
        p = xp.sum(W, axis=1)
        loss -= float(xp.sum(p))
        # d(-p_i)/dd_ij = p_ij ([j in class(i)] - p_i) =: W_ij; its rows sum to zero, so
        # sum_ij W_ij (z_i - z_j)(x_i - x_j)^T = (Z * colsum W)^T X - Zq^T W X - (W Z)^T Xq.
        P *= p[:, None]
        W -= P
        del P
        col_weight = col_weight + xp.sum(W, axis=0)
        if whole:  # one block holds all queries: a single product with W + W^T
            grad = grad - (Z.T @ (W + W.T)) @ X
        else:
            grad = grad - (Zq.T @ W) @ X - (W @ Z).T @ Xq
    grad = grad + (Z * col_weight[:, None]).T @ X
    return loss, 2.0 * grad
