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


# --- MultipleLosses -----------------------------------------------------------------------

def _batch(seed, n=12, dim=5, n_classes=3, dtype=torch.float64):
    labels = torch.arange(n) % n_classes
    return _randn(n, dim, seed=seed, dtype=dtype), labels


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_multiple_losses_default_weights_and_miners_match_pml(dtype):
    """Without weights each loss counts once (PML's default weight 1); without miners
    ``miners`` is None, as PML's; a user's loss module without skmetric's
    ``requires_classes`` attribute (PML's own loss) is not a proxy loss."""
    emb, labels = _batch(0, dtype=dtype)
    for as_dict in (False, True):
        pair = [losses.ContrastiveLoss(), losses.TripletMarginLoss(0.3)]
        ref = [pml_losses.ContrastiveLoss(), pml_losses.TripletMarginLoss(0.3)]
        if as_dict:
            pair, ref = dict(zip("ab", pair, strict=True)), dict(zip("ab", ref, strict=True))
        ours, theirs = losses.MultipleLosses(pair), pml_losses.MultipleLosses(ref)
        assert ours.miners is None and theirs.miners is None
        value, _ = _agree(ours, theirs, emb, labels)
        single = sum(_value_and_grad(loss, emb, labels)[0]
                     for loss in (ref.values() if as_dict else ref))
        torch.testing.assert_close(value, single.to(dtype), **TOL[dtype])
    foreign = losses.MultipleLosses([pml_losses.ContrastiveLoss(), losses.ContrastiveLoss()])
    assert foreign.requires_classes is False
    assert losses.MultipleLosses({"p": losses.ProxyAnchorLoss(3, 5)}).requires_classes


def test_multiple_losses_with_a_reference_set_sums_each_loss_against_it():
    """``ref_emb``/``ref_labels`` reach every loss and every miner (PML's MultipleLosses has
    no reference set: the reference is the weighted sum of PML's losses and miner, each
    called with the reference set)."""
    from pytorch_metric_learning import miners as pml_miners

    from skmetric.deep.miners import TripletMarginMiner

    emb, labels = _batch(1, n=8)
    ref, ref_labels = _randn(10, 5, seed=2), torch.arange(10) % 3
    ours = losses.MultipleLosses(
        {"c": losses.ContrastiveLoss(0.1, 0.9), "t": losses.TripletMarginLoss(0.2)},
        miners={"t": TripletMarginMiner(0.5)}, weights={"c": 0.5, "t": 2.0})
    v1, g1 = _value_and_grad(ours, emb, labels, ref_emb=ref, ref_labels=ref_labels)

    def reference(e):
        tuples = pml_miners.TripletMarginMiner(0.5)(e, labels, ref, ref_labels)
        same = labels[:, None] == ref_labels[None, :]
        every = (same.sum(1) * (~same).sum(1)).sum()
        assert 0 < len(tuples[0]) < every  # the miner dropped some triplets
        return (0.5 * pml_losses.ContrastiveLoss(0.1, 0.9)(e, labels, None, ref, ref_labels)
                + 2.0 * pml_losses.TripletMarginLoss(0.2)(e, labels, tuples, ref, ref_labels))

    v2, g2 = _value_and_grad(lambda e, _: reference(e), emb, labels)
    torch.testing.assert_close(v1, v2)
    torch.testing.assert_close(g1, g2)
    # Integer keys of a dict name the losses too (PML's ModuleDict needs strings).
    ours = losses.MultipleLosses({0: losses.ContrastiveLoss(), 1: losses.TripletMarginLoss()},
                                 weights={0: 1.0, 1: 3.0})
    theirs = pml_losses.MultipleLosses({"0": pml_losses.ContrastiveLoss(),
                                        "1": pml_losses.TripletMarginLoss()},
                                       weights={"0": 1.0, "1": 3.0})
    _agree(ours, theirs, emb, labels)


def test_multiple_losses_errors_name_the_argument_and_the_fix():
    c, t = losses.ContrastiveLoss(), losses.TripletMarginLoss()
    cases = [
        (dict(losses=c), TypeError,
         "losses must be a non-empty list or dict of losses (nn.Module instances or names); "
         "got ContrastiveLoss."),
        (dict(losses=[c, t], miners=[None]), ValueError,
         "miners must be a list with one entry per loss (2); got [None]."),
        (dict(losses=[c, t], weights=(1.0,)), ValueError,
         "weights must be a list with one entry per loss (2); got (1.0,)."),
        (dict(losses={"a": c, "b": t}, weights=[1.0, 2.0]), TypeError,
         "losses is a dict, so weights must be a dict too."),
        (dict(losses={"a": c, "b": t}, miners=[None, None]), TypeError,
         "losses is a dict, so miners must be a dict too."),
        (dict(losses={"a": c, "b": t}, weights={"a": 1.0}), ValueError,
         "weights must have the keys of losses ['a', 'b']; got ['a']."),
        (dict(losses={"a": c, "b": t}, weights={"a": 1.0, "b": 1.0, "c": 1.0}), ValueError,
         "weights must have the keys of losses ['a', 'b']; got ['a', 'b', 'c']."),
        (dict(losses={"a": c, "b": t}, miners={"c": None}), ValueError,
         "miners must have some of the keys of losses ['a', 'b']; got ['c']."),
    ]
    for kwargs, error, message in cases:
        with pytest.raises(error) as info:
            losses.MultipleLosses(**kwargs)
        assert str(info.value) == message
    # A dict of miners may name only some losses; a dict of weights must name all.
    losses.MultipleLosses({"a": c, "b": t}, miners={"a": "semihard"})
    mined = losses.MultipleLosses([c, t], miners=[None, "semihard"])
    with pytest.raises(ValueError) as info:
        mined(*_batch(0), indices_tuple=(torch.tensor([0]),) * 3)
    assert str(info.value) == ("MultipleLosses has its own miners, so indices_tuple must be "
                               "None; pass the miner in miners=... or drop the miners.")


# --- SelfSupervisedLoss -------------------------------------------------------------------

def test_self_supervised_loss_defaults_and_errors():
    """The default is PML's ``symmetric=True`` (both views stacked); the errors name the
    wrapper and say what to pass."""
    view1 = _randn(6, 4, seed=5)
    view2 = view1 + 0.2 * _randn(6, 4, seed=6)
    ours = losses.SelfSupervisedLoss(losses.ContrastiveLoss())
    theirs = pml_losses.SelfSupervisedLoss(pml_losses.ContrastiveLoss())

    def value_and_grads(loss):
        views = [v.clone().requires_grad_() for v in (view1, view2)]
        value = loss(*views)
        return (value.detach(), *torch.autograd.grad(value, views))

    results = [value_and_grads(loss) for loss in (ours, theirs)]
    torch.testing.assert_close(results[0], results[1])
    asymmetric = losses.SelfSupervisedLoss(losses.ContrastiveLoss(), symmetric=False)
    assert not torch.allclose(asymmetric(view1, view2), results[0][0])
    message = ("ref_emb must be a tensor of the same shape as embeddings: row i of both is "
               "the same input under two augmentations.")
    for args in ((view1, view2[:4]), (view1.tolist(), view2), (view1, view2.tolist())):
        with pytest.raises(ValueError) as info:
            ours(*args)
        assert str(info.value) == message
    with pytest.raises(ValueError) as info:
        losses.SelfSupervisedLoss(losses.ArcFaceLoss(3, 4))
    assert str(info.value).startswith("SelfSupervisedLoss needs a pair-based loss")


# --- CrossBatchMemory ---------------------------------------------------------------------

def _xbm_pair(loss, pml_loss, dim, memory_size, miner=None, pml_miner=None):
    return (losses.CrossBatchMemory(loss, dim, memory_size=memory_size, miner=miner),
            pml_losses.CrossBatchMemory(pml_loss, dim, memory_size=memory_size,
                                        miner=pml_miner))


def _xbm_agree(ours, theirs, emb, labels, pml_kwargs=None, **kwargs):
    v1, g1 = _value_and_grad(ours, emb, labels, **kwargs)
    v2, g2 = _value_and_grad(theirs, emb, labels, **(pml_kwargs or kwargs))
    torch.testing.assert_close(v1, v2)
    torch.testing.assert_close(g1, g2)
    assert (ours.queue_idx, ours.has_been_filled) == (theirs.queue_idx, theirs.has_been_filled)
    assert torch.equal(ours.label_memory, theirs.label_memory)
    return v1


def test_cross_batch_memory_defaults_and_initial_state_match_pml():
    ours = losses.CrossBatchMemory(losses.ContrastiveLoss(), 4)
    theirs = pml_losses.CrossBatchMemory(pml_losses.ContrastiveLoss(), 4)
    assert ours.memory_size == theirs.memory_size == 1024
    assert ours.has_been_filled is False and theirs.has_been_filled is False
    for name in ("embedding_memory", "label_memory"):
        mine, ref = getattr(ours, name), getattr(theirs, name)
        assert mine.dtype == ref.dtype and mine.shape == ref.shape


@pytest.mark.parametrize("kind", ["float labels", "one-sample batches", "PML's loss"])
def test_cross_batch_memory_matches_pml_over_batches(kind):
    """Float labels are stored in the labels' dtype (not truncated to the long memory);
    batches of one sample fill a memory of 3 on the third; a loss module without skmetric's
    ``requires_classes`` (PML's own) is accepted."""
    loss = pml_losses.ContrastiveLoss() if kind == "PML's loss" else losses.ContrastiveLoss()
    ours, theirs = _xbm_pair(loss, pml_losses.ContrastiveLoss(), 4,
                             3 if kind == "one-sample batches" else 10)
    n = 1 if kind == "one-sample batches" else 6
    values = []
    for step in range(4):
        emb = _randn(n, 4, seed=10 + step)
        labels = (torch.arange(n) + step) % 3
        if kind == "float labels":
            labels = labels.double() + 0.5
        values.append(_xbm_agree(ours, theirs, emb, labels))
        assert ours.has_been_filled == (step >= (2 if kind == "one-sample batches" else 1))
    assert ours.label_memory.dtype == (torch.float64 if kind == "float labels" else torch.long)
    assert max(values) > 0.1


def test_cross_batch_memory_adds_given_pairs_to_its_pairs_and_triplets_as_pml():
    """An ``indices_tuple`` of pairs (a1, p, a2, n) in batch indices joins all pairs
    (contrastive) or a triplet miner's triplets (converted to triplets); PML reads the
    positives and negatives as memory slots, so it gets them mapped."""
    from pytorch_metric_learning import miners as pml_miners

    from skmetric.deep.miners import MultiSimilarityMiner, TripletMarginMiner

    cases = [(losses.ContrastiveLoss(), pml_losses.ContrastiveLoss(), None, None),
             (losses.TripletMarginLoss(0.2), pml_losses.TripletMarginLoss(0.2),
              TripletMarginMiner(0.3), pml_miners.TripletMarginMiner(0.3))]
    for loss, pml_loss, miner, pml_miner in cases:
        ours, theirs = _xbm_pair(loss, pml_loss, 5, 14, miner, pml_miner)
        for step in range(3):
            emb, labels = _randn(6, 5, seed=20 + step), torch.tensor([0, 0, 1, 1, 2, 2])
            slots = (torch.arange(6) + ours.queue_idx) % 14
            a1, p, a2, n = MultiSimilarityMiner(0.3)(emb, labels)
            assert len(a1) and len(a2)
            _xbm_agree(ours, theirs, emb, labels, indices_tuple=(a1, p, a2, n),
                       pml_kwargs=dict(indices_tuple=(a1, slots[p], a2, slots[n])))


def test_cross_batch_memory_with_nothing_to_enqueue_keeps_the_memory_unfilled():
    """A batch whose enqueue_mask is all False writes nothing: the queries are compared
    with the rows written so far only. (PML marks its memory filled when nothing is
    written, ``queue_idx <= previous``, and then compares with the unwritten zero rows
    of label 0: a deliberate difference.)"""
    xbm = losses.CrossBatchMemory(losses.ContrastiveLoss(), 4, memory_size=8)
    first, first_labels = _randn(4, 4, seed=30), torch.tensor([0, 1, 2, 0])
    xbm(first, first_labels, enqueue_mask=torch.tensor([True, True, True, False]))
    emb, labels = _randn(4, 4, seed=31), torch.tensor([0, 1, 1, 2])
    value, grad = _value_and_grad(xbm, emb, labels, enqueue_mask=torch.zeros(4, dtype=bool))
    assert (xbm.queue_idx, xbm.has_been_filled) == (3, False)
    ref, ref_labels = first[:3], first_labels[:3]
    expected, expected_grad = _value_and_grad(pml_losses.ContrastiveLoss(), emb, labels,
                                              ref_emb=ref, ref_labels=ref_labels)
    torch.testing.assert_close(value, expected)
    torch.testing.assert_close(grad, expected_grad)


def test_cross_batch_memory_error_messages_in_full():
    xbm = losses.CrossBatchMemory(losses.ContrastiveLoss(), 4, memory_size=6)
    emb, labels = _randn(4, 4, seed=40), torch.tensor([0, 0, 1, 1])
    cases = [
        (dict(ref_emb=emb), "CrossBatchMemory compares the batch with its memory; ref_emb and "
         "ref_labels are not supported."),
        (dict(indices_tuple=(torch.tensor([0]),) * 3, enqueue_mask=torch.ones(4, dtype=bool)),
         "indices_tuple and enqueue_mask are mutually exclusive; pass one of them."),
        (dict(enqueue_mask=torch.tensor([1, 0, 1, 0])), "enqueue_mask must be a boolean tensor "
         "with one entry per embedding; got dtype torch.int64 and shape (4,)."),
        (dict(enqueue_mask=torch.ones(3, dtype=bool)), "enqueue_mask must be a boolean tensor "
         "with one entry per embedding; got dtype torch.bool and shape (3,)."),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError) as info:
            xbm(emb, labels, **kwargs)
        assert str(info.value) == message
    assert xbm.queue_idx == 0
    with pytest.raises(ValueError) as info:
        losses.CrossBatchMemory(losses.ArcFaceLoss(3, 4), 4)
    assert str(info.value) == (
        "CrossBatchMemory needs a pair-based loss that compares embeddings with reference "
        "embeddings; ArcFaceLoss compares them with class weights. Use e.g. ContrastiveLoss, "
        "TripletMarginLoss or MultiSimilarityLoss.")


def test_proxy_anchor_default_proxies_are_pml_s_under_one_seed():
    """PML initialises the (num_classes, embedding_size) proxies with
    ``kaiming_normal_(mode="fan_out")`` (std sqrt(2 / num_classes)): under the same seed
    the proxies, and so the loss and its gradients, are PML's."""
    torch.manual_seed(0)
    ours = losses.ProxyAnchorLoss(3, 40)
    torch.manual_seed(0)
    theirs = pml_losses.ProxyAnchorLoss(3, 40)
    torch.testing.assert_close(ours.proxies.data, theirs.proxies.data, rtol=0, atol=0)
    emb, labels = _randn(9, 40, seed=50, dtype=torch.float32), torch.arange(9) % 3
    _agree(ours, theirs, emb, labels)
