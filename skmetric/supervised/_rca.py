"""RCA: relevant components analysis (Shental et al., 2002), on chunks or on class labels."""

from numbers import Integral

import numpy as np
from scipy import linalg
from sklearn.base import BaseEstimator
from sklearn.utils.multiclass import type_of_target

from .._base import MahalanobisMixin
from .._constraints import Constraints
from .._docstrings import FEATURES_IN, fill_doc
from .._init import check_n_components
from .._sklearn_compat import Interval
from .._supervised import LabelledLearnerMixin, validate_labelled
from .._validation import check_variance, fit_context
from .._warn import warn_user


@fill_doc(features_in=FEATURES_IN)
class RCA(MahalanobisMixin, BaseEstimator):
    """Relevant components analysis, learned from chunks of similar samples.

    A chunk (chunklet) is a group of samples known to belong to the same class, without
    saying which. RCA whitens the data with the within-chunk covariance ``C`` (the
    covariance of the samples about their chunk means): directions in which samples of a
    chunk vary (irrelevant variability) shrink, the others grow. The metric is
    ``M = C^{-1}``. With ``n_components < n_features`` it first keeps the directions of
    least within-chunk relative to total variance (a Fisher-like projection) and whitens
    within them. A closed form: no iterations.

    Parameters
    ----------
    n_components : int, default=None
        Dimension of the learned space; None keeps the number of features.
    preprocessor : array-like or callable, default=None
        Data to index when ``X`` is given as a 1-D array of sample indices.

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
        The learned linear map L, with ``L.T @ L = C^{-1}`` when ``n_components`` is None.
    {features_in}

    References
    ----------
    .. [1] N. Shental, T. Hertz, D. Weinshall and M. Pavel. "Adjustment Learning and
       Relevant Component Analysis". ECCV 2002.
    .. [2] A. Bar-Hillel, T. Hertz, N. Shental and D. Weinshall. "Learning a Mahalanobis
       Metric from Equivalence Constraints". JMLR 6, 2005.

    Examples
    --------
    >>> import numpy as np
    >>> from skmetric import RCA
    >>> X = np.array([[-0.05, 3.0], [0.05, -3.0], [0.1, -3.55], [-0.1, 3.55],
    ...               [-0.95, -0.05], [0.95, 0.05], [0.4, 0.05], [-0.4, -0.05]])
    >>> chunks = [0, 0, 1, 1, 2, 2, 3, 3]
    >>> rca = RCA().fit(X, chunks)
    >>> rca.transform(X).shape
    (8, 2)
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left"), None],
        "preprocessor": ["array-like", callable, None],
    }

    def __init__(self, n_components=None, preprocessor=None):
        self.n_components = n_components
        self.preprocessor = preprocessor

    _requires_y = True
    _rescalable = True

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, chunks):
        """Learn the RCA map from samples and their chunk ids.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training samples (or 1-D indices into ``preprocessor``).
        chunks : array-like of int, shape (n_samples,)
            ``chunks[i] = j >= 0`` puts sample i in chunk j; -1 leaves it in no chunk.

        Returns
        -------
        self : object
        """
        X, chunks = self._validate_samples(X, chunks, reset=True, ensure_min_samples=2,
                                           dtype=np.float64)
        chunks = _check_chunks(chunks)
        return self._fit_chunks(X, chunks)

    def _fit_chunks(self, X, chunks):
        n_components = check_n_components(X.shape[1], self.n_components)
        in_chunk = chunks >= 0
        check_variance(X[in_chunk], type(self).__name__, "the samples in chunks")
        C = _within_chunk_covariance(X[in_chunk], chunks[in_chunk])
        T = np.atleast_2d(np.cov(X[in_chunk], rowvar=False, bias=True))
        if n_components == X.shape[1]:
            self.components_ = self._unscale(_inverse_sqrt(C, T))
        else:
            self.components_ = self._unscale(_reduced_whitening(C, T, n_components))
        return self


@fill_doc(features_in=FEATURES_IN)
class RCA_Supervised(LabelledLearnerMixin, RCA):
    """Relevant components analysis with chunks drawn from class labels.

    Draws ``n_chunks`` disjoint chunks of ``chunk_size`` same-class samples (see
    :meth:`Constraints.chunks <skmetric.Constraints.chunks>`) and fits :class:`RCA` on them.

    Parameters
    ----------
    n_components : int, default=None
        Dimension of the learned space; None keeps the number of features.
    n_chunks : int, default=100
        Number of chunks to draw.
    chunk_size : int, default=2
        Number of samples per chunk.
    preprocessor : array-like or callable, default=None
        Data to index when ``X`` is given as a 1-D array of sample indices.
    random_state : int, RandomState instance or None, default=None
        Seeds the draw of the chunks.

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
        The learned linear map L.
    chunks_ : ndarray of shape (n_samples,)
        The chunk of each training sample (-1 for none).
    {features_in}

    References
    ----------
    .. [1] N. Shental, T. Hertz, D. Weinshall and M. Pavel. "Adjustment Learning and
       Relevant Component Analysis". ECCV 2002.

    Examples
    --------
    >>> from sklearn.datasets import make_blobs
    >>> from skmetric import RCA_Supervised
    >>> X, y = make_blobs(n_samples=90, centers=3, random_state=0)
    >>> rca = RCA_Supervised(n_chunks=30, chunk_size=2, random_state=0).fit(X, y)
    >>> int((rca.chunks_ >= 0).sum())  # 30 chunks of 2 samples
    60
    """

    _parameter_constraints: dict = {
        **RCA._parameter_constraints,
        "n_chunks": [Interval(Integral, 1, None, closed="left")],
        "chunk_size": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(self, n_components=None, n_chunks=100, chunk_size=2, preprocessor=None,
                 random_state=None):
        super().__init__(n_components=n_components, preprocessor=preprocessor)
        self.n_chunks = n_chunks
        self.chunk_size = chunk_size
        self.random_state = random_state

    def _fit_samples(self, X, y):
        """``fit``: chunks drawn from the class labels, then RCA on them."""
        # Chunks are groups of one class: a single class is enough (as in metric-learn).
        X, classes, codes, _ = validate_labelled(self, X, y, single_class=True)
        check_n_components(X.shape[1], self.n_components)
        if self.chunk_size < 2:
            raise ValueError("chunk_size must be at least 2: a chunk of one sample carries "
                             "no within-chunk variance.")
        self.chunks_ = Constraints(classes[codes]).chunks(
            n_chunks=self.n_chunks, chunk_size=self.chunk_size, random_state=self.random_state
        )
        return self._fit_chunks(X, self.chunks_)


def _check_chunks(chunks):
    """Chunk ids as ints: -1 for no chunk, at least one chunk of two or more samples."""
    kind = type_of_target(chunks)
    if kind not in ("binary", "multiclass") or np.asarray(chunks).dtype.kind not in "iuf":
        raise ValueError("Unknown label type for chunks: they must be integer chunk ids (-1 "
                         f"for samples in no chunk); got target type {kind!r}, dtype "
                         f"{np.asarray(chunks).dtype}.")
    ids = np.asarray(chunks)
    if np.any(ids != np.round(ids)) or np.any(ids < -1):
        raise ValueError("chunks must be integer ids >= 0, or -1 for samples in no chunk.")
    ids = ids.astype(np.int64)
    _, counts = np.unique(ids[ids >= 0], return_counts=True)
    if not np.any(counts >= 2):
        raise ValueError("RCA needs at least one chunk of two or more samples; every chunk "
                         "has fewer. Use RCA_Supervised to draw chunks from class labels.")
    return ids


def _within_chunk_covariance(X, chunks):
    """Covariance of the samples about their chunk means (chunks of one add nothing)."""
    _, codes, counts = np.unique(chunks, return_inverse=True, return_counts=True)
    means = np.zeros((counts.size, X.shape[1]))
    np.add.at(means, codes, X)
    centred = X - means[codes] / counts[codes, None]
    return centred.T @ centred / X.shape[0]


def _rank(M):
    w = linalg.eigvalsh(M)
    return int(np.sum(w > 1e-10 * max(w.max(), 1e-300)))


def _warn_if_rank_deficient(C, T):
    """Warn when C misses directions in which the chunked samples do vary.

    Directions without any variance (constant or collinear features) are dropped silently:
    they carry no information.
    """
    rank, informative = _rank(C), _rank(T)
    if rank < informative:
        warn_user(f"The within-chunk covariance has rank {rank} while the chunked samples "
                  f"span {informative} of {C.shape[0]} dimensions (too few or too small "
                  "chunks); the directions without within-chunk variance are dropped. "
                  "Draw more or larger chunks, or reduce the dimension first: "
                  f"n_components<={rank} or sklearn.decomposition.PCA.", UserWarning)


def _inverse_sqrt(C, T):
    """Symmetric ``C^{-1/2}``, dropping directions where ``C`` vanishes."""
    _warn_if_rank_deficient(C, T)
    w, V = linalg.eigh(C)
    keep = w > 1e-10 * max(w.max(), 1e-300)
    inv_sqrt = np.where(keep, 1.0 / np.sqrt(np.where(keep, w, 1.0)), 0.0)
    return (V * inv_sqrt) @ V.T


def _reduced_whitening(C, T, n_components):
    """``n_components`` directions of least within-chunk / total variance, whitened by C.

    Solves ``C v = lambda T v`` (eigenvalues increasing, ``v^T T v = 1``); the rows of the
    map are ``v / sqrt(lambda)`` so that ``C`` becomes the identity in the new space.
    Directions with ``lambda = 0`` (no within-chunk variance) are dropped with a warning.
    """
    d = C.shape[0]
    try:
        lam, V = linalg.eigh(C, T)
    except linalg.LinAlgError:
        # T singular (collinear features or few chunked samples): ridge it, units-free.
        s = np.sqrt(np.clip(np.diag(T), 0, None))
        s[s <= 1e-12 * max(s.max(), 1e-300)] = 1.0
        Ts = T / np.outer(s, s) + 1e-8 * np.eye(d)
        lam, V = linalg.eigh(C / np.outer(s, s), Ts)
        V = V / s[:, None]
    _warn_if_rank_deficient(C, T)
    keep = lam > 1e-10 * max(lam.max(), 1e-300)
    if keep.sum() < n_components:
        raise ValueError(f"Only {keep.sum()} directions have within-chunk variance; "
                         f"n_components={n_components} is too many. Lower n_components or "
                         "draw more or larger chunks.")
    lam, V = lam[keep][:n_components], V[:, keep][:, :n_components]
    return (V / np.sqrt(lam)).T
