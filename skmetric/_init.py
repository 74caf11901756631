"""Initialisation of linear transformations and Mahalanobis matrices, shared by learners."""

import numbers

import numpy as np
from scipy import linalg
from sklearn.decomposition import PCA
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state

from ._validation import real_array
from ._warn import warn_user

INIT_OPTIONS = ("auto", "pca", "lda", "identity", "random")
PRIOR_OPTIONS = ("identity", "covariance", "random")


def check_n_components(n_features, n_components):
    """Return the number of output dimensions, checking ``1 <= n_components <= n_features``."""
    if n_components is None:
        return n_features
    if not isinstance(n_components, numbers.Integral) or isinstance(n_components, bool):
        raise TypeError(f"n_components must be an int or None; got {n_components!r}.")
    if not 1 <= n_components <= n_features:
        raise ValueError(
            f"n_components={n_components} must be between 1 and the number of "
            f"features ({n_features})."
        )
    return int(n_components)


def initial_components(init, n_components, X, y=None, random_state=None):
    """The starting map of a learner with ``init`` and ``n_components`` parameters.

    Checks ``n_components`` against the features; when it is None and ``init`` is an
    array, the array's rows set it (else ``n_features``). See
    :func:`initialize_components` for the options.
    """
    if not isinstance(init, str):
        init = real_array(init, "The init array")
        if init.ndim != 2:
            raise ValueError(
                f"The init array must be 2-D (n_components, n_features); got shape "
                f"{init.shape}."
            )
        n_components = init.shape[0] if n_components is None else n_components
    n_components = check_n_components(X.shape[1], n_components)
    return initialize_components(n_components, X, y, init, random_state=random_state)


def _check_init_separates(L, X):
    """Refuse a start ``L`` that maps every sample of ``X`` to one point (L = 0, or L zero
    on the span of the centred samples): the learners' objectives see L only through
    ``||L (x_i - x_j)||^2``, whose gradient vanishes there, so the map would never move.
    Constant samples are left alone: no start can separate them."""
    centred = X - X.mean(axis=0)
    scale = np.linalg.norm(centred) * np.linalg.norm(L)
    if np.any(L) and (scale == 0 or np.linalg.norm(centred @ L.T) > 1e-12 * scale):
        return
    raise ValueError(
        "The init array maps every sample to the same point (it is zero on the directions "
        "in which the samples vary); the objective is flat there and the map would never "
        "move. Pass a start that separates the samples, e.g. init='pca' or "
        "init='identity'."
    )


def initialize_components(n_components, X, y=None, init="auto", random_state=None):
    """Initial linear transformation L of shape (n_components, n_features).

    ``init`` is 'auto', 'pca', 'lda', 'identity', 'random' or an array. 'auto' picks 'lda'
    when ``n_components`` fits within the class count (and samples outnumber classes, as
    LDA needs), else 'pca' when it reduces the dimension, else 'identity' (as metric-learn
    and scikit-learn's NCA do).
    """
    n_samples, n_features = X.shape
    if isinstance(init, np.ndarray) or not isinstance(init, str):
        L = np.atleast_2d(np.asarray(init, dtype=np.float64))
        if L.shape != (n_components, n_features):
            raise ValueError(
                f"The init array has shape {L.shape}; expected (n_components, n_features) "
                f"= ({n_components}, {n_features})."
            )
        if not np.all(np.isfinite(L)):
            raise ValueError("The init array contains NaN or infinity.")
        _check_init_separates(L, X)
        return L
    if init not in INIT_OPTIONS:
        raise ValueError(f"init must be one of {INIT_OPTIONS} or an array; got {init!r}.")
    n_classes = len(np.unique(y)) if y is not None else 0
    if init == "auto":
        if (y is not None and n_components <= min(n_features, n_classes - 1)
                and n_samples > n_classes):
            init = "lda"
        elif n_components < min(n_features, n_samples):
            init = "pca"
        else:
            init = "identity"
    if init == "identity":
        return np.eye(n_components, n_features)
    if init == "random":
        return check_random_state(random_state).standard_normal((n_components, n_features))
    if init == "pca":
        if n_components > min(n_samples, n_features):
            raise ValueError(
                f"init='pca' needs n_components <= min(n_samples, n_features) = "
                f"{min(n_samples, n_features)}; got {n_components}."
            )
        pca = PCA(n_components=n_components, random_state=random_state)
        return pca.fit(X).components_
    if y is None:
        raise ValueError("init='lda' needs class labels y; use 'pca' or 'identity'.")
    if n_components > min(n_features, n_classes - 1):
        raise ValueError(
            f"init='lda' needs n_components <= min(n_features, n_classes - 1) = "
            f"{min(n_features, n_classes - 1)}; got {n_components}. Use init='pca'."
        )
    if n_samples <= n_classes:
        raise ValueError(
            f"init='lda' needs more samples than classes; got {n_samples} samples of "
            f"{n_classes} classes. Use init='pca' or 'identity'."
        )
    lda = LinearDiscriminantAnalysis(n_components=n_components).fit(X, y)
    return lda.scalings_.T[:n_components]


def initialize_metric(X, prior="identity", random_state=None):
    """Initial (prior) Mahalanobis matrix M of shape (n_features, n_features).

    ``prior`` is 'identity', 'covariance' (the inverse covariance of X), 'random' (a random
    SPD matrix) or an SPD array.
    """
    n_features = X.shape[1]
    if isinstance(prior, str):
        if prior not in PRIOR_OPTIONS:
            raise ValueError(
                f"prior must be one of {PRIOR_OPTIONS} or an SPD array; got {prior!r}."
            )
        if prior == "identity":
            return np.eye(n_features)
        if prior == "covariance":
            cov = np.atleast_2d(np.cov(X, rowvar=False))
            return linalg.pinvh(cov)
        A = check_random_state(random_state).standard_normal((n_features, n_features))
        return A @ A.T + 1e-3 * np.eye(n_features)
    M = np.atleast_2d(real_array(prior, "The prior matrix"))
    if M.shape != (n_features, n_features):
        raise ValueError(
            f"The prior matrix has shape {M.shape}; expected ({n_features}, {n_features})."
        )
    check_psd(M, "The prior matrix")
    return M


def check_psd(M, what="The matrix", tol=None):
    """Eigen-decompose a symmetric matrix, raising if it is not PSD. Returns (w, V).

    The tolerances are relative to the largest entry, so that ``c * M`` passes or fails
    with ``M`` at any scale ``c`` (features in other units scale M by ``1 / c**2``).
    """
    if not np.all(np.isfinite(M)):
        raise ValueError(f"{what} contains NaN or infinity.")
    scale = float(np.abs(M).max()) if M.size else 0.0
    if not np.allclose(M, M.T, rtol=1e-7, atol=1e-8 * scale):
        raise ValueError(f"{what} is not symmetric; a Mahalanobis matrix must be.")
    w, V = linalg.eigh((M + M.T) / 2)
    tol = 1e-8 * scale * M.shape[0] if tol is None else tol
    if w.min() < -tol:
        raise ValueError(
            f"{what} is not positive semi-definite (smallest eigenvalue {w.min():.3g})."
        )
    return np.clip(w, 0, None), V


def components_from_metric(M, tol=None, *, return_eigenvalues=False):
    """A matrix L with ``L.T @ L == M`` for a symmetric PSD matrix M (by eigendecomposition).

    Row i of L is ``sqrt(w_i) v_i`` for the eigenpairs of M, eigenvalues ascending.
    Eigenvalues down to ``-tol`` are round-off and are clipped to 0 (``L.T @ L`` is then
    M's nearest PSD matrix in Frobenius norm); a more negative one raises a ValueError.
    ``tol=None`` means ``1e-8 * max(max|M|, 1) * n``; ``np.inf`` clips every negative
    eigenvalue, for a caller that judges them itself (ITML). With ``return_eigenvalues``
    returns ``(L, w)``, w the clipped eigenvalues, ascending.
    """
    w, V = check_psd(np.asarray(M, dtype=np.float64), "The Mahalanobis matrix", tol)
    L = (V * np.sqrt(w)).T
    return (L, w) if return_eigenvalues else L


def warn_if_stuck_at_init(learner, X, L, L0):
    """Warn when an optimiser stopped at its initialisation on badly scaled features.

    NCA's softmax, MLKR's Gaussian kernel and LMNN's margin have a unit: a squared
    distance of 1 in the learned space. Far from it (features in units of 1e5, or 1e-5,
    with an 'identity' or 'pca' start) the objective is flat or saturated, the optimiser
    takes no step and the map stays the initial one, which is not learned. "Stays" is read
    off the map, not the iteration count: with a pull toward the prior (``prior_strength``)
    L-BFGS may take a few steps of round-off size and count them.
    """
    if np.linalg.norm(L - L0) > 1e-6 * np.linalg.norm(L0):
        return
    Z = X @ L.T
    # Mean squared distance between two samples: twice the total variance.
    spread = 2.0 * float(np.sum(np.var(Z, axis=0)))
    if 1e-4 <= spread <= 1e4 or spread == 0:
        return
    warn_user(
        f"{learner} stopped at its initialisation: the squared distances between "
        f"samples (about {spread:.2g} on average) are far from the unit scale of its "
        "objective, where it is flat. Standardise the features first, e.g. with "
        "sklearn.preprocessing.StandardScaler.",
        ConvergenceWarning,
    )
