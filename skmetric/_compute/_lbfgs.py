"""One L-BFGS driver for the learners of a linear map (NCA, LMNN, MLKR).

scipy's L-BFGS-B runs on the host, on a flat float64 copy of the map; the objective and
its gradient are computed on the fit's :class:`~skmetric._compute._backend.Backend`
(NumPy, or torch on any device), to which each iterate is copied.
"""

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from sklearn.exceptions import ConvergenceWarning

from .._array_api import to_numpy
from .._warn import warn_user

__all__ = ["LbfgsResult", "minimize_lbfgs"]


@dataclass(frozen=True)
class LbfgsResult:
    """Outcome of :func:`minimize_lbfgs`: the map ``x`` (NumPy, the shape of ``x0``), the
    objective ``fun`` there, the number of iterations ``n_iter`` and ``converged`` (False
    when the iteration limit stopped it)."""

    x: np.ndarray
    fun: float
    n_iter: int
    converged: bool


def minimize_lbfgs(loss_grad, x0, backend, *, max_iter, tol=None, ftol=None, gtol=None,
                   callback=None, warn=None):
    """Minimise ``loss_grad`` from ``x0`` with scipy's L-BFGS-B.

    Parameters
    ----------
    loss_grad : callable
        ``loss_grad(L) -> (loss, grad)`` for ``L`` an array of ``backend`` of the shape of
        ``x0``; ``loss`` a float or 0-d array, ``grad`` an array of that shape.
    x0 : ndarray
        Starting point (NumPy; any shape).
    backend : Backend
        Where ``loss_grad`` computes.
    max_iter : int
        Most iterations.
    tol : float, default=None
        scipy's ``tol`` (sets both ``ftol`` and ``gtol``); None keeps scipy's defaults.
    ftol, gtol : float, default=None
        Explicit L-BFGS-B options, overriding ``tol``.
    callback : callable, default=None
        ``callback(n_iter, fun)`` after each iteration, with the objective there.
    warn : str, default=None
        When given (the learner's name), a ConvergenceWarning is raised if ``max_iter``
        stopped the solver, attributed to the user's line (see :mod:`skmetric._warn`).

    Returns
    -------
    result : LbfgsResult
    """
    shape = x0.shape
    n_iter = 0

    def fun(flat):
        loss, grad = loss_grad(backend.asarray(flat.reshape(shape)))
        return float(loss), np.asarray(to_numpy(grad), dtype=np.float64).ravel()

    def on_iteration(intermediate_result):
        nonlocal n_iter
        n_iter += 1
        if callback is not None:
            callback(n_iter, float(intermediate_result.fun))

    options = {"maxiter": max_iter}
    options.update({k: v for k, v in (("ftol", ftol), ("gtol", gtol)) if v is not None})
    res = minimize(fun, np.asarray(x0, dtype=np.float64).ravel(), method="L-BFGS-B",
                   jac=True, tol=tol, callback=on_iteration, options=options)
    # status 1: the iteration (or evaluation) limit was reached.
    converged = res.status != 1
    if warn is not None and not converged:  # at the user's line, however deep the learner
        warn_user(f"{warn} did not converge in max_iter={max_iter} iterations; "
                  "increase max_iter or tol.", ConvergenceWarning)
    return LbfgsResult(res.x.reshape(shape), float(res.fun), int(res.nit), converged)
