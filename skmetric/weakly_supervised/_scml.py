"""SCML: sparse compositional metric learning on triplets, from a set of rank-one bases."""

from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.neighbors import NearestNeighbors
from sklearn.utils import check_random_state

from .._base import MahalanobisMixin, TripletsClassifierMixin
from .._constraints import Constraints
from .._docstrings import FEATURES_IN, METRIC_ATTRIBUTES, N_FEATURES_IN, fill_doc
from .._init import components_from_metric
from .._sklearn_compat import Interval, StrOptions
from .._supervised import SupervisedTuplesMixin
from .._validation import fit_context, real_array
from .._warn import progress, verbose_name, warn_user

_COMMON_CONSTRAINTS = {
    "beta": [Interval(Real, 0, None, closed="left")],
    "n_basis": [Interval(Integral, 1, None, closed="left"), None],
    "gamma": [Interval(Real, 0, None, closed="neither")],
    "max_iter": [Interval(Integral, 1, None, closed="left")],
    "output_iter": [Interval(Integral, 1, None, closed="left")],
    "batch_size": [Interval(Integral, 1, None, closed="left")],
    "verbose": ["verbose"],
    "preprocessor": ["array-like", callable, None],
    "random_state": ["random_state"],
}
# Constant of AdaGrad's diagonal scaling that keeps it away from zero.
_ADAGRAD_DELTA = 1e-3


class _BaseSCML(MahalanobisMixin, BaseEstimator):
    """The SCML algorithm on triplets of samples; subclasses provide ``fit``."""

    _parameter_constraints = {
        **_COMMON_CONSTRAINTS,
        "basis": [StrOptions({"triplet_diffs"}), "array-like"],
    }

    def __init__(self, beta=1e-5, basis="triplet_diffs", n_basis=None, gamma=5e-3,
                 max_iter=10000, output_iter=500, batch_size=10, verbose=False,
                 preprocessor=None, random_state=None):
        self.beta = beta
        self.basis = basis
        self.n_basis = n_basis
        self.gamma = gamma
        self.max_iter = max_iter
        self.output_iter = output_iter
        self.batch_size = batch_size
        self.verbose = verbose
        self.preprocessor = preprocessor
        self.random_state = random_state

    def _fit(self, triplets, basis, rng):
        """Learn sparse basis weights on triplets (n, 3, d) and set ``components_``."""
        if self.output_iter > self.max_iter:
            raise ValueError(
                f"output_iter={self.output_iter} must not exceed max_iter={self.max_iter}."
            )
        dist_diff = _DistanceDifferences(triplets, basis)
        w = _minimize_scml(dist_diff, self.beta, self.gamma, self.max_iter, self.output_iter,
                           self.batch_size, rng, verbose_name(self))
        if not np.any(w > 0):
            warn_user(
                f"{type(self).__name__} gave every basis a zero weight, so the learned metric "
                "is zero. Lower beta, or provide more informative triplets or bases; on "
                "features much smaller than unit scale (its margin is a squared distance of "
                "1), standardise them first, e.g. with sklearn.preprocessing.StandardScaler.",
                ConvergenceWarning,
            )
        self.basis_ = basis
        self.basis_weights_ = w
        self.n_iter_ = self.max_iter
        self.components_ = components_from_metric((basis.T * w) @ basis)
        return self

    def _user_basis(self, n_features):
        """``basis`` given as an array, checked against the data and ``n_basis``."""
        basis = real_array(self.basis, "The basis array")
        if basis.ndim != 2 or basis.shape[1] != n_features or basis.shape[0] == 0:
            raise ValueError(
                f"A basis array must have shape (n_basis, n_features) with n_features = "
                f"{n_features}; got shape {basis.shape}."
            )
        if not np.all(np.isfinite(basis)):
            raise ValueError("The basis array contains NaN or infinity.")
        if self.n_basis is not None and self.n_basis != basis.shape[0]:
            raise ValueError(
                f"n_basis={self.n_basis} disagrees with the {basis.shape[0]} rows of the basis "
                "array; leave n_basis=None when passing an array."
            )
        return basis


# The Attributes section and the first reference of SCML and SCML_Supervised; {fitted_on} ends the
# attributes with those of what each is fitted on.
_SCML_DOC = {"attributes": METRIC_ATTRIBUTES, "scml_fitted": """
    {attributes}
    basis_ : ndarray of shape (n_basis, n_features)
        The rank-one bases.
    basis_weights_ : ndarray of shape (n_basis,)
        The learned non-negative weights (mostly zero).
    n_iter_ : int
        Number of stochastic updates made.
    {fitted_on}

    References
    ----------
    .. [1] Y. Shi, A. Bellet and F. Sha. "Sparse Compositional Metric Learning". AAAI 2014.
"""}


@fill_doc(**_SCML_DOC, fitted_on=N_FEATURES_IN)
class SCML(TripletsClassifierMixin, _BaseSCML):
    """Sparse Compositional Metric Learning (SCML) on triplets.

    SCML learns a Mahalanobis matrix ``M = sum_i w_i b_i b_i^T`` as a sparse non-negative
    combination of rank-one bases ``b_i``, so only ``n_basis`` weights are learned, and
    ``M`` is positive semi-definite by construction. The weights minimise the hinge loss
    ``[1 + d_M(a, p) - d_M(a, n)]_+`` over triplets (anchor, positive, negative) plus
    ``beta * ||w||_1``, by a stochastic composite method: regularised dual averaging with
    AdaGrad step sizes and an L1 proximal step over mini-batches of triplets. It suits
    high-dimensional data where learning a full matrix is costly.

    Parameters
    ----------
    beta : float, default=1e-5
        L1 regularisation of the basis weights (larger gives sparser metrics).
    basis : 'triplet_diffs' or array-like of shape (n_basis, n_features), \
default='triplet_diffs'
        The rank-one bases. 'triplet_diffs' takes the eigenvectors of
        ``sum (a - p)(a - p)^T - sum (a - n)(a - n)^T`` over random groups of
        ``n_features`` triplets; an array is used as given.
    n_basis : int, default=None
        Number of bases to build; None means ``80 * n_features`` for 'triplet_diffs'.
    gamma : float, default=5e-3
        Inverse learning rate of the AdaGrad updates (larger means smaller steps).
    max_iter : int, default=10000
        Number of stochastic updates.
    output_iter : int, default=500
        Every ``output_iter`` updates the full objective is evaluated (and printed when
        ``verbose``); the weights with the best objective are kept.
    batch_size : int, default=10
        Number of triplets per stochastic update.
    verbose : bool, default=False
        Print the objective every ``output_iter`` updates.
    preprocessor : array-like or callable, default=None
        Data to index when triplets are given as an (n_triplets, 3) array of indices.
    random_state : int, RandomState instance or None, default=None
        Seeds the basis construction and the draw of mini-batches.

    {scml_fitted}
    .. [2] J. Duchi, E. Hazan and Y. Singer. "Adaptive Subgradient Methods for Online
       Learning and Stochastic Optimization". JMLR 2011.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skmetric import SCML, Constraints
    >>> X, y = load_iris(return_X_y=True)
    >>> triplets = Constraints(y).generate_knntriplets(X, k_genuine=2, k_impostor=2)
    >>> scml = SCML(n_basis=20, max_iter=2000, output_iter=200, random_state=0,
    ...             preprocessor=X).fit(triplets)
    >>> scml.get_mahalanobis_matrix().shape
    (4, 4)
    >>> scml.score(triplets) > 0.9
    True
    """

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, triplets):
        """Learn the metric from triplets.

        Parameters
        ----------
        triplets : array-like of shape (n_triplets, 3, n_features) or (n_triplets, 3)
            Triplets (anchor, positive, negative) with ``d(anchor, positive) <
            d(anchor, negative)`` wanted, as samples or as indices into ``preprocessor``.

        Returns
        -------
        self : object
        """
        triplets = self._prepare_tuples(triplets, reset=True)
        rng = check_random_state(self.random_state)
        if isinstance(self.basis, str):
            basis = _triplet_diffs_basis(triplets, self.n_basis, rng)
        else:
            basis = self._user_basis(triplets.shape[2])
        return self._fit(triplets, basis, rng)


@fill_doc(**_SCML_DOC, fitted_on=FEATURES_IN)
class SCML_Supervised(SupervisedTuplesMixin, _BaseSCML):
    """SCML fitted on class labels, from nearest-neighbour triplets.

    For each sample, triplets pair it with each of its ``k_genuine`` nearest neighbours of
    the same class and each of its ``k_impostor`` nearest neighbours of other classes; then
    :class:`SCML` learns from them. The default 'lda' bases are local discriminant
    directions: k-means splits the data into regions, and linear discriminant analysis of
    the nearest samples of each class around each region's centre (at two neighbourhood
    sizes) gives unit bases.

    Parameters
    ----------
    k_genuine : int, default=3
        Same-class neighbours per sample.
    k_impostor : int, default=10
        Other-class neighbours per sample.
    basis : {'lda', 'triplet_diffs'} or array-like of shape (n_basis, n_features), \
default='lda'
        The rank-one bases (see above and :class:`SCML`).
    n_basis : int, default=None
        Number of bases; None means ``min(20 * n_features, 2 * n_samples * n_dirs - 1)``
        for 'lda', with ``n_dirs = min(n_classes - 1, n_features)``, and
        ``80 * n_features`` for 'triplet_diffs'.
    beta, gamma, max_iter, output_iter, batch_size, verbose
        As in :class:`SCML`.
    preprocessor : array-like or callable, default=None
        Data to index when ``X`` is given as a 1-D array of sample indices.
    random_state : int, RandomState instance or None, default=None
        Seeds k-means, the basis construction and the draw of mini-batches.

    {scml_fitted}

    Examples
    --------
    >>> from skmetric import SCML_Supervised
    >>> from sklearn.datasets import load_iris
    >>> X, y = load_iris(return_X_y=True)
    >>> scml = SCML_Supervised(max_iter=2000, random_state=0).fit(X, y)
    >>> scml.transform(X).shape
    (150, 4)
    """

    _parameter_constraints = {
        **_COMMON_CONSTRAINTS,
        "k_genuine": [Interval(Integral, 1, None, closed="left")],
        "k_impostor": [Interval(Integral, 1, None, closed="left")],
        "basis": [StrOptions({"lda", "triplet_diffs"}), "array-like"],
    }

    def __init__(self, k_genuine=3, k_impostor=10, beta=1e-5, basis="lda", n_basis=None,
                 gamma=5e-3, max_iter=10000, output_iter=500, batch_size=10, verbose=False,
                 preprocessor=None, random_state=None):
        super().__init__(beta=beta, basis=basis, n_basis=n_basis, gamma=gamma,
                         max_iter=max_iter, output_iter=output_iter, batch_size=batch_size,
                         verbose=verbose, preprocessor=preprocessor, random_state=random_state)
        self.k_genuine = k_genuine
        self.k_impostor = k_impostor

    def _fit_labelled(self, X, y):
        """Nearest-neighbour triplets (not random ones) and bases from the labels."""
        rng = check_random_state(self.random_state)
        triplets = X[Constraints(y).generate_knntriplets(X, self.k_genuine, self.k_impostor)]
        if isinstance(self.basis, str) and self.basis == "lda":
            basis = _local_lda_basis(X, y, self.n_basis, rng)
        elif isinstance(self.basis, str):
            basis = _triplet_diffs_basis(triplets, self.n_basis, rng)
        else:
            basis = self._user_basis(X.shape[1])
        return self._fit(triplets, basis, rng)


def _triplet_diffs_basis(triplets, n_basis, rng):
    """Bases from triplets: eigenvectors of positive minus negative difference scatters.

    Each round draws ``n_features`` triplets and keeps the eigenvectors of
    ``sum (a - p)(a - p)^T - sum (a - n)(a - n)^T`` with non-negligible eigenvalues, until
    ``n_basis`` bases (default ``80 * n_features``) are collected.
    """
    n_triplets, _, n_features = triplets.shape
    n_basis = 80 * n_features if n_basis is None else n_basis
    d_pos = triplets[:, 0] - triplets[:, 1]
    d_neg = triplets[:, 0] - triplets[:, 2]
    group = min(n_features, n_triplets)
    found, n_found = [], 0
    # Each useful round yields at least one basis; cap the rounds so a degenerate set of
    # triplets cannot loop forever.
    for _ in range(2 * n_basis + 10):
        if n_found >= n_basis:
            break
        pick = rng.choice(n_triplets, size=group, replace=False)
        scatter = d_pos[pick].T @ d_pos[pick] - d_neg[pick].T @ d_neg[pick]
        eigval, eigvec = np.linalg.eigh(scatter)
        keep = np.abs(eigval) > 1e-10 * max(np.abs(eigval).max(), 1e-300)
        if np.abs(eigval).max() == 0:
            continue
        found.append(eigvec[:, keep].T)
        n_found += int(keep.sum())
    if n_found == 0:
        raise ValueError(
            "Cannot build the 'triplet_diffs' basis: in every triplet the anchor, positive "
            "and negative samples coincide or their differences cancel. Check the triplets, "
            "or pass a basis array."
        )
    basis = np.vstack(found)[:n_basis]
    if basis.shape[0] < n_basis:
        warn_user(
            f"Only {basis.shape[0]} 'triplet_diffs' bases could be built (n_basis={n_basis}).",
            UserWarning,
        )
    return basis


def _local_lda_basis(X, y, n_basis, rng):
    """Unit discriminant directions of local neighbourhoods, at two scales.

    k-means centres split the data into regions; around each centre, the nearest samples
    of every class (10 and 20 of each, or 20 and 50 beyond 50 features) are fitted by a
    linear discriminant analysis whose directions become bases.
    """
    classes, y_codes, counts = np.unique(y, return_inverse=True, return_counts=True)
    n_samples, n_features = X.shape
    n_dirs = min(classes.size - 1, n_features)
    limit = 2 * n_samples * n_dirs
    if n_basis is None:
        n_basis = min(20 * n_features, limit - 1)
    elif n_basis >= limit:
        raise ValueError(
            f"n_basis={n_basis} is too large for basis='lda': {n_samples} samples and "
            f"{n_dirs} discriminant direction(s) per region allow fewer than {limit}. Lower "
            "n_basis or use basis='triplet_diffs'."
        )
    if n_basis < classes.size:
        warn_user(
            f"n_basis={n_basis} is below the number of classes ({classes.size}); the "
            "metric may discriminate poorly.",
            UserWarning,
        )
    n_clusters = int(np.ceil(n_basis / (2 * n_dirs)))
    # Ten restarts (as metric-learn): stable regions make the bases, and the metric, far
    # less sensitive to the seed.
    kmeans = KMeans(n_clusters=n_clusters, n_init=10, random_state=rng)
    centers = kmeans.fit(X).cluster_centers_
    scales = (20, 50) if n_features > 50 else (10, 20)
    # neighbours[c]: for every centre, indices (into X) of the nearest samples of class c.
    neighbours = []
    for c in range(classes.size):
        members = np.flatnonzero(y_codes == c)
        k = min(counts[c], scales[1])
        nn = NearestNeighbors(n_neighbors=k).fit(X[members])
        neighbours.append(members[nn.kneighbors(centers, return_distance=False)])
    found, n_found = [], 0
    for scale in scales:
        for i in range(n_clusters):
            if n_found >= n_basis:
                break
            idx = np.concatenate([nb[i, :scale] for nb in neighbours])
            directions = _lda_directions(X[idx], y_codes[idx], n_dirs)
            found.append(directions)
            n_found += directions.shape[0]
    if n_found == 0:
        raise ValueError(
            "Cannot build the 'lda' basis: no neighbourhood has discriminant directions "
            "(are the features constant?). Use basis='triplet_diffs' or pass a basis array."
        )
    return np.vstack(found)[:n_basis]


def _lda_directions(X, codes, n_dirs):
    """Unit discriminant directions of a linear discriminant analysis of ``(X, codes)``.

    As scikit-learn's SVD solver: whiten the within-class scatter on its range (after
    scaling features to unit within-class deviation), then take the principal directions
    of the whitened class means. Returns an array of shape (<= n_dirs, n_features).
    """
    present, codes, counts = np.unique(codes, return_inverse=True, return_counts=True)
    means = np.zeros((present.size, X.shape[1]))
    np.add.at(means, codes, X)
    means /= counts[:, None]
    centred = X - means[codes]
    scale = centred.std(axis=0)
    scale[scale == 0] = 1.0
    dof = max(X.shape[0] - present.size, 1)
    _, s, vt = np.linalg.svd(centred / (scale * np.sqrt(dof)), full_matrices=False)
    rank = int(np.sum(s > 1e-4))
    if rank == 0:
        return np.zeros((0, X.shape[1]))
    whiten = vt[:rank].T / s[:rank]
    between = (np.sqrt(counts)[:, None] * (means - counts @ means / counts.sum())) / scale
    _, sb, vbt = np.linalg.svd(between @ whiten, full_matrices=False)
    k = min(int(np.sum(sb > 1e-4 * max(sb[0], 1e-300))), n_dirs)
    directions = (whiten @ vbt[:k].T).T / scale
    norms = np.linalg.norm(directions, axis=1)
    return directions[norms > 0] / norms[norms > 0, None]


class _DistanceDifferences:
    """The matrix ``D[t, i] = (b_i . (a - p))^2 - (b_i . (a - n))^2`` in factored form.

    ``D @ w`` is ``d_M(a, p) - d_M(a, n)`` (squared distances) for ``M = sum w_i b_i b_i^T``.
    Nearest-neighbour triplets repeat each pair many times, so each distinct pair
    difference is projected once and D is never materialised: memory and time scale with
    the distinct pairs, not the triplets.
    """

    # Makes ``ndarray @ self`` defer to __rmatmul__ instead of converting self to an array.
    __array_ufunc__ = None

    def __init__(self, triplets, basis):
        pos, self.pos_index = _unique_rows(triplets[:, 0] - triplets[:, 1])
        neg, self.neg_index = _unique_rows(triplets[:, 0] - triplets[:, 2])
        self.pos = (pos @ basis.T) ** 2
        self.neg = (neg @ basis.T) ** 2
        self.shape = (triplets.shape[0], basis.shape[0])

    def rows(self, idx):
        """Rows ``D[idx]``."""
        return self.pos[self.pos_index[idx]] - self.neg[self.neg_index[idx]]

    def __matmul__(self, w):
        return (self.pos @ w)[self.pos_index] - (self.neg @ w)[self.neg_index]

    def __rmatmul__(self, v):
        # v @ D for a vector v over triplets, summing v per distinct pair first.
        pos = np.bincount(self.pos_index, weights=v, minlength=self.pos.shape[0])
        neg = np.bincount(self.neg_index, weights=v, minlength=self.neg.shape[0])
        return pos @ self.pos - neg @ self.neg


def _basis_distance_differences(triplets, basis):
    """The dense matrix of :class:`_DistanceDifferences` (for inspection and tests)."""
    return _DistanceDifferences(triplets, basis).rows(np.arange(triplets.shape[0]))


def _unique_rows(a):
    """Distinct rows of a 2-D float array and, for each row, the index of its copy."""
    a = np.ascontiguousarray(a)
    keys = a.view(np.dtype((np.void, a.dtype.itemsize * a.shape[1]))).ravel()
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    return a[first], inverse.ravel()


def _scml_objective(w, dist_diff, beta):
    """Mean hinge ``[1 + D w]_+`` over triplets plus ``beta * sum(w)`` (w >= 0).

    ``dist_diff`` is D as an array or a :class:`_DistanceDifferences`.
    """
    slack = 1.0 + dist_diff @ w
    return float(np.mean(np.maximum(slack, 0.0)) + beta * np.sum(w))


def _scml_gradient(w, dist_diff, beta):
    """A subgradient of :func:`_scml_objective` (its gradient away from the hinge's kinks)."""
    active = ((1.0 + dist_diff @ w) > 0).astype(np.float64)
    return active @ dist_diff / dist_diff.shape[0] + beta


def _minimize_scml(dist_diff, beta, gamma, max_iter, output_iter, batch_size, rng, verbose):
    """Regularised dual averaging with AdaGrad scaling over mini-batches of triplets.

    The update has a closed form: with ``G`` the sum of the mini-batch hinge gradients so
    far and ``H = delta + sqrt(sum of their squares)``, the minimiser of
    ``<G/t, w> + beta ||w||_1 + gamma / (2 t) <w, H w>`` over ``w >= 0`` is
    ``max(-G - t * beta, 0) / (gamma * H)``. Returns the weights with the best full objective
    among those checked every ``output_iter`` updates.
    """
    n_triplets, n_basis = dist_diff.shape
    w = np.zeros(n_basis)
    grad_sum = np.zeros(n_basis)
    grad_sq_sum = np.zeros(n_basis)
    best_w, best_obj = w, np.inf
    batches = rng.randint(0, n_triplets, size=(max_iter, batch_size))
    for t in range(1, max_iter + 1):
        rows = dist_diff.rows(batches[t - 1])
        active = (rows @ w > -1.0).astype(np.float64)
        grad = active @ rows / batch_size
        grad_sum += grad
        grad_sq_sum += grad * grad
        w = np.maximum(-grad_sum - t * beta, 0.0) / (gamma * (_ADAGRAD_DELTA
                                                              + np.sqrt(grad_sq_sum)))
        if t % output_iter == 0:
            obj = _scml_objective(w, dist_diff, beta)
            progress(verbose, f"iter {t}  objective {obj:.6f}  active bases "
                              f"{int(np.count_nonzero(w))}")
            if obj < best_obj:
                best_w, best_obj = w, obj
    return best_w
