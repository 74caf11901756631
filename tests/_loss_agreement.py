"""Shared pieces of the loss tests that compare skmetric with pytorch-metric-learning."""


def value_and_grad(loss, emb, labels, **kwargs):
    """The loss value (0-d) and its gradient with respect to a fresh copy of ``emb``."""
    emb = emb.clone().requires_grad_(True)
    value = loss(emb, labels, **kwargs)
    value.backward()
    return value.detach().reshape(()), emb.grad


def mined(emb, labels, kind):
    """PML's tuples for a batch: None, semihard ``'triplets'`` or multi-similarity pairs."""
    if kind is None:
        return None
    from pytorch_metric_learning import miners

    if kind == "triplets":
        return miners.TripletMarginMiner(0.3, type_of_triplets="semihard")(emb, labels)
    return miners.MultiSimilarityMiner(epsilon=0.2)(emb, labels)
