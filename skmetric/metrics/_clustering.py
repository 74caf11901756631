"""Clustering metrics of embeddings: NMI and AMI of k-means clusters against the labels."""

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_mutual_info_score, normalized_mutual_info_score

from .._array_api import to_numpy
from .._compute._arrays import check_input
from .._compute._numerics import safe_exponent, times_pow2
from .._compute._params import ARRAY, COUNT, COUNT_OR_NONE
from .._docstrings import fill_doc
from .._sklearn_compat import StrOptions
from .._validation import unique_labels
from ._common import check_k, labels_as_numpy, validated

_KMEANS_DOC = fill_doc(kmeans_params="""
    embeddings : array of shape (n_samples, n_features)
        Embeddings (any namespace; moved to NumPy for k-means).
    labels : array-like of shape (n_samples,)
        Class labels; at least two classes.
    n_clusters : int, default=None
        Number of clusters; None uses the number of classes.
    random_state : int, RandomState instance or None, default=None
        Seeds k-means.
    n_init : "auto" or int, default="auto"
        k-means restarts.
    average_method : str, default="arithmetic"
        Normalizer of the mutual information (see scikit-learn).
""")
_KMEANS = validated(
    {"embeddings": ARRAY, "labels": ["array-like"], "n_clusters": COUNT_OR_NONE,
     "random_state": ["random_state"], "n_init": [StrOptions({"auto"}), COUNT],
     "average_method": [StrOptions({"min", "geometric", "arithmetic", "max"})]},
)


@_KMEANS
@_KMEANS_DOC
def nmi_kmeans(embeddings, labels, n_clusters=None, *, random_state=None, n_init="auto",
               average_method="arithmetic"):
    """Normalized mutual information between k-means clusters of the embeddings and labels.

    Runs scikit-learn's ``KMeans`` in the embedding space with ``n_clusters`` = the number
    of classes and scores the clustering with ``normalized_mutual_info_score``.

    Parameters
    ----------
    {kmeans_params}

    Returns
    -------
    nmi : float in [0, 1]

    Examples
    --------
    >>> import numpy as np
    >>> from skmetric.metrics import nmi_kmeans
    >>> X = np.array([[0.0], [0.1], [0.2], [5.0], [5.1], [5.2]])
    >>> nmi_kmeans(X, [0, 0, 0, 1, 1, 1], random_state=0)
    1.0
    """
    return _kmeans_score(normalized_mutual_info_score, **locals())


@_KMEANS
@_KMEANS_DOC
def ami_kmeans(embeddings, labels, n_clusters=None, *, random_state=None, n_init="auto",
               average_method="arithmetic"):
    """Adjusted mutual information between k-means clusters of the embeddings and labels.

    As :func:`nmi_kmeans`, scored with ``adjusted_mutual_info_score`` (corrected for
    chance: 0 for a random clustering, 1 for a perfect one).

    Parameters
    ----------
    {kmeans_params}

    Returns
    -------
    ami : float, at most 1

    Examples
    --------
    >>> import numpy as np
    >>> from skmetric.metrics import ami_kmeans
    >>> X = np.array([[0.0], [0.1], [5.0], [5.1]])
    >>> round(ami_kmeans(X, [0, 1, 0, 1], random_state=0), 2)  # worse than chance
    -0.5
    """
    return _kmeans_score(adjusted_mutual_info_score, **locals())


def _kmeans_score(score, embeddings, labels, n_clusters, random_state, n_init,
                  average_method):
    """``score`` (a scikit-learn mutual information) of the k-means clusters vs the labels."""
    y, pred = _kmeans_labels(embeddings, labels, n_clusters, random_state, n_init)
    return float(score(y, pred, average_method=average_method))


def _kmeans_labels(embeddings, labels, n_clusters, random_state, n_init):
    X = to_numpy(check_input(embeddings, "embeddings")).astype(np.float64)
    # k-means compares squared distances, which overflow or underflow for embeddings
    # beyond 2**±255: an exact power-of-two scaling leaves its clusters unchanged.
    X = times_pow2(X, safe_exponent([X], np, X.itemsize), np)
    y = labels_as_numpy(labels, X.shape[0], "labels", "embeddings")
    n_classes = unique_labels(y, "labels").shape[0]
    if n_classes < 2:
        raise ValueError(
            f"NMI/AMI need labels of at least 2 classes; got {n_classes}. Evaluate on data "
            "with several classes."
        )
    if n_clusters is None:
        n_clusters = n_classes
    check_k(n_clusters, "n_clusters")
    if n_clusters > X.shape[0]:
        raise ValueError(f"n_clusters={n_clusters} is more than the {X.shape[0]} samples.")
    kmeans = KMeans(n_clusters=n_clusters, n_init=n_init, random_state=random_state)
    return y, kmeans.fit_predict(X)
