"""Index tuples shared by the deep losses and miners: validation, generation, conversion.

Two formats, as in pytorch-metric-learning:

* pairs ``(a1, p, a2, n)``: positive pairs ``(a1[i], p[i])`` and negative pairs
  ``(a2[j], n[j])``; the two halves may have different lengths.
* triplets ``(a, p, n)``: ``a[i]`` shares its label with ``p[i]`` but not with ``n[i]``.

Anchors (``a``, ``a1``, ``a2``) index the query embeddings; ``p`` and ``n`` index the
reference embeddings (the query batch itself unless ``ref_emb`` is given). All are 1-D
``torch.long`` tensors on the embeddings' device. Nothing here builds an (N, N, N) tensor:
triplets come from joining positive and negative pairs on their anchor, so memory is
O(N^2) plus the output.
"""

import torch

from . import _sync
from ._sync import counts, fetch, nonzero_static, to_device, where


def check_inputs(embeddings, labels, ref_emb=None, ref_labels=None, *, labels_required=True):
    """Validate a batch and return ``(embeddings, labels, ref_emb, ref_labels)``.

    ``labels`` (any integer or float label values, a tensor, array or list) is moved to the
    embeddings' device. ``ref_emb`` stays None when not given, which tells callers that
    query and reference are the same batch (so a sample is not its own positive).
    """
    embeddings = _check_embeddings(embeddings, "embeddings")
    labels = _check_labels(labels, embeddings, "labels", labels_required)
    if ref_emb is None:
        if ref_labels is not None:
            raise ValueError("ref_labels was given without ref_emb; pass both or neither.")
        return embeddings, labels, None, None
    ref_emb = _check_embeddings(ref_emb, "ref_emb")
    if ref_emb.shape[1] != embeddings.shape[1]:
        raise ValueError(
            f"ref_emb has {ref_emb.shape[1]} features but embeddings have "
            f"{embeddings.shape[1]}; both must come from the same embedding space."
        )
    if ref_emb.dtype != embeddings.dtype or ref_emb.device != embeddings.device:
        # (torch's own errors, from inside a distance, name neither tensor)
        raise TypeError(
            f"ref_emb is {ref_emb.dtype} on {ref_emb.device} but embeddings are "
            f"{embeddings.dtype} on {embeddings.device}; pass both alike, e.g. "
            "ref_emb.to(embeddings)."
        )
    ref_labels = _check_labels(ref_labels, ref_emb, "ref_labels", labels_required)
    return embeddings, labels, ref_emb, ref_labels


def _check_embeddings(x, what):
    if not torch.is_tensor(x):
        raise TypeError(f"{what} must be a torch.Tensor of shape (batch_size, dim); got {type(x)}.")
    if x.ndim != 2:
        raise ValueError(
            f"{what} must be 2-D, of shape (batch_size, embedding_dim); got shape "
            f"{tuple(x.shape)}. Flatten or reshape the network's output."
        )
    if not x.is_floating_point():
        raise TypeError(f"{what} must be a floating-point tensor; got dtype {x.dtype}.")
    # A host sync each call: checked on the CPU only (see _sync); the embedder checks
    # each training batch on any device.
    if _sync.host_checks(x) and not _sync.all_finite(x):
        raise ValueError(
            f"{what} contains NaN or infinity; the network diverged or its input holds "
            "NaN. Lower the learning rate or clean the input."
        )
    return x


def _check_labels(labels, embeddings, what, required):
    if labels is None:
        if required:
            raise ValueError(f"{what} are required: pass one class label per embedding.")
        return None
    try:
        labels = torch.as_tensor(labels, device=embeddings.device)
    except (TypeError, ValueError, RuntimeError):
        labels = None  # e.g. strings; torch's message names neither the argument nor the fix
    if labels is None or labels.dtype.is_complex:
        raise TypeError(
            f"{what} must be numbers (a tensor, array or list of class ids); encode other "
            "labels, e.g. strings, with sklearn.preprocessing.LabelEncoder (MetricEmbedder "
            "does this for you).")
    if labels.ndim != 1:
        raise ValueError(f"{what} must be 1-D, of shape (batch_size,); got {tuple(labels.shape)}.")
    if labels.shape[0] != embeddings.shape[0]:
        raise ValueError(
            f"{what} has length {labels.shape[0]} but there are {embeddings.shape[0]} "
            "embeddings; pass exactly one label per embedding."
        )
    if labels.is_floating_point() and _sync.host_checks(labels) and \
            bool(torch.isnan(labels).any()):
        raise ValueError(f"{what} contain NaN; every embedding needs a class label.")
    return labels


_ENCODE = ("Encode them with sklearn.preprocessing.LabelEncoder (MetricEmbedder does this "
           "for you).")


def check_class_indices(labels, n_classes, prefix="", fix=_ENCODE):
    """``labels`` as long class indices, after checking that they lie in [0, n_classes).

    Used where labels index a per-class table (a proxy loss's class weights, a reducer's
    class weights): out of range, indexing would fail deep in torch, or silently wrap
    around for negative labels. Checked on the CPU only (see _sync). ``prefix`` starts
    the message (it says whose classes they are), ``fix`` ends it.
    """
    labels = labels.long()
    if _sync.host_checks(labels) and labels.numel() and (
            labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(
            f"{prefix}labels must be class indices in [0, {n_classes}); got values in "
            f"[{int(labels.min())}, {int(labels.max())}]. {fix}"
        )
    return labels


def check_indices_tuple(indices_tuple, n_query, n_ref, device):
    """Validate a miner's output and return it as a tuple of long tensors on ``device``."""
    if not isinstance(indices_tuple, (tuple, list)) or len(indices_tuple) not in (3, 4):
        raise ValueError(
            "indices_tuple must be triplets (a, p, n) or pairs (a1, p, a2, n) of 1-D index "
            f"tensors; got {type(indices_tuple).__name__} of length "
            f"{len(indices_tuple) if hasattr(indices_tuple, '__len__') else '?'}."
        )
    out = tuple(torch.as_tensor(t, device=device).long().reshape(-1) for t in indices_tuple)
    if len(out) == 3 and not len(out[0]) == len(out[1]) == len(out[2]):
        raise ValueError("The triplet index tensors (a, p, n) must have equal lengths.")
    if len(out) == 4 and (len(out[0]) != len(out[1]) or len(out[2]) != len(out[3])):
        raise ValueError(
            "In pairs (a1, p, a2, n), a1 and p, and a2 and n, must have equal lengths."
        )
    sizes = (n_query, n_ref, n_ref) if len(out) == 3 else (n_query, n_ref, n_query, n_ref)
    if not _sync.host_checks(out[0]):
        return out  # reading the indices would stop the device (see _sync)
    for t, size in zip(out, sizes, strict=True):
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= size):
            raise ValueError(f"indices_tuple holds an index outside [0, {size}).")
    return out


def label_masks(labels, ref_labels=None):
    """Boolean (n, m) masks of positive and negative pairs; no self-pairs when ref is None."""
    same = ref_labels is None
    ref_labels = labels if same else ref_labels
    pos = labels[:, None] == ref_labels[None, :]
    neg = ~pos
    if same:
        pos.fill_diagonal_(False)
    return pos, neg


def all_pairs(labels, ref_labels=None):
    """All positive and negative pairs ``(a1, p, a2, n)``, in row-major order."""
    pos, neg = label_masks(labels, ref_labels)
    return where(pos, neg)


def all_triplets(labels, ref_labels=None):
    """All valid triplets ``(a, p, n)``, ordered by anchor, then positive, then negative."""
    pos, neg = label_masks(labels, ref_labels)
    # The number of triplets is known from the masks: one sync reads it with the pairs'.
    n_triplets = (pos.sum(1) * neg.sum(1)).sum()
    a1, p, a2, n, total = where(pos, neg, extra=(n_triplets,))
    return pairs_to_triplets((a1, p, a2, n), len(labels), total)


def pairs_to_triplets(pairs, n_query, total=None):
    """Join positive and negative pairs on their anchor: every (a, p) with every (a, n).

    The same conversion as pytorch-metric-learning's, but through a sort and
    ``repeat_interleave`` instead of an (n_pos, n_neg) comparison matrix. ``total``, the
    number of triplets, is read from the device (one sync) unless given.
    """
    a1, p, a2, n = pairs
    order = torch.argsort(a2, stable=True)
    n_sorted = n[order]
    per_anchor = counts(a2, n_query)
    starts = torch.cumsum(per_anchor, 0) - per_anchor
    per_pair = per_anchor[a1]
    if total is None:
        (total,) = fetch(per_pair.sum())
    pair_id = torch.repeat_interleave(torch.arange(len(a1), device=a1.device), per_pair,
                                      output_size=total)
    first = torch.cumsum(per_pair, 0) - per_pair
    offset = torch.arange(total, device=a1.device) - first[pair_id]
    return a1[pair_id], p[pair_id], n_sorted[starts[a1][pair_id] + offset]


def triplets_to_pairs(triplets):
    """Split triplets into their positive and negative pairs ``(a, p, a, n)``."""
    a, p, n = triplets
    return a, p, a, n


def to_pairs(indices_tuple, labels, ref_labels=None):
    """Pairs from a miner's output (either format), or all pairs when it is None."""
    if indices_tuple is None:
        return all_pairs(labels, ref_labels)
    return indices_tuple if len(indices_tuple) == 4 else triplets_to_pairs(indices_tuple)


def to_triplets(indices_tuple, labels, ref_labels=None):
    """Triplets from a miner's output (either format), or all triplets when it is None."""
    if indices_tuple is None:
        return all_triplets(labels, ref_labels)
    if len(indices_tuple) == 3:
        return indices_tuple
    return pairs_to_triplets(indices_tuple, len(labels))


def pair_masks(indices_tuple, labels, ref_labels, shape):
    """Dense boolean masks of the positive and negative pairs of ``indices_tuple``."""
    if indices_tuple is None:
        return label_masks(labels, ref_labels)
    a1, p, a2, n = to_pairs(indices_tuple, labels, ref_labels)
    pos = torch.zeros(shape, dtype=torch.bool, device=a1.device)
    neg = torch.zeros(shape, dtype=torch.bool, device=a1.device)
    pos[a1, p] = True
    neg[a2, n] = True
    if _sync.host_checks(pos) and bool((pos & neg).any()):
        raise ValueError("indices_tuple marks the same pair as both positive and negative.")
    return pos, neg


def random_triplets(labels, ref_labels, per_anchor, generator=None):
    """``per_anchor`` triplets for each anchor with a positive and a negative, drawn uniformly.

    Positives and negatives are drawn independently and with replacement among the anchor's
    valid ones; random numbers come from ``generator`` (on the CPU) so that results are
    reproducible on any device.
    """
    pos, neg = label_masks(labels, ref_labels)
    valid = pos.any(1) & neg.any(1)
    draws = valid.long() * per_anchor
    (a,) = where(valid)  # the one sync: the number of anchors
    n_valid = len(a)
    a = a.repeat_interleave(per_anchor)
    sizes = (per_anchor if n_valid else 0, n_valid * per_anchor)
    return (a, sample_in_rows(pos, draws, generator, sizes=sizes),
            sample_in_rows(neg, draws, generator, sizes=sizes))


def sample_in_rows(mask, draws, generator=None, weights=None, sizes=None):
    """Draw ``draws[i]`` column indices in row i of ``mask``, uniformly or by ``weights``.

    Returns the draws of row 0, then row 1, ... (the order of
    ``arange(n_rows).repeat_interleave(draws)``). Memory is O(n_rows * n_cols) plus
    O(n_rows * max(draws)): the rows are not copied once per draw. ``sizes``,
    ``(max(draws), sum(draws))``, is read from the device (one sync) unless given.
    """
    if sizes is None:
        sizes = fetch(draws.max(), draws.sum()) if draws.numel() else (0, 0)
    k, total = sizes
    if k == 0:
        return torch.empty(0, dtype=torch.long, device=mask.device)
    w = mask.to(torch.float64) if weights is None else weights.to(torch.float64) * mask
    # Inverse-CDF sampling: uniforms scaled to each row's total, searched in its cumsum.
    cdf = torch.cumsum(w, 1)
    u = torch.rand(mask.shape[0], k, generator=generator, dtype=torch.float64)
    u = to_device(u, mask.device) * cdf[:, -1:]
    idx = torch.searchsorted(cdf, u, right=True).clamp_(max=mask.shape[1] - 1)
    keep = torch.arange(k, device=mask.device) < draws[:, None]
    return idx.flatten()[nonzero_static(keep.flatten(), total)[0]]


def as_generator(random_state):
    """A CPU ``torch.Generator`` from None (fresh entropy), an int seed or a Generator."""
    if isinstance(random_state, torch.Generator):
        return random_state
    generator = torch.Generator()
    if random_state is None:
        generator.seed()
    else:
        generator.manual_seed(int(random_state))
    return generator


class Seeded:
    """Mixin of the losses and miners that draw at random from ``random_state``.

    ``generator`` is the CPU ``torch.Generator`` of :func:`as_generator`, made on first
    use and kept, so successive calls continue one stream; setting ``_generator`` to None
    restarts it from the seed.
    """

    _generator = None

    @property
    def generator(self):
        if self._generator is None:
            self._generator = as_generator(self.random_state)
        return self._generator


def empty_tuple(size, device):
    """An empty pairs (size 4) or triplets (size 3) tuple."""
    return tuple(torch.empty(0, dtype=torch.long, device=device) for _ in range(size))
