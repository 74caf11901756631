"""Covariance: the Mahalanobis metric of the data's inverse covariance (no supervision)."""

import numpy as np
from scipy import linalg
from sklearn.base import BaseEstimator

from ._array_api import resolve_torch_device
from ._base import MahalanobisMixin
from ._init import components_from_metric
from ._sklearn_compat import _fit_context


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
        Where to compute the covariance (the O(n d²) part): None with NumPy, 'cpu' or
        'cuda' with torch on that device, 'auto' with torch on CUDA when a GPU is present
        and NumPy otherwise. The result is a NumPy ``components_`` in every case.

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
        "device": "no_validation",  # checked by resolve_torch_device
    }

    _rescalable = True

    def __init__(self, preprocessor=None, device=None):
        self.preprocessor = preprocessor
        self.device = device

    @_fit_context(prefer_skip_nested_validation=True)
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
        torch_device = resolve_torch_device(self.device)
        X = self._validate_samples(X, reset=True, ensure_min_samples=2)
        if torch_device is None:
            cov = np.atleast_2d(np.cov(X, rowvar=False))
        else:
            cov = _covariance_torch(X, torch_device)
        self.components_ = self._unscale(components_from_metric(linalg.pinvh(cov)))
        return self


def _covariance_torch(X, torch_device):
    """The sample covariance of X computed with torch on ``torch_device`` (float64)."""
    import torch

    X = X if X.flags.writeable else X.copy()  # torch refuses read-only buffers
    Xt = torch.as_tensor(X, dtype=torch.float64, device=torch_device)
    Xt = Xt - Xt.mean(dim=0)
    cov = (Xt.T @ Xt) / (Xt.shape[0] - 1)
    return np.atleast_2d(cov.cpu().numpy())
