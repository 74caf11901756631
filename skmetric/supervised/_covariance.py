"""Covariance: the Mahalanobis metric of the data's inverse covariance (no supervision)."""

import numpy as np
from scipy import linalg
from sklearn.base import BaseEstimator

from .._array_api import to_numpy
from .._base import MahalanobisMixin
from .._compute._backend import resolve_backend, to_host
from .._init import components_from_metric
from .._validation import check_variance, fit_context


class Covariance(MahalanobisMixin, BaseEstimator):
    """Mahalanobis metric from the inverse covariance of the data.

    The classical Mahalanobis distance ``sqrt((x - x')^T S^+ (x - x'))`` with ``S`` the
    sample covariance (its pseudo-inverse when singular). It needs no labels and serves as
    a baseline and as the prior of several weakly supervised learners.

    Parameters
    ----------
    preprocessor : array-like or callable, default=None
        Data to index when ``X`` is given as a 1-D array of sample indices.
    device : {None, 'cpu', 'cuda', 'auto'} or torch.device, default=None
        Where to compute the covariance (the O(n d²) part): None with NumPy, or with torch
        on the input's device for a torch ``X``; 'cpu' or 'cuda' with torch on that
        device; 'auto' with torch on CUDA when a GPU is present and NumPy otherwise. The
        result is a NumPy ``components_`` in every case.

    Attributes
    ----------
    components_ : ndarray of shape (n_features, n_features)
        The linear map L with ``L.T @ L = pinv(cov(X))``.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when X has string feature names.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skmetric import Covariance
    >>> X, _ = load_iris(return_X_y=True)
    >>> cov = Covariance().fit(X)
    >>> cov.transform(X).shape
    (150, 4)
    """

    _parameter_constraints: dict = {
        "preprocessor": ["array-like", callable, None],
        "device": "no_validation",  # checked by resolve_backend
    }

    _rescalable = True

    def __init__(self, preprocessor=None, device=None):
        self.preprocessor = preprocessor
        self.device = device

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the metric to the inverse covariance of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training samples.
        y : None
            Ignored.

        Returns
        -------
        self : object
        """
        backend = resolve_backend(X, self.device, dtype="float64",
                                  namespaces=("numpy", "torch"), learner="Covariance")
        X = self._validate_samples(to_host(X), reset=True, ensure_min_samples=2)
        check_variance(X, "Covariance")
        if backend.is_numpy:
            cov = np.atleast_2d(np.cov(X, rowvar=False))
        else:
            cov = _covariance(backend.asarray(X.astype(np.float64, copy=False)), backend.xp)
        self.components_ = self._unscale(components_from_metric(linalg.pinvh(cov)))
        return self


def _covariance(X, xp):
    """The sample covariance of X, computed in its namespace, as a NumPy array."""
    X = X - xp.mean(X, axis=0)
    return np.atleast_2d(to_numpy((X.T @ X) / (X.shape[0] - 1)))
