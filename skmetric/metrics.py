"""Evaluation of embeddings: retrieval, clustering and pair-verification metrics, scorers.

Retrieval metrics rank a set of reference embeddings by distance to each query embedding
and check which neighbours share the query's label. They run blockwise through
:func:`skmetric.neighbors.kneighbors` on any array namespace (NumPy, torch, CuPy, ...), so
memory stays bounded by ``working_memory`` whatever the number of embeddings.

Conventions, identical for every retrieval metric:

- The reference set defaults to the query set with each query's own row excluded
  (leave-one-out). With ``ref_includes_query=True`` the first ``len(query)`` references are
  the queries themselves (as in pytorch-metric-learning's ``AccuracyCalculator``) and each
  query's own row is excluded too.
- Neighbours are ranked by increasing distance; ties are broken by the smaller reference
  index, so results never depend on the backend.
- ``R`` of a query is the number of references of its class (itself excluded), capped by
  ``max_k`` when given. Queries with ``R = 0`` ("lone" queries) cannot be scored; as in
  ``AccuracyCalculator`` they are left out of the mean, and the metric is NaN (with a
  warning) when every query is lone.

The scorers (:func:`make_retrieval_scorer`, :func:`make_pair_scorer`) wrap these metrics as
``scoring=`` callables for ``GridSearchCV`` and ``cross_val_score``.
"""

import inspect
import numbers
import warnings
from typing import NamedTuple

import array_api_compat
import numpy as np
from sklearn import get_config
from sklearn.cluster import KMeans
from sklearn.metrics import (
    adjusted_mutual_info_score,
    auc,
    normalized_mutual_info_score,
    roc_curve,
)

from ._array_api import to_numpy
from ._base import _best_threshold
from ._compute._arrays import check_input, check_inputs
from .distances import pairwise_distances
from .neighbors import kneighbors

__all__ = [
    "VerificationROC",
    "ami_kmeans",
    "best_threshold_accuracy",
    "equal_error_rate",
    "make_pair_scorer",
    "make_retrieval_scorer",
    "map_at_r",
    "mean_average_precision",
    "nmi_kmeans",
    "precision_at_k",
    "r_precision",
    "recall_at_k",
    "retrieval_report",
    "tar_at_far",
    "verification_roc",
]

_AVERAGES = ("query", "class", None)

_SHARED_PARAMS_DOC = """
    query : array of shape (n_queries, n_features)
        Query embeddings; a NumPy, torch, CuPy or other Array API array.
    query_labels : array-like of shape (n_queries,)
        Class of each query.
    reference : array of shape (n_references, n_features), default=None
        Reference embeddings, in the same namespace as ``query``. None uses the queries
        themselves, each query's own row excluded.
    reference_labels : array-like of shape (n_references,), default=None
        Class of each reference; required with ``reference``.
    metric : str, default="euclidean"
        Distance of :func:`skmetric.neighbors.kneighbors` ("euclidean", "sqeuclidean",
        "cosine", ...); ``M`` or ``L`` give a Mahalanobis distance.
    M, L : array, default=None
        Mahalanobis matrix or linear map, passed to the distance engine.
    ref_includes_query : bool, default=False
        With ``reference``: its first ``n_queries`` rows are the queries (same labels), and
        each query's own row is excluded from its neighbours.
    average : {"query", "class"} or None, default="query"
        "query" averages over the queries that have at least one relevant reference,
        "class" averages per class first then over classes, None returns the per-query
        values (NaN for lone queries).
    chunk_size, working_memory, backend :
        Passed to the distance engine; ``working_memory`` (MiB, default scikit-learn's
        ``working_memory`` setting) also bounds the blocks of queries processed at once.
"""


def _fill_doc(func):
    func.__doc__ = func.__doc__.replace("    {shared}\n", _SHARED_PARAMS_DOC.lstrip("\n"))
    return func


# ----------------------------------------------------------------------------- retrieval


@_fill_doc
def precision_at_k(query, query_labels, reference=None, reference_labels=None, k=1, *,
                   metric="euclidean", M=None, L=None, ref_includes_query=False,
                   average="query", chunk_size=None, working_memory=None, backend="auto"):
    """Precision at k: the fraction of the k nearest references sharing the query's class.

    ``P@k = (1/k) * sum_{i<=k} rel_i`` where ``rel_i`` is 1 if the i-th nearest reference
    has the query's label. ``precision_at_k(..., k=1)`` is the usual "precision at 1"
    (1-NN accuracy, leave-one-out when ``reference`` is None).

    Parameters
    ----------
    {shared}
    k : int, default=1
        Number of neighbours, at least 1 and at most the number of references available.

    Returns
    -------
    score : float, or ndarray of shape (n_queries,) when ``average=None``

    Examples
    --------
    >>> import numpy as np
    >>> from skmetric.metrics import precision_at_k
    >>> X = np.array([[0.0], [0.1], [1.0], [1.2]])
    >>> precision_at_k(X, [0, 0, 1, 1], k=1)
    1.0
    """
    return _single_metric("precision_at_k", query, query_labels, reference, reference_labels,
                          k=k, metric=metric, M=M, L=L, ref_includes_query=ref_includes_query,
                          average=average, chunk_size=chunk_size,
                          working_memory=working_memory, backend=backend)


@_fill_doc
def recall_at_k(query, query_labels, reference=None, reference_labels=None, k=1, *,
                metric="euclidean", M=None, L=None, ref_includes_query=False,
                average="query", chunk_size=None, working_memory=None, backend="auto"):
    """Recall at k as in deep metric learning: 1 if any of the k nearest is correct.

    ``Recall@k = 1[sum_{i<=k} rel_i > 0]`` averaged over queries (Song et al. 2016); this
    is not the information-retrieval recall ``sum_{i<=k} rel_i / R``.

    Parameters
    ----------
    {shared}
    k : int, default=1
        Number of neighbours, at least 1.

    Returns
    -------
    score : float, or ndarray of shape (n_queries,) when ``average=None``

    References
    ----------
    Song, Xiang, Jegelka, Savarese. "Deep Metric Learning via Lifted Structured Feature
    Embedding", CVPR 2016.

    Examples
    --------
    >>> import numpy as np
    >>> from skmetric.metrics import recall_at_k
    >>> X = np.array([[0.0], [0.4], [0.6], [1.0]])
    >>> float(recall_at_k(X, [0, 1, 0, 1], k=2))
    0.5
    """
    return _single_metric("recall_at_k", query, query_labels, reference, reference_labels,
                          k=k, metric=metric, M=M, L=L, ref_includes_query=ref_includes_query,
                          average=average, chunk_size=chunk_size,
                          working_memory=working_memory, backend=backend)


@_fill_doc
def r_precision(query, query_labels, reference=None, reference_labels=None, *,
                max_k=None, metric="euclidean", M=None, L=None, ref_includes_query=False,
                average="query", chunk_size=None, working_memory=None, backend="auto"):
    """R-precision: precision at R, R being the number of references of the query's class.

    ``RP = (1/R) * sum_{i<=R} rel_i``.

    Parameters
    ----------
    {shared}
    max_k : int, default=None
        Cap on R (and so on the neighbours searched); None uses the true R.

    Returns
    -------
    score : float, or ndarray of shape (n_queries,) when ``average=None``

    References
    ----------
    Musgrave, Belongie, Lim. "A Metric Learning Reality Check", ECCV 2020.

    Examples
    --------
    >>> import numpy as np
    >>> from skmetric.metrics import r_precision
    >>> X = np.array([[0.0], [0.1], [0.3], [1.0], [1.2], [0.25]])
    >>> round(float(r_precision(X, [0, 0, 0, 1, 1, 1])), 4)
    0.4167
    """
    return _single_metric("r_precision", query, query_labels, reference, reference_labels,
                          max_k=max_k, metric=metric, M=M, L=L,
                          ref_includes_query=ref_includes_query, average=average,
                          chunk_size=chunk_size, working_memory=working_memory,
                          backend=backend)


@_fill_doc
def map_at_r(query, query_labels, reference=None, reference_labels=None, *, max_k=None,
             metric="euclidean", M=None, L=None, ref_includes_query=False, average="query",
             chunk_size=None, working_memory=None, backend="auto"):
    """Mean average precision at R (MAP@R).

    ``MAP@R = (1/R) * sum_{i<=R} P@i * rel_i``: the average precision of the first R
    neighbours, R being the number of references of the query's class. It rewards both
    retrieving the relevant references and ranking them first (Musgrave et al. 2020).

    Parameters
    ----------
    {shared}
    max_k : int, default=None
        Cap on R (and so on the neighbours searched); None uses the true R.

    Returns
    -------
    score : float, or ndarray of shape (n_queries,) when ``average=None``

    References
    ----------
    Musgrave, Belongie, Lim. "A Metric Learning Reality Check", ECCV 2020.

    Examples
    --------
    >>> import numpy as np
    >>> from skmetric.metrics import map_at_r
    >>> X = np.array([[0.0], [0.1], [1.0], [1.2]])
    >>> float(map_at_r(X, [0, 0, 1, 1]))
    1.0
    """
    return _single_metric("map_at_r", query, query_labels, reference, reference_labels,
                          max_k=max_k, metric=metric, M=M, L=L,
                          ref_includes_query=ref_includes_query, average=average,
                          chunk_size=chunk_size, working_memory=working_memory,
                          backend=backend)


@_fill_doc
def mean_average_precision(query, query_labels, reference=None, reference_labels=None, *,
                           metric="euclidean", M=None, L=None, ref_includes_query=False,
                           average="query", working_memory=None, backend="auto"):
    """Mean average precision over the full ranking of the references.

    ``AP = (1/R) * sum_{i<=n} P@i * rel_i`` over all ``n`` references, R being the number
    of references of the query's class; equivalently the mean over relevant references of
    the precision at their rank. Each block of queries sorts its full distance rows, so the
    cost is ``O(n_queries * n_references * log n_references)``; prefer :func:`map_at_r` on
    large sets.

    Parameters
    ----------
    {shared}

    Returns
    -------
    score : float, or ndarray of shape (n_queries,) when ``average=None``

    Examples
    --------
    >>> import numpy as np
    >>> from skmetric.metrics import mean_average_precision
    >>> X = np.array([[0.0], [0.4], [0.6], [1.0]])
    >>> round(float(mean_average_precision(X, [0, 1, 0, 1])), 4)
    0.4167
    """
    return _single_metric("mean_average_precision", query, query_labels, reference,
                          reference_labels, metric=metric, M=M, L=L,
                          ref_includes_query=ref_includes_query, average=average,
                          chunk_size=None, working_memory=working_memory, backend=backend)


@_fill_doc
def retrieval_report(query, query_labels, reference=None, reference_labels=None, *,
                     k=(1, 5, 10), max_k=None, mean_ap=False, metric="euclidean", M=None,
                     L=None, ref_includes_query=False, average="query", chunk_size=None,
                     working_memory=None, backend="auto"):
    """Several retrieval metrics at once, from a single k-nearest-neighbour search.

    Parameters
    ----------
    {shared}
    k : int or sequence of int, default=(1, 5, 10)
        The k of ``precision_at_{k}`` and ``recall_at_{k}``; values above the number of
        available references are skipped.
    max_k : int, default=None
        Cap on R for ``r_precision`` and ``map_at_r``.
    mean_ap : bool, default=False
        Also compute ``mean_average_precision`` over the full ranking (costlier).

    Returns
    -------
    report : dict
        ``{"precision_at_1": ..., "recall_at_1": ..., ..., "r_precision": ...,
        "map_at_r": ...}`` (and ``"mean_average_precision"``), each a float (or a per-query
        array when ``average=None``), plus ``"n_queries"`` and ``"n_lone_queries"``.

    Examples
    --------
    >>> import numpy as np
    >>> from skmetric.metrics import retrieval_report
    >>> X = np.array([[0.0], [0.1], [1.0], [1.2]])
    >>> report = retrieval_report(X, [0, 0, 1, 1], k=1)
    >>> report["precision_at_1"], report["map_at_r"]
    (1.0, 1.0)
    """
    ks = [k] if isinstance(k, numbers.Integral) else list(k)
    if not ks:
        raise ValueError("k must be an int or a non-empty sequence of ints.")
    for kk in ks:
        _check_k(kk, "k")
    setup = _retrieval_setup(query, query_labels, reference, reference_labels,
                             ref_includes_query, max_k)
    ks = sorted({kk for kk in ks if kk <= setup.n_available})
    if not ks:
        raise ValueError(
            f"Every k is above the {setup.n_available} references available per query."
        )
    engine = {"metric": metric, "M": M, "L": L, "chunk_size": chunk_size,
              "working_memory": working_memory, "backend": backend}
    per_query = _knn_metrics(setup, ks, at_r=True, **engine)
    if mean_ap:
        per_query["mean_average_precision"] = _full_ranking_ap(setup, **engine)
    report = {name: _average(values, setup, average) for name, values in per_query.items()}
    report["n_queries"] = int(setup.q_codes.shape[0])
    report["n_lone_queries"] = int(np.sum(setup.lone))
    return report


# ---------------------------------------------------------------------------- clustering


def nmi_kmeans(embeddings, labels, n_clusters=None, *, random_state=None, n_init="auto",
               average_method="arithmetic"):
    """Normalized mutual information between k-means clusters of the embeddings and labels.

    Runs scikit-learn's ``KMeans`` in the embedding space with ``n_clusters`` = the number
    of classes and scores the clustering with ``normalized_mutual_info_score``.

    Parameters
    ----------
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

    Returns
    -------
    nmi : float in [0, 1]

    Examples
    --------
    >>> import numpy as np
    >>> from skmetric.metrics import nmi_kmeans
    >>> X = np.array([[0.0], [0.1], [5.0], [5.1]])
    >>> nmi_kmeans(X, [0, 0, 1, 1], random_state=0)
    1.0
    """
    y, pred = _kmeans_labels(embeddings, labels, n_clusters, random_state, n_init)
    return float(normalized_mutual_info_score(y, pred, average_method=average_method))


def ami_kmeans(embeddings, labels, n_clusters=None, *, random_state=None, n_init="auto",
               average_method="arithmetic"):
    """Adjusted mutual information between k-means clusters of the embeddings and labels.

    As :func:`nmi_kmeans`, scored with ``adjusted_mutual_info_score`` (corrected for
    chance: 0 for a random clustering, 1 for a perfect one).

    Parameters
    ----------
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

    Returns
    -------
    ami : float, at most 1

    Examples
    --------
    >>> import numpy as np
    >>> from skmetric.metrics import ami_kmeans
    >>> X = np.array([[0.0], [0.1], [5.0], [5.1]])
    >>> ami_kmeans(X, [0, 0, 1, 1], random_state=0)
    1.0
    """
    y, pred = _kmeans_labels(embeddings, labels, n_clusters, random_state, n_init)
    return float(adjusted_mutual_info_score(y, pred, average_method=average_method))


# -------------------------------------------------------------------------- verification


class VerificationROC(NamedTuple):
    """ROC of pair verification: false/true accept rates, thresholds and the area under it.

    ``thresholds`` are in the units of the input: a pair is accepted when its score is
    ``>= threshold`` (similarities) or its distance ``<= threshold`` (distances).
    """

    far: np.ndarray
    tar: np.ndarray
    thresholds: np.ndarray
    auc: float


def verification_roc(scores, y, *, greater_is_similar=True, drop_intermediate=True):
    """ROC curve of pair verification: TAR against FAR over all thresholds, and its AUC.

    The false accept rate (FAR) is the fraction of dissimilar pairs accepted, the true
    accept rate (TAR) the fraction of similar pairs accepted.

    Parameters
    ----------
    scores : array-like of shape (n_pairs,)
        Similarity scores (higher = more similar, e.g. a learner's ``decision_function``)
        or, with ``greater_is_similar=False``, distances.
    y : array-like of shape (n_pairs,)
        1 for similar pairs, -1 or 0 for dissimilar ones (labels in {-1, 1} or {0, 1}).
    greater_is_similar : bool, default=True
        False when ``scores`` are distances.
    drop_intermediate : bool, default=True
        Drop thresholds that do not change the curve's shape (as scikit-learn's
        ``roc_curve``).

    Returns
    -------
    roc : VerificationROC
        Named tuple ``(far, tar, thresholds, auc)``; ``auc`` equals scikit-learn's
        ``roc_auc_score``.

    Examples
    --------
    >>> from skmetric.metrics import verification_roc
    >>> far, tar, thresholds, area = verification_roc([0.9, 0.8, 0.3, 0.1], [1, -1, 1, -1])
    >>> area
    0.75
    """
    sim, pos = _check_pair_scores(scores, y, greater_is_similar)
    far, tar, thr = roc_curve(pos, sim, drop_intermediate=drop_intermediate)
    thresholds = thr if greater_is_similar else -thr
    return VerificationROC(far, tar, thresholds, float(auc(far, tar)))


def tar_at_far(scores, y, far=1e-3, *, greater_is_similar=True):
    """True accept rate at a given false accept rate.

    The highest TAR over the thresholds whose FAR is at most ``far`` (no interpolation
    between operating points, so the value is attainable). A FAR below
    ``1 / n_dissimilar_pairs`` can only be met with no false accept at all.

    Parameters
    ----------
    scores : array-like of shape (n_pairs,)
        Similarities, or distances with ``greater_is_similar=False``.
    y : array-like of shape (n_pairs,)
        Pair labels in {-1, 1} or {0, 1}.
    far : float or sequence of float in [0, 1], default=1e-3
        Target false accept rate(s).
    greater_is_similar : bool, default=True
        False when ``scores`` are distances.

    Returns
    -------
    tar : float, or ndarray (one per ``far``) when ``far`` is a sequence

    Examples
    --------
    >>> from skmetric.metrics import tar_at_far
    >>> tar_at_far([0.9, 0.8, 0.3, 0.1], [1, -1, 1, -1], far=[0.0, 0.5])
    array([0.5, 1. ])
    """
    targets = np.asarray(far, dtype=np.float64)
    if targets.ndim > 1 or targets.size == 0 or not np.all((targets >= 0) & (targets <= 1)):
        raise ValueError(f"far must be a number or a sequence of numbers in [0, 1]; got {far!r}.")
    sim, pos = _check_pair_scores(scores, y, greater_is_similar)
    fpr, tpr, _ = roc_curve(pos, sim, drop_intermediate=False)
    # fpr is non-decreasing: the best TAR with FAR <= target is at the last such point.
    last = np.searchsorted(fpr, targets, side="right") - 1
    result = tpr[last]
    return float(result) if targets.ndim == 0 else result


def equal_error_rate(scores, y, *, greater_is_similar=True, return_threshold=False):
    """Equal error rate: the error rate where the false accept and false reject rates meet.

    The ROC is interpolated linearly between operating points to find where
    ``FAR = FRR = 1 - TAR``.

    Parameters
    ----------
    scores : array-like of shape (n_pairs,)
        Similarities, or distances with ``greater_is_similar=False``.
    y : array-like of shape (n_pairs,)
        Pair labels in {-1, 1} or {0, 1}.
    greater_is_similar : bool, default=True
        False when ``scores`` are distances.
    return_threshold : bool, default=False
        Also return the threshold of the operating point closest to the EER.

    Returns
    -------
    eer : float in [0, 1]
    threshold : float
        Only with ``return_threshold=True``, in the units of ``scores``.

    Examples
    --------
    >>> from skmetric.metrics import equal_error_rate
    >>> equal_error_rate([0.9, 0.8, 0.7, 0.6], [1, -1, 1, -1])
    0.5
    """
    sim, pos = _check_pair_scores(scores, y, greater_is_similar)
    fpr, tpr, thr = roc_curve(pos, sim, drop_intermediate=False)
    gap = fpr - (1.0 - tpr)  # rises from -1 at the first point to +1 at the last
    i = int(np.argmax(gap >= 0))
    t = -gap[i - 1] / (gap[i] - gap[i - 1])
    eer = float(fpr[i - 1] + t * (fpr[i] - fpr[i - 1]))
    if not return_threshold:
        return eer
    near = i if t >= 0.5 or not np.isfinite(thr[i - 1]) else i - 1
    threshold = float(thr[near] if greater_is_similar else -thr[near])
    return eer, threshold


def best_threshold_accuracy(scores, y, *, greater_is_similar=True):
    """Best verification accuracy over all thresholds, and that threshold.

    Parameters
    ----------
    scores : array-like of shape (n_pairs,)
        Similarities, or distances with ``greater_is_similar=False``.
    y : array-like of shape (n_pairs,)
        Pair labels in {-1, 1} or {0, 1}.
    greater_is_similar : bool, default=True
        False when ``scores`` are distances.

    Returns
    -------
    accuracy : float
        Fraction of pairs classified correctly at the best threshold.
    threshold : float
        Midway between the last accepted and first rejected value: pairs with
        ``score >= threshold`` (or ``distance <= threshold``) are predicted similar.

    Examples
    --------
    >>> from skmetric.metrics import best_threshold_accuracy
    >>> best_threshold_accuracy([0.9, 0.8, 0.3, 0.1], [1, 1, -1, -1])
    (1.0, 0.55)
    """
    sim, pos = _check_pair_scores(scores, y, greater_is_similar)
    dist_thr = _best_threshold(-sim, pos, "accuracy", None, 1.0)
    accuracy = float(np.mean((-sim <= dist_thr) == pos))
    threshold = -dist_thr if greater_is_similar else dist_thr
    return accuracy, float(threshold)


# ------------------------------------------------------------------------------- scorers


def make_retrieval_scorer(name, **kwargs):
    """A ``scoring=`` callable that evaluates a transformer's embedding of the fold.

    The scorer embeds ``X`` with ``estimator.transform`` (for a ``Pipeline`` whose last
    step is not a transformer, e.g. a k-NN classifier, with all steps but the last) and
    computes the metric on the fold itself, leave-one-out: each sample queries the other
    samples of the fold. All scorers are greater-is-better.

    Parameters
    ----------
    name : str
        One of "precision_at_1", "precision_at_k", "recall_at_k", "r_precision",
        "map_at_r", "mean_average_precision", "nmi", "ami".
    **kwargs
        Passed to the metric, e.g. ``k=5`` for "precision_at_k" and "recall_at_k",
        ``metric="cosine"``, ``random_state=0`` for "nmi" and "ami".

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y) -> float``.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.model_selection import StratifiedKFold, cross_val_score
    >>> from skmetric import Covariance
    >>> from skmetric.metrics import make_retrieval_scorer
    >>> X, y = load_iris(return_X_y=True)
    >>> cv = StratifiedKFold(3, shuffle=True, random_state=0)  # folds with every class
    >>> scores = cross_val_score(Covariance(), X, y, cv=cv,
    ...                          scoring=make_retrieval_scorer("map_at_r"))
    >>> scores.round(2)  # whitening is a poor metric for iris
    array([0.52, 0.46, 0.52])
    """
    if name not in _RETRIEVAL_SCORERS:
        raise ValueError(
            f"Unknown retrieval scorer {name!r}; choose from {sorted(_RETRIEVAL_SCORERS)}."
        )
    func, defaults = _RETRIEVAL_SCORERS[name]
    params = {**defaults, **kwargs}
    _check_kwargs(func, params, name, skip=2)
    return _EmbeddingScorer(name, func, params)


def make_pair_scorer(name, **kwargs):
    """A ``scoring=`` callable for learners fitted on pairs, from their ``decision_function``.

    Parameters
    ----------
    name : str
        "roc_auc"; "tar_at_far" (``far=1e-3`` by default, one value); "accuracy" (best
        threshold accuracy); "eer" or its alias "neg_eer", which return the *negated*
        equal error rate so that greater is better, as all scikit-learn scorers.
    **kwargs
        Passed to the metric (e.g. ``far=1e-2``).

    Returns
    -------
    scorer : callable
        ``scorer(estimator, pairs, y) -> float``, using ``estimator.decision_function``
        (higher = more similar).

    Examples
    --------
    >>> from skmetric.metrics import make_pair_scorer
    >>> scorer = make_pair_scorer("tar_at_far", far=0.01)
    >>> scorer
    make_pair_scorer('tar_at_far', far=0.01)
    """
    if name not in _PAIR_SCORERS:
        raise ValueError(f"Unknown pair scorer {name!r}; choose from {sorted(_PAIR_SCORERS)}.")
    func, _ = _PAIR_SCORERS[name]
    _check_kwargs(func, kwargs, name, skip=2)
    if name == "tar_at_far":
        far = kwargs.get("far", 1e-3)
        if np.ndim(far) != 0:
            raise ValueError("A scorer needs a single far; got a sequence.")
        # Checked here, not at scoring time, where every fold would silently score NaN.
        if (not isinstance(far, numbers.Real) or isinstance(far, bool)
                or not 0 <= far <= 1):
            raise ValueError(f"far must be a number in [0, 1] (a false accept rate); got "
                             f"{far!r}.")
    return _PairScorer(name, kwargs)


# ------------------------------------------------------------------ retrieval internals


def _single_metric(name, query, query_labels, reference, reference_labels, *, k=None,
                   max_k=None, ref_includes_query, average, **engine):
    if name in ("precision_at_k", "recall_at_k"):
        _check_k(k, "k")
    setup = _retrieval_setup(query, query_labels, reference, reference_labels,
                             ref_includes_query, max_k)
    _check_average(average)
    if name == "mean_average_precision":
        per_query = _full_ranking_ap(setup, **engine)
        return _average(per_query, setup, average)
    if k is not None and k > setup.n_available:
        raise ValueError(
            f"k={k} is more than the {setup.n_available} references available per query."
        )
    values = _knn_metrics(setup, [k] if k is not None else [], at_r=k is None, **engine)
    key = {"precision_at_k": f"precision_at_{k}", "recall_at_k": f"recall_at_{k}"}.get(name,
                                                                                    name)
    return _average(values[key], setup, average)


class _Setup(NamedTuple):
    xp: object
    query: object
    reference: object
    q_codes: np.ndarray
    r_codes: np.ndarray
    exclude_self: bool
    n_available: int
    R: np.ndarray  # relevant references per query, capped by max_k
    R_full: np.ndarray  # uncapped
    lone: np.ndarray


def _retrieval_setup(query, query_labels, reference, reference_labels, ref_includes_query,
                     max_k):
    if max_k is not None:
        _check_k(max_k, "max_k")
    if not isinstance(ref_includes_query, (bool, np.bool_)):
        raise TypeError(f"ref_includes_query must be a bool; got {ref_includes_query!r}.")
    if reference is None and reference_labels is not None:
        raise ValueError("reference_labels was given without reference.")
    if reference is not None and reference_labels is None:
        raise ValueError("reference_labels is required with reference.")
    query, reference, xp = check_inputs(query, reference, names=("query", "reference"))
    q_labels = _labels_as_numpy(query_labels, query.shape[0], "query_labels", "query")
    if reference is None:
        reference, r_labels, exclude_self = query, q_labels, True
    else:
        r_labels = _labels_as_numpy(reference_labels, reference.shape[0], "reference_labels",
                                    "reference")
        exclude_self = bool(ref_includes_query)
    _, codes = np.unique(np.concatenate([q_labels, r_labels]), return_inverse=True)
    q_codes, r_codes = codes[: q_labels.shape[0]], codes[q_labels.shape[0]:]
    if exclude_self and reference is not query:
        n_q = q_codes.shape[0]
        if r_codes.shape[0] < n_q or np.any(r_codes[:n_q] != q_codes) or not _same_rows(
                xp, query, reference[:n_q, ...]):
            raise ValueError(
                "With ref_includes_query=True the first len(query) references must be the "
                "queries, with the same labels; check the order of reference and its labels."
            )
    n_available = reference.shape[0] - int(exclude_self)
    if n_available < 1:
        raise ValueError("Retrieval needs at least 2 samples (1 reference besides the query).")
    counts = np.bincount(r_codes, minlength=int(codes.max()) + 1)
    R_full = counts[q_codes] - int(exclude_self)
    R = R_full if max_k is None else np.minimum(R_full, max_k)
    return _Setup(xp, query, reference, q_codes, r_codes, exclude_self, n_available, R,
                  R_full, R_full == 0)


def _same_rows(xp, A, B):
    """Whether A and B hold the same rows up to float round-off (e.g. float32 copies)."""
    gap = xp.max(xp.abs(xp.astype(A, xp.float64) - xp.astype(B, xp.float64)))
    return bool(gap <= 1e-5 * (1.0 + float(xp.max(xp.abs(xp.astype(A, xp.float64))))))


def _knn_metrics(setup, ks, *, at_r, metric, M, L, chunk_size, working_memory, backend):
    """Per-query precision@k / recall@k (each k) and, if ``at_r``, R-precision and MAP@R."""
    xp, n_q = setup.xp, setup.q_codes.shape[0]
    n_neighbors = max([*ks, int(setup.R.max()) if at_r else 0])
    out = {}
    names = [f"{m}_at_{k}" for k in ks for m in ("precision", "recall")]
    names += ["r_precision", "map_at_r"] if at_r else []
    for name in names:
        out[name] = np.full(n_q, np.nan)
    if n_neighbors == 0:  # every query is lone
        return out
    device = array_api_compat.device(setup.query)
    # int32 class codes: half the memory traffic of the (block, R) label gathers.
    q_codes = xp.asarray(setup.q_codes.astype(np.int32), device=device)
    r_codes = xp.asarray(setup.r_codes.astype(np.int32), device=device)
    R = xp.asarray(setup.R, device=device)
    ranks = xp.arange(1, n_neighbors + 1, dtype=xp.float64, device=device)
    block = _query_block(n_q, n_neighbors, working_memory)
    for start in range(0, n_q, block):
        stop = min(start + block, n_q)
        idx = kneighbors(setup.query[start:stop, ...], setup.reference,
                         n_neighbors=n_neighbors + int(setup.exclude_self), metric=metric,
                         M=M, L=L, exclude_self=False, chunk_size=chunk_size,
                         working_memory=working_memory, backend=backend,
                         return_distance=False)
        if setup.exclude_self:
            idx = _drop_self(xp, idx, start, n_neighbors, device)
        nn_codes = xp.reshape(xp.take(r_codes, xp.reshape(idx, (-1,)), axis=0),
                              (stop - start, n_neighbors))
        hits = nn_codes == q_codes[start:stop, None]
        found = _running_count(xp, hits)  # hits in the top i
        for k in ks:
            found_k = xp.astype(found[:, k - 1], xp.float64)
            out[f"precision_at_{k}"][start:stop] = to_numpy(found_k / k)
            out[f"recall_at_{k}"][start:stop] = to_numpy(xp.astype(found_k > 0, xp.float64))
        if at_r:
            r = R[start:stop]
            denom = xp.astype(xp.where(r > 0, r, xp.ones_like(r)), xp.float64)
            # Hits in the top R: the running count at column R - 1.
            at_r_col = xp.reshape(xp.astype(denom, xp.int64) - 1, (-1, 1))
            found_r = xp.take_along_axis(found, at_r_col, axis=1)[:, 0]
            out["r_precision"][start:stop] = to_numpy(xp.astype(found_r, xp.float64) / denom)
            # MAP@R sums P@i = found_i / i over the hits at ranks i <= R.
            counted = hits & (ranks[None, :] <= xp.astype(r, xp.float64)[:, None])
            precision = xp.where(counted, xp.astype(found, xp.float64) / ranks[None, :],
                                 xp.zeros((), dtype=xp.float64, device=device))
            out["map_at_r"][start:stop] = to_numpy(xp.sum(precision, axis=1) / denom)
    return out


def _running_count(xp, hits):
    """Cumulative count of True along each row of ``hits``, as one flat cumulative sum
    minus each row's starting value (a row-wise cumsum is several times slower)."""
    b, k = hits.shape
    dtype = xp.int32 if b * k < 2**31 else xp.int64
    flat = xp.cumulative_sum(xp.reshape(xp.astype(hits, dtype), (-1,)), dtype=dtype)
    found = xp.reshape(flat, (b, k))
    start = xp.concat([xp.zeros(1, dtype=dtype, device=array_api_compat.device(hits)),
                       found[:-1, -1]])
    return found - start[:, None]


def _query_block(n_queries, n_neighbors, working_memory):
    """Queries per block so that the block's neighbour arrays fit in ``working_memory``."""
    mib = get_config()["working_memory"] if working_memory is None else working_memory
    # ~8 arrays of n_neighbors 8-byte values per query (indices, labels, hits, sums, ...).
    return int(max(1, min(n_queries, mib * 2**20 // (64 * max(n_neighbors, 1)))))


def _drop_self(xp, idx, start, n_neighbors, device):
    """Remove each query's own index from its ``n_neighbors + 1`` nearest references.

    With ties broken by index, the neighbours of query i among the references without i
    are its ``n_neighbors + 1`` nearest with i removed, or their first ``n_neighbors``
    when i is not among them.
    """
    n = idx.shape[0]
    own = xp.arange(start, start + n, dtype=idx.dtype, device=device)
    if bool(xp.all(idx[:, 0] == own)):  # the usual case: each query is its own nearest
        return idx[:, 1:]
    is_self = idx == own[:, None]
    has_self = xp.any(is_self, axis=1)
    pos = xp.where(has_self, xp.argmax(xp.astype(is_self, xp.int32), axis=1),
                   xp.full_like(own, n_neighbors))
    cols = xp.arange(n_neighbors, dtype=pos.dtype, device=device)
    return xp.where(cols[None, :] < pos[:, None], idx[:, :n_neighbors], idx[:, 1:])


def _full_ranking_ap(setup, *, metric, M, L, chunk_size, working_memory, backend):
    """Per-query average precision over the full, stably sorted ranking."""
    del chunk_size, backend  # one block of rows is one exact distance computation here
    xp = setup.xp
    n_q, n_r = setup.q_codes.shape[0], setup.r_codes.shape[0]
    out = np.full(n_q, np.nan)
    device = array_api_compat.device(setup.query)
    q_codes = xp.asarray(setup.q_codes, device=device)
    r_codes = xp.asarray(setup.r_codes, device=device)
    ranks = xp.arange(1, n_r + 1, dtype=xp.float64, device=device)
    ref_index = xp.arange(n_r, device=device)
    mib = get_config()["working_memory"] if working_memory is None else working_memory
    block = int(max(1, min(n_q, mib * 2**20 // (40 * n_r))))
    for start in range(0, n_q, block):
        stop = min(start + block, n_q)
        dist = pairwise_distances(setup.query[start:stop, ...], setup.reference,
                                  metric=metric, M=M, L=L)
        relevant = r_codes[None, :] == q_codes[start:stop, None]
        if setup.exclude_self:
            # The query's own row goes last and counts as irrelevant: no effect on AP.
            own = ref_index[None, :] == xp.arange(start, stop, device=device)[:, None]
            dist = xp.where(own, xp.asarray(xp.inf, dtype=dist.dtype, device=device), dist)
            relevant = relevant & ~own
        order = xp.argsort(dist, axis=1, stable=True)
        hits = xp.astype(xp.take_along_axis(relevant, order, axis=1), xp.float64)
        found = xp.cumulative_sum(hits, axis=1)
        r = xp.astype(xp.sum(hits, axis=1), xp.float64)
        denom = xp.where(r > 0, r, xp.ones_like(r))
        out[start:stop] = to_numpy(xp.sum(hits * found / ranks[None, :], axis=1) / denom)
    out[setup.lone] = np.nan
    return out


def _average(per_query, setup, average):
    _check_average(average)
    scored = ~setup.lone
    if average is None:
        values = per_query.copy()
        values[~scored] = np.nan
        return values
    if not np.any(scored):
        warnings.warn(
            "No query has a reference of its class (besides itself); the retrieval metric "
            "is undefined and set to NaN.",
            UserWarning,
            stacklevel=3,
        )
        return float("nan")
    if average == "query":
        return float(np.mean(per_query[scored]))
    codes = setup.q_codes[scored]
    sums = np.bincount(codes, weights=per_query[scored])
    counts = np.bincount(codes)
    present = counts > 0
    return float(np.mean(sums[present] / counts[present]))


def _check_average(average):
    if average not in _AVERAGES:
        raise ValueError(f"average must be one of {_AVERAGES}; got {average!r}.")


def _check_k(k, name):
    if not isinstance(k, numbers.Integral) or isinstance(k, bool) or k < 1:
        raise ValueError(f"{name} must be an integer >= 1; got {k!r}.")


def _labels_as_numpy(labels, n, name, what):
    labels = to_numpy(labels)
    if labels.ndim != 1 or labels.shape[0] != n:
        raise ValueError(
            f"{name} must be 1-D with one label per row of {what} ({n}); got shape "
            f"{labels.shape}."
        )
    if labels.dtype.kind == "f" and np.isnan(labels).any():
        raise ValueError(f"{name} contains NaN.")
    return labels


# ----------------------------------------------------------------- clustering internals


def _kmeans_labels(embeddings, labels, n_clusters, random_state, n_init):
    X = to_numpy(check_input(embeddings, "embeddings")).astype(np.float64)
    y = _labels_as_numpy(labels, X.shape[0], "labels", "embeddings")
    n_classes = np.unique(y).shape[0]
    if n_classes < 2:
        raise ValueError(
            f"NMI/AMI need labels of at least 2 classes; got {n_classes}. Evaluate on data "
            "with several classes."
        )
    if n_clusters is None:
        n_clusters = n_classes
    _check_k(n_clusters, "n_clusters")
    if n_clusters > X.shape[0]:
        raise ValueError(f"n_clusters={n_clusters} is more than the {X.shape[0]} samples.")
    kmeans = KMeans(n_clusters=n_clusters, n_init=n_init, random_state=random_state)
    return y, kmeans.fit_predict(X)


# --------------------------------------------------------------- verification internals


def _check_pair_scores(scores, y, greater_is_similar):
    """Similarities (higher = more similar) as float64 and a boolean "similar" mask."""
    if not isinstance(greater_is_similar, (bool, np.bool_)):
        raise TypeError(
            "greater_is_similar must be True (similarity scores) or False (distances); got "
            f"{greater_is_similar!r}."
        )
    s = to_numpy(scores)
    if s.ndim != 1 or s.shape[0] == 0 or s.dtype.kind not in "biuf":
        raise ValueError(
            f"scores must be a non-empty 1-D numeric array, one per pair; got shape {s.shape} "
            f"and dtype {s.dtype}."
        )
    s = s.astype(np.float64)
    if not np.all(np.isfinite(s)):
        raise ValueError("scores contain NaN or infinity.")
    y = to_numpy(y)
    if y.ndim != 1 or y.shape[0] != s.shape[0]:
        raise ValueError(
            f"y must be 1-D with one label per pair ({s.shape[0]}); got shape {y.shape}."
        )
    if y.dtype.kind not in "biuf":
        raise ValueError(f"y must hold numeric labels in {{-1, 1}} or {{0, 1}}; got {y.dtype}.")
    values = set(np.unique(y).tolist())
    if not (values <= {-1, 1} or values <= {0, 1}):
        raise ValueError(
            f"y must hold labels in {{-1, 1}} or {{0, 1}} (1 = similar pair); found "
            f"{sorted(values)}."
        )
    pos = y == 1
    if pos.all() or not pos.any():
        raise ValueError("y needs both similar (1) and dissimilar (-1 or 0) pairs.")
    return (s if greater_is_similar else -s), pos


# ------------------------------------------------------------------- scorer internals


def _check_kwargs(func, params, name, skip):
    """Raise a TypeError now, not inside cross-validation, for unknown keyword arguments."""
    sig = inspect.signature(func)
    accepted = [p for p in list(sig.parameters)[skip:]]
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise TypeError(f"Scorer {name!r} got unknown argument(s) {unknown}; it accepts "
                        f"{accepted}.")


def _embed(estimator, X):
    if hasattr(estimator, "transform"):
        return estimator.transform(X)
    steps = getattr(estimator, "steps", None)
    if steps is not None and len(steps) > 1:  # a Pipeline ending in e.g. a classifier
        return estimator[:-1].transform(X)
    raise TypeError(
        f"A retrieval scorer needs a transformer (or a Pipeline of transformers) to embed X; "
        f"{type(estimator).__name__} has no transform method."
    )


class _EmbeddingScorer:
    """``scorer(estimator, X, y)``: a metric of ``estimator``'s embedding of the fold."""

    def __init__(self, name, func, params):
        self.name, self.func, self.params = name, func, params

    def __call__(self, estimator, X, y):
        if y is None:
            raise ValueError(f"The {self.name!r} scorer needs class labels y.")
        return float(self.func(_embed(estimator, X), y, **self.params))

    def __repr__(self):
        args = "".join(f", {k}={v!r}" for k, v in self.params.items())
        return f"make_retrieval_scorer({self.name!r}{args})"


class _PairScorer:
    """``scorer(estimator, pairs, y)`` from the learner's pair similarities."""

    def __init__(self, name, params):
        self.name, self.params = name, params

    def __call__(self, estimator, pairs, y):
        func, sign = _PAIR_SCORERS[self.name]
        value = func(estimator.decision_function(pairs), y, **self.params)
        return sign * float(value[0] if isinstance(value, tuple) else value)

    def __repr__(self):
        args = "".join(f", {k}={v!r}" for k, v in self.params.items())
        return f"make_pair_scorer({self.name!r}{args})"


def _roc_auc(scores, y):
    return verification_roc(scores, y).auc


_RETRIEVAL_SCORERS = {
    "precision_at_1": (precision_at_k, {"k": 1}),
    "precision_at_k": (precision_at_k, {}),
    "recall_at_k": (recall_at_k, {}),
    "r_precision": (r_precision, {}),
    "map_at_r": (map_at_r, {}),
    "mean_average_precision": (mean_average_precision, {}),
    "nmi": (nmi_kmeans, {}),
    "ami": (ami_kmeans, {}),
}

_PAIR_SCORERS = {
    "roc_auc": (_roc_auc, 1.0),
    "tar_at_far": (tar_at_far, 1.0),
    "accuracy": (best_threshold_accuracy, 1.0),
    "eer": (equal_error_rate, -1.0),
    "neg_eer": (equal_error_rate, -1.0),
}
