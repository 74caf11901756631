"""The base of the classification-based (proxy) losses: learnable class weights.

A proxy loss owns one or more learnable vectors per class (class weights or proxies). It
is an ``nn.Module``, so skorch collects those parameters into the optimiser and saves them
with the model. Labels must be class indices in ``[0, num_classes)``;
:class:`~skmetric.deep.MetricEmbedder` encodes arbitrary labels for you.
"""

from numbers import Integral

import torch
import torch.nn.functional as F
from torch import nn

from ..._sklearn_compat import Interval
from .._params import changed_params
from .._tuples import check_class_indices, check_indices_tuple, check_inputs
from ._base import zero_loss
from ._options import LossOptions, add_regularization, reduce_terms
from ._terms import miner_weights


class BaseProxyLoss(nn.Module, metaclass=LossOptions):
    """Base of the proxy losses: input checks, miner weights, then :meth:`compute_loss`.

    Parameters
    ----------
    num_classes : int
        Number of training classes C.
    embedding_size : int
        Dimension of the embeddings.
    embedding_regularizer, weight_regularizer : callable, default=None
        Keyword-only, shared by every proxy loss (see ``_options``): regularizers of the
        embeddings and of the class weights (one row per class or center, see
        :meth:`class_weights`), added to the loss times ``embedding_reg_weight`` and
        ``weight_reg_weight`` (default 1).
    """

    requires_classes = True
    supports_reducer = False
    #: Whether the loss reduces itself (pytorch-metric-learning's "already_reduced" terms):
    #: every reducer then returns the loss as is.
    terms_already_reduced = False
    #: Whether miner weights count only the anchors of a miner's tuples (``a``, or ``a1``
    #: and ``a2``), as pytorch-metric-learning's losses whose references are not the batch.
    weights_from_anchors = False

    _parameter_constraints = {
        "num_classes": [Interval(Integral, 1, None, closed="left")],
        "embedding_size": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(self, num_classes, embedding_size):
        super().__init__()
        self.num_classes = int(num_classes)
        self.embedding_size = int(embedding_size)

    def extra_repr(self):
        return ", ".join(changed_params(self))

    @staticmethod
    def _new_weights(rows, cols, init=nn.init.xavier_normal_):
        weights = nn.Parameter(torch.empty(rows, cols))
        init(weights)
        return weights

    def forward(self, embeddings, labels, indices_tuple=None, ref_emb=None, ref_labels=None):
        """Return the loss (a scalar tensor) of a batch.

        Parameters
        ----------
        embeddings : Tensor of shape (batch_size, embedding_size)
        labels : Tensor of shape (batch_size,)
            Class indices in ``[0, num_classes)``.
        indices_tuple : tuple of Tensors, default=None
            A miner's output; each sample's loss is then weighted by how often it occurs
            in the tuples (relative to the most frequent), as pytorch-metric-learning does.
        ref_emb, ref_labels : None
            Not supported: proxies are the references.
        """
        if ref_emb is not None or ref_labels is not None:
            raise ValueError(
                f"{type(self).__name__} compares embeddings with its class proxies; "
                "ref_emb and ref_labels are not supported."
            )
        embeddings, labels, _, _ = check_inputs(embeddings, labels)
        if embeddings.shape[1] != self.embedding_size:
            raise ValueError(
                f"embeddings have {embeddings.shape[1]} dimensions but the loss was built "
                f"with embedding_size={self.embedding_size}."
            )
        labels = check_class_indices(labels, self.num_classes)
        if not len(embeddings):  # no samples, no terms (the reducers' 0, not a NaN mean)
            return add_regularization(self, zero_loss(embeddings), embeddings)
        weights = self._miner_weights(indices_tuple, embeddings, self.weights_from_anchors)
        self._cast_parameters(embeddings)
        loss = self.compute_loss(embeddings, labels, weights)
        if self.terms_already_reduced:
            loss = reduce_terms(self, loss, None, "already_reduced", embeddings, labels,
                                lambda value, _: value)
        return add_regularization(self, loss, embeddings)

    def class_weights(self):
        """The learned class weights, one row per class (or sub-center), for
        ``weight_regularizer``: ``W`` and ``centers`` hold them as columns, ``proxies`` as rows.
        """
        for name, as_rows in (("proxies", True), ("W", False), ("centers", False)):
            weights = getattr(self, name, None)
            if isinstance(weights, torch.Tensor):
                return weights if as_rows else weights.T
        raise NotImplementedError(
            f"{type(self).__name__} does not say which of its parameters are class weights; "
            "override class_weights() to use weight_regularizer."
        )

    def reduce_elements(self, losses, weights, embeddings, labels, keep=None):
        """The per-sample ``losses`` times the miner ``weights``, reduced by ``reducer`` as
        pytorch-metric-learning's "element" terms (samples ``keep``, default all), else
        averaged."""
        terms = losses if weights is None else losses * weights
        if getattr(self, "reducer", None) is None:
            return terms.mean()
        idx = torch.arange(len(embeddings), device=embeddings.device)
        idx = idx if keep is None else idx[keep]
        return reduce_terms(self, terms, idx, "element", embeddings, labels, None)

    def _cast_parameters(self, embeddings):
        # Keep the proxies in the embeddings' dtype/device (e.g. a float64 gradcheck).
        for param in self.parameters():
            if param.dtype != embeddings.dtype or param.device != embeddings.device:
                param.data = param.data.to(dtype=embeddings.dtype, device=embeddings.device)

    @staticmethod
    def _miner_weights(indices_tuple, embeddings, anchors_only=False):
        # None means every sample weighs 1 (no miner): the losses skip the product.
        n = embeddings.shape[0]
        if indices_tuple is None:
            return None
        indices_tuple = check_indices_tuple(indices_tuple, n, n, embeddings.device)
        if all(len(t) == 0 for t in indices_tuple):
            return None
        return miner_weights(indices_tuple, n, embeddings.dtype, embeddings.device,
                             anchors_only)

    def compute_loss(self, embeddings, labels, weights):
        raise NotImplementedError

    def logits(self, embeddings):
        """Class scores (batch_size, num_classes) without margins: higher = more likely.

        Used by ``MetricEmbedder.predict``/``predict_proba`` for the training classes.
        """
        raise NotImplementedError


def cosine_to(embeddings, weights):
    """Cosine similarity of each embedding (rows) to each weight vector (columns of W)."""
    return F.normalize(embeddings, dim=1) @ F.normalize(weights, dim=0)
