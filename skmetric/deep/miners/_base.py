"""The base class of the miners."""


import torch

from .._distances import canonical_distance, get_distance
from .._params import ValidatedParams
from .._tuples import check_inputs, empty_tuple, label_masks


class BaseMiner(metaclass=ValidatedParams):
    """Base of the miners: input checks, the distance, then :meth:`mine` without gradients.

    A miner is a plain callable (not an ``nn.Module``)::

        miner(embeddings, labels, ref_emb=None, ref_labels=None) -> indices tuple

    returning 1-D ``torch.long`` tensors on the embeddings' device, either pairs
    ``(a1, p, a2, n)`` (``output = "pairs"``) or triplets ``(a, p, n)``
    (``output = "triplets"``). Anchors index ``embeddings``; positives and negatives index
    ``ref_emb`` (the batch itself by default, never pairing a sample with itself).

    Parameters
    ----------
    distance : {'euclidean', 'sqeuclidean', 'cosine_similarity', 'dot'}
        ('cosine', the former name of 'cosine_similarity', is deprecated.)
        The pairwise distance used to rank pairs.
    normalize : bool, default=True
        L2-normalise the embeddings first.
    """

    #: "pairs" or "triplets": the format of the mined indices.
    output = "triplets"
    #: Whether the miner mines against reference embeddings (``ref_emb``, e.g. the memory
    #: of :class:`~skmetric.deep.CrossBatchMemory`), not only within the batch.
    takes_ref_emb = True

    _parameter_constraints = {"normalize": ["boolean"]}

    def __init__(self, distance="euclidean", normalize=True):
        distance = canonical_distance(distance)  # 'cosine' is 'cosine_similarity' (warns)
        self.distance = distance
        self.normalize = normalize
        self.dist = get_distance(distance, normalize=normalize)

    def __call__(self, embeddings, labels, ref_emb=None, ref_labels=None):
        embeddings, labels, ref_emb, ref_labels = check_inputs(
            embeddings, labels, ref_emb, ref_labels
        )
        if not len(embeddings) or (ref_emb is not None and not len(ref_emb)):
            # No queries or no references (e.g. a memory not written yet): no tuples,
            # rather than a reduction over an empty dimension failing inside a miner.
            return empty_tuple(4 if self.output == "pairs" else 3, embeddings.device)
        with torch.no_grad():
            return self.mine(embeddings.detach(), labels,
                             None if ref_emb is None else ref_emb.detach(), ref_labels)

    def mine(self, embeddings, labels, ref_emb, ref_labels):
        """Return the mined tuple; ``ref_emb``/``ref_labels`` are None for the batch itself."""
        raise NotImplementedError

    def matrix_and_masks(self, embeddings, labels, ref_emb, ref_labels):
        """The (n, m) matrix of :attr:`dist` and the masks of the positive and negative pairs."""
        return (self.dist(embeddings, ref_emb), *label_masks(labels, ref_labels))

    def __repr__(self):
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items()
                           if not k.startswith("_") and k != "dist")
        return f"{type(self).__name__}({params})"
