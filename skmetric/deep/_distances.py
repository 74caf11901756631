"""Pairwise distances and similarities shared by the deep losses and miners.

A distance object maps a query batch (n, d) and a reference batch (m, d) to an (n, m)
matrix. Distances grow with dissimilarity; similarities (``is_similarity = True``) shrink,
and :meth:`Distance.margin` hides that difference so that a loss is written once.

The cosine similarity is named ``'cosine_similarity'`` (pytorch-metric-learning's
``CosineSimilarity``): in ``skmetric.distances`` and ``skmetric.metrics``, ``'cosine'`` is
the cosine *distance* 1 - cos, as in scikit-learn and SciPy. The former name ``'cosine'``
still selects the similarity here, with a FutureWarning.
"""

import torch
import torch.nn.functional as F

from .._warn import warn_user


class Distance:
    """Base class: a pairwise (n, m) matrix between embeddings.

    Parameters
    ----------
    normalize : bool, default=True
        L2-normalise the embeddings first (pytorch-metric-learning's default).
    """

    name = None
    is_similarity = False

    def __init__(self, normalize=True):
        self.normalize = normalize

    def __call__(self, x, y=None):
        x = self._prepare(x)
        y = x if y is None else self._prepare(y)
        return self._matrix(x, y)

    def _prepare(self, x):
        return F.normalize(x, p=2, dim=1) if self.normalize else x

    def _matrix(self, x, y):
        raise NotImplementedError

    def margin(self, x, y):
        """How much farther apart ``x`` is than ``y`` (``x - y``; ``y - x`` for similarities)."""
        return y - x if self.is_similarity else x - y

    def closest(self, x, y):
        """Element-wise value of the closer of ``x`` and ``y``."""
        return torch.maximum(x, y) if self.is_similarity else torch.minimum(x, y)

    def __repr__(self):
        return f"{type(self).__name__}(normalize={self.normalize})"


def pairwise_euclidean(x, y):
    """The (n, m) L2 distances of the rows of ``x`` and ``y`` (``torch.cdist``, which keeps
    a zero gradient at zero distance).

    16-bit floats are computed in float32 and the result cast back: torch's CPU ``cdist``
    has no float16 or bfloat16 kernel, and their 8- or 11-bit mantissas would lose the
    small differences of nearby embeddings in the sums of squares anyway.
    """
    if x.dtype in (torch.float16, torch.bfloat16):
        return torch.cdist(x.float(), y.float(), p=2).to(x.dtype)
    return torch.cdist(x, y, p=2)


class EuclideanDistance(Distance):
    """L2 distance (:func:`pairwise_euclidean`)."""

    name = "euclidean"

    def _matrix(self, x, y):
        return pairwise_euclidean(x, y)


class SquaredEuclideanDistance(Distance):
    """Squared L2 distance (no square root, so smooth everywhere)."""

    name = "sqeuclidean"

    def _matrix(self, x, y):
        return pairwise_euclidean(x, y) ** 2


class DotProductSimilarity(Distance):
    """Inner product; with ``normalize=True`` it equals the cosine similarity."""

    name = "dot"
    is_similarity = True

    def _matrix(self, x, y):
        return x @ y.T


class CosineSimilarity(DotProductSimilarity):
    """Cosine similarity: the inner product of L2-normalised embeddings (always normalised)."""

    name = "cosine_similarity"

    def __init__(self, normalize=True):
        super().__init__(normalize=True)


DISTANCES = {
    cls.name: cls
    for cls in (EuclideanDistance, SquaredEuclideanDistance, DotProductSimilarity, CosineSimilarity)
}


#: Former names of the deep distances, and their current names.
_RENAMED = {"cosine": "cosine_similarity"}


def canonical_distance(distance, warn=True):
    """``distance`` with a former name replaced by the current one (a FutureWarning says so
    when ``warn``); any other value is returned as is."""
    if not isinstance(distance, str) or distance.lower() not in _RENAMED:
        return distance
    new = _RENAMED[distance.lower()]
    if warn:
        warn_user(
            f"distance={distance!r} is deprecated in skmetric.deep and will be removed in a "
            f"future release: use distance={new!r}, the same cosine similarity. (In "
            "skmetric.distances and skmetric.metrics, 'cosine' is the cosine distance "
            "1 - cos.)",
            FutureWarning)
    return new


def get_distance(distance, normalize=True):
    """Return a :class:`Distance` from its name, or ``distance`` itself if it is one.

    Parameters
    ----------
    distance : {'euclidean', 'sqeuclidean', 'cosine_similarity', 'dot'} or Distance
        The pairwise function ('cosine', its former name for the cosine similarity, is
        deprecated).
    normalize : bool, default=True
        Whether a named distance L2-normalises the embeddings first (ignored for objects
        and for 'cosine_similarity', which always normalises).
    """
    distance = canonical_distance(distance)
    if isinstance(distance, Distance):
        return distance
    if isinstance(distance, str) and distance.lower() in DISTANCES:
        return DISTANCES[distance.lower()](normalize=normalize)
    raise ValueError(
        f"Unknown distance {distance!r}; use one of {sorted(DISTANCES)} or a "
        f"skmetric.deep._distances.Distance instance.{_pml_hint(distance)}"
    )


def _pml_hint(distance):
    """For a pytorch-metric-learning distance object: the name that computes the same."""
    if not type(distance).__module__.startswith("pytorch_metric_learning"):
        return ""
    cls = type(distance).__name__
    name = {"CosineSimilarity": "cosine_similarity", "DotProductSimilarity": "dot"}.get(cls)
    if cls == "LpDistance" and getattr(distance, "p", None) == 2:
        name = "sqeuclidean" if getattr(distance, "power", 1) == 2 else "euclidean"
    if cls == "SNRDistance":
        return " For pytorch-metric-learning's SNRDistance, use the loss 'snr_contrastive'."
    if name is None:
        return f" pytorch-metric-learning's {cls} has no equivalent here."
    normalize = getattr(distance, "normalize_embeddings", True)
    return (f" For pytorch-metric-learning's {cls}, pass distance={name!r}"
            + ("" if name == "cosine_similarity" else
               f" (and normalize={normalize}, its normalize_embeddings)") + ".")
