"""Tests that kill mutants of skmetric/deep/losses/ that survived ``scripts/mutation.py``.

The reference is pytorch-metric-learning (PML): default-constructed losses must give PML's
value and gradients (defaults are part of the documented behaviour), and the proxy losses
PML's gradients for their class weights too, not only for the embeddings.
"""

import math

import pytest

torch = pytest.importorskip("torch")
pml_losses = pytest.importorskip("pytorch_metric_learning.losses")

from skmetric.deep import losses  # noqa: E402


def _batch(seed=0, n=24, dim=6, n_classes=4, spread=0.6):
    """Varied norms (normalisation matters) and positives at ``spread`` from each other."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(n // 2, dim, generator=g, dtype=torch.float64)
    emb = torch.cat([base, base + spread * torch.randn(n // 2, dim, generator=g,
                                                       dtype=torch.float64)])
    emb = emb * (0.2 + 3 * torch.rand(n, 1, generator=g, dtype=torch.float64))
    labels = torch.arange(n // 2).repeat(2) % n_classes
    return emb, labels


def _value_and_grads(loss, emb, labels, params=()):
    emb = emb.clone().requires_grad_(True)
    value = loss(emb, labels)
    value.backward()
    return value.item(), emb.grad, [p.grad for p in params]


PAIR_DEFAULTS = ["MultiSimilarityLoss", "LiftedStructureLoss",
                 "GeneralizedLiftedStructureLoss", "NPairsLoss", "MarginLoss", "CircleLoss"]


@pytest.mark.parametrize("name", PAIR_DEFAULTS)
@pytest.mark.parametrize("spread", [0.1, 1.0])
def test_pair_loss_defaults_match_pml(name, spread):
    """Default margins, scales, distance and normalisation are PML's."""
    emb, labels = _batch(spread=spread)
    v1, g1, _ = _value_and_grads(getattr(losses, name)(), emb, labels)
    v2, g2, _ = _value_and_grads(getattr(pml_losses, name)(), emb, labels)
    assert v1 == pytest.approx(v2, rel=1e-6, abs=1e-9)
    torch.testing.assert_close(g1, g2, rtol=1e-5, atol=1e-8)
    assert v1 != 0


C, D = 5, 6
# ours (defaults), PML's twin with the same defaults, weight attribute (ours, PML's)
PROXY_DEFAULTS = {
    "ArcFaceLoss": (dict(margin=math.degrees(0.5)), "W", "W"),
    "CosFaceLoss": ({}, "W", "W"),
    "ProxyNCALoss": ({}, "proxies", "proxies"),
    "ProxyAnchorLoss": ({}, "proxies", "proxies"),
}


@pytest.mark.parametrize("name", sorted(PROXY_DEFAULTS))
@pytest.mark.parametrize("seed", [0, 1])
def test_proxy_loss_defaults_and_weight_gradients_match_pml(name, seed):
    """Same weights: same value, embedding gradient and class-weight gradient as PML."""
    pml_kwargs, ours_attr, pml_attr = PROXY_DEFAULTS[name]
    emb, labels = _batch(seed, dim=D, n_classes=C)
    ours = getattr(losses, name)(C, D).double()
    theirs = getattr(pml_losses, name)(num_classes=C, embedding_size=D, **pml_kwargs)
    w = getattr(ours, ours_attr)
    g = torch.Generator().manual_seed(seed + 10)
    w.data = torch.randn(w.shape, generator=g, dtype=torch.float64)
    getattr(theirs, pml_attr).data = w.data.clone()
    v1, g1, (w1,) = _value_and_grads(ours, emb, labels, [w])
    v2, g2, (w2,) = _value_and_grads(theirs, emb, labels, [getattr(theirs, pml_attr)])
    assert v1 == pytest.approx(v2, rel=1e-6, abs=1e-9)
    torch.testing.assert_close(g1, g2, rtol=1e-5, atol=1e-8)
    torch.testing.assert_close(w1, w2, rtol=1e-5, atol=1e-8)


ALL_PAIR = ["ContrastiveLoss", "TripletMarginLoss", "MultiSimilarityLoss", "CircleLoss",
            "LiftedStructureLoss", "GeneralizedLiftedStructureLoss", "MarginLoss"]


@pytest.mark.parametrize("name", ALL_PAIR)
def test_anchors_without_positives_or_negatives_match_pml(name):
    """Anchors of a singleton class (no positive), and a reference set of one class (its
    anchors have no negative, the others no positive): the terms of such anchors are
    dropped as PML drops them."""
    emb, labels = _batch(2)
    labels = labels.clone()
    labels[:3] = torch.tensor([7, 8, 9])  # three singleton classes
    v1, g1, _ = _value_and_grads(getattr(losses, name)(), emb, labels)
    v2, g2, _ = _value_and_grads(getattr(pml_losses, name)(), emb, labels)
    assert v1 == pytest.approx(v2, rel=1e-6, abs=1e-9)
    torch.testing.assert_close(g1, g2, rtol=1e-5, atol=1e-8)
    ref = emb[:10].flip(0) + 0.1
    one_class = torch.zeros(10, dtype=labels.dtype)  # class 0's anchors: no negative
    two_classes = one_class.clone()
    two_classes[-2:] = 1
    for ref_labels in (one_class, two_classes):
        values = []
        for loss in (getattr(losses, name)(), getattr(pml_losses, name)()):
            e = emb.clone().requires_grad_(True)
            value = loss(e, labels, ref_emb=ref, ref_labels=ref_labels)
            value.backward()
            values.append((value.item(), e.grad))
        assert values[0][0] == pytest.approx(values[1][0], rel=1e-6, abs=1e-9)
        torch.testing.assert_close(values[0][1], values[1][1], rtol=1e-5, atol=1e-8)
