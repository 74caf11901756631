"""Regularizers of embeddings (``embedding_regularizer=``) and class weights
(``weight_regularizer=``): a scalar penalty added to a loss, times its ``*_reg_weight``.

A regularizer is called on a 2-D tensor (embeddings, or class weights with one row per
class or center) and returns a scalar: per-row terms reduced by its ``reducer`` (the mean
by default), as in pytorch-metric-learning.
"""

from numbers import Integral

import torch
import torch.nn.functional as F
from torch import nn

from ..._sklearn_compat import Interval
from .._params import POSITIVE, ValidatedParams
from .reducers import MeanReducer


class BaseRegularizer(nn.Module, metaclass=ValidatedParams):
    """Base of the regularizers: per-row terms from :meth:`terms`, then the reducer.

    Parameters
    ----------
    reducer : reducer, default=None
        Reduces the terms; None means :class:`MeanReducer`.
    """

    def __init__(self, reducer=None):
        super().__init__()
        self.reducer = reducer

    def forward(self, x):
        if not torch.is_tensor(x) or x.ndim != 2:
            raise ValueError("A regularizer takes a 2-D tensor (embeddings, or class weights "
                             "with one row per class).")
        losses = self.terms(x)
        indices = torch.arange(len(losses), device=x.device)
        if self.reducer is None:
            return self.default_reduce(losses, x)
        return self.reducer(losses, indices, "element", x, indices)

    def default_reduce(self, losses, x):
        return MeanReducer()(losses, None, "element", x, None)

    def terms(self, x):
        raise NotImplementedError


class LpRegularizer(BaseRegularizer):
    """Penalise the Lp norm of each row: ``mean(||x_i||_p ** power)``.

    Parameters
    ----------
    p : float, default=2
        The norm.
    power : float, default=1
        The exponent applied to each norm.
    reducer : reducer, default=None

    Examples
    --------
    >>> import torch
    >>> from skmetric.deep.losses import LpRegularizer
    >>> x = torch.tensor([[3.0, 4.0], [0.0, 1.0]])
    >>> LpRegularizer()(x), LpRegularizer(p=1)(x)
    (tensor(3.), tensor(4.))
    """

    _parameter_constraints = {"p": [POSITIVE], "power": [POSITIVE]}

    def __init__(self, p=2, power=1, reducer=None):
        super().__init__(reducer=reducer)
        self.p = p
        self.power = power

    def terms(self, x):
        norms = torch.linalg.vector_norm(x, ord=self.p, dim=1)
        return norms if self.power == 1 else norms**self.power


class ZeroMeanRegularizer(BaseRegularizer):
    """Penalise rows whose entries do not sum to zero: ``mean(|sum_j x_ij|)``.

    Examples
    --------
    >>> import torch
    >>> from skmetric.deep.losses import ZeroMeanRegularizer
    >>> ZeroMeanRegularizer()(torch.tensor([[1.0, -1.0], [2.0, 0.0]]))
    tensor(1.)
    """

    def terms(self, x):
        return x.sum(dim=1).abs()


class CenterInvariantRegularizer(BaseRegularizer):
    """Pull the squared norms of the class weights to their mean (Center-invariant loss).

    ``mean((||w_i||^2 - mean_j ||w_j||^2)^2 / 4)``: classes with larger weights would
    otherwise get larger logits.

    References
    ----------
    Wu, Liu, Huang and Wang, "Deep Face Recognition with Center Invariant Loss",
    ACM MM Workshops 2017.

    Examples
    --------
    >>> import torch
    >>> from skmetric.deep.losses import CenterInvariantRegularizer
    >>> CenterInvariantRegularizer()(torch.tensor([[1.0, 0.0], [0.0, 3.0]]))
    tensor(4.)
    """

    def terms(self, x):
        squared = (x * x).sum(dim=1)
        return (squared - squared.mean()) ** 2 / 4


class RegularFaceRegularizer(BaseRegularizer):
    """Push each class weight away from its most similar other class (RegularFace).

    ``mean_i max_{j != i} cos(w_i, w_j)``, the gradient flowing through the closest pair.

    References
    ----------
    Zhao, Xu and Cheng, "RegularFace: Deep Face Recognition via Exclusive
    Regularization", CVPR 2019.

    Examples
    --------
    >>> import torch
    >>> from skmetric.deep.losses import RegularFaceRegularizer
    >>> RegularFaceRegularizer()(torch.tensor([[1.0, 0.0], [1.0, 1.0], [-1.0, 0.0]]))
    tensor(0.2357)
    """

    def terms(self, x):
        unit = F.normalize(x, dim=1)
        cos = unit @ unit.T
        with torch.no_grad():
            closest = cos.clone().fill_diagonal_(float("-inf")).argmax(dim=1)
        return cos.gather(1, closest[:, None])[:, 0]


class SparseCentersRegularizer(BaseRegularizer):
    """Merge redundant sub-centers of a class (SoftTriple's regulariser of its centers).

    Over the pairs of centers of one class, ``sum sqrt(2 + eps - 2 cos(c_s, c_t)) /
    (2 * n_pairs)``; rows are ordered class by class, ``centers_per_class`` each.

    Parameters
    ----------
    num_classes : int
    centers_per_class : int
        At least 2.

    References
    ----------
    Qian, Shang, Sun, Hu, Li and Jin, "SoftTriple Loss: Deep Metric Learning Without
    Triplet Sampling", ICCV 2019.

    Examples
    --------
    >>> import torch
    >>> from skmetric.deep.losses import SparseCentersRegularizer
    >>> reg = SparseCentersRegularizer(num_classes=1, centers_per_class=2)
    >>> reg(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    tensor(0.7071)
    """

    _parameter_constraints = {
        "num_classes": [Interval(Integral, 1, None, closed="left")],
        "centers_per_class": [Interval(Integral, 2, None, closed="left")],
    }

    def __init__(self, num_classes, centers_per_class, reducer=None):
        super().__init__(reducer=reducer)
        self.num_classes = num_classes
        self.centers_per_class = centers_per_class
        k = centers_per_class
        block = torch.ones(k, k, dtype=torch.bool).triu(diagonal=1)
        self.register_buffer("same_class_mask",
                             torch.block_diag(*[block] * num_classes), persistent=False)

    def terms(self, x):
        if len(x) != len(self.same_class_mask):
            raise ValueError(f"SparseCentersRegularizer was built for {self.num_classes} "
                             f"classes x {self.centers_per_class} centers = "
                             f"{len(self.same_class_mask)} rows; got {len(x)}.")
        unit = F.normalize(x, dim=1)
        cos = (unit @ unit.T)[self.same_class_mask.to(x.device)]
        tiny = torch.finfo(x.dtype).tiny
        return torch.sqrt(2.0 + tiny - torch.clamp(2.0 * cos, max=2))

    def default_reduce(self, losses, x):
        # The sum over the pairs divided by twice their number (PML's DivisorReducer).
        return losses.sum() / (2 * len(losses))
