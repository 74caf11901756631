"""The base class of the pair-based losses and the reductions they share."""


import torch
from torch import nn

from .. import _sync
from .._distances import canonical_distance, get_distance
from .._params import changed_params
from .._tuples import check_indices_tuple, check_inputs, pair_masks
from ._options import LossOptions, add_regularization, reduce_terms


class BaseLoss(nn.Module, metaclass=LossOptions):
    """Base of the metric losses: input checks, the distance, then :meth:`compute_loss`.

    A subclass sets its parameters in ``__init__`` and implements ``compute_loss``. The
    ``forward`` contract (shared by any loss plugged into skmetric) is::

        loss(embeddings, labels, indices_tuple=None, ref_emb=None, ref_labels=None) -> scalar

    Parameters
    ----------
    distance : {'euclidean', 'sqeuclidean', 'cosine_similarity', 'dot'}
        ('cosine', the former name of 'cosine_similarity', is deprecated.)
        The pairwise distance or similarity the loss works on.
    normalize : bool, default=True
        L2-normalise embeddings before computing distances (ignored by 'cosine_similarity', which
        always normalises).
    embedding_regularizer : callable, default=None
        Keyword-only, shared by every loss (see ``_options``): a regularizer of the
        embeddings (e.g. ``LpRegularizer()``) whose value times ``embedding_reg_weight``
        (default 1) is added to the loss.
    reducer : {'mean', 'avg_non_zero', 'per_anchor'}, callable or None, default=None
        Keyword-only, for losses with ``supports_reducer``: how the loss's terms are
        reduced (a name, or e.g. ``ThresholdReducer(low=0.1)``), with
        pytorch-metric-learning's semantics for the loss's kind of terms; None keeps the
        loss's own (PML's default).
    """

    #: Proxy-based losses need ``num_classes`` and ``embedding_size``; pair-based ones don't.
    requires_classes = False
    #: Names of the distances a loss accepts (None: all of them).
    allowed_distances = None
    #: Whether the loss hands its terms to a ``reducer=`` (see ``reduce``).
    supports_reducer = False
    #: Whether the loss reduces itself (PML's "already_reduced" terms): every reducer then
    #: returns its value unchanged, as pytorch-metric-learning's do.
    terms_already_reduced = False
    #: Whether the loss takes a miner's ``indices_tuple`` (a loss of the whole batch doesn't).
    takes_indices_tuple = True
    #: Whether the loss takes ``ref_emb`` (one that compares the batch with itself doesn't).
    takes_ref_emb = True
    #: Whether the loss is defined on unit-norm embeddings only (``normalize`` must be True).
    requires_unit_norm = False

    _parameter_constraints = {"normalize": ["boolean"]}

    def __init__(self, distance="euclidean", normalize=True):
        if self.requires_unit_norm and not normalize:
            raise ValueError(f"{type(self).__name__} is defined on unit-norm embeddings; keep "
                             "normalize=True.")
        super().__init__()
        distance = canonical_distance(distance)  # 'cosine' is 'cosine_similarity' (warns)
        if self.allowed_distances is not None and distance not in self.allowed_distances:
            raise ValueError(
                f"{type(self).__name__} works only with distance in "
                f"{list(self.allowed_distances)}; got {distance!r}."
            )
        self.distance = distance
        self.normalize = normalize
        self.dist = get_distance(distance, normalize=normalize)

    def forward(self, embeddings, labels, indices_tuple=None, ref_emb=None, ref_labels=None):
        """Return the loss (a scalar tensor) of a batch.

        Parameters
        ----------
        embeddings : Tensor of shape (batch_size, dim)
        labels : Tensor of shape (batch_size,)
        indices_tuple : tuple of Tensors, default=None
            A miner's output, pairs ``(a1, p, a2, n)`` or triplets ``(a, p, n)``; None uses
            all valid tuples of the batch.
        ref_emb, ref_labels : Tensor, default=None
            Reference embeddings and labels that positives and negatives are taken from
            (e.g. a memory bank); by default the batch itself.
        """
        embeddings, labels, ref_emb, ref_labels = check_inputs(
            embeddings, labels, ref_emb, ref_labels
        )
        if indices_tuple is not None:
            n_ref = len(embeddings) if ref_emb is None else len(ref_emb)
            indices_tuple = check_indices_tuple(
                indices_tuple, len(embeddings), n_ref, embeddings.device
            )
        self._check_supported(indices_tuple, ref_emb)
        if not len(embeddings):  # no samples, no terms (the reducers' 0, not a NaN mean)
            return add_regularization(self, zero_loss(embeddings), embeddings)
        loss = self.compute_loss(embeddings, labels, indices_tuple, ref_emb, ref_labels)
        if self.terms_already_reduced:
            loss = self.reduce(loss, None, "already_reduced", embeddings, labels,
                               lambda value, _: value)
        return add_regularization(self, loss, embeddings)

    def _check_supported(self, indices_tuple, ref_emb):
        name = type(self).__name__
        if indices_tuple is not None and not self.takes_indices_tuple:
            raise ValueError(f"{name} uses the whole batch: indices_tuple (a miner's tuples) is "
                             "not supported. Use it without a miner (miner=None in "
                             "MetricEmbedder).")
        if ref_emb is not None and not self.takes_ref_emb:
            raise ValueError(f"{name} compares the batch with itself: ref_emb is not "
                             "supported. Pass only embeddings and labels.")

    def reduce(self, losses, indices, kind, embeddings, labels, default):
        """Reduce a loss's terms with ``reducer``, or ``default(losses, embeddings)``."""
        return reduce_terms(self, losses, indices, kind, embeddings, labels, default)

    def compute_loss(self, embeddings, labels, indices_tuple, ref_emb, ref_labels):
        """Compute the loss; ``ref_emb`` and ``ref_labels`` are None for the batch itself."""
        raise NotImplementedError

    def distance_matrix(self, embeddings, ref_emb):
        """The (n, m) matrix of :attr:`dist` between the batch and the reference set."""
        return self.dist(embeddings, ref_emb)

    def matrix_and_masks(self, embeddings, labels, indices_tuple, ref_emb, ref_labels):
        """:meth:`distance_matrix` and the masks of the positive and negative pairs the loss
        scores: a miner's pairs, or all the valid ones (``pair_masks``)."""
        mat = self.distance_matrix(embeddings, ref_emb)
        return (mat, *pair_masks(indices_tuple, labels, ref_labels, mat.shape))

    def extra_repr(self):
        return ", ".join([f"distance={self.distance!r}", f"normalize={self.normalize}",
                          *changed_params(self, skip=("distance", "normalize"))])


def zero_loss(embeddings):
    """A zero that stays connected to the graph, so ``backward`` still works."""
    return (embeddings * 0).sum()


def mean_nonzero(losses, embeddings, nonnegative=False):
    """Mean over the strictly positive losses (pytorch-metric-learning's AvgNonZeroReducer).

    Zero when there are none. On an accelerator the count stays on the device (no host
    sync): the zero then still depends on ``losses`` (zero gradients where PML leaves
    reference embeddings out of the graph, i.e. their ``.grad`` None). ``nonnegative``
    says no loss is below 0 (e.g. hinge terms): their plain sum is then the sum of the
    positive ones, with no masked copy (the zero terms' gradients are 0 already).
    """
    positive = losses > 0
    count = positive.sum()  # also read for the zero case (one pass, not two)
    if _sync.host_checks(losses) and not bool(count):
        return zero_loss(embeddings)
    total = losses.sum() if nonnegative else torch.where(positive, losses, 0).sum()
    out = total / count.clamp(min=1)
    return out if losses.requires_grad else out + zero_loss(embeddings)


def mean_or_zero(losses, embeddings):
    """Mean of ``losses``, or a graph-connected zero when there are none."""
    return losses.mean() if losses.numel() else zero_loss(embeddings)


def masked_logsumexp(x, mask, dim=1, add_one=False):
    """Row-wise log-sum-exp of the entries where ``mask`` holds; 0 for rows with none.

    Masked entries are set to the dtype's lowest finite value rather than -inf so that
    empty rows get finite values and zero (not NaN) gradients. ``add_one`` adds a zero
    logit, i.e. ``log(1 + sum(exp(x)))``.
    """
    lowest = torch.finfo(x.dtype).min
    out = torch.logsumexp(x.masked_fill(~mask, lowest), dim=dim)
    if add_one:
        out = torch.logaddexp(out, torch.zeros_like(out))
    return out.masked_fill(~mask.any(dim=dim), 0)
