"""Evaluation of embeddings: retrieval, clustering and pair-verification metrics, scorers.

Retrieval metrics rank a set of reference embeddings by distance to each query embedding
and check which neighbours share the query's label. They run blockwise through the
distance engine of :func:`skmetric.neighbors.kneighbors`, on any array namespace (NumPy,
torch, CuPy, ...), with the reference set prepared once per call; memory stays bounded
by ``working_memory`` whatever the number of embeddings.

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

from ._clustering import ami_kmeans, nmi_kmeans
from ._retrieval import (
    map_at_r,
    mean_average_precision,
    precision_at_k,
    r_precision,
    recall_at_k,
    retrieval_report,
)
from ._scorers import make_pair_scorer, make_retrieval_scorer
from ._verification import (
    VerificationROC,
    best_threshold_accuracy,
    equal_error_rate,
    tar_at_far,
    verification_roc,
)

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
