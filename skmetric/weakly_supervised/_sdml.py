"""Sparse Determinant Metric Learning (SDML), on pairs and from class labels."""

from numbers import Real

import numpy as np
from scipy.linalg import eigh, pinvh
from sklearn.base import BaseEstimator
from sklearn.covariance import graphical_lasso

from .._base import MahalanobisMixin, PairsClassifierMixin
from .._docstrings import FEATURES_IN, METRIC_ATTRIBUTES, N_PAIRS, PAIRS_FITTED, fill_doc
from .._init import PRIOR_OPTIONS, components_from_metric, initialize_metric
from .._sklearn_compat import Interval, StrOptions
from .._supervised import N_CONSTRAINTS_CONSTRAINT, SupervisedTuplesMixin
from .._warn import warn_user

# Eigenvalues of the empirical matrix below this fraction of the largest are raised to it.
_EIGEN_FLOOR = 1e-3


class _BaseSDML(MahalanobisMixin, BaseEstimator):
    """The SDML algorithm on labelled pairs; subclasses provide ``fit``."""

    _parameter_constraints: dict = {
        "balance_param": [Interval(Real, 0, np.inf, closed="left")],
        "sparsity_param": [Interval(Real, 0, np.inf, closed="left")],
        "prior": [StrOptions(set(PRIOR_OPTIONS)), "array-like"],
        "verbose": ["verbose"],
        "preprocessor": ["array-like", callable, None],
        "random_state": ["random_state"],
    }

    def __init__(self, balance_param=0.5, sparsity_param=0.01, prior="identity",
                 verbose=False, preprocessor=None, random_state=None):
        self.balance_param = balance_param
        self.sparsity_param = sparsity_param
        self.prior = prior
        self.verbose = verbose
        self.preprocessor = preprocessor
        self.random_state = random_state

    def _fit(self, pairs, y):
        """Learn ``components_`` from pairs (n, 2, d) and labels in {-1, +1}."""
        points = np.unique(pairs.reshape(-1, pairs.shape[2]), axis=0)
        M0 = initialize_metric(points, self.prior, self.random_state)
        P = _empirical_matrix(pairs, y, M0, self.balance_param)
        P, self.n_floored_, n_negative = _floor_eigenvalues(P)
        if n_negative:
            warn_user(
                f"SDML: inv(prior) + balance_param * (pair term) had {n_negative} "
                "non-positive eigenvalue(s) (dissimilar pairs outweigh the prior), raised "
                "to 1e-3 times the largest; the metric may be dominated by those "
                f"directions. Lower balance_param (now {self.balance_param:.3g})"
                f"{_balance_hint(pairs, y, M0)} for a well-posed problem.",
                UserWarning,
            )
        M = _sparse_inverse(P, self.sparsity_param, self.verbose)
        self.components_ = components_from_metric(M)
        return self


# The Attributes and References sections of SDML and SDML_Supervised; {fitted_on} ends the
# attributes with those of what each is fitted on.
_SDML_DOC = {"attributes": METRIC_ATTRIBUTES, "sdml_fitted": """
    {attributes}
    n_floored_ : int
        Number of eigenvalues of ``P`` raised to the floor (0 when ``P`` was well posed).
    {fitted_on}

    References
    ----------
    .. [1] G.-J. Qi, J. Tang, Z.-J. Zha, T.-S. Chua and H.-J. Zhang. "An efficient sparse
       metric learning in high-dimensional space via l1-penalized log-determinant
       regularization". ICML 2009.
"""}


@fill_doc(**_SDML_DOC, fitted_on=PAIRS_FITTED)
class SDML(PairsClassifierMixin, _BaseSDML):
    """Sparse Determinant Metric Learning (SDML) on similar/dissimilar pairs.

    SDML learns a sparse Mahalanobis matrix M close to a prior ``M0`` in LogDet divergence
    that makes similar pairs close and dissimilar pairs far: it minimises
    ``tr(M P) - logdet(M) + sparsity_param * ||M||_1`` with
    ``P = inv(M0) + balance_param * sum_i y_i (a_i - b_i)(a_i - b_i)^T``, a graphical-lasso
    problem solved with :func:`sklearn.covariance.graphical_lasso`.

    When dissimilar pairs outweigh the prior, ``P`` is not positive definite and the
    problem has no solution (the reference implementation then fails). skmetric raises
    the eigenvalues of ``P`` below ``1e-3`` times its largest to that floor (their number
    is stored in ``n_floored_``) and, when some were negative, warns with the
    ``balance_param`` below which ``P`` is positive definite; the floored directions,
    where dissimilar pairs dominate, get the largest weights. The same floor keeps an
    ill-conditioned ``P`` (e.g. ``prior='covariance'`` on unscaled features) tractable for
    the graphical lasso. If the graphical lasso still fails, a ValueError says which
    parameter to change.

    Parameters
    ----------
    balance_param : float, default=0.5
        Weight ``eta`` of the pair term against the prior in
        ``P = inv(M0) + eta * sum_i y_i (a_i - b_i)(a_i - b_i)^T``. Lower it (e.g. 1e-5 on
        unscaled data) when the learned metric is dominated by a few directions.
    sparsity_param : float, default=0.01
        Graphical-lasso penalty on the off-diagonal entries of the learned matrix,
        applied to the standardised ``P`` (unit diagonal) so that it does not depend on
        the scale of the features.
    prior : {'identity', 'covariance', 'random'} or ndarray, default='identity'
        The prior Mahalanobis matrix ``M0``; 'covariance' (the inverse covariance of the
        samples in the pairs) is usually the better choice on unscaled data.
    verbose : bool, default=False
        Print graphical-lasso progress.
    preprocessor : array-like or callable, default=None
        Data to index when pairs are given as an (n_pairs, 2) array of indices.
    random_state : int, RandomState instance or None, default=None
        Seeds the random prior (``prior='random'``).

    {sdml_fitted}

    Examples
    --------
    With ``preprocessor=X``, each pair holds two row indices of ``X``:

    >>> import numpy as np
    >>> from skmetric import SDML
    >>> X = np.array([[1.2, 7.5], [1.3, 1.5], [6.4, 2.6], [6.2, 9.7]])
    >>> pairs, y = [[0, 1], [2, 3], [0, 2], [1, 3]], [1, 1, -1, -1]
    >>> sdml = SDML(balance_param=0.005, preprocessor=X).fit(pairs, y)
    >>> sdml.get_mahalanobis_matrix().shape
    (2, 2)
    """


@fill_doc(**_SDML_DOC, fitted_on=FEATURES_IN, n_pairs=N_PAIRS)
class SDML_Supervised(SupervisedTuplesMixin, _BaseSDML):
    """SDML fitted on class labels: pairs are drawn with same class = similar.

    See :class:`SDML` for the algorithm and the handling of ill-posed problems.

    Parameters
    ----------
    balance_param, sparsity_param, prior, verbose
        As in :class:`SDML` (lower ``balance_param``, e.g. to 1e-5, on unscaled data).
    preprocessor : array-like or callable, default=None
        Data to index when ``X`` is given as a 1-D array of sample indices.
    {n_pairs}
    random_state : int, RandomState instance or None, default=None
        Seeds the pairs drawn and the random prior (``prior='random'``).

    {sdml_fitted}

    Examples
    --------
    >>> from sklearn.datasets import load_wine
    >>> from skmetric import SDML_Supervised
    >>> X, y = load_wine(return_X_y=True)
    >>> sdml = SDML_Supervised(prior="covariance", balance_param=1e-5, random_state=0)
    >>> sdml.fit(X, y).transform(X).shape
    (178, 13)
    """

    _parameter_constraints: dict = {
        **_BaseSDML._parameter_constraints,
        **N_CONSTRAINTS_CONSTRAINT,
    }

    def __init__(self, balance_param=0.5, sparsity_param=0.01, prior="identity",
                 n_constraints=None, verbose=False, preprocessor=None, random_state=None):
        super().__init__(balance_param=balance_param, sparsity_param=sparsity_param,
                         prior=prior, verbose=verbose, preprocessor=preprocessor,
                         random_state=random_state)
        self.n_constraints = n_constraints


def _empirical_matrix(pairs, y, M0, balance_param):
    """``P = inv(M0) + balance_param * sum_i y_i d_i d_i^T`` with ``d_i`` the differences."""
    diff = pairs[:, 0] - pairs[:, 1]
    P = pinvh(M0) + balance_param * ((diff.T * y) @ diff)
    return (P + P.T) / 2


def _balance_hint(pairs, y, M0):
    """`` below <b>, where ...`` with ``b`` under the ``balance_param`` beyond which ``P``
    stops being positive definite ('' when there is none to name).

    ``P = A + eta * B`` (``A = inv(M0)``) is positive definite exactly while ``eta`` is below
    ``-1 / mu``, ``mu`` the most negative generalised eigenvalue of ``B v = mu A v``. The
    bound is rounded down to two digits, so that the value shown is itself well posed.
    """
    diff = pairs[:, 0] - pairs[:, 1]
    A, B = pinvh(M0), (diff.T * y) @ diff
    try:
        mu = eigh((B + B.T) / 2, (A + A.T) / 2, eigvals_only=True)[0]
    except np.linalg.LinAlgError:  # A singular or indefinite: no balance helps
        return ""
    if mu >= 0:
        return ""
    bound = -1.0 / mu
    step = 10.0 ** (np.floor(np.log10(bound)) - 1)
    return (f" below {np.floor(bound / step) * step:.2g}, where that matrix stays positive "
            "definite with this prior,")


def _floor_eigenvalues(P):
    """Raise eigenvalues of ``P`` below ``_EIGEN_FLOOR * max`` to that floor.

    Returns the new matrix, the number of eigenvalues raised and how many were <= 0.
    """
    w, V = eigh(P)
    top = np.abs(w).max()
    if top == 0:
        raise ValueError(
            "The SDML matrix inv(prior) + balance_param * (pair term) is zero; use a "
            "non-zero prior or balance_param."
        )
    floor = _EIGEN_FLOOR * top
    low = w < floor
    if not low.any():
        return P, 0, 0
    P = (V * np.maximum(w, floor)) @ V.T
    return (P + P.T) / 2, int(low.sum()), int(np.sum(w <= 0))


def _sparse_inverse(P, alpha, verbose):
    """Sparse precision of ``P`` by graphical lasso on its standardised form."""
    if P.shape[0] == 1 or alpha == 0:
        # Nothing to make sparse: the minimiser is the plain inverse.
        M = np.linalg.inv(P)
        return (M + M.T) / 2
    scale = np.sqrt(np.diag(P))
    C = P / np.outer(scale, scale)
    try:
        _, precision = graphical_lasso(C, alpha=alpha, mode="cd", max_iter=200,
                                       verbose=bool(verbose))
    except (FloatingPointError, ValueError) as exc:
        raise ValueError(
            "SDML's graphical lasso failed on the matrix inv(prior) + balance_param * "
            f"(pair term) ({exc}). Lower balance_param (e.g. 1e-3 or 1e-5), raise "
            "sparsity_param, or use prior='covariance'."
        ) from exc
    M = precision / np.outer(scale, scale)
    return (M + M.T) / 2
