"""A weighted sum of losses, each with its own optional miner."""

import math
from numbers import Real

from torch import nn

from .._params import ValidatedParams


class MultipleLosses(nn.Module, metaclass=ValidatedParams):
    """Sum several losses on the same batch: ``sum_i weights[i] * losses[i](...)``.

    Parameters
    ----------
    losses : list or dict of (nn.Module or str)
        The losses (instances or names in ``LOSSES``); a dict names them.
    miners : list or dict of (callable, str or None), default=None
        A miner per loss: a list as long as ``losses`` (None for a loss without one), or a
        dict with some of the keys of ``losses``. A loss without a miner gets the
        ``indices_tuple`` passed to ``forward`` (None: all its tuples).
    weights : list or dict of float, default=None
        One weight per loss (the same keys as ``losses``); None weighs each by 1.

    Attributes
    ----------
    requires_classes : bool
        Whether one of the losses is a proxy loss (it then needs class indices as labels).

    Notes
    -----
    Equal to pytorch-metric-learning's ``MultipleLosses``.

    Examples
    --------
    >>> import torch
    >>> from skmetric.deep.losses import MultipleLosses
    >>> loss = MultipleLosses(["contrastive", "multi_similarity"], miners=["semihard", None],
    ...                       weights=[1.0, 0.5])
    >>> emb = torch.randn(8, 4, requires_grad=True)
    >>> loss(emb, torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])).ndim
    0
    """

    def __init__(self, losses, miners=None, weights=None):
        from ..miners import get_miner
        from . import get_loss  # the registry imports this module

        super().__init__()
        self.is_dict = isinstance(losses, dict)
        if not self.is_dict and not isinstance(losses, (list, tuple)) or not len(losses):
            raise TypeError("losses must be a non-empty list or dict of losses (nn.Module "
                            f"instances or names); got {type(losses).__name__}.")
        keys = list(losses) if self.is_dict else list(range(len(losses)))
        built = {k: get_loss(losses[k]) for k in keys}
        self.losses = (nn.ModuleDict({str(k): v for k, v in built.items()}) if self.is_dict
                       else nn.ModuleList(built.values()))
        self._keys = keys
        self.miners = None
        if miners is not None:
            miners = self._per_loss(miners, "miners", all_keys=False)
            self.miners = {k: get_miner(m) for k, m in miners.items() if m is not None}
        self.weights = ({k: 1 for k in keys} if weights is None
                        else self._per_loss(weights, "weights", all_keys=True))
        for k, w in self.weights.items():
            if not isinstance(w, Real) or not math.isfinite(w):
                raise ValueError(f"weights[{k!r}] must be a finite real number; got {w!r}.")
        self.requires_classes = any(getattr(loss, "requires_classes", False)
                                    for loss in built.values())

    def _per_loss(self, values, what, all_keys):
        if self.is_dict:
            if not isinstance(values, dict):
                raise TypeError(f"losses is a dict, so {what} must be a dict too.")
            unknown = set(values) - set(self._keys)
            missing = set(self._keys) - set(values) if all_keys else set()
            if unknown or missing:
                raise ValueError(f"{what} must have {'the' if all_keys else 'some of the'} "
                                 f"keys of losses {sorted(self._keys)}; got {sorted(values)}.")
            return dict(values)
        if not isinstance(values, (list, tuple)) or len(values) != len(self._keys):
            raise ValueError(f"{what} must be a list with one entry per loss "
                             f"({len(self._keys)}); got {values!r}.")
        return dict(enumerate(values))

    def forward(self, embeddings, labels, indices_tuple=None, ref_emb=None, ref_labels=None):
        """The weighted sum of the losses; see ``BaseLoss.forward`` for the arguments."""
        if self.miners and indices_tuple is not None:
            raise ValueError("MultipleLosses has its own miners, so indices_tuple must be "
                             "None; pass the miner in miners=... or drop the miners.")
        refs = {} if ref_emb is None else {"ref_emb": ref_emb, "ref_labels": ref_labels}
        total = 0
        for k in self._keys:
            loss = self.losses[str(k)] if self.is_dict else self.losses[k]
            tuples = indices_tuple
            if self.miners and k in self.miners:
                refs_for_miner = () if ref_emb is None else (ref_emb, ref_labels)
                tuples = self.miners[k](embeddings, labels, *refs_for_miner)
            total = total + loss(embeddings, labels, tuples, **refs) * self.weights[k]
        return total
