"""Host synchronisations of the losses and miners: when value checks run, and index lists.

On an accelerator, Python reading a value computed on the device (``.item()``,
``bool(t)``, ``int(t)``, or the output size of ``torch.where(mask)`` / ``nonzero`` /
``bincount``) stops the host until every queued kernel has run: the launch of the next
kernels no longer overlaps the device's work. The losses and miners therefore keep such
reads out of their hot path:

* value checks of the inputs (finite embeddings, labels and indices in range) run only
  where they cost nothing, on the CPU (:func:`host_checks`); on an accelerator the
  embedder checks each batch's embeddings and loss, and a loss can be debugged on CPU
  tensors;
* a loss reduces over dense (n, m) masks instead of gathering index lists;
* a miner's output has a data-dependent length, so building it needs one read of the
  device: :func:`fetch` reads all the sizes a miner needs at once, and
  :func:`nonzero_rows_cols` then fills index lists of known size without another.
"""

import warnings

import torch


def host_checks(x):
    """Whether reading ``x``'s values on the host is free (on the CPU).

    Value checks of the inputs, and branches on values that only shape the autograd graph,
    run only then.
    """
    return x.device.type == "cpu"


def all_finite(x):
    """Whether every entry of ``x`` is finite, read on the host.

    A finite sum proves it (any NaN or infinity makes the sum NaN or infinite), and a sum
    is one pass without a boolean temporary: 5x faster than ``isfinite(x).all()`` on the
    CPU. Only a non-finite sum (a NaN or infinity, or finite entries whose sum
    overflows) pays for the entry-wise check.
    """
    return bool(x.sum().isfinite()) or bool(torch.isfinite(x).all())


def fetch(*scalars):
    """Python ints of 0-d integer tensors, read from the device in one synchronisation."""
    if not scalars:
        return []
    return torch.stack([torch.as_tensor(s).reshape(()) for s in scalars]).tolist()


def nonzero_static(mask, size):
    """``torch.where(mask)`` (row-major order) given its known length: no synchronisation."""
    if host_checks(mask):
        # On the CPU, plain ``torch.where`` is 3x faster and its index tensors are
        # contiguous (the columns of ``nonzero_static`` are strided: slow to reduce/gather).
        return torch.where(mask)
    idx = torch.nonzero_static(mask, size=size)
    return tuple(idx[:, d] for d in range(mask.ndim))


def where(*masks, extra=()):
    """``torch.where`` of each mask (flattened into one tuple) with one synchronisation.

    ``extra`` are further 0-d integer tensors whose values are read in the same
    transfer; they are returned after the indices, as Python ints.
    """
    if masks and host_checks(masks[0]):  # no sync to save: no counting pass either
        return (*(t for m in masks for t in torch.where(m)), *fetch(*extra))
    sizes = fetch(*(m.sum() for m in masks), *extra)
    out = []
    for mask, size in zip(masks, sizes, strict=False):
        out.extend(nonzero_static(mask, size))
    return (*out, *sizes[len(masks):])


def counts(index, n):
    """``torch.bincount(index, minlength=n)`` for indices below ``n``, without a sync.

    On CUDA ``bincount`` reads the indices' minimum and maximum on the host first.
    """
    out = torch.zeros(n, dtype=torch.long, device=index.device)
    return out.index_add_(0, index, torch.ones_like(index))


def to_device(x, device):
    """Copy a CPU tensor (e.g. random numbers from a CPU generator) to ``device``.

    A plain host-to-device copy of pageable memory waits for the device's queue; a copy
    from pinned memory is queued like a kernel.
    """
    device = torch.device(device)
    if device.type == "cuda":
        x = x.pin_memory()
    return x.to(device, non_blocking=True)


def cuda_syncs(fn, device=None):
    """Messages of the host synchronisations ``fn()`` makes on CUDA, as torch counts them.

    torch's sync debug mode warns at each synchronising call; the benchmark reports their
    number and the sync-free tests bound it. ``fn`` must run on a CUDA ``device``.
    """
    torch.cuda.synchronize(device)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            fn()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return [str(w.message) for w in caught if "synchroniz" in str(w.message)]
