"""Cross-batch memory (XBM, Wang et al., 2020): past embeddings as extra references."""

from numbers import Integral

import torch
from torch import nn

from ..._sklearn_compat import Interval
from .._params import ValidatedParams
from .._tuples import (
    all_pairs,
    check_indices_tuple,
    check_inputs,
    pairs_to_triplets,
    triplets_to_pairs,
)


class CrossBatchMemory(nn.Module, metaclass=ValidatedParams):
    """Compare each batch with a queue of the last ``memory_size`` embeddings seen.

    Every call first writes the batch (detached) into a circular memory, then computes
    ``loss(embeddings, labels, tuples, ref_emb=memory, ref_labels=memory_labels)``: the
    positives and negatives come from the memory, so a small batch sees many more pairs.
    The tuples are the ``miner``'s, mined between the batch and the memory, or all pairs;
    the pairs of a sample with its own copy in the memory are removed.

    In evaluation mode (``loss.eval()``, e.g. skorch's validation) the batch is compared
    with the memory as if it were written, but the memory is left unchanged.

    Parameters
    ----------
    loss : nn.Module or str
        A pair-based loss that accepts ``ref_emb`` (a name in ``LOSSES`` or an instance);
        proxy losses compare with their class weights, not a memory, and are refused.
    embedding_size : int
        Dimension of the embeddings.
    memory_size : int, default=1024
        Number of past embeddings kept.
    miner : str, callable or None, default=None
        Mines tuples between the batch and the memory
        (``miner(embeddings, labels, memory, memory_labels)``); None uses all pairs.

    Attributes
    ----------
    embedding_memory : Tensor of shape (memory_size, embedding_size)
        The queue (a buffer, saved in the loss's ``state_dict``).
    label_memory : Tensor of shape (memory_size,)
        Labels of the queue.
    queue_idx : int
        Where the next batch is written.
    has_been_filled : bool
        Whether the queue has wrapped around once (all of it then holds embeddings).

    Notes
    -----
    Equal to pytorch-metric-learning's ``CrossBatchMemory`` (values, gradients and queue),
    with two deliberate differences: an ``indices_tuple`` passed to ``forward`` indexes the
    batch (as a miner's output ``miner(embeddings, labels)`` does) and is mapped to the
    memory slots where the batch was written; PML reads its positives and negatives as
    memory slots directly, which pairs them with unrelated embeddings once the queue has
    moved on. And a batch whose ``enqueue_mask`` writes nothing leaves the memory unfilled;
    PML then marks it filled and compares the batch with its unwritten zero rows. As the
    loss of :class:`~skmetric.deep.MetricEmbedder`, pass the miner to ``CrossBatchMemory``
    and ``miner=None`` to the embedder.

    References
    ----------
    Wang, Zhang, Huang and Scott, "Cross-Batch Memory for Embedding Learning", CVPR 2020.

    Examples
    --------
    >>> import torch
    >>> from skmetric.deep.losses import ContrastiveLoss, CrossBatchMemory
    >>> xbm = CrossBatchMemory(ContrastiveLoss(), embedding_size=4, memory_size=16)
    >>> emb = torch.randn(8, 4, requires_grad=True)
    >>> xbm(emb, torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])).ndim
    0
    >>> xbm.queue_idx
    8
    """

    requires_classes = False

    _parameter_constraints = {
        "embedding_size": [Interval(Integral, 1, None, closed="left")],
        "memory_size": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(self, loss, embedding_size, memory_size=1024, miner=None):
        super().__init__()
        self.loss = _pair_loss(loss, type(self).__name__)
        self.miner = _miner(miner)
        self.embedding_size = int(embedding_size)
        self.memory_size = int(memory_size)
        self.reset_queue()

    def reset_queue(self):
        """Empty the memory."""
        self.register_buffer("embedding_memory",
                             torch.zeros(self.memory_size, self.embedding_size))
        self.register_buffer("label_memory", torch.zeros(self.memory_size, dtype=torch.long))
        self.queue_idx = 0
        self.has_been_filled = False

    def forward(self, embeddings, labels, indices_tuple=None, ref_emb=None, ref_labels=None,
                enqueue_mask=None):
        """Write the batch into the memory and return the loss against the memory.

        Parameters
        ----------
        embeddings : Tensor of shape (batch_size, embedding_size)
        labels : Tensor of shape (batch_size,)
        indices_tuple : tuple of Tensors, default=None
            Extra tuples within the batch, added to the mined (or all) ones.
        ref_emb, ref_labels : None
            Not supported: the memory is the reference set.
        enqueue_mask : bool Tensor of shape (batch_size,), default=None
            Only the marked samples are written to the memory, and only the others are
            the queries (MoCo-style); excludes ``indices_tuple``.
        """
        if ref_emb is not None or ref_labels is not None:
            raise ValueError("CrossBatchMemory compares the batch with its memory; ref_emb "
                             "and ref_labels are not supported.")
        embeddings, labels, _, _ = check_inputs(embeddings, labels)
        queries, query_labels, to_queue, queue_labels = self._split(embeddings, labels,
                                                                   indices_tuple, enqueue_mask)
        memory, memory_labels, slots = self._enqueue(to_queue, queue_labels)
        tuples = self._tuples(queries, query_labels, memory, memory_labels, slots,
                              indices_tuple, remove_self=enqueue_mask is None)
        return self.loss(queries, query_labels, tuples, ref_emb=memory, ref_labels=memory_labels)

    def _split(self, embeddings, labels, indices_tuple, enqueue_mask):
        if embeddings.shape[1] != self.embedding_size:
            raise ValueError(
                f"embeddings have {embeddings.shape[1]} dimensions but CrossBatchMemory was "
                f"built with embedding_size={self.embedding_size}."
            )
        if enqueue_mask is None:
            if len(embeddings) > self.memory_size:
                raise ValueError(
                    f"The batch ({len(embeddings)} samples) is larger than memory_size="
                    f"{self.memory_size}; use memory_size >= batch_size."
                )
            return embeddings, labels, embeddings, labels
        if indices_tuple is not None:
            raise ValueError("indices_tuple and enqueue_mask are mutually exclusive; pass "
                             "one of them.")
        mask = torch.as_tensor(enqueue_mask, device=embeddings.device)
        if mask.dtype != torch.bool or mask.shape != labels.shape:
            raise ValueError("enqueue_mask must be a boolean tensor with one entry per "
                             f"embedding; got dtype {mask.dtype} and shape {tuple(mask.shape)}.")
        return embeddings[~mask], labels[~mask], embeddings[mask], labels[mask]

    def _enqueue(self, embeddings, labels):
        """Write into the memory (a copy of it in eval mode); return the filled part."""
        mem = self.embedding_memory.to(device=embeddings.device, dtype=embeddings.dtype)
        mem_labels = self.label_memory.to(device=labels.device, dtype=labels.dtype)
        if not self.training:
            mem, mem_labels = mem.clone(), mem_labels.clone()
        start, n = self.queue_idx, len(embeddings)
        slots = torch.arange(start, start + n, device=embeddings.device) % self.memory_size
        mem[slots] = embeddings.detach()
        mem_labels[slots] = labels.detach()
        end = (start + n) % self.memory_size
        filled = self.has_been_filled or (n > 0 and end <= start)
        if self.training:
            self.embedding_memory, self.label_memory = mem, mem_labels
            self.queue_idx, self.has_been_filled = end, filled
        if filled:
            return mem, mem_labels, slots
        return mem[:end], mem_labels[:end], slots

    def _tuples(self, queries, labels, memory, memory_labels, slots, indices_tuple,
                remove_self):
        if self.miner is not None:
            tuples = self.miner(queries, labels, memory, memory_labels)
            tuples = check_indices_tuple(tuples, len(queries), len(memory), queries.device)
        else:
            tuples = all_pairs(labels, memory_labels)
        if remove_self:
            # A sample and its own copy in the memory (slot ``slots[a]``) are no pair.
            keep = tuples[1] != slots[tuples[0]]
            tuples = ((tuples[0][keep], tuples[1][keep], tuples[2][keep]) if len(tuples) == 3
                      else (tuples[0][keep], tuples[1][keep], tuples[2], tuples[3]))
        if indices_tuple is None:
            return tuples
        extra = check_indices_tuple(indices_tuple, len(queries), len(queries), queries.device)
        # Positives and negatives of the batch live in the memory at ``slots``.
        extra = ((extra[0], slots[extra[1]], slots[extra[2]]) if len(extra) == 3
                 else (extra[0], slots[extra[1]], extra[2], slots[extra[3]]))
        if len(extra) == 3 and len(tuples) == 4:
            extra = triplets_to_pairs(extra)
        elif len(extra) == 4 and len(tuples) == 3:
            extra = pairs_to_triplets(extra, len(queries))
        return tuple(torch.cat([t, e]) for t, e in zip(tuples, extra, strict=True))

    def get_extra_state(self):
        # The queue position travels with the buffers in ``state_dict``.
        return {"queue_idx": self.queue_idx, "has_been_filled": self.has_been_filled}

    def set_extra_state(self, state):
        self.queue_idx = int(state["queue_idx"])
        self.has_been_filled = bool(state["has_been_filled"])

    def extra_repr(self):
        return (f"embedding_size={self.embedding_size}, memory_size={self.memory_size}, "
                f"miner={self.miner!r}")


def _pair_loss(loss, wrapper, uses=("ref_emb", "indices_tuple"), how="", fix=""):
    """The wrapped loss, after checking that it takes what the wrapper ``uses`` to call it
    (reference embeddings, index tuples): a loss of the whole batch would otherwise fail
    at the first call, with a message about arguments the user never passed."""
    from . import get_loss  # the registry imports this module

    loss = get_loss(loss)
    name, examples = type(loss).__name__, ("Use e.g. ContrastiveLoss, TripletMarginLoss or "
                                           "MultiSimilarityLoss.")
    if getattr(loss, "requires_classes", False):
        raise ValueError(
            f"{wrapper} needs a pair-based loss that compares embeddings with reference "
            f"embeddings; {name} compares them with class weights. {examples}"
        )
    refused = [arg for arg in uses if not getattr(loss, f"takes_{arg}", True)]
    if refused:
        raise ValueError(
            f"{wrapper}{how} calls its loss with {' and '.join(refused)}, which {name} does "
            f"not take: it scores a whole batch against itself. {fix}{examples}"
        )
    return loss


def _miner(miner):
    from ..miners import get_miner

    miner = get_miner(miner)
    if not getattr(miner, "takes_ref_emb", True):
        raise ValueError(
            f"CrossBatchMemory mines the batch against its memory (ref_emb), which "
            f"{type(miner).__name__} does not do: it pairs samples within a batch only. Use "
            "e.g. MultiSimilarityMiner, TripletMarginMiner or BatchHardMiner.")
    return miner
