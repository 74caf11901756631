"""Information Theoretic Metric Learning (ITML), on pairs and from class labels."""

from numbers import Integral, Real

import numpy as np
from scipy.linalg import blas
from scipy.spatial.distance import pdist
from sklearn.base import BaseEstimator

from .._base import MahalanobisMixin, PairsClassifierMixin
from .._compute._inner_cv import N_SPLITS, choose_strength, silent
from .._compute._toward_prior import GEODESIC_STRENGTHS, geodesic_map, geodesic_path
from .._docstrings import (
    FEATURES_IN,
    FIT_PAIRS,
    FIT_PAIRS_END,
    FIT_X_Y,
    METRIC_ATTRIBUTES,
    N_PAIRS,
    PAIRS_FITTED,
    fill_doc,
)
from .._init import PRIOR_OPTIONS, components_from_metric, initialize_metric
from .._sklearn_compat import Interval, Options, StrOptions
from .._supervised import (
    N_CONSTRAINTS_CONSTRAINT,
    SupervisedTuplesMixin,
    check_n_constraints,
    draw_tuples,
    validate_supervised,
)
from .._validation import fit_context, real_array
from .._warn import progress, verbose_name


class _BaseITML(MahalanobisMixin, BaseEstimator):
    """The ITML algorithm on labelled pairs; subclasses provide ``fit``."""

    _parameter_constraints: dict = {
        "gamma": [Interval(Real, 0, None, closed="neither"), Options(Real, {np.inf})],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "prior": [StrOptions(set(PRIOR_OPTIONS)), "array-like"],
        "bounds": ["array-like", None],
        "verbose": ["verbose"],
        "preprocessor": ["array-like", callable, None],
        "random_state": ["random_state"],
        "prior_strength": [Interval(Real, 0, None, closed="both")],
    }

    def __init__(self, gamma=1.0, max_iter=1000, tol=1e-3, prior="identity", bounds=None,
                 verbose=False, preprocessor=None, random_state=None, prior_strength=0.0):
        self.gamma = gamma
        self.max_iter = max_iter
        self.tol = tol
        self.prior = prior
        self.bounds = bounds
        self.verbose = verbose
        self.preprocessor = preprocessor
        self.random_state = random_state
        self.prior_strength = prior_strength

    # Exact on samples divided by c: the problem is the same with the prior times c**2
    # (LogDet is invariant under congruence) and the same bounds on squared distances.
    _rescalable = True

    def _fit(self, pairs, y, bounds=None, strength=None):
        """Learn ``components_`` from pairs (n, 2, d) and labels in {-1, +1}.

        The learned metric is moved toward the prior by ``strength`` (default: the
        ``prior_strength`` parameter), along their geodesic (see :func:`geodesic_map`).
        """
        L, L0, self.bounds_, self.n_iter_ = self._learn(pairs, y, bounds)
        self.prior_strength_ = float(self.prior_strength if strength is None else strength)
        self.components_ = self._unscale(geodesic_map(L, L0, self.prior_strength_))
        return self

    def _learn(self, pairs, y, bounds=None):
        """ITML's map and the prior's, in fit units, the bounds used and the sweeps run."""
        points = np.unique(pairs.reshape(-1, pairs.shape[2]), axis=0)
        A0 = self._prior_in_fit_units(points)
        # ITML's matrices are positive definite in exact arithmetic (LogDet keeps the
        # prior's): a negative eigenvalue is round-off or a direction lost to cancellation,
        # which _check_precision reports with what to do, so none is refused here (tol=inf).
        L0, w0 = components_from_metric(A0, tol=np.inf, return_eigenvalues=True)
        bounds = _check_bounds(self.bounds if bounds is None else bounds, points, L0)
        diff = pairs[:, 0] - pairs[:, 1]
        # A pair of identical samples constrains nothing (and would divide by zero).
        keep = np.any(diff != 0, axis=1)
        A, n_iter = _itml_projections(
            diff[keep], y[keep], A0, bounds, self.gamma, self.max_iter, self.tol,
            verbose_name(self),
        )
        L, w = components_from_metric(A, tol=np.inf, return_eigenvalues=True)
        _check_precision(w, w0, bounds)
        return L, L0, bounds, n_iter

    def _prior_in_fit_units(self, points):
        """The prior ``M0`` for the (possibly rescaled, see ``_rescale_for_fit``) points.

        'covariance' is computed from them; any other prior is given in the units of the
        original samples, so it is multiplied by ``c**2`` for points divided by ``c``.
        """
        A0 = initialize_metric(points, self.prior, self.random_state)
        c = getattr(self, "_fit_scale", 1.0)
        if c == 1.0 or (isinstance(self.prior, str) and self.prior == "covariance"):
            return A0
        with np.errstate(over="ignore", invalid="ignore"):
            A0 = A0 * np.float64(c) ** 2
        if not np.all(np.isfinite(A0)):
            raise ValueError(
                f"ITML cannot use prior={_describe(self.prior)} on samples of magnitude about "
                f"{c:.3g}: the prior's squared distances overflow float64. Standardise the "
                "features first (e.g. with sklearn.preprocessing.StandardScaler), or use "
                "prior='covariance', which follows the units of the samples."
            )
        return A0


# The Attributes and References sections of ITML and ITML_Supervised; {fitted_on} ends the
# attributes with those of what each is fitted on.
_PRIOR_FITTED = """\
prior_strength_ : float
    The strength used."""
_PRIOR_FITTED_AUTO = """\
prior_strength_ : float
    The strength used: ``prior_strength``, or the one 'auto' chose.
prior_scores_ : dict
    With 'auto': the mean inner-CV score of each candidate strength."""
_ITML_DOC = {"attributes": METRIC_ATTRIBUTES, "itml_fitted": """
    {attributes}
    bounds_ : ndarray of shape (2,)
        The bounds on squared distances used.
    n_iter_ : int
        Number of sweeps run.
    {prior_fitted}
    {fitted_on}

    References
    ----------
    .. [1] J. V. Davis, B. Kulis, P. Jain, S. Sra and I. S. Dhillon. "Information-theoretic
       metric learning". ICML 2007.
"""}


@fill_doc(**_ITML_DOC, fitted_on=PAIRS_FITTED, prior_fitted=_PRIOR_FITTED)
class ITML(PairsClassifierMixin, _BaseITML):
    """Information Theoretic Metric Learning (ITML) on similar/dissimilar pairs.

    ITML finds the Mahalanobis matrix M closest to a prior ``M0`` in LogDet divergence
    (the KL divergence of the two Gaussians they define) such that the squared learned
    distance of similar pairs is below ``bounds_[0]`` and that of dissimilar pairs above
    ``bounds_[1]``, up to slack
    controlled by ``gamma``. It solves this by cyclic Bregman projections onto one pair
    constraint at a time, each a rank-one update of M, so M stays symmetric positive
    definite without eigen-decompositions.

    Parameters
    ----------
    gamma : float, default=1.0
        Slack trade-off: small values let constraints be violated, ``np.inf`` enforces them
        strictly.
    max_iter : int, default=1000
        Maximum number of sweeps over all constraints.
    tol : float, default=1e-3
        Stop when the relative change of the dual variables over a sweep is below ``tol``.
    prior : {'identity', 'covariance', 'random'} or ndarray, default='identity'
        The prior Mahalanobis matrix ``M0`` (see :func:`skmetric._init.initialize_metric`);
        'covariance' is the inverse covariance of the samples in the pairs.
    bounds : array-like of 2 floats, default=None
        ``(u, l)``: the squared learned distance of similar pairs should be below ``u``
        and that of dissimilar pairs above ``l``. None uses the 5th and 95th percentiles
        of the (unsquared) distances under ``M0`` between the distinct samples of the
        pairs, metric-learn's convention: on data with distances above 1 it asks for
        tighter similar pairs than percentiles of squared distances would, which gave
        better k-NN accuracy in our benchmarks.
    verbose : bool, default=False
        Print the convergence measure after each sweep.
    preprocessor : array-like or callable, default=None
        Data to index when pairs are given as an (n_pairs, 2) array of indices.
    random_state : int, RandomState instance or None, default=None
        Seeds ``prior='random'``.
    prior_strength : float >= 0, default=0.0
        Pull toward the prior: the learned ``M`` becomes the point
        ``M0^(1/2) (M0^(-1/2) M M0^(-1/2))^t M0^(1/2)``, ``t = 1 / (1 + prior_strength)``,
        of the LogDet geodesic from ``M0`` to ``M``. 0 is plain ITML, ``np.inf`` gives
        ``M0``.

    {itml_fitted}

    Examples
    --------
    >>> import numpy as np
    >>> from skmetric import ITML
    >>> pairs = np.array([[[1.2, 7.5], [1.3, 1.5]], [[6.4, 2.6], [6.2, 9.7]],
    ...                   [[1.3, 4.5], [3.2, 4.6]], [[6.2, 5.5], [5.4, 5.4]]])
    >>> y = np.array([1, 1, -1, -1])
    >>> itml = ITML().fit(pairs, y)
    >>> itml.predict(pairs).shape
    (4,)
    """

    @fit_context(prefer_skip_nested_validation=True)
    @fill_doc(pairs_y=FIT_PAIRS, end=FIT_PAIRS_END)
    def fit(self, pairs, y, bounds=None, calibration_params=None):
        """Learn the metric from labelled pairs, then calibrate ``threshold_`` on them.

        Parameters
        ----------
        {pairs_y}
        bounds : array-like of 2 floats, default=None
            Overrides the ``bounds`` parameter for this fit (metric-learn's signature).
        {end}
        """
        return self._fit_pairs(pairs, y, calibration_params, bounds=bounds)


@fill_doc(**_ITML_DOC, fitted_on=FEATURES_IN, n_pairs=N_PAIRS,
          prior_fitted=_PRIOR_FITTED_AUTO)
class ITML_Supervised(SupervisedTuplesMixin, _BaseITML):
    """ITML fitted on class labels: pairs are drawn with same class = similar.

    Parameters
    ----------
    gamma, max_iter, tol, prior, bounds, verbose, preprocessor
        As in :class:`ITML`.
    {n_pairs}
    random_state : int, RandomState instance or None, default=None
        Seeds the drawing of pairs and ``prior='random'`` (and the inner folds of 'auto').
    prior_strength : float >= 0 or 'auto', default='auto'
        As in :class:`ITML` (0: plain ITML); 'auto' picks among ``inf, 3, 1, 1/3, 0`` by
        an inner 3-fold cross-validation on the training data (3-NN score; each inner fit
        draws two thirds of the constraints, so the three cost about two full fits).

    {itml_fitted}

    Examples
    --------
    >>> from sklearn.datasets import make_blobs
    >>> from skmetric import ITML_Supervised
    >>> X, y = make_blobs(n_samples=90, centers=3, random_state=0)
    >>> itml = ITML_Supervised(random_state=0).fit(X, y)
    >>> itml.bounds_.shape, itml.transform(X).shape
    ((2,), (90, 2))
    """

    _parameter_constraints: dict = {
        **_BaseITML._parameter_constraints,
        **N_CONSTRAINTS_CONSTRAINT,
        "prior_strength": [Interval(Real, 0, None, closed="both"), StrOptions({"auto"})],
    }

    def __init__(self, gamma=1.0, max_iter=1000, tol=1e-3, n_constraints=None,
                 prior="identity", bounds=None, verbose=False, preprocessor=None,
                 random_state=None, prior_strength="auto"):
        super().__init__(gamma=gamma, max_iter=max_iter, tol=tol, prior=prior, bounds=bounds,
                         verbose=verbose, preprocessor=preprocessor,
                         random_state=random_state, prior_strength=prior_strength)
        self.n_constraints = n_constraints

    @fit_context(prefer_skip_nested_validation=True)
    @fill_doc(X_y=FIT_X_Y)
    def fit(self, X, y, bounds=None):
        """Draw pairs from the labels and learn the metric.

        Parameters
        ----------
        {X_y}
        bounds : array-like of 2 floats, default=None
            Overrides the ``bounds`` parameter for this fit.

        Returns
        -------
        self : object
        """
        X, y = validate_supervised(self, X, y)
        strength = self.prior_strength
        if strength == "auto":
            codes = np.unique(y, return_inverse=True)[1]
            quiet = silent(self)  # the inner fits do not print their sweeps
            choice = choose_strength(lambda Xt, yt: quiet._path(Xt, yt, bounds), X, codes,
                                     random_state=self.random_state,
                                     verbose=verbose_name(self),
                                     strengths=GEODESIC_STRENGTHS)
            strength, self.prior_scores_ = choice.strength or 0.0, choice.scores
        return self._fit(*self._draw_tuples(X, y), bounds, strength)

    def _path(self, X, codes, bounds):
        """Maps of every strength, from one ITML fit on an inner training fold.

        The fold draws its share of the constraints (``N_SPLITS - 1`` in ``N_SPLITS``, as
        it holds that share of the samples), so the inner fits cost about two full fits.
        """
        n = check_n_constraints(self.n_constraints, codes) * (N_SPLITS - 1) // N_SPLITS
        idx, labels = draw_tuples(codes, 2, max(n, 1), self.random_state, warn=False)
        return geodesic_path(*self._learn(X[idx], labels, bounds)[:2], GEODESIC_STRENGTHS)


def _check_bounds(bounds, points, L0):
    """The (similar, dissimilar) bounds: given, or distance percentiles under ``L0``."""
    if bounds is None:
        if points.shape[0] < 2:
            return np.array([1.0, 1.0])
        dist = pdist(points @ L0.T)
        bounds = np.percentile(dist, (5, 95))
    else:
        bounds = real_array(bounds, "bounds").ravel()
        if bounds.size != 2 or not np.all(np.isfinite(bounds)) or np.any(bounds < 0):
            raise ValueError(
                "bounds must be two finite non-negative numbers (similar_upper, "
                f"dissimilar_lower); got {bounds!r}."
            )
    # A zero bound would make the projections divide by zero.
    return np.where(bounds > 0, bounds, 1e-9).astype(np.float64)


def _describe(prior):
    return repr(prior) if isinstance(prior, str) else "<array>"


def _check_precision(w, w0, bounds):
    """Raise when the projections lost the precision of float64 (``w``, ``w0``: the
    eigenvalues of the learned matrix and of the prior, negative ones clipped to 0, which
    counts the same rank).

    ITML's LogDet divergence keeps the learned matrix as positive definite as its prior: a
    direction that collapses to zero means a projection subtracted two nearly equal numbers,
    which happens when the bounds are many orders of magnitude below the squared distances
    under the prior (e.g. the default bounds with prior='identity' on features far from
    unit scale), so the result would be silently wrong.
    """
    rank, rank0 = _numerical_rank(w), _numerical_rank(w0)
    if rank < rank0:
        raise ValueError(
            f"ITML lost numerical precision: the learned matrix has rank {rank} where the "
            f"prior has rank {rank0}, because the bounds ({bounds[0]:.3g}, {bounds[1]:.3g}) "
            "are orders of magnitude away from the squared distances under the prior. "
            "Standardise the features first (e.g. with sklearn.preprocessing.StandardScaler), use "
            "prior='covariance' (which follows the units of the samples), or pass bounds "
            "on the scale of the squared distances."
        )


def _numerical_rank(w):
    """The number of eigenvalues ``w`` above 1e-10 times the largest."""
    return int(np.sum(w > 1e-10 * max(w.max(), 0.0))) if w.max() > 0 else 0


def _itml_projections(diff, y, A0, sq_bounds, gamma, max_iter, tol, verbose):
    """Cyclic Bregman projections of Davis et al. (2007), Algorithm 1.

    ``diff`` holds the pair differences, ``y`` their labels and ``sq_bounds`` the bounds on
    squared distances (the targets of the projections). Returns the learned matrix and the
    number of sweeps.
    """
    n = diff.shape[0]
    A = np.asfortranarray(A0, dtype=np.float64).copy(order="F")
    if n == 0:
        return A, 0
    sign = np.where(y == 1, 1.0, -1.0)
    # Per-constraint slack targets start at the bound of the pair's kind.
    xi = np.where(y == 1, sq_bounds[0], sq_bounds[1]).astype(np.float64)
    lam = np.zeros(n)
    lam_old = np.zeros(n)
    g_proj = 1.0 if np.isinf(gamma) else gamma / (gamma + 1.0)
    inv_gamma = 0.0 if np.isinf(gamma) else 1.0 / gamma
    vs = list(np.ascontiguousarray(diff))
    signs, xis, lams = sign.tolist(), xi.tolist(), lam.tolist()
    dsymv, dsyr = blas.dsymv, blas.dsyr
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        for i in range(n):
            v = vs[i]
            Av = dsymv(1.0, A, v)  # A is kept symmetric in its upper triangle
            p = float(v @ Av)
            if p <= 1e-300:
                continue
            s = signs[i]
            # alpha of the projection onto d_A(v) <= xi (s=+1) or >= xi (s=-1), clipped by
            # the dual variable so it stays non-negative.
            alpha = min(lams[i], s * g_proj * (1.0 / p - 1.0 / xis[i]))
            lams[i] -= alpha
            beta = s * alpha / (1.0 - s * alpha * p)
            xis[i] = 1.0 / (1.0 / xis[i] + s * alpha * inv_gamma)
            dsyr(beta, Av, a=A, overwrite_a=1)
        lam = np.asarray(lams)
        norm_sum = np.linalg.norm(lam) + np.linalg.norm(lam_old)
        if norm_sum == 0:
            break
        conv = np.abs(lam_old - lam).sum() / norm_sum
        progress(verbose, f"sweep {n_iter}: relative change {conv:.3g}")
        if conv < tol:
            break
        lam_old = lam
    A = np.triu(A)
    return A + np.triu(A, 1).T, n_iter

