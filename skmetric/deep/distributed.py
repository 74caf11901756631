"""Data-parallel training of the embedders on several processes, with ``torch.distributed``.

Launch one process per GPU (or per CPU worker, backend ``gloo``) with ``torchrun`` (or
``accelerate launch``, which sets the same environment); each calls
:func:`init_distributed` (or ``torch.distributed.init_process_group``) and fits a
:class:`DistributedMetricEmbedder` (or :class:`DistributedProbabilisticEmbedder`) on the
same ``X, y``. See ``docs/distributed.md`` for the commands.

What is synchronised, and why the run equals a single process on the global batch:

- **Batches.** Every rank builds the same class-balanced sampler (the seed is broadcast
  from rank 0) and takes its contiguous share of each global batch of ``batch_size`` =
  C classes x m samples, so every rank sees the same number of batches (no rank waits at
  the epoch's end for a batch that never comes).
- **Losses and miners.** Each rank all-gathers the embeddings and labels of the global
  batch, keeping the autograd graph of its own rows; the miner and the loss run on the
  gathered batch, so their value is the single-process value, and the gradient that
  reaches each rank's rows is exactly the single-process gradient for those rows.
  ``efficient=True`` (pytorch-metric-learning's trade-off) makes each rank's rows the only
  anchors, against the gathered batch as references: less compute per rank, but the
  gathered rows act as constants, so the gradient is not the single-process one.
- **Weights.** After ``backward`` the trunk's gradients are summed over the ranks (each
  holds the part that flows through its own rows) and a proxy loss's class weights are
  averaged (every rank already holds their full gradient); parameters start equal
  (broadcast from rank 0), so the optimisers stay in lock-step and ``transform`` gives the
  same embeddings on every rank.
- **BatchNorm.** With ``sync_batchnorm=True`` (the default) BatchNorm layers become
  :class:`~skmetric.deep._sync_batchnorm.SyncBatchNorm`, which normalises with the
  statistics of the global batch on GPUs (torch's kernels) and CPUs (gloo) alike, so a
  network with BatchNorm trains as in one process too. ``sync_batchnorm=False``: each
  rank normalises its own share and the running statistics are averaged after every
  step (the ranks stay equal, but not equal to one process).
- **History.** The history is skorch's ``DistributedHistory`` over the process group's
  store: every rank's batch records (losses, batch sizes), in rank order, in every rank's
  history, so epoch scores (``train_loss``, ``valid_loss``) are equal everywhere and
  ``EarlyStopping`` decides alike. Should a callback still stop one rank alone (a score
  that differs between ranks), all ranks stop at that epoch's end.
- **Side effects.** Only rank 0 prints and writes files (``save_params``, hence skorch's
  ``Checkpoint``); the ranks wait for each other before loading a checkpoint during
  training (``Checkpoint(load_best=True)``, ``LoadInitState``).
- **Failures.** A collective (or history exchange) that does not complete within the
  process group's ``timeout`` (another rank died) raises a ``RuntimeError`` that says
  so, rather than hanging.
"""

import datetime
import os
import zlib

import numpy as np
import torch
import torch.distributed as dist
from skorch.history import DistributedHistory

from ._embedder import MetricEmbedder
from ._probabilistic import ProbabilisticEmbedder
from ._sampler import ClassBalancedBatchSampler
from ._sync_batchnorm import convert_sync_batchnorm
from ._tuples import all_pairs

__all__ = [
    "DistributedMetricEmbedder",
    "DistributedMixin",
    "DistributedProbabilisticEmbedder",
    "ShardedBatchSampler",
    "all_gather_with_grad",
    "init_distributed",
]

_SEED_HIGH = 2**31 - 1


def init_distributed(backend=None, timeout=60.0):
    """Join the process group that ``torchrun`` / ``accelerate launch`` describe.

    Reads ``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT`` from the environment
    (set by the launcher); does nothing when the group already exists. With NCCL, the
    process's GPU becomes ``cuda:LOCAL_RANK``.

    Parameters
    ----------
    backend : {'nccl', 'gloo'} or None, default=None
        None picks 'nccl' when CUDA is available, else 'gloo'.
    timeout : float, default=60.0
        Seconds a collective waits for the other ranks before raising: the bound on how
        long the survivors wait when one rank fails.

    Returns
    -------
    rank, world_size : int
    """
    if not dist.is_initialized():
        missing = [k for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
                   if k not in os.environ]
        if missing:
            raise RuntimeError(
                f"init_distributed needs the environment of a launcher; {missing} are not "
                f"set. Start the script with `torchrun --nproc_per_node N script.py` or "
                f"`accelerate launch script.py`."
            )
        backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
        if backend == "nccl":  # one GPU per process, chosen by the launcher's LOCAL_RANK
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout))
    return dist.get_rank(), dist.get_world_size()


def _world():
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _control_device():
    """Where small bookkeeping tensors (seeds, flags) must live for the group's backend:
    NCCL moves CUDA tensors only."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _broadcast_int(value, what):
    """Rank 0's ``value`` (an int), on every rank."""
    tensor = torch.tensor(int(value), dtype=torch.int64, device=_control_device())
    _collective(f"broadcast of the {what}", dist.broadcast, tensor, src=0)
    return int(tensor.item())


def _collective(what, fn, *args, **kwargs):
    """Run a collective; a timeout or a dead peer becomes an error that says so."""
    try:
        return fn(*args, **kwargs)
    except RuntimeError as exc:
        rank, world = _world()
        raise RuntimeError(
            f"Distributed training, rank {rank} of {world}: the {what} did not complete, "
            f"most likely because another rank failed or stopped (see its traceback) or "
            f"was slower than the process group's timeout. Original error: {exc}"
        ) from exc


class _GatherWithGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        rank, world = _world()
        parts = [torch.empty_like(x) for _ in range(world)]
        _collective("all-gather of the batch's embeddings", dist.all_gather, parts,
                    x.contiguous())
        ctx.rank, ctx.n = rank, x.shape[0]
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx, grad):
        # Each rank computes the same global loss: its rows' gradient is its own slice.
        return grad[ctx.rank * ctx.n:(ctx.rank + 1) * ctx.n]


def all_gather_with_grad(x):
    """Concatenate ``x`` of every rank in rank order, keeping the gradient of the local part.

    Every rank must pass a tensor of the same shape. Outside a process group it returns
    ``x`` itself.

    Parameters
    ----------
    x : Tensor of shape (n, ...)

    Returns
    -------
    gathered : Tensor of shape (world_size * n, ...)
        Rows ``rank * n`` to ``(rank + 1) * n`` are ``x`` (gradients flow back to it); the
        other ranks' rows are constants here.

    Examples
    --------
    >>> import torch
    >>> from skmetric.deep.distributed import all_gather_with_grad
    >>> x = torch.ones(2, 3, requires_grad=True)
    >>> all_gather_with_grad(x) is x  # a single process
    True
    """
    if _world()[1] == 1:
        return x
    return _GatherWithGrad.apply(x)


def _check_same_data(dataset):
    """Refuse, on every rank alike, training sets that differ between the ranks.

    Each rank shards the global batches that a sampler draws from its own copy of
    ``X, y``: with shards of the data instead (e.g. a ``DistributedSampler``-style split),
    the ranks drew different batches (a hang when their numbers of batches differed, or
    global batches without the class balance). The sizes and a checksum of the labels are
    compared with one all-gather.
    """
    from ._embedder import _dataset_labels

    try:
        labels = np.ascontiguousarray(_dataset_labels(dataset))
        checksum = zlib.crc32(labels.tobytes())
    except TypeError:  # a dataset without labels: compare the sizes only
        checksum = 0
    mine = torch.tensor([len(dataset), checksum], dtype=torch.int64, device=_control_device())
    rank, world = _world()
    parts = [torch.empty_like(mine) for _ in range(world)]
    _collective("comparison of the ranks' training data", dist.all_gather, parts, mine)
    differ = [r for r, part in enumerate(parts) if not torch.equal(part, parts[0])]
    if differ:
        sizes = [int(part[0]) for part in parts]
        what = (f"training samples per rank: {sizes}" if len(set(sizes)) > 1 else
                f"the labels of rank(s) {differ} differ from rank 0's")
        raise ValueError(
            f"The ranks fit different training data ({what}). Every rank must call fit "
            "with the same X and y (and a train_split must split them alike: give it a "
            "random_state): the global batches are split between the ranks, not the data.")


def _check_batch_splits(sampler, n_samples, batch_size, world):
    """Refuse, before the first step, global batches that do not split over the ranks,
    saying why they differ from ``batch_size`` (ShardedBatchSampler's error at the first
    batch asked for a batch_size that may already be a multiple of the world size)."""
    if isinstance(sampler, ClassBalancedBatchSampler):
        size, m = sampler.batch_size, sampler.samples_per_class
        classes = sampler.n_classes_per_batch
        why = (f"{classes} classes x samples_per_class={m}"
               + (f", as y has {classes} classes only" if classes < batch_size // m else
                  f": batch_size={batch_size} rounded down to a multiple of {m}"
                  if size != batch_size else ""))
    else:
        size = len(sampler[0]) if sampler else 0
        why = (f"the whole training set, smaller than batch_size={batch_size}"
               if n_samples <= batch_size else f"batch_size={batch_size}")
    if size % world:
        raise ValueError(
            f"The global batch holds {size} samples ({why}), which do not split evenly "
            f"over {world} processes. Choose batch_size and samples_per_class so that "
            f"every batch holds a multiple of {world} samples.")


def _gather_labels(labels):
    rank, world = _world()
    parts = [torch.empty_like(labels) for _ in range(world)]
    _collective("all-gather of the batch's labels", dist.all_gather, parts,
                labels.contiguous())
    return torch.cat(parts, dim=0)


class ShardedBatchSampler:
    """Each rank's contiguous share of the batches of a sampler that all ranks replay alike.

    Parameters
    ----------
    batch_sampler : iterable of lists of int
        Yields the global batches; it must yield the same batches on every rank (same
        seed).
    rank, world_size : int
        This process and the number of processes; every global batch must divide evenly.

    Examples
    --------
    >>> from skmetric.deep.distributed import ShardedBatchSampler
    >>> list(ShardedBatchSampler([[0, 1, 2, 3], [4, 5, 6, 7]], rank=1, world_size=2))
    [[2, 3], [6, 7]]
    """

    def __init__(self, batch_sampler, rank, world_size):
        self.batch_sampler = batch_sampler
        self.rank = rank
        self.world_size = world_size

    def __len__(self):
        return len(self.batch_sampler)

    def __iter__(self):
        for batch in self.batch_sampler:
            if len(batch) % self.world_size:
                raise ValueError(
                    f"A batch of {len(batch)} samples does not split evenly over "
                    f"{self.world_size} processes; choose batch_size (and "
                    f"samples_per_class) so that the batch is a multiple of the world size."
                )
            share = len(batch) // self.world_size
            yield list(batch[self.rank * share:(self.rank + 1) * share])


class DistributedMixin:
    """Data-parallel training over the ranks of ``torch.distributed``; mix in first.

    ``batch_size`` is the *global* batch (C classes x m samples), split evenly over the
    ranks; it must be a multiple of the world size. Outside a process group (one process)
    the estimator trains exactly as its base class. Set ``efficient=True`` to let each
    rank's rows be the only anchors (see the module's documentation).
    """

    efficient = False
    sync_batchnorm = True

    def initialize_module(self):
        """The base class's network; with ``sync_batchnorm``, its BatchNorm layers
        normalise over the global batch (on any device)."""
        super().initialize_module()
        if _world()[1] > 1 and self.sync_batchnorm:
            self.module_ = convert_sync_batchnorm(self.module_)
        return self

    def initialize(self):
        super().initialize()
        rank, world = _world()
        if world > 1:
            self._check_distributed_setup(world)
            for module in (self.module_, self.loss_):
                if isinstance(module, torch.nn.Module):
                    for tensor in (*module.parameters(), *module.buffers()):
                        _collective("broadcast of the initial weights", dist.broadcast,
                                    tensor.data, src=0)
            self._share_miner_seed()
        return self

    def _share_miner_seed(self):
        """A random miner left unseeded draws alike on every rank (rank 0's seed): the
        ranks mine the same gathered batch and must pick the same tuples."""
        if getattr(self.miner_, "random_state", 0) is not None:
            return
        self.miner_.random_state = _broadcast_int(torch.randint(_SEED_HIGH, ()),
                                                  "miner's seed")
        self.miner_._generator = None

    def _check_distributed_setup(self, world):
        if getattr(self.loss_, "self_supervised", False):
            # Each rank's batch stacks its two views; gathering would interleave them.
            raise ValueError(
                f"{type(self.loss_).__name__} (two augmented views per batch) is not "
                f"supported on {world} processes yet; train it on one process."
            )
        if self.efficient and getattr(self.loss_, "requires_classes", False):
            raise ValueError(
                "efficient=True applies to pair losses (each rank's rows as anchors against "
                f"the gathered batch); the proxy loss {type(self.loss_).__name__} already "
                "sees the global batch: use efficient=False."
            )

    def get_iterator(self, dataset, training=False):
        rank, world = _world()
        if not training or world == 1:
            return super().get_iterator(dataset, training=training)
        kwargs = self.get_params_for("iterator_train")
        batch_size = kwargs.pop("batch_size", self.batch_size)
        for key in ("shuffle", "sampler", "drop_last", "generator"):
            kwargs.pop(key, None)
        _check_same_data(dataset)
        # Drawn as the base class draws it, then rank 0's value everywhere.
        seed = _broadcast_int(torch.randint(_SEED_HIGH, ()), "batch seed")
        if self.samples_per_class is None:
            order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))
            n_full = len(dataset) // batch_size if len(dataset) > batch_size else 1
            sampler = [order[i * batch_size:(i + 1) * batch_size].tolist()
                       for i in range(n_full)]
        else:
            sampler = ClassBalancedBatchSampler(
                self._balanced_labels(dataset), self.samples_per_class, batch_size,
                random_state=seed)
        _check_batch_splits(sampler, len(dataset), batch_size, world)
        iterator = self.iterator_train(
            dataset, batch_sampler=ShardedBatchSampler(sampler, rank, world), **kwargs)
        self._n_train_batches = len(iterator)
        return iterator

    def get_loss(self, y_pred, y_true, X=None, training=False):
        rank, world = _world()
        if not training or world == 1:
            return super().get_loss(y_pred, y_true, X=X, training=training)
        labels = torch.as_tensor(np.asarray(y_true) if not torch.is_tensor(y_true)
                                 else y_true).to(_first(y_pred).device)
        if self.efficient:
            return self._efficient_loss(y_pred, labels, rank)
        if isinstance(y_pred, tuple | list):
            gathered = type(y_pred)(all_gather_with_grad(t) for t in y_pred)
        else:
            gathered = all_gather_with_grad(y_pred)
        return super().get_loss(gathered, _gather_labels(labels), X=X, training=True)

    def _efficient_loss(self, y_pred, labels, rank):
        self._check_embeddings_finite(y_pred)
        ref = all_gather_with_grad(y_pred)  # own rows keep their gradient
        ref_labels = _gather_labels(labels)
        offset = rank * y_pred.shape[0]
        if self.miner_ is not None:
            tuples = self.miner_(y_pred.detach(), labels, ref.detach(), ref_labels)
        else:
            tuples = all_pairs(labels, ref_labels)
        tuples = _drop_self(tuples, offset)
        loss = self.loss_(y_pred, labels, indices_tuple=tuples, ref_emb=ref,
                          ref_labels=ref_labels)
        self._watch_training_step(y_pred.detach(), loss.detach())
        return loss

    def train_step_single(self, batch, **fit_params):
        step = super().train_step_single(batch, **fit_params)
        rank, world = _world()
        if world > 1:
            self._reduce_gradients(world)
            self._average_buffers(world)
        return step

    def _reduce_gradients(self, world):
        """Sum the trunk's gradient parts; average the (already global) loss weights'."""
        for module, mean in ((self.module_, False), (self.loss_, not self.efficient)):
            if not isinstance(module, torch.nn.Module):
                continue
            for param in module.parameters():
                if not param.requires_grad:
                    continue
                if param.grad is None:
                    param.grad = torch.zeros_like(param)
                _collective("all-reduce of the gradients", dist.all_reduce, param.grad)
                if mean:
                    param.grad /= world

    def _average_buffers(self, world):
        """Average the floating buffers that the ranks update apart (BatchNorm's running
        statistics without ``sync_batchnorm``), so that every rank predicts alike."""
        for module in self.module_.modules():
            if isinstance(module, torch.nn.SyncBatchNorm):
                continue  # statistics of the global batch: already equal
            for buffer in module.buffers(recurse=False):
                if torch.is_floating_point(buffer):
                    _collective("all-reduce of the running statistics", dist.all_reduce,
                                buffer)
                    buffer /= world

    # ------------------------------------------- history, stopping, checkpoints
    def initialize_history(self):
        if isinstance(self.history_, _RankHistory):
            self.history_ = None  # a new key space when training starts
        return super().initialize_history()

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        """On several ranks, the history becomes skorch's ``DistributedHistory``: every
        rank's batch records (losses, batch sizes), in rank order, in every rank's
        history, so that the epoch's scores are equal everywhere."""
        super().on_train_begin(net, X=X, y=y, **kwargs)
        self.history_ = _training_history(self.history_)

    def notify(self, method_name, **cb_kwargs):
        """At the epoch's end, the ranks stop together: when a callback (``EarlyStopping``)
        stops one rank, it stops all, instead of leaving the others waiting for it."""
        rank, world = _world()
        if method_name != "on_epoch_end" or world == 1:
            return super().notify(method_name, **cb_kwargs)
        stop = None
        try:
            super().notify(method_name, **cb_kwargs)
        except KeyboardInterrupt as exc:  # how skorch's callbacks end training
            stop = exc
        flag = torch.tensor(int(stop is not None), device=_control_device())
        _collective("agreement on stopping", dist.all_reduce, flag, op=dist.ReduceOp.MAX)
        if int(flag.item()):
            raise stop or KeyboardInterrupt
        return None

    def partial_fit(self, X, y=None, classes=None, **fit_params):
        # From on_train_begin to on_train_end, callbacks run on every rank alike.
        outer, self._in_fit = getattr(self, "_in_fit", False), True
        try:
            return super().partial_fit(X, y, classes, **fit_params)
        finally:
            self._in_fit = outer

    @property
    def _default_callbacks(self):
        callbacks = super()._default_callbacks
        if _world()[0] == 0:
            return callbacks
        quiet = {"print_log", "progress_bar"}
        return [(name, cb) for name, cb in callbacks if name not in quiet]

    def save_params(self, *args, **kwargs):
        """Rank 0 writes; the other ranks (holding the same weights) return at once."""
        if _world()[0] != 0:
            return None
        return super().save_params(*args, **kwargs)

    def load_params(self, *args, **kwargs):
        """During training (``Checkpoint(load_best=True)``, ``LoadInitState``, run on
        every rank), wait for every rank first: rank 0 may still be writing the files."""
        if _world()[1] > 1 and getattr(self, "_in_fit", False):
            _collective("wait for rank 0's checkpoint", dist.barrier)
        result = super().load_params(*args, **kwargs)
        if getattr(self, "_in_fit", False):  # a checkpoint's history replaced it
            self.history_ = _training_history(self.history_)
        return result


class _RankHistory(DistributedHistory):
    """skorch's ``DistributedHistory``; a record that never arrives (a rank failed) ends
    the wait with an error that says so, after the store's timeout."""

    def sync(self):
        return _collective("exchange of the history's batch records", super().sync)


def _training_history(history):
    """The history to train with: shared by the ranks, or plain in one process."""
    rank, world = _world()
    shared = isinstance(history, _RankHistory)
    if shared and history.store is not None and history.world_size == world:
        return history
    inner = history._history if shared else history  # (a pickled one lost its store)
    if world == 1:
        return inner
    history = _RankHistory(store=_history_store(), rank=rank, world_size=world)
    history._history = inner
    return history


def _history_store():
    """A fresh key space in the process group's store, shared by all ranks.

    The prefix comes from rank 0, so that a second ``fit`` never reads the records that
    the first one left under the same (epoch, batch, rank) keys.
    """
    get_store = getattr(dist.distributed_c10d, "_get_default_store", None)
    if get_store is None:  # pragma: no cover - torch without it
        raise RuntimeError(
            "This torch version does not expose the process group's store, which the "
            "distributed embedders use to share the history; use torch >= 2.0."
        )
    token = _broadcast_int(int.from_bytes(os.urandom(6), "little"), "history's key prefix")
    return dist.PrefixStore(f"skmetric/history/{token}/", get_store())


def _first(y_pred):
    return y_pred[0] if isinstance(y_pred, tuple | list) else y_pred


def _drop_self(tuples, offset):
    """Remove the pairs of a rank's row with its own copy in the gathered references."""
    if len(tuples) == 4:
        a1, p, a2, n = tuples
        keep = p != a1 + offset
        return a1[keep], p[keep], a2, n
    a, p, n = tuples
    keep = p != a + offset
    return a[keep], p[keep], n[keep]


class DistributedMetricEmbedder(DistributedMixin, MetricEmbedder):
    """:class:`~skmetric.deep.MetricEmbedder` trained data-parallel on the ranks of a
    ``torch.distributed`` process group (one process: plain ``MetricEmbedder``).

    Takes every parameter of ``MetricEmbedder``, plus ``efficient``. ``batch_size`` is the
    global batch, split evenly over the ranks. See :mod:`skmetric.deep.distributed`.

    Parameters
    ----------
    efficient : bool, default=False
        Each rank's rows are the only anchors, the gathered batch the references
        (pytorch-metric-learning's ``DistributedLossWrapper(efficient=True)``): less
        computation, an approximate gradient. Pair losses only.
    sync_batchnorm : bool, default=True
        The network's BatchNorm layers normalise with the statistics of the global
        batch (one all-gather per layer and step, one all-reduce in backward), on GPUs
        and CPUs alike: training equals one process on the global batch. False: each
        rank normalises its own share and the running statistics are averaged after
        every step (cheaper, not the one-process result).
    **kwargs
        The parameters of :class:`~skmetric.deep.MetricEmbedder`.

    Examples
    --------
    Without a process group (one process) it trains exactly as ``MetricEmbedder``:

    >>> import numpy as np
    >>> from sklearn.datasets import load_iris
    >>> from skmetric.deep import DistributedMetricEmbedder, MetricEmbedder
    >>> X, y = load_iris(return_X_y=True)
    >>> params = dict(embedding_dim=4, max_epochs=1, batch_size=24, verbose=0, random_state=0)
    >>> net = DistributedMetricEmbedder(**params).fit(X, y)
    >>> net.transform(X).shape
    (150, 4)
    >>> np.array_equal(net.transform(X), MetricEmbedder(**params).fit(X, y).transform(X))
    True
    """

    _parameter_constraints = {**MetricEmbedder._parameter_constraints,
                              "efficient": ["boolean"], "sync_batchnorm": ["boolean"]}

    def __init__(self, module=None, *, efficient=False, sync_batchnorm=True, **kwargs):
        super().__init__(module, **kwargs)
        self.efficient = efficient
        self.sync_batchnorm = sync_batchnorm


class DistributedProbabilisticEmbedder(DistributedMixin, ProbabilisticEmbedder):
    """:class:`~skmetric.deep.ProbabilisticEmbedder` trained data-parallel on the ranks
    of a ``torch.distributed`` process group; ``batch_size`` is the global batch.

    Parameters
    ----------
    sync_batchnorm : bool, default=True
        The uncertainty head's (and the trunk's) BatchNorm layers normalise with the
        statistics of the global batch, as in one process; see
        :class:`DistributedMetricEmbedder`.
    **kwargs
        The parameters of :class:`~skmetric.deep.ProbabilisticEmbedder`.
    """

    _parameter_constraints = {**ProbabilisticEmbedder._parameter_constraints,
                              "sync_batchnorm": ["boolean"]}

    def __init__(self, module=None, *, sync_batchnorm=True, **kwargs):
        super().__init__(module, **kwargs)
        self.sync_batchnorm = sync_batchnorm
