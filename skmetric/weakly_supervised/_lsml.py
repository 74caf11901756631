"""LSML: least squared-residual metric learning from relative comparisons (quadruplets)."""

from numbers import Integral, Real

import numpy as np
from scipy import linalg
from sklearn.base import BaseEstimator

from .._base import MahalanobisMixin, QuadrupletsClassifierMixin
from .._docstrings import FEATURES_IN, METRIC_ATTRIBUTES, N_FEATURES_IN, fill_doc
from .._init import PRIOR_OPTIONS, components_from_metric, initialize_metric
from .._sklearn_compat import Interval, StrOptions
from .._supervised import N_CONSTRAINTS_CONSTRAINT, SupervisedTuplesMixin
from .._validation import fit_context, real_array
from .._warn import progress, verbose_name

_COMMON_CONSTRAINTS = {
    "tol": [Interval(Real, 0, None, closed="left")],
    "max_iter": [Interval(Integral, 1, None, closed="left")],
    "prior": [StrOptions(set(PRIOR_OPTIONS)), "array-like"],
    "verbose": ["verbose"],
    "preprocessor": ["array-like", callable, None],
    "random_state": ["random_state"],
}


class _BaseLSML(MahalanobisMixin, BaseEstimator):
    """The LSML algorithm; subclasses say where the quadruplets come from."""

    _parameter_constraints = dict(_COMMON_CONSTRAINTS)

    def __init__(self, tol=1e-3, max_iter=1000, prior="identity", verbose=False,
                 preprocessor=None, random_state=None):
        self.tol = tol
        self.max_iter = max_iter
        self.prior = prior
        self.verbose = verbose
        self.preprocessor = preprocessor
        self.random_state = random_state

    def _fit(self, quadruplets, weights=None):
        """Learn M from validated quadruplets of shape (n, 4, n_features)."""
        vab = quadruplets[:, 0] - quadruplets[:, 1]
        vcd = quadruplets[:, 2] - quadruplets[:, 3]
        weights = _check_weights(weights, quadruplets.shape[0])
        points = np.unique(quadruplets.reshape(-1, quadruplets.shape[2]), axis=0)
        prior = initialize_metric(points, self.prior, self.random_state)
        prior_inv = _inverse_of_prior(prior)
        M, self.n_iter_ = _minimize_lsml(prior, vab, vcd, weights, prior_inv, self.tol,
                                         self.max_iter, verbose_name(self))
        self.components_ = components_from_metric(M)
        return self


# The Attributes and References sections of LSML and LSML_Supervised; {fitted_on} ends the
# attributes with those of what each is fitted on.
_LSML_DOC = {"attributes": METRIC_ATTRIBUTES, "lsml_fitted": """
    {attributes}
    n_iter_ : int
        Number of gradient steps taken.
    {fitted_on}

    References
    ----------
    .. [1] E. Y. Liu, Z. Guo, X. Zhang, V. Jojic and W. Wang. "Metric Learning from Relative
       Comparisons by Minimizing Squared Residual". ICDM 2012.
"""}


@fill_doc(**_LSML_DOC, fitted_on=N_FEATURES_IN)
class LSML(QuadrupletsClassifierMixin, _BaseLSML):
    """Least Squared-residual Metric Learning (LSML) on quadruplets.

    Each quadruplet ``(a, b, c, d)`` states that ``a`` and ``b`` are more similar than ``c``
    and ``d``. LSML minimises the weighted squared residuals ``(d(a, b) - d(c, d))^2`` of the
    violated comparisons plus the LogDet divergence of the Mahalanobis matrix ``M`` to a
    prior, by gradient descent with a backtracking step-size search that keeps ``M``
    positive definite. Steps follow the natural gradient of the LogDet geometry, so they
    converge on unscaled features too (metric-learn's plain steps often stop early there).
    Useful when relative comparisons are easier to obtain than absolute similar/dissimilar
    labels. The loss has no margin: a violated comparison is
    pulled towards equality, so ``predict`` (which counts ties as unsatisfied) may still
    return -1 for it; ``decision_function`` shows how far each comparison is from holding.

    Parameters
    ----------
    tol : float, default=1e-3
        Stop when the Frobenius norm of the gradient falls below ``tol``.
    max_iter : int, default=1000
        Maximum number of gradient steps.
    prior : {'identity', 'covariance', 'random'} or array of shape (n_features, n_features), \
default='identity'
        The prior metric, which is also the starting point; it must be positive definite.
        'covariance' is the inverse covariance of the samples in the quadruplets.
    verbose : bool, default=False
        Print the loss at each iteration.
    preprocessor : array-like or callable, default=None
        Data to index when quadruplets are given as (n_quadruplets, 4) index arrays.
    random_state : int, RandomState instance or None, default=None
        Seeds the 'random' prior.

    {lsml_fitted}

    Examples
    --------
    >>> import numpy as np
    >>> from skmetric import LSML
    >>> X = np.array([[0., 0.], [0., 15.], [10., 0.], [10., 15.]])
    >>> # Samples differing in the second feature should be closer than in the first.
    >>> quadruplets = np.array([[0, 1, 0, 2], [2, 3, 1, 3]])
    >>> lsml = LSML(preprocessor=X).fit(quadruplets)
    >>> M = lsml.get_mahalanobis_matrix()
    >>> bool(M[0, 0] > 2 * M[1, 1])
    True
    """

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, quadruplets, weights=None):
        """Learn the metric from quadruplets.

        Parameters
        ----------
        quadruplets : array-like of shape (n_quadruplets, 4, n_features) or (n_quadruplets, 4)
            Quadruplets ``(a, b, c, d)`` with ``d(a, b) < d(c, d)`` wanted, as samples or as
            indices into ``preprocessor``.
        weights : array-like of shape (n_quadruplets,), default=None
            Non-negative importance of each quadruplet (uniform if None).

        Returns
        -------
        self : object
        """
        quadruplets = self._prepare_tuples(quadruplets, reset=True)
        return self._fit(quadruplets, weights)


@fill_doc(**_LSML_DOC, fitted_on=FEATURES_IN)
class LSML_Supervised(SupervisedTuplesMixin, _BaseLSML):
    """LSML fitted on class labels: quadruplets are drawn from the labels.

    Each drawn quadruplet ``(a, b, c, d)`` pairs two samples of one class with two samples
    of different classes, then :class:`LSML` learns from them.

    Parameters
    ----------
    tol, max_iter, prior, verbose
        As in :class:`LSML`.
    n_constraints : int, default=None
        Number of quadruplets to draw; None means ``20 * n_classes**2``.
    weights : array-like of shape (n_constraints,), default=None
        Non-negative importance of each drawn quadruplet (uniform if None).
    preprocessor : array-like or callable, default=None
        Data to index when ``X`` is given as a 1-D array of sample indices.
    random_state : int, RandomState instance or None, default=None
        Seeds the draw of quadruplets and the 'random' prior.

    {lsml_fitted}

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from skmetric import LSML_Supervised
    >>> X, y = make_classification(n_samples=100, n_features=4, n_informative=3,
    ...                            n_redundant=0, random_state=0)
    >>> lsml = LSML_Supervised(n_constraints=200, random_state=0).fit(X, y)
    >>> lsml.transform(X).shape
    (100, 4)
    """

    _parameter_constraints = {
        **_COMMON_CONSTRAINTS,
        **N_CONSTRAINTS_CONSTRAINT,
        "weights": ["array-like", None],
    }

    def __init__(self, tol=1e-3, max_iter=1000, prior="identity", n_constraints=None,
                 weights=None, verbose=False, preprocessor=None, random_state=None):
        super().__init__(tol=tol, max_iter=max_iter, prior=prior, verbose=verbose,
                         preprocessor=preprocessor, random_state=random_state)
        self.n_constraints = n_constraints
        self.weights = weights

    _tuple_size = 4

    def _fit_labelled(self, X, y):
        quadruplets, _ = self._draw_tuples(X, y)
        return self._fit(quadruplets, self.weights)


def _check_weights(weights, n_quadruplets):
    """Quadruplet weights as a float array summing to 1 (uniform when None)."""
    if weights is None:
        return np.full(n_quadruplets, 1.0 / n_quadruplets)
    w = real_array(weights, "weights")
    if w.ndim != 1 or w.shape[0] != n_quadruplets:
        raise ValueError(
            f"weights must be a 1-D array with one weight per quadruplet ({n_quadruplets}); "
            f"got shape {w.shape}."
        )
    if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ValueError("weights must be finite, non-negative and not all zero.")
    return w / w.sum()


def _inverse_of_prior(prior):
    """Inverse of the prior; the LogDet regulariser needs it strictly positive definite."""
    try:
        chol = linalg.cho_factor(prior, lower=True)
    except linalg.LinAlgError:
        chol = None
    if chol is None or np.min(np.abs(np.diag(chol[0]))) <= 1e-10 * np.sqrt(
            max(np.abs(prior).max(), 1e-300)):
        raise ValueError(
            "LSML needs a strictly positive definite prior, but the prior matrix is singular "
            "(e.g. prior='covariance' on collinear or constant features). Use "
            "prior='identity' or pass a positive definite array."
        )
    return linalg.cho_solve(chol, np.eye(prior.shape[0]))


def _lsml_loss(M, vab, vcd, weights, prior_inv):
    """LSML objective at a positive definite M; ``inf`` outside the PD cone.

    ``sum_i w_i (sqrt(vab_i' M vab_i) - sqrt(vcd_i' M vcd_i))^2`` over violated quadruplets
    (``d(a, b) > d(c, d)``) plus ``tr(M P^-1) - log det M``.
    """
    return _lsml_terms(M, vab, vcd, weights, prior_inv)[0]


def _lsml_terms(M, vab, vcd, weights, prior_inv):
    """The loss and what its gradient reuses: the Cholesky factor and squared distances."""
    try:
        chol = np.linalg.cholesky(M)
    except np.linalg.LinAlgError:
        return np.inf, None
    dab = np.einsum("ij,ij->i", vab @ M, vab)
    dcd = np.maximum(np.einsum("ij,ij->i", vcd @ M, vcd), 0.0)
    viol = dab > dcd
    residual = np.sqrt(dab[viol]) - np.sqrt(dcd[viol])
    logdet = 2.0 * np.sum(np.log(np.diag(chol)))
    loss = float(weights[viol] @ residual**2 + np.sum(M * prior_inv) - logdet)
    return loss, (chol, dab, dcd, viol)


def _lsml_gradient(M, vab, vcd, weights, prior_inv, state=None):
    """Gradient of :func:`_lsml_loss` with respect to the symmetric matrix M."""
    if state is None:
        state = _lsml_terms(M, vab, vcd, weights, prior_inv)[1]
    chol, dab, dcd, viol = state
    chol_inv = np.linalg.inv(chol)
    M_inv = chol_inv.T @ chol_inv
    dab, dcd, w = dab[viol], dcd[viol], weights[viol]
    # d/dM (sqrt(dab) - sqrt(dcd))^2 = (1 - sqrt(dcd/dab)) vab vab' + (1 - sqrt(dab/dcd)) vcd vcd'.
    # A zero vcd (c == d) has dcd = 0 and a zero outer product: it contributes nothing.
    coef_ab = w * (1.0 - np.sqrt(dcd / dab))
    ratio = np.divide(dab, dcd, out=np.zeros_like(dab), where=dcd > 0)
    coef_cd = np.where(dcd > 0, w * (1.0 - np.sqrt(ratio)), 0.0)
    A, C = vab[viol], vcd[viol]
    grad = (A.T * coef_ab) @ A + (C.T * coef_cd) @ C + prior_inv - M_inv
    return (grad + grad.T) / 2


def _minimize_lsml(M, vab, vcd, weights, prior_inv, tol, max_iter, verbose):
    """Gradient descent with a backtracking step-size search kept inside the PD cone.

    Steps follow the natural gradient ``M G M`` of the LogDet geometry rather than ``G``:
    it is a descent direction, and it is insensitive to the scale of each feature, which
    otherwise makes plain gradient steps crawl on unscaled data.
    """
    loss, state = _lsml_terms(M, vab, vcd, weights, prior_inv)
    step = 1.0
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        grad = _lsml_gradient(M, vab, vcd, weights, prior_inv, state)
        if np.linalg.norm(grad) < tol:
            break
        direction = M @ grad @ M
        direction = (direction + direction.T) / 2
        slope = np.sum(grad * direction)
        # Cap the step so that M changes by at most about its own size: on features far
        # from unit scale the gradient is huge, and 60 halvings from 1 would not reach it.
        step = min(step * 2.0, 1.0 / max(np.linalg.norm(grad @ M), 1e-300))
        accepted = False
        for _ in range(60):
            M_new = M - step * direction
            new_loss, new_state = _lsml_terms(M_new, vab, vcd, weights, prior_inv)
            # Armijo sufficient decrease; an infinite loss means M_new left the PD cone.
            if new_loss <= loss - 1e-4 * step * slope:
                accepted = True
                break
            step /= 2.0
        if not accepted:
            break
        M, loss, state = M_new, new_loss, new_state
        if verbose:
            progress(verbose, f"iter {n_iter}  loss {loss:.6g}  |grad| {np.linalg.norm(grad):.3g}")
    return M, n_iter
