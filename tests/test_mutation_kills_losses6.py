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
