"""Covariance: the Mahalanobis metric of the data's inverse covariance (no supervision)."""

import numpy as np
from scipy import linalg
from sklearn.base import BaseEstimator

from ._base import MahalanobisMixin
from ._init import components_from_metric


class Covariance(MahalanobisMixin, BaseEstimator):
    """Mahalanobis metric from the inverse covariance of the data.

    The classical Mahalanobis distance ``sqrt((x - x')^T S^+ (x - x'))`` with ``S`` the
    sample covariance (its pseudo-inverse when singular). It needs no labels and serves as
    a baseline and as the prior of several weakly supervised learners.

    Parameters
    ----------
    preprocessor : array-like or callable, default=None
        Data to index when ``X`` is given as a 1-D array of sample indices.

    Attributes
    ----------
    components_ : ndarray of shape (n_features, n_features)
        The linear map L with ``L.T @ L = pinv(cov(X))``.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
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

    def __init__(self, preprocessor=None):
        self.preprocessor = preprocessor

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
        X = self._validate_samples(X, reset=True, ensure_min_samples=2)
        cov = np.atleast_2d(np.cov(X, rowvar=False))
        self.components_ = components_from_metric(linalg.pinvh(cov))
        return self
