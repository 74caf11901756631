"""Class-balanced mini-batches: C classes x m samples per class."""

from numbers import Integral

import numpy as np
from sklearn.utils import check_random_state
from torch.utils.data import Sampler

from .._sklearn_compat import Interval, validate_parameter_constraints


class ClassBalancedBatchSampler(Sampler):
    """Yield batches of ``n_classes_per_batch`` classes with ``samples_per_class`` samples each.

    Pair- and triplet-based losses need positives in every batch; uniformly random batches of
    many classes hold few of them. Each batch here draws C distinct classes uniformly at random
    and m distinct samples of each, with ``C = batch_size // samples_per_class`` (all classes
    when there are fewer). Within a class the samples are taken from a shuffled queue that is
    refilled when exhausted (and carried over from one epoch to the next), so every sample is
    used before any is repeated.

    An epoch draws ``n_batches`` batches, by default ``n_samples // batch_size`` for the
    ``batch_size`` asked for. With fewer than ``batch_size // samples_per_class`` classes the
    batches are smaller than that, so an epoch uses only part of the samples (with 3 classes,
    ``batch_size=128`` and ``samples_per_class=4``: one batch of 12 samples); pass a
    ``batch_size`` of at most ``n_classes * samples_per_class`` for epochs that use every
    sample about once.

    Use it as ``DataLoader(dataset, batch_sampler=sampler)``.

    Parameters
    ----------
    labels : array-like of shape (n_samples,)
        Class label of each sample of the dataset.
    samples_per_class : int
        m, the number of samples of each class in a batch; every class needs at least m.
    batch_size : int
        Upper bound on the batch size; rounded down to a multiple of m.
    n_batches : int, default=None
        Batches per epoch; by default ``max(1, n_samples // batch_size)``.
    random_state : int, RandomState instance or None, default=None
        Seeds the choices. The generator advances over epochs, so successive epochs differ
        while two samplers built with the same integer seed yield the same batches.

    Examples
    --------
    >>> from skmetric.deep._sampler import ClassBalancedBatchSampler
    >>> sampler = ClassBalancedBatchSampler([0, 0, 1, 1, 2, 2], 2, 4, random_state=0)
    >>> [len(batch) for batch in sampler]
    [4]
    """

    _parameter_constraints = {
        "samples_per_class": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 2, None, closed="left")],
        "n_batches": [None, Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(self, labels, samples_per_class, batch_size, n_batches=None, random_state=None):
        # Checked before use: a string or float failed deep in NumPy or range(), and a
        # negative n_batches in len().
        validate_parameter_constraints(
            self._parameter_constraints,
            {"samples_per_class": samples_per_class, "batch_size": batch_size,
             "n_batches": n_batches, "random_state": random_state},
            caller_name=type(self).__name__,
        )
        labels = np.asarray(labels)
        if labels.ndim != 1:
            raise ValueError(f"labels must be 1-D; got shape {labels.shape}.")
        classes, codes, counts = np.unique(labels, return_inverse=True, return_counts=True)
        if classes.size < 2:
            raise ValueError(
                "Class-balanced batches need at least 2 classes; the labels hold "
                f"{classes.size}."
            )
        if counts.min() < samples_per_class:
            small = classes[counts < samples_per_class][:5]
            raise ValueError(
                f"samples_per_class={samples_per_class} but class(es) {small.tolist()} have "
                f"only {counts.min()} sample(s). Lower samples_per_class to at most "
                f"{counts.min()}, or remove the rarest classes."
            )
        if batch_size < 2 * samples_per_class:
            raise ValueError(
                f"batch_size={batch_size} holds fewer than 2 classes of "
                f"samples_per_class={samples_per_class}; use batch_size >= "
                f"{2 * samples_per_class} so batches contain negatives."
            )
        self.samples_per_class = int(samples_per_class)
        self.n_classes_per_batch = min(batch_size // self.samples_per_class, classes.size)
        self.batch_size = self.n_classes_per_batch * self.samples_per_class
        self.n_batches = (
            max(1, labels.size // batch_size) if n_batches is None else int(n_batches)
        )
        self._members = [np.flatnonzero(codes == k) for k in range(classes.size)]
        self._rng = check_random_state(random_state)
        self._queues = [np.empty(0, dtype=np.intp)] * classes.size

    def __len__(self):
        return self.n_batches

    def __iter__(self):
        rng, m = self._rng, self.samples_per_class
        for _ in range(self.n_batches):
            chosen = rng.choice(len(self._members), self.n_classes_per_batch, replace=False)
            batch = [self._take(k, m) for k in chosen]
            yield np.concatenate(batch).tolist()

    def _take(self, k, m):
        """The next m samples of class k, refilling its queue with a fresh permutation."""
        queue = self._queues[k]
        if queue.size < m:
            # Keep the leftovers first so that every sample is seen before any repeats.
            fresh = self._rng.permutation(self._members[k])
            fresh = fresh[~np.isin(fresh, queue)]
            queue = np.concatenate([queue, fresh])
        self._queues[k] = queue[m:]
        return queue[:m]
