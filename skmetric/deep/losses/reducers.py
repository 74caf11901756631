"""Reducers: how a loss turns its per-tuple (or per-sample) terms into one scalar.

A reducer is called as ``reducer(losses, indices, kind, embeddings, labels)`` where
``losses`` is a 1-D tensor of terms and ``kind`` says what each term belongs to:

* ``"element"``: a sample; ``indices`` is a tensor of sample indices;
* ``"pos_pair"`` / ``"neg_pair"``: a pair; ``indices`` is ``(anchors, others)``;
* ``"triplet"``: a triplet; ``indices`` is ``(anchors, positives, negatives)``;
* ``"already_reduced"``: a loss that reduces itself (e.g. ``HistogramLoss``); every
  reducer returns it as is, as pytorch-metric-learning's do.

Losses that take ``reducer=`` (``BaseLoss.supports_reducer``) pass their terms here instead
of reducing them themselves; a loss made of several terms (e.g. the positive and negative
pairs of ``ContrastiveLoss``) reduces each and adds them, as pytorch-metric-learning does.
"""

import torch
from torch import nn

from .._params import FINITE, ValidatedParams
from .._tuples import check_class_indices

KINDS = ("element", "pos_pair", "neg_pair", "triplet", "already_reduced")


class BaseReducer(nn.Module, metaclass=ValidatedParams):
    """Base of the reducers: a graph-connected zero for no terms, else :meth:`reduce`."""

    def forward(self, losses, indices, kind, embeddings, labels):
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}; got {kind!r}.")
        if losses.numel() == 0:
            return (embeddings * 0).sum()
        if kind == "already_reduced":
            return losses.reshape(())
        return self.reduce(losses, indices, kind, embeddings, labels)

    def reduce(self, losses, indices, kind, embeddings, labels):
        raise NotImplementedError


class MeanReducer(BaseReducer):
    """The mean of all terms.

    Examples
    --------
    >>> import torch
    >>> from skmetric.deep.losses import MeanReducer
    >>> MeanReducer()(torch.tensor([0.0, 1.0, 2.0]), torch.arange(3), "element",
    ...               torch.zeros(3, 2), torch.arange(3))
    tensor(1.)
    """

    def reduce(self, losses, indices, kind, embeddings, labels):
        return losses.mean()


class ThresholdReducer(BaseReducer):
    """The mean of the terms strictly between ``low`` and ``high`` (0 if there are none).

    Parameters
    ----------
    low, high : float or None, default=None
        Bounds (exclusive); at least one must be given.

    Examples
    --------
    >>> import torch
    >>> from skmetric.deep.losses import ThresholdReducer
    >>> ThresholdReducer(low=0.5)(torch.tensor([0.0, 1.0, 2.0]), torch.arange(3),
    ...                           "element", torch.zeros(3, 2), torch.arange(3))
    tensor(1.5000)
    """

    _parameter_constraints = {"low": [None, FINITE], "high": [None, FINITE]}

    def __init__(self, low=None, high=None):
        super().__init__()
        if low is None and high is None:
            raise ValueError("ThresholdReducer needs low, high or both; with neither, use "
                             "MeanReducer.")
        self.low = low
        self.high = high

    def reduce(self, losses, indices, kind, embeddings, labels):
        keep = torch.ones_like(losses, dtype=torch.bool)
        if self.low is not None:
            keep &= losses > self.low
        if self.high is not None:
            keep &= losses < self.high
        n = keep.sum()
        # Divide by max(n, 1): no sync, and 0 (connected to the graph) when nothing passes.
        return losses.masked_fill(~keep, 0).sum() / n.clamp(min=1)


class AvgNonZeroReducer(ThresholdReducer):
    """The mean of the strictly positive terms (0 if there are none).

    It is ``ThresholdReducer(low=0)``, the default reduction of e.g. the triplet margin
    and contrastive losses.

    Examples
    --------
    >>> import torch
    >>> from skmetric.deep.losses import AvgNonZeroReducer
    >>> reducer, index = AvgNonZeroReducer(), torch.arange(3)
    >>> reducer(torch.tensor([0.0, 1.0, 2.0]), index, "element", torch.zeros(3, 2), index)
    tensor(1.5000)
    >>> reducer(torch.zeros(3), index, "element", torch.zeros(3, 2), index)
    tensor(0.)
    """

    _parameter_constraints = {}

    def __init__(self):
        super().__init__(low=0)


class ClassWeightedReducer(BaseReducer):
    """The mean of the terms, each weighted by the class of its sample (or anchor).

    Parameters
    ----------
    weights : array-like of shape (num_classes,)
        The weight of each class; labels must be class indices.

    Examples
    --------
    >>> import torch
    >>> from skmetric.deep.losses import ClassWeightedReducer
    >>> reducer = ClassWeightedReducer([1.0, 3.0])
    >>> reducer(torch.tensor([1.0, 1.0]), torch.arange(2), "element", torch.zeros(2, 2),
    ...         torch.tensor([0, 1]))
    tensor(2.)
    """

    def __init__(self, weights):
        super().__init__()
        weights = torch.as_tensor(weights)
        if weights.ndim != 1 or not bool(torch.isfinite(weights.double()).all()):
            raise ValueError("weights must be a 1-D array of finite class weights; got "
                             f"shape {tuple(weights.shape)}.")
        self.weights = weights

    def reduce(self, losses, indices, kind, embeddings, labels):
        anchors = indices if kind == "element" else indices[0]
        weights = self.weights.to(device=losses.device, dtype=losses.dtype)
        classes = check_class_indices(
            labels[anchors], len(weights),
            f"{type(self).__name__} has weights for {len(weights)} classes, so ",
            "Give one weight per class, and encode the labels with "
            "sklearn.preprocessing.LabelEncoder (MetricEmbedder does this for you).")
        return (losses * weights[classes]).mean()


class PerAnchorReducer(BaseReducer):
    """Average the pair terms of each anchor, then reduce the per-anchor values.

    An anchor without pairs counts as 0. Element terms go to ``reducer`` unchanged;
    triplets are not supported.

    Parameters
    ----------
    reducer : BaseReducer, default=None
        Reduces the per-anchor averages; None means :class:`MeanReducer`.

    Examples
    --------
    >>> import torch
    >>> from skmetric.deep.losses import PerAnchorReducer
    >>> pairs = (torch.tensor([0, 0, 1]), torch.tensor([1, 2, 2]))
    >>> PerAnchorReducer()(torch.tensor([1.0, 3.0, 3.0]), pairs, "pos_pair",
    ...                    torch.zeros(3, 2), torch.arange(3))
    tensor(1.6667)
    """

    def __init__(self, reducer=None):
        super().__init__()
        if reducer is not None and not callable(reducer):
            raise TypeError(f"reducer must be a reducer or None; got {type(reducer).__name__}.")
        self.reducer = MeanReducer() if reducer is None else reducer

    def reduce(self, losses, indices, kind, embeddings, labels):
        n = embeddings.shape[0]
        if kind == "triplet":
            raise ValueError("PerAnchorReducer reduces pair or element terms, not triplets; "
                             "use it with a pair loss such as ContrastiveLoss.")
        if kind != "element":
            anchors = indices[0]
            sums = torch.zeros(n, dtype=losses.dtype, device=losses.device)
            sums = sums.index_add(0, anchors, losses)
            counts = torch.bincount(anchors, minlength=n).to(losses.dtype)
            losses, indices = sums / counts.clamp(min=1), torch.arange(n, device=losses.device)
        return self.reducer(losses, indices, "element", embeddings, labels)


#: Reducers that ``reducer=`` accepts by name (those without parameters).
REDUCERS = {"mean": MeanReducer, "avg_non_zero": AvgNonZeroReducer,
            "per_anchor": PerAnchorReducer}


def get_reducer(reducer):
    """A reducer from a name in :data:`REDUCERS`, a reducer object (returned as is) or None.

    Examples
    --------
    >>> from skmetric.deep.losses.reducers import get_reducer
    >>> type(get_reducer("avg_non_zero")).__name__
    'AvgNonZeroReducer'
    """
    if isinstance(reducer, str):
        if reducer not in REDUCERS:
            raise ValueError(f"Unknown reducer {reducer!r}; the names are {sorted(REDUCERS)}, "
                             "or pass a reducer object such as ThresholdReducer(low=0.1).")
        return REDUCERS[reducer]()
    if type(reducer).__module__.startswith("pytorch_metric_learning"):
        # PML's reducers take (loss_dict, embeddings, labels), not a loss's terms: they
        # would fail at the first batch, deep in their forward.
        name = type(reducer).__name__
        same = (f"skmetric.deep.{name}, the same reducer"
                if name in _PML_NAMES else "one of skmetric.deep's reducers")
        raise ValueError(f"reducer={reducer!r} is pytorch-metric-learning's {name}, which "
                         f"skmetric's losses cannot call; use {same} (names: "
                         f"{sorted(REDUCERS)}).")
    return reducer


#: pytorch-metric-learning's reducers that skmetric.deep has under the same name.
_PML_NAMES = {"AvgNonZeroReducer", "ClassWeightedReducer", "MeanReducer", "PerAnchorReducer",
              "ThresholdReducer"}
