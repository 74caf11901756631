"""Loss wrappers (CrossBatchMemory, MultipleLosses, SelfSupervisedLoss) against PML's."""

import io

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pml_losses = pytest.importorskip("pytorch_metric_learning.losses")
pml_miners = pytest.importorskip("pytorch_metric_learning.miners")

from skmetric.deep import MetricEmbedder  # noqa: E402
from skmetric.deep.losses import (  # noqa: E402
    ArcFaceLoss,
    ContrastiveLoss,
    CrossBatchMemory,
    MultipleLosses,
    MultiSimilarityLoss,
    SelfSupervisedLoss,
    TripletMarginLoss,
)
from skmetric.deep.miners import MultiSimilarityMiner, TripletMarginMiner  # noqa: E402

DEVICES = [
    "cpu",
    pytest.param("cuda", marks=[
        pytest.mark.gpu,
        pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
    ]),
]

# (our loss, PML's loss, our miner, PML's miner), each built fresh.
XBM_CASES = {
    "contrastive": (lambda: ContrastiveLoss(0.1, 0.9), lambda: pml_losses.ContrastiveLoss(0.1, 0.9),
                    None, None),
    "triplet": (lambda: TripletMarginLoss(0.2), lambda: pml_losses.TripletMarginLoss(0.2),
                None, None),
    "multi_similarity": (MultiSimilarityLoss, pml_losses.MultiSimilarityLoss, None, None),
    "contrastive_ms_miner": (ContrastiveLoss, pml_losses.ContrastiveLoss,
                             lambda: MultiSimilarityMiner(0.1),
                             lambda: pml_miners.MultiSimilarityMiner(0.1)),
    "triplet_semihard_miner": (
        lambda: TripletMarginLoss(0.2), lambda: pml_losses.TripletMarginLoss(0.2),
        lambda: TripletMarginMiner(0.2, type_of_triplets="semihard"),
        lambda: pml_miners.TripletMarginMiner(0.2, type_of_triplets="semihard")),
}


def _batches(n_batches, batch_size, dim, dtype, device, n_classes=4, seed=0):
    gen = torch.Generator().manual_seed(seed)
    for _ in range(n_batches):
        emb = torch.randn(batch_size, dim, generator=gen, dtype=dtype)
        labels = torch.randint(0, n_classes, (batch_size,), generator=gen)
        yield emb.to(device), labels.to(device)


def _loss_and_grad(loss, emb, labels, **kwargs):
    emb = emb.clone().requires_grad_(True)
    value = loss(emb, labels, **kwargs)
    value.backward()
    return value.detach(), emb.grad


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", sorted(XBM_CASES))
def test_cross_batch_memory_matches_pml_over_successive_batches(name, dtype, device):
    ours_loss, pml_loss, ours_miner, pml_miner = XBM_CASES[name]
    ours = CrossBatchMemory(ours_loss(), 6, memory_size=20,
                            miner=ours_miner and ours_miner()).to(device)
    ref = pml_losses.CrossBatchMemory(pml_loss(), 6, memory_size=20,
                                      miner=pml_miner and pml_miner()).to(device)
    tol = {"rtol": 1e-4, "atol": 1e-5} if dtype == torch.float32 else {"rtol": 1e-9,
                                                                        "atol": 1e-10}
    # 7 batches of 8 in a memory of 20: partial filling, wrap-around mid-batch, then steady.
    for emb, labels in _batches(7, 8, 6, dtype, device):
        value, grad = _loss_and_grad(ours, emb, labels)
        ref_value, ref_grad = _loss_and_grad(ref, emb, labels)
        torch.testing.assert_close(value, ref_value, **tol)
        torch.testing.assert_close(grad, ref_grad, **tol)
        assert (ours.queue_idx, ours.has_been_filled) == (ref.queue_idx, ref.has_been_filled)
        torch.testing.assert_close(ours.embedding_memory, ref.embedding_memory, rtol=0, atol=0)
        assert torch.equal(ours.label_memory, ref.label_memory)
    assert ours.has_been_filled


def test_cross_batch_memory_extra_batch_tuples_and_enqueue_mask_match_pml():
    # Our extra tuples index the batch; PML's name memory slots: give PML the mapped ones.
    ours = CrossBatchMemory(ContrastiveLoss(), 5, memory_size=12)
    ref = pml_losses.CrossBatchMemory(pml_losses.ContrastiveLoss(), 5, memory_size=12)
    for emb, labels in _batches(4, 6, 5, torch.float64, "cpu", n_classes=3, seed=1):
        slots = (torch.arange(6) + ours.queue_idx) % 12
        a, p, n = TripletMarginMiner(1.0)(emb, labels)
        value, grad = _loss_and_grad(ours, emb, labels, indices_tuple=(a, p, n))
        ref_value, ref_grad = _loss_and_grad(ref, emb, labels,
                                             indices_tuple=(a, slots[p], slots[n]))
        torch.testing.assert_close(value, ref_value)
        torch.testing.assert_close(grad, ref_grad)
    ours = CrossBatchMemory(TripletMarginLoss(0.3), 5, memory_size=12)
    ref = pml_losses.CrossBatchMemory(pml_losses.TripletMarginLoss(0.3), 5, memory_size=12)
    for emb, labels in _batches(4, 6, 5, torch.float64, "cpu", n_classes=3, seed=2):
        mask = torch.tensor([True, False] * 3)
        value, grad = _loss_and_grad(ours, emb, labels, enqueue_mask=mask)
        ref_value, ref_grad = _loss_and_grad(ref, emb, labels, enqueue_mask=mask)
        torch.testing.assert_close(value, ref_value)
        torch.testing.assert_close(grad, ref_grad)
        assert ours.queue_idx == ref.queue_idx
    torch.testing.assert_close(ours.embedding_memory, ref.embedding_memory, rtol=0, atol=0)


def test_cross_batch_memory_as_large_as_the_batch_matches_pml():
    ours = CrossBatchMemory(ContrastiveLoss(), 3, memory_size=6)
    ref = pml_losses.CrossBatchMemory(pml_losses.ContrastiveLoss(), 3, memory_size=6)
    for emb, labels in _batches(2, 6, 3, torch.float64, "cpu", n_classes=2, seed=3):
        torch.testing.assert_close(ours(emb, labels), ref(emb, labels))
        assert ours.has_been_filled and ref.has_been_filled and ours.queue_idx == 0


def test_cross_batch_memory_never_pairs_a_sample_with_its_own_copy():
    # Two identical samples of one class: the only positives are each other, so the
    # contrastive loss is exactly their pair's; with a self-pair it would be halved.
    xbm = CrossBatchMemory(ContrastiveLoss(pos_margin=0.0, neg_margin=0.0), 2, memory_size=4)
    emb = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    loss = xbm(emb, torch.tensor([0, 0]))
    torch.testing.assert_close(loss, torch.tensor(2.0).sqrt())


def test_cross_batch_memory_eval_mode_leaves_the_memory_unchanged():
    xbm = CrossBatchMemory(ContrastiveLoss(), 3, memory_size=10)
    first = next(_batches(1, 4, 3, torch.float32, "cpu"))
    xbm(*first)
    state = {k: v.clone() for k, v in xbm.state_dict().items() if torch.is_tensor(v)}
    second = next(_batches(1, 4, 3, torch.float32, "cpu", seed=5))
    eval_value = xbm.eval()(*second)
    assert xbm.queue_idx == 4
    for key, value in state.items():
        assert torch.equal(xbm.state_dict()[key], value)
    train_value = xbm.train()(*second)
    torch.testing.assert_close(eval_value, train_value)  # the same loss, but now stored
    assert xbm.queue_idx == 8


def test_cross_batch_memory_state_dict_round_trip_keeps_the_queue():
    xbm = CrossBatchMemory("contrastive", 3, memory_size=5)
    for emb, labels in _batches(3, 4, 3, torch.float32, "cpu"):
        xbm(emb, labels)
    buffer = io.BytesIO()
    torch.save(xbm.state_dict(), buffer)
    buffer.seek(0)
    fresh = CrossBatchMemory("contrastive", 3, memory_size=5)
    fresh.load_state_dict(torch.load(buffer, weights_only=False))
    assert (fresh.queue_idx, fresh.has_been_filled) == (xbm.queue_idx, xbm.has_been_filled)
    assert torch.equal(fresh.embedding_memory, xbm.embedding_memory)


def test_cross_batch_memory_rejects_bad_use_with_clear_errors():
    with pytest.raises(ValueError, match="pair-based loss"):
        CrossBatchMemory(ArcFaceLoss(3, 4), 4)
    with pytest.raises(ValueError, match="memory_size"):
        CrossBatchMemory(ContrastiveLoss(), 4, memory_size=0)
    xbm = CrossBatchMemory(ContrastiveLoss(), 4, memory_size=3)
    with pytest.raises(ValueError, match="memory_size >= batch_size"):
        xbm(torch.randn(4, 4), torch.arange(4))
    with pytest.raises(ValueError, match="embedding_size=4"):
        xbm(torch.randn(2, 5), torch.arange(2))
    with pytest.raises(ValueError, match="mutually exclusive"):
        xbm(torch.randn(2, 4), torch.arange(2), indices_tuple=(torch.tensor([0]),) * 3,
            enqueue_mask=torch.tensor([True, False]))
    with pytest.raises(ValueError, match="ref_emb"):
        xbm(torch.randn(2, 4), torch.arange(2), ref_emb=torch.randn(2, 4))


def test_metric_embedder_trains_with_cross_batch_memory():
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(4, 10)) * 3
    y = np.repeat(np.arange(4), 40)
    X = (centers[y] + rng.normal(size=(160, 10))).astype(np.float32)
    xbm = CrossBatchMemory(ContrastiveLoss(), embedding_size=8, memory_size=64,
                           miner=MultiSimilarityMiner(0.1))
    emb = MetricEmbedder(loss=xbm, miner=None, embedding_dim=8, batch_size=32,
                         max_epochs=5, lr=1e-2, random_state=0, verbose=0).fit(X, y)
    assert isinstance(emb.loss_, CrossBatchMemory)
    assert emb.loss_.has_been_filled and xbm.queue_idx == 0  # the user's object is untouched
    assert emb.score(X, y) >= 0.95
    losses = emb.history[:, "train_loss"]
    assert losses[-1] < losses[0]


# ---------------------------------------------------------------------- MultipleLosses
@pytest.mark.parametrize("as_dict", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_multiple_losses_match_pml_with_weights_and_per_loss_miners(dtype, as_dict):
    names = ["contrastive", "triplet", "ms"]
    ours = [ContrastiveLoss(0.1, 0.8), TripletMarginLoss(0.2), MultiSimilarityLoss()]
    ref = [pml_losses.ContrastiveLoss(0.1, 0.8), pml_losses.TripletMarginLoss(0.2),
           pml_losses.MultiSimilarityLoss()]
    miners = [None, TripletMarginMiner(0.2, type_of_triplets="semihard"), None]
    ref_miners = [None, pml_miners.TripletMarginMiner(0.2, type_of_triplets="semihard"), None]
    weights = [0.5, 2.0, 1.5]
    if as_dict:
        ours, ref, weights = (dict(zip(names, x, strict=True)) for x in (ours, ref, weights))
        miners, ref_miners = {"triplet": miners[1]}, {"triplet": ref_miners[1]}
    ours = MultipleLosses(ours, miners=miners, weights=weights)
    ref = pml_losses.MultipleLosses(ref, miners=ref_miners, weights=weights)
    tol = {"rtol": 1e-4, "atol": 1e-5} if dtype == torch.float32 else {}
    for emb, labels in _batches(3, 12, 5, dtype, "cpu", n_classes=3, seed=4):
        value, grad = _loss_and_grad(ours, emb, labels)
        ref_value, ref_grad = _loss_and_grad(ref, emb, labels)
        torch.testing.assert_close(value, ref_value, **tol)
        torch.testing.assert_close(grad, ref_grad, **tol)
    # Without miners, an indices_tuple goes to every loss.
    ours = MultipleLosses([ContrastiveLoss(), TripletMarginLoss(0.1)], weights=[1.0, 3.0])
    ref = pml_losses.MultipleLosses([pml_losses.ContrastiveLoss(),
                                     pml_losses.TripletMarginLoss(0.1)], weights=[1.0, 3.0])
    emb, labels = next(_batches(1, 12, 5, dtype, "cpu", n_classes=3, seed=6))
    tuples = TripletMarginMiner(0.5)(emb, labels)
    torch.testing.assert_close(_loss_and_grad(ours, emb, labels, indices_tuple=tuples),
                               _loss_and_grad(ref, emb, labels, indices_tuple=tuples), **tol)


def test_multiple_losses_accept_names_and_refuse_mismatched_arguments():
    loss = MultipleLosses(["contrastive", "triplet"],
                          miners=["semihard", None])
    assert isinstance(loss.losses[1], TripletMarginLoss) and not loss.requires_classes
    assert MultipleLosses([ContrastiveLoss(), ArcFaceLoss(3, 4)]).requires_classes
    with pytest.raises(ValueError, match="one entry per loss"):
        MultipleLosses([ContrastiveLoss()], weights=[1.0, 2.0])
    with pytest.raises(ValueError, match="the keys of losses"):
        MultipleLosses({"a": ContrastiveLoss()}, weights={"b": 1.0})
    with pytest.raises(ValueError, match="finite"):
        MultipleLosses([ContrastiveLoss()], weights=[float("nan")])
    with pytest.raises(TypeError, match="non-empty list or dict"):
        MultipleLosses(ContrastiveLoss())
    with pytest.raises(ValueError, match="indices_tuple must be None"):
        loss(torch.randn(4, 3), torch.tensor([0, 0, 1, 1]),
             indices_tuple=(torch.tensor([0]),) * 3)


# ------------------------------------------------------------------ SelfSupervisedLoss
@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("name", ["contrastive", "triplet", "multi_similarity"])
def test_self_supervised_loss_matches_pml(name, symmetric):
    ours_loss, pml_loss, _, _ = XBM_CASES[name]
    ours = SelfSupervisedLoss(ours_loss(), symmetric=symmetric)
    ref = pml_losses.SelfSupervisedLoss(pml_loss(), symmetric=symmetric)
    gen = torch.Generator().manual_seed(7)
    view1 = torch.randn(10, 6, generator=gen, dtype=torch.float64)
    view2 = view1 + 0.3 * torch.randn(10, 6, generator=gen, dtype=torch.float64)
    grads = []
    for loss in (ours, ref):
        v1, v2 = view1.clone().requires_grad_(), view2.clone().requires_grad_()
        value = loss(v1, v2)
        value.backward()
        grads.append((value.detach(), v1.grad, v2.grad))
    torch.testing.assert_close(grads[0], grads[1])
    with pytest.raises(ValueError, match="same shape"):
        ours(view1, view2[:5])
