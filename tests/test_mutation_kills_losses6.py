"""Tests that kill mutants of ``ProxyAnchorLoss``, the loss wrappers (``CrossBatchMemory``,
``MultipleLosses``, ``SelfSupervisedLoss``) and ``TupletMarginLoss`` that survived
``scripts/mutation.py`` (sixth session; see tests/README.md).

The reference is pytorch-metric-learning 2.9 (PML): every test compares the loss's value
AND its gradient with respect to the embeddings with PML's class (or with torch autograd
of the formula written out), and each was seen to fail on the surviving mutant planted by
hand.
"""

import math

import pytest

torch = pytest.importorskip("torch")
pml_losses = pytest.importorskip("pytorch_metric_learning.losses")

from _loss_agreement import value_and_grad as _value_and_grad  # noqa: E402

from skmetric.deep import losses  # noqa: E402

TOL = {torch.float32: dict(rtol=1e-4, atol=1e-5), torch.float64: dict(rtol=1e-7, atol=1e-9)}


def _agree(ours, theirs, emb, labels, **kwargs):
    v1, g1 = _value_and_grad(ours, emb, labels, **kwargs)
    v2, g2 = _value_and_grad(theirs, emb, labels, **kwargs)
    torch.testing.assert_close(v1, v2.to(v1.dtype), **TOL[emb.dtype])
    torch.testing.assert_close(g1, g2.to(g1.dtype), **TOL[emb.dtype])
    return v1, g1


def _randn(*shape, seed=0, dtype=torch.float64):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


# --- TupletMarginLoss: a positive pair whose anchor has no negative pair ----------------

@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_tuplet_margin_anchor_without_negatives_costs_zero_as_in_pml(dtype):
    """A miner's pairs where anchors 0 and 1 have positive pairs but no negative pair:
    PML's log(1 + empty sum) is 0 for them, and they still count in the mean (and their
    gradient is 0, not NaN). Also with a reference set whose only label is anchor 0's."""
    emb = _randn(8, 5, seed=1, dtype=dtype)
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 0, 1])
    a1, p = torch.tensor([0, 1, 2, 3, 6]), torch.tensor([1, 6, 3, 7, 0])
    a2, n = torch.tensor([2, 3, 3, 6, 4]), torch.tensor([0, 4, 5, 2, 7])
    ours = losses.TupletMarginLoss(margin=0.1, scale=16.0)
    theirs = pml_losses.TupletMarginLoss(margin=math.degrees(0.1), scale=16.0)
    value, grad = _agree(ours, theirs, emb, labels, indices_tuple=(a1, p, a2, n))
    assert value > 1e-3
    assert torch.equal(grad[1], torch.zeros_like(grad[1]))  # only in anchor 0's, 1's pairs
    # Query 0 (label 0) meets only label-0 references: positives, no negative.
    ref = _randn(3, 5, seed=2, dtype=dtype)
    ref_labels = torch.tensor([0, 0, 0])
    q_labels = torch.tensor([0, 1, 1])
    _agree(ours, theirs, emb[:3], q_labels, ref_emb=ref, ref_labels=ref_labels)


# --- ProxyAnchorLoss: the fast path's overflow bound ------------------------------------

def test_proxy_anchor_in_float32_near_the_overflow_of_exp_matches_pml_in_float64():
    """alpha * (1 + margin) = 88.0, just below log(float32 max) = 88.7 but far above the
    fast path's bound log(sqrt(max)) = 44.4: three samples sit on a wrong class's proxy,
    each adding exp(88) = 1.7e38 to that proxy's negative sum, which overflows float32
    (max 3.4e38) unless the sum is taken as a log-sum-exp."""
    n_classes, dim = 4, 6
    ours = losses.ProxyAnchorLoss(n_classes, dim, margin=0.1, alpha=80.0)
    theirs = pml_losses.ProxyAnchorLoss(n_classes, dim, margin=0.1, alpha=80.0).double()
    proxies = _randn(n_classes, dim, seed=3)
    ours.proxies.data = proxies.float()
    theirs.proxies.data = proxies.clone()
    emb = _randn(9, dim, seed=4)
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3, 0])
    emb[[0, 1, 8]] = proxies[3] * torch.tensor([[1.0], [2.0], [0.5]], dtype=torch.float64)
    v1, g1 = _value_and_grad(ours, emb.float(), labels)
    v2, g2 = _value_and_grad(theirs, emb, labels)
    assert math.isfinite(v1) and v1 > 20  # log(3 e^88) / 4 from proxy 3's negatives alone
    assert v1.item() == pytest.approx(v2.item(), rel=1e-4)
    torch.testing.assert_close(g1.double(), g2, rtol=1e-3, atol=1e-5)
