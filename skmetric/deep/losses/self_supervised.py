"""Self-supervised wrapper: two augmented views of a batch, labels from position."""

import torch
from torch import nn

from .._params import ValidatedParams
from .._tuples import check_inputs


class SelfSupervisedLoss(nn.Module, metaclass=ValidatedParams):
    """Apply a pair-based loss to two views of a batch: row i of each view is class i.

    Parameters
    ----------
    loss : nn.Module or str
        A pair-based loss (instance or name in ``LOSSES``).
    symmetric : bool, default=True
        Stack both views into one batch of 2N (each view is then both query and
        reference); otherwise ``embeddings`` are the queries and ``ref_emb`` the references.

    Notes
    -----
    Equal to pytorch-metric-learning's ``SelfSupervisedLoss``. It is called with two views,
    ``loss(embeddings, ref_emb)``. :class:`~skmetric.deep.MetricEmbedder` makes them by
    applying its ``train_transform`` twice to each training batch (with ``miner=None`` and
    ``samples_per_class=None``).

    Examples
    --------
    >>> import torch
    >>> from skmetric.deep.losses import SelfSupervisedLoss, TripletMarginLoss
    >>> loss = SelfSupervisedLoss(TripletMarginLoss())
    >>> view1 = torch.randn(8, 4, requires_grad=True)
    >>> view2 = view1.detach() + 0.1 * torch.randn(8, 4)
    >>> loss(view1, view2).ndim
    0
    """

    requires_classes = False
    #: Trained on two views of each batch: MetricEmbedder makes them with train_transform.
    self_supervised = True

    _parameter_constraints = {"symmetric": ["boolean"]}

    def __init__(self, loss, symmetric=True):
        from .cross_batch_memory import _pair_loss

        super().__init__()
        # Symmetric, both views form one batch; otherwise the second view is ref_emb.
        self.loss = _pair_loss(loss, type(self).__name__, () if symmetric else ("ref_emb",),
                               " with symmetric=False", "Pass symmetric=True, or a loss "
                               "that takes ref_emb. ")
        self.symmetric = symmetric

    def forward(self, embeddings, ref_emb):
        """The loss of ``embeddings`` against ``ref_emb``, its augmented view (same shape)."""
        if not torch.is_tensor(ref_emb) or ref_emb.shape != getattr(embeddings, "shape", None):
            raise ValueError("ref_emb must be a tensor of the same shape as embeddings: row i "
                             "of both is the same input under two augmentations.")
        labels = torch.arange(len(embeddings), device=embeddings.device)
        embeddings, labels, ref_emb, ref_labels = check_inputs(embeddings, labels, ref_emb,
                                                               labels.clone())
        if self.symmetric:
            return self.loss(torch.cat([embeddings, ref_emb]), torch.cat([labels, labels]))
        return self.loss(embeddings, labels, ref_emb=ref_emb, ref_labels=ref_labels)
