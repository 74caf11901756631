"""Exact and approximate nearest neighbours in a (learned) metric, on any array namespace.

``kneighbors`` and ``radius_neighbors`` search block of query rows by block, on NumPy,
torch, CuPy or array-api-strict arrays, with the results in the namespace and on the device
of the queries. ``backend='faiss'`` hands the search to FAISS after applying the learned map.
``MetricKNeighborsClassifier`` fits a metric learner and classifies by k-NN in its space.

Ties are broken deterministically: among references at the same distance, the one with the
smaller index comes first (and is kept when only some of the tied references fit in k).
"""

import numbers

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ._compute._engine import prepare
from ._compute._params import (
    ARRAY,
    ARRAY_OR_NONE,
    BLOCKS,
    COUNT,
    COUNT_OR_NONE,
    METRIC_ARRAYS,
    NON_NEGATIVE,
)
from ._keywords import KeywordCheckMixin
from ._persistence import VersionedStateMixin
from ._sklearn_compat import HasMethods, Interval, StrOptions, validate_params
from ._validation import fit_context, unique_labels

BACKENDS = ("auto", "brute", "faiss")
FAISS_INDEXES = ("flat", "ivf", "hnsw")

__all__ = ["MetricKNeighborsClassifier", "kneighbors", "radius_neighbors"]


_SEARCH = {"X": ARRAY, "Y": ARRAY_OR_NONE, **METRIC_ARRAYS, **BLOCKS,
           "exclude_self": ["boolean", None], "return_distance": ["boolean"]}


@validate_params(
    {**_SEARCH, "n_neighbors": [COUNT], "backend": [StrOptions(set(BACKENDS))],
     "index": [StrOptions(set(FAISS_INDEXES))], "index_params": [dict, None],
     "n_threads": COUNT_OR_NONE},
    prefer_skip_nested_validation=True,
)
def kneighbors(X, Y=None, n_neighbors=5, *, metric="euclidean", M=None, L=None,
               exclude_self=None, chunk_size=None, working_memory=None, backend="auto",
               index="flat", index_params=None, return_distance=True, n_threads=None):
    """The ``n_neighbors`` nearest references of every query.

    Parameters
    ----------
    X : array of shape (n_queries, n_features)
        Queries: NumPy, torch, CuPy or any Array API array (lists are read as NumPy).
    Y : array of shape (n_references, n_features), default=None
        References, in the namespace of ``X``. None searches ``X`` among itself.
    n_neighbors : int, default=5
        Number of neighbours per query.
    metric : {'euclidean', 'sqeuclidean', 'cosine', 'mahalanobis'} or callable, \
            default='euclidean'
        As in :func:`skmetric.distances.pairwise_distances`; 'mahalanobis' needs M or L.
    M, L : array, default=None
        The Mahalanobis matrix or the linear map (``M = Lᵀ L``) for 'mahalanobis'.
    exclude_self : bool, default=None
        Whether query i may not return reference i (the query itself). None means True
        when ``Y`` is None and False otherwise. With ``Y`` given it needs as many queries
        as references. A duplicate of the query at another index is still returned.
    chunk_size : int, default=None
        Query rows per block (brute force).
    working_memory : float, default=None
        Memory of one block of distances in MiB when ``chunk_size`` is None; by default
        64 MiB per block (per thread), which keeps the matrix products efficient and
        the memory low; on a CUDA device, by default up to a quarter of its free memory.
    backend : {'auto', 'brute', 'faiss'}, default='auto'
        'brute' (and 'auto') is the exact blockwise search of this module; 'faiss' builds
        a FAISS index on the references (``pip install 'skmetric[faiss]'``), in float32.
    index : {'flat', 'ivf', 'hnsw'}, default='flat'
        FAISS index: 'flat' is exact; 'ivf' (inverted lists) and 'hnsw' (graph) are
        approximate and faster on large sets, and a ValueError when the part of the
        references they search holds fewer than ``n_neighbors`` (raise 'nprobe' or
        'ef_search'). Only with ``backend='faiss'``.
    index_params : dict, default=None
        FAISS options: 'nlist' and 'nprobe' for 'ivf'; 'M', 'ef_construction' and
        'ef_search' for 'hnsw'.
    return_distance : bool, default=True
        Whether to return the distances too.
    n_threads : int, default=None
        NumPy input, brute force: query blocks searched in parallel by this many threads
        (each with a single-threaded BLAS). None uses every CPU core.

    Returns
    -------
    distances : array of shape (n_queries, n_neighbors)
        Sorted ascending, in the namespace, device and floating dtype of ``X`` (float32
        for float16 and bfloat16, as :func:`~skmetric.distances.pairwise_distances`). Omitted
        when ``return_distance=False``. The brute backend recomputes the distances of the
        chosen neighbours directly (``||x - y||``), free of the expansion's round-off:
        within a few ``d·eps`` relative at any magnitude and offset (float32 data offset
        by 1,000 included). With torch input they carry autograd to X and Y (the indices
        are piecewise constant; a zero distance has subgradient 0).
    indices : array of shape (n_queries, n_neighbors)
        Indices into ``Y`` (int64); ties by distance are broken by the smaller index
        (FAISS orders ties its own way). The brute backend returns the neighbours of an
        exact search on those distances, for any block size and number of threads, and
        the same on a CUDA device, where it searches without host synchronisation
        inside its loop over blocks (``topk`` of k plus a proven margin).

    Examples
    --------
    >>> import numpy as np
    >>> from skmetric.neighbors import kneighbors
    >>> X = np.array([[0.0], [1.0], [3.0], [7.0]])
    >>> dist, ind = kneighbors(X, n_neighbors=2)
    >>> ind
    array([[1, 2],
           [0, 2],
           [1, 0],
           [2, 1]])
    >>> dist[0]
    array([1., 3.])
    """
    k = int(n_neighbors)
    if backend != "faiss" and (index != "flat" or index_params):
        raise ValueError("index and index_params are FAISS options; pass backend='faiss'.")
    prep = prepare(X, Y, metric, M, L)
    exclude = prep.check_exclude_self(exclude_self)
    n_available = prep.n_y - int(exclude)
    if k > n_available:
        raise ValueError(
            f"n_neighbors={k} exceeds the {n_available} references available"
            f"{' (the query itself excluded)' if exclude else ''}; lower n_neighbors."
        )
    dist, ind = prep.kneighbors(k, exclude_self=exclude, chunk_size=chunk_size,
                                working_memory=working_memory, n_threads=n_threads,
                                backend="faiss" if backend == "faiss" else "brute",
                                index=index, index_params=index_params)
    return (dist, ind) if return_distance else ind


@validate_params(
    {**_SEARCH, "radius": [NON_NEGATIVE], "sort_results": ["boolean"]},
    prefer_skip_nested_validation=True,
)
def radius_neighbors(X, Y=None, radius=1.0, *, metric="euclidean", M=None, L=None,
                     exclude_self=None, chunk_size=None, working_memory=None,
                     return_distance=True, sort_results=True):
    """The references within ``radius`` of every query (distance ``<= radius``).

    Parameters
    ----------
    X, Y, metric, M, L, exclude_self, chunk_size, working_memory
        As in :func:`kneighbors`.
    radius : float, default=1.0
        Distance limit, in the units of ``metric`` (squared for 'sqeuclidean').
    return_distance : bool, default=True
        Whether to return the distances too.
    sort_results : bool, default=True
        Sort each query's neighbours by distance (ties by index); else by index.

    Returns
    -------
    distances : list of n_queries arrays
        One 1-D array per query, in the namespace of ``X``. Omitted when
        ``return_distance=False``.
    indices : list of n_queries int64 arrays
        Indices into ``Y`` of the references within the radius.

    Examples
    --------
    >>> import numpy as np
    >>> from skmetric.neighbors import radius_neighbors
    >>> X = np.array([[0.0], [1.0], [3.0]])
    >>> dist, ind = radius_neighbors(X, radius=2.0)
    >>> [i.tolist() for i in ind]
    [[1], [0, 2], [1]]
    """
    if not np.isfinite(radius):
        raise ValueError(f"radius must be a finite number >= 0; got {radius!r}.")
    prep = prepare(X, Y, metric, M, L)
    dist, ind = prep.radius(radius, exclude_self=prep.check_exclude_self(exclude_self),
                            chunk_size=chunk_size, working_memory=working_memory,
                            sort_results=sort_results)
    return (dist, ind) if return_distance else ind


class MetricKNeighborsClassifier(VersionedStateMixin, KeywordCheckMixin, ClassifierMixin,
                                 BaseEstimator):
    """k-nearest-neighbours classifier in the space of a metric learner.

    ``fit`` fits (a clone of) ``metric_learner`` on the training data, maps the training
    samples into its space with ``transform`` and stores them; ``predict`` maps the
    queries the same way and votes among their ``n_neighbors`` nearest training samples,
    found by :func:`kneighbors` (blockwise, or FAISS with ``backend='faiss'``). Equivalent
    to ``make_pipeline(learner, KNeighborsClassifier())`` but with skmetric's search.

    Parameters
    ----------
    n_neighbors : int, default=5
        Number of neighbours that vote.
    metric_learner : estimator with fit and transform, default=None
        The learner of the metric, e.g. ``NCA()``; None uses the Euclidean metric.
    weights : {'uniform', 'distance'}, default='uniform'
        'distance' weighs each vote by the inverse distance (exact matches take all
        the weight).
    backend : {'auto', 'brute', 'faiss'}, default='auto'
        The search of :func:`kneighbors`.
    chunk_size : int, default=None
        Query rows per block of the search.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels.
    metric_learner_ : estimator or None
        The fitted clone of ``metric_learner``.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when X has string feature names.
    n_samples_fit_ : int
        Number of training samples.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skmetric import Covariance
    >>> from skmetric.neighbors import MetricKNeighborsClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = MetricKNeighborsClassifier(3, metric_learner=Covariance()).fit(X, y)
    >>> float(clf.score(X, y)) > 0.9
    True
    """

    _parameter_constraints = {
        "n_neighbors": [Interval(numbers.Integral, 1, None, closed="left")],
        "metric_learner": [HasMethods(["fit", "transform"]), None],
        "weights": [StrOptions({"uniform", "distance"})],
        "backend": [StrOptions(set(BACKENDS))],
        "chunk_size": [Interval(numbers.Integral, 1, None, closed="left"), None],
    }

    def __init__(self, n_neighbors=5, metric_learner=None, weights="uniform", backend="auto",
                 chunk_size=None):
        self.n_neighbors = n_neighbors
        self.metric_learner = metric_learner
        self.weights = weights
        self.backend = backend
        self.chunk_size = chunk_size

    @fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y):
        """Fit the metric learner and store the training samples in its space.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training samples.
        y : array-like of shape (n_samples,)
            Class labels.

        Returns
        -------
        self : object
        """
        X, y = validate_data(self, X, y)
        self.classes_, self._y = unique_labels(y, return_inverse=True)
        check_classification_targets(y)
        if self.metric_learner is None:
            self.metric_learner_ = None
            self._fit_Z = X
        else:
            self.metric_learner_ = clone(self.metric_learner).fit(X, y)
            self._fit_Z = np.asarray(self.metric_learner_.transform(X), dtype=np.float64)
        self.n_samples_fit_ = X.shape[0]
        return self

    def kneighbors(self, X=None, n_neighbors=None, return_distance=True):
        """Nearest training samples in the learned space (of the training set if X is None).

        Returns ``(distances, indices)`` as :func:`kneighbors`, or the indices only.
        """
        check_is_fitted(self)
        k = self.n_neighbors if n_neighbors is None else n_neighbors
        if X is None:
            Z, Y = self._fit_Z, None
        else:
            Z, Y = self._embed(X), self._fit_Z
        return kneighbors(Z, Y, k, backend=self.backend, chunk_size=self.chunk_size,
                          return_distance=return_distance)

    def predict_proba(self, X):
        """Class probabilities: the (weighted) share of each class among the neighbours.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Query samples.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        dist, ind = self.kneighbors(X)
        if self.weights == "uniform":
            w = np.ones_like(dist)
        else:
            with np.errstate(divide="ignore"):
                w = 1.0 / dist
            exact = np.isinf(w)
            rows = exact.any(axis=1)
            w[rows] = exact[rows]
        proba = np.zeros((ind.shape[0], self.classes_.shape[0]))
        np.add.at(proba, (np.arange(ind.shape[0])[:, None], self._y[ind]), w)
        return proba / proba.sum(axis=1, keepdims=True)

    def predict(self, X):
        """Class of the (weighted) majority of the neighbours; ties go to the first class.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Query samples, as for :meth:`predict_proba`.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def _embed(self, X):
        X = validate_data(self, X, reset=False)
        if self.metric_learner_ is None:
            return X
        return np.asarray(self.metric_learner_.transform(X), dtype=np.float64)
