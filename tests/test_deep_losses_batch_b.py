"""Batch B losses (issue #17): agreement with pytorch-metric-learning 2.9, hand cases, errors.

Each loss is compared with PML in value and gradient (w.r.t. the embeddings) on random
batches, in float32 and float64, without a miner and with mined triplets and pairs where
the loss accepts them, and with ``ref_emb`` where PML supports it.
"""

import math

import pytest

torch = pytest.importorskip("torch")
pml_losses = pytest.importorskip("pytorch_metric_learning.losses")
pml_distances = pytest.importorskip("pytorch_metric_learning.distances")
pml_miners = pytest.importorskip("pytorch_metric_learning.miners")

from _loss_agreement import mined as _mined  # noqa: E402
from _loss_agreement import value_and_grad as _value_and_grad  # noqa: E402

from skmetric.deep.losses import (  # noqa: E402
    LOSSES,
    P2SGradLoss,
    PNPLoss,
    RankedListLoss,
    SignalToNoiseRatioContrastiveLoss,
    SmoothAPLoss,
    SupConLoss,
    ThresholdConsistentMarginLoss,
    TupletMarginLoss,
    VICRegLoss,
    get_loss,
)

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)]
DTYPES = [torch.float32, torch.float64]

# name -> (our loss, PML's loss, the miner outputs the loss accepts, supports ref_emb)
CASES = {
    "supcon": (lambda: SupConLoss(0.1), lambda: pml_losses.SupConLoss(0.1), True),
    "supcon_euclidean": (
        lambda: SupConLoss(0.5, distance="euclidean"),
        lambda: pml_losses.SupConLoss(0.5, distance=pml_distances.LpDistance()), True),
    "tuplet_margin": (lambda: TupletMarginLoss(), lambda: pml_losses.TupletMarginLoss(), True),
    "tuplet_margin_wide": (
        lambda: TupletMarginLoss(0.3, 10.0),
        lambda: pml_losses.TupletMarginLoss(math.degrees(0.3), 10.0), True),
    "snr_contrastive": (
        lambda: SignalToNoiseRatioContrastiveLoss(0.1, 0.9),
        lambda: pml_losses.SignalToNoiseRatioContrastiveLoss(pos_margin=0.1, neg_margin=0.9),
        True),
    "snr_contrastive_raw": (
        lambda: SignalToNoiseRatioContrastiveLoss(0.1, 0.9, normalize=False),
        lambda: pml_losses.SignalToNoiseRatioContrastiveLoss(
            pos_margin=0.1, neg_margin=0.9,
            distance=pml_distances.SNRDistance(normalize_embeddings=False)), True),
}
CASES["tcm"] = (lambda: ThresholdConsistentMarginLoss(),
                lambda: pml_losses.ThresholdConsistentMarginLoss(), False)
CASES["tcm_weighted"] = (
    lambda: ThresholdConsistentMarginLoss(0.5, 2.0, 0.6, 0.1),
    lambda: pml_losses.ThresholdConsistentMarginLoss(0.5, 2.0, 0.6, 0.1), False)
# Every pair loss here accepts no miner, mined triplets and mined pairs.
MINED = dict.fromkeys(["tcm", "supcon", "tuplet", "snr"], [None, "triplets", "pairs"])


def _batch(seed, dtype=torch.float64, device="cpu", n=40, dim=6, n_classes=5):
    g = torch.Generator().manual_seed(seed)
    emb = torch.randn(n, dim, generator=g, dtype=torch.float64)
    labels = torch.randint(0, n_classes, (n,), generator=g)
    return emb.to(dtype=dtype, device=device), labels.to(device)




def _tol(dtype):
    return {"rtol": 1e-5, "atol": 1e-5} if dtype == torch.float32 else {"rtol": 1e-7,
                                                                          "atol": 1e-9}


def _cases_with_miners():
    for name in CASES:
        for kind in MINED[name.split("_")[0]]:
            yield name, kind


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name, mined", list(_cases_with_miners()))
def test_value_and_gradient_match_pytorch_metric_learning(name, mined, dtype, device):
    build_ours, build_theirs, _ = CASES[name]
    ours, theirs = build_ours().to(device), build_theirs().to(device)
    for seed in range(2):
        emb, labels = _batch(seed, dtype, device)
        indices = _mined(emb, labels, mined)
        v1, g1 = _value_and_grad(ours, emb, labels, indices_tuple=indices)
        v2, g2 = _value_and_grad(theirs, emb, labels, indices_tuple=indices)
        assert v1.ndim == 0 and v1.dtype == dtype
        assert v1.item() > 0, "a random batch should have a non-zero loss"
        torch.testing.assert_close(v1, v2.reshape(()), **_tol(dtype))
        torch.testing.assert_close(g1, g2, **_tol(dtype))


@pytest.mark.parametrize("name", [n for n, c in CASES.items() if c[2]])
def test_reference_embeddings_match_pytorch_metric_learning(name):
    build_ours, build_theirs, _ = CASES[name]
    emb, labels = _batch(7, n=12)
    ref, ref_labels = _batch(8, n=30)
    v1, g1 = _value_and_grad(build_ours(), emb, labels, ref_emb=ref, ref_labels=ref_labels)
    v2, g2 = _value_and_grad(build_theirs(), emb, labels, ref_emb=ref, ref_labels=ref_labels)
    torch.testing.assert_close(v1, v2.reshape(()), **_tol(torch.float64))
    torch.testing.assert_close(g1, g2, **_tol(torch.float64))


def test_registry_names_and_pml_class_names():
    for name, cls in {"supcon": SupConLoss, "tuplet_margin": TupletMarginLoss,
                      "snr_contrastive": SignalToNoiseRatioContrastiveLoss}.items():
        assert LOSSES[name] is cls
        assert isinstance(get_loss(cls.__name__), cls)  # PML's class name works too


def test_supcon_on_a_hand_computed_batch():
    # Two classes on the unit circle: anchor 0's positive is 1, its negatives 2 and 3.
    emb = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0], [-1.0, 0.0]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 1, 1])
    sim = emb @ emb.T
    t = 0.5
    expected = []
    for i in range(4):
        others = [j for j in range(4) if j != i]
        pos = [j for j in others if labels[j] == labels[i]]
        lse = torch.logsumexp(sim[i, others] / t, 0)
        expected.append(-sum(sim[i, j] / t - lse for j in pos) / len(pos))
    loss = SupConLoss(temperature=t)(emb, labels)
    assert loss.item() == pytest.approx(torch.stack(expected).mean().item())


def test_tuplet_margin_on_a_hand_computed_pair():
    # One positive pair (0, 1) at 60 degrees and one negative (0, 2) at 90 degrees.
    emb = torch.tensor([[1.0, 0.0], [0.5, math.sqrt(3) / 2], [0.0, 1.0]], dtype=torch.float64)
    indices = (torch.tensor([0]), torch.tensor([1]), torch.tensor([0]), torch.tensor([2]))
    m, s = 0.2, 3.0
    expected = math.log1p(math.exp(s * (0.0 - math.cos(math.pi / 3 - m))))
    loss = TupletMarginLoss(m, s)(emb, torch.tensor([0, 0, 1]), indices_tuple=indices)
    assert loss.item() == pytest.approx(expected)
    # A negative pair repeated in a miner's output counts twice, as in PML.
    twice = (indices[0], indices[1], torch.tensor([0, 0]), torch.tensor([2, 2]))
    expected = math.log1p(2 * math.exp(s * (0.0 - math.cos(math.pi / 3 - m))))
    loss = TupletMarginLoss(m, s)(emb, torch.tensor([0, 0, 1]), indices_tuple=twice)
    assert loss.item() == pytest.approx(expected)


def test_snr_distance_is_the_variance_ratio():
    x = torch.tensor([[1.0, 2.0, 4.0]], dtype=torch.float64)
    y = torch.tensor([[0.0, 2.0, 3.0]], dtype=torch.float64)
    loss = SignalToNoiseRatioContrastiveLoss(pos_margin=0.0, neg_margin=0.0, normalize=False)
    d = loss.dist(x, y)
    assert d.item() == pytest.approx((torch.var(x - y) / torch.var(x)).item())
    # The positive pair costs its distance (pos_margin 0); both orders count.
    labels = torch.tensor([0, 0])
    value = loss(torch.cat([x, y]), labels)
    d_yx = torch.var(y - x) / torch.var(y)
    assert value.item() == pytest.approx(((d + d_yx) / 2).item())


@pytest.mark.parametrize("cls", [SupConLoss, TupletMarginLoss])
def test_no_valid_pairs_gives_a_differentiable_zero(cls):
    emb = torch.randn(4, 3, requires_grad=True)
    loss = cls()(emb, torch.tensor([0, 1, 2, 3]))
    loss.backward()
    assert loss.item() == 0 and torch.isfinite(emb.grad).all()


def test_bad_parameters_raise_clear_errors():
    with pytest.raises(ValueError, match="temperature"):
        SupConLoss(temperature=0.0)
    with pytest.raises(ValueError, match="margin.*radians"):
        TupletMarginLoss(margin=5.73)  # degrees by mistake
    with pytest.raises(ValueError, match="cosine"):
        TupletMarginLoss(distance="euclidean")


def _square_batch(seed, dtype, device="cpu", n_classes=5):
    # PML's Smooth-AP is right only for n_classes contiguous blocks of n_classes samples.
    g = torch.Generator().manual_seed(seed)
    emb = torch.randn(n_classes * n_classes, 6, generator=g, dtype=torch.float64)
    labels = torch.arange(n_classes).repeat_interleave(n_classes)
    return emb.to(dtype=dtype, device=device), labels.to(device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mined", [None, "triplets", "pairs"])
@pytest.mark.parametrize("temperature", [0.01, 0.5])
def test_smooth_ap_matches_pytorch_metric_learning(temperature, mined, dtype, device):
    for seed in range(2):
        emb, labels = _square_batch(seed, dtype, device)
        indices = _mined(emb, labels, mined)
        v1, g1 = _value_and_grad(SmoothAPLoss(temperature), emb, labels, indices_tuple=indices)
        v2, g2 = _value_and_grad(pml_losses.SmoothAPLoss(temperature), emb, labels,
                                 indices_tuple=indices)
        assert v1.dtype == dtype and 0 < v1.item() < 1
        # PML accumulates AP in float32 whatever the input dtype.
        torch.testing.assert_close(v1, v2.to(dtype).reshape(()), **_tol(torch.float32))
        torch.testing.assert_close(g1, g2, **_tol(dtype))


def test_smooth_ap_uses_labels_not_batch_blocks():
    emb, labels = _batch(3, n=24)
    labels = torch.arange(6).repeat_interleave(4)  # 6 classes x 4: not square
    loss = SmoothAPLoss(0.1)
    value = loss(emb, labels)
    # Order-free: shuffling the batch leaves the loss unchanged.
    perm = torch.randperm(24, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(loss(emb[perm], labels[perm]), value)
    # PML 2.9 reads 6 x 4 as blocks of 6 (the number of classes): it equals our loss on
    # those blocks, not on the true classes.
    theirs = pml_losses.SmoothAPLoss(0.1)(emb, labels).item()
    assert theirs == pytest.approx(loss(emb, torch.arange(4).repeat_interleave(6)).item(),
                                   rel=1e-6)
    assert abs(theirs - value.item()) > 1e-3


def test_smooth_ap_on_a_hand_computed_batch_with_unequal_classes():
    emb, _ = _batch(4, n=7, dim=3)
    labels = torch.tensor([0, 0, 0, 1, 1, 2, 0])
    t = 0.3
    sim = torch.nn.functional.normalize(emb, dim=1) @ torch.nn.functional.normalize(emb, dim=1).T
    aps = []
    for a in range(7):
        pos = [k for k in range(7) if labels[k] == labels[a]]  # the anchor itself included
        terms = []
        for k in pos:
            def rank(cands, a=a, k=k):
                return 1 + sum(torch.sigmoid((sim[a, j] - sim[a, k]) / t) for j in cands if j != k)
            terms.append(rank(pos) / rank(range(7)))
        aps.append(sum(terms) / len(pos))
    expected = 1 - torch.stack(aps).mean()
    assert SmoothAPLoss(t)(emb, labels).item() == pytest.approx(expected.item())


RANKED_LIST_PARAMS = [dict(margin=0.4, Tn=10.0), dict(margin=0.4, Tn=3.0, Tp=2.0, imbalance=0.3),
                      dict(margin=0.5, Tn=1.0, alpha=1.2)]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("distance", ["euclidean", "sqeuclidean"])
@pytest.mark.parametrize("params", RANKED_LIST_PARAMS)
@pytest.mark.filterwarnings("ignore:Tp or Tn")
def test_ranked_list_matches_pytorch_metric_learning(params, distance, dtype, device):
    pml_dist = (pml_distances.LpDistance() if distance == "euclidean"
                else pml_distances.LpDistance(power=2))
    for seed in range(2):
        emb, labels = _batch(seed, dtype, device)
        v1, g1 = _value_and_grad(RankedListLoss(**params, distance=distance), emb, labels)
        v2, g2 = _value_and_grad(pml_losses.RankedListLoss(**params, distance=pml_dist),
                                 emb, labels)
        assert v1.item() > 0
        torch.testing.assert_close(v1, v2.reshape(()), **_tol(dtype))
        torch.testing.assert_close(g1, g2, **_tol(dtype))


def test_ranked_list_on_a_hand_computed_batch():
    emb = torch.tensor([[0.0], [1.0], [0.5], [3.0]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 1, 1])
    # margin 1, alpha 1.5 (default 1 + margin/2), boundary 0.5; Tn = Tp = 0.
    loss = RankedListLoss(margin=1.0, Tn=0.0, normalize=False)(emb, labels)
    n = 4
    # Anchor 0: positive d=1 (> 0.5, violation 0.5); negative d=0.5 (< 1.5, 1.0).
    # Anchor 1: positive 0.5; negative d=0.5 (1.0). Anchor 2: positive d=2.5 (2.0);
    # negatives 0.5 and 0.5 (1.0 each). Anchor 3: positive 2.0; no negative within 1.5.
    lp = [0.5 / (1 + 1e-5 * n), 0.5 / (1 + 1e-5 * n), 2.0 / (1 + 1e-5 * n),
          2.0 / (1 + 1e-5 * n)]
    ln = [1.0 / (1 + 1e-5 * n), 1.0 / (1 + 1e-5 * n), 2.0 / (2 + 1e-5 * n), 0.0]
    expected = sum(0.5 * a + 0.5 * b for a, b in zip(lp, ln, strict=True)) / n
    assert loss.item() == pytest.approx(expected)
    # Pairs at distance 0 (a duplicated sample, here in the other class) are left out.
    dup = torch.cat([emb, emb[:1]])
    dup_labels = torch.tensor([0, 0, 1, 1, 1])
    v1, g1 = _value_and_grad(RankedListLoss(1.0, 2.0, normalize=False), dup, dup_labels)
    v2, g2 = _value_and_grad(pml_losses.RankedListLoss(
        1.0, 2.0, distance=pml_distances.LpDistance(normalize_embeddings=False)), dup, dup_labels)
    torch.testing.assert_close(v1, v2.reshape(()))
    torch.testing.assert_close(g1, g2)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("variant", ["O", "Ds", "Dq", "Iu", "Ib"])
@pytest.mark.parametrize("params", [{}, dict(anneal=0.5, b=3.0, alpha=2.0)])
def test_pnp_matches_pytorch_metric_learning(params, variant, dtype, device):
    for seed in range(2):
        emb, labels = _batch(seed, dtype, device, n=30)
        v1, g1 = _value_and_grad(PNPLoss(variant=variant, **params), emb, labels)
        v2, g2 = _value_and_grad(pml_losses.PNPLoss(variant=variant, **params), emb, labels)
        assert v1.item() != 0
        torch.testing.assert_close(v1, v2.reshape(()), **_tol(dtype))
        torch.testing.assert_close(g1, g2, **_tol(dtype))


def test_pnp_counts_negatives_ranked_above_each_positive():
    # Query 0's positive 1 is at cos 0.6, its negative 2 at cos 0.8 (ranked above), and
    # negative 3 at cos -1; with a tiny anneal R is the count of negatives above.
    emb = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.8, 0.6], [-1.0, 0.0]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 1, 1])
    sim = emb @ emb.T
    ranks = {(a, k): sum(float(sim[a, n] > sim[a, k]) for n in range(4) if labels[n] != labels[a])
             for a in range(4) for k in range(4) if labels[k] == labels[a]}
    expected = sum(sum(ranks[a, k] for k in range(4) if (a, k) in ranks) / 2
                   for a in range(4)) / 4
    assert PNPLoss(anneal=1e-4)(emb, labels).item() == pytest.approx(expected, abs=1e-6)
    assert expected > 0


@pytest.mark.parametrize("loss", [PNPLoss(), RankedListLoss(0.4, 1.0), SmoothAPLoss()])
def test_whole_batch_losses_reject_miners_or_reference_embeddings(loss):
    emb, labels = _batch(0, n=8)
    with pytest.raises(ValueError, match="not supported"):
        loss(emb, labels, ref_emb=emb, ref_labels=labels)
    if not isinstance(loss, SmoothAPLoss):  # Smooth-AP takes miner weights, as in PML
        with pytest.raises(ValueError, match="miner"):
            loss(emb, labels, indices_tuple=(torch.tensor([0]),) * 3)


def test_tcm_on_a_hand_computed_batch_and_with_reference_embeddings():
    emb = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.8, 0.6], [0.0, 1.0]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 1, 1])
    sim = emb @ emb.T
    # Positives (both orders): (0,1) 0.6 and (2,3) 0.6: both <= 0.9 -> 0.3 each.
    # Negatives >= 0.5: (0,2) 0.8, (1,2) 0.96, (1,3) 0.8 (both orders); (0,3) 0 is not.
    neg = torch.tensor([0.8, 0.96, 0.8]) - 0.5
    expected = 0.3 + neg.mean().item()
    loss = ThresholdConsistentMarginLoss()(emb, labels)
    assert loss.item() == pytest.approx(expected)
    assert sim[1, 2].item() == pytest.approx(0.96)
    # With ref_emb, pairs come from the references (PML 2.9 indexes the batch instead).
    value = ThresholdConsistentMarginLoss()(emb[:2], labels[:2], ref_emb=emb[2:],
                                            ref_labels=labels[2:])
    # No positives; negatives (0,2) 0.8, (1,2) 0.96, (1,3) 0.8 over 0.5.
    assert value.item() == pytest.approx(neg.mean().item())


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_p2sgrad_matches_pytorch_metric_learning_with_its_weights(dtype, device):
    torch.manual_seed(0)
    theirs = pml_losses.P2SGradLoss(descriptors_dim=6, num_classes=5).to(device)
    ours = P2SGradLoss(num_classes=5, embedding_size=6).to(device)
    assert ours.W.shape == theirs.weight.shape
    torch.testing.assert_close(ours.W.norm(dim=0), torch.ones(5, device=device))
    with torch.no_grad():
        ours.W.copy_(theirs.weight)
    for seed in range(2):
        emb, labels = _batch(seed, dtype, device)
        ours.zero_grad()
        theirs.zero_grad()
        v1, g1 = _value_and_grad(ours, emb, labels)
        v2, g2 = _value_and_grad(theirs, emb, labels)
        torch.testing.assert_close(v1, v2.reshape(()), **_tol(dtype))
        torch.testing.assert_close(g1, g2, **_tol(dtype))
        # PML renormalises its float32 weights before casting them: float32 agreement.
        torch.testing.assert_close(ours.W.grad, theirs.weight.grad, **_tol(torch.float32))


def test_p2sgrad_is_the_mse_to_one_hot_cosines():
    loss = P2SGradLoss(num_classes=2, embedding_size=2)
    with torch.no_grad():
        loss.W.copy_(torch.tensor([[2.0, 0.0], [0.0, 1.0]]))  # renormalised at the call
    emb = torch.tensor([[3.0, 4.0], [1.0, 0.0]])
    # cosines: sample 0 (label 1) -> (0.6, 0.8); sample 1 (label 0) -> (1, 0).
    expected = ((0.6 - 0) ** 2 + (0.8 - 1) ** 2 + 0 + 0) / 4
    assert loss(emb, torch.tensor([1, 0])).item() == pytest.approx(expected)
    with pytest.raises(ValueError, match="miner"):
        loss(emb, torch.tensor([1, 0]), indices_tuple=(torch.tensor([0]),) * 3)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("params", [{}, dict(invariance_lambda=2.0, variance_mu=3.0,
                                             covariance_v=0.5, eps=1e-3)])
def test_vicreg_matches_pytorch_metric_learning(params, dtype, device):
    for seed in range(2):
        z1, _ = _batch(seed, dtype, device, n=16)
        z2 = 0.5 * z1 + 0.3 * _batch(seed + 50, dtype, device, n=16)[0]
        grads = []
        values = []
        for loss in (VICRegLoss(**params), pml_losses.VICRegLoss(**params)):
            a, b = z1.clone().requires_grad_(True), z2.clone().requires_grad_(True)
            value = loss(a, ref_emb=b)
            value.backward()
            values.append(value.detach().reshape(()))
            grads.append((a.grad, b.grad))
        torch.testing.assert_close(values[0], values[1], **_tol(dtype))
        for g1, g2 in zip(grads[0], grads[1], strict=True):
            torch.testing.assert_close(g1, g2, **_tol(dtype))


def test_vicreg_terms_by_hand_and_its_usage_errors():
    z1 = torch.tensor([[0.0, 0.0], [2.0, 2.0]], dtype=torch.float64)
    z2 = torch.tensor([[0.0, 1.0], [2.0, 1.0]], dtype=torch.float64)
    # invariance mean((z1 - z2)^2) = 0.5; std of z1's columns sqrt(2 + eps) > 1: no
    # variance term; z2: column 0 std sqrt(2), column 1 std sqrt(eps) -> (1 - 0.01) / 2 / 2.
    # covariance: z1 cov [[2, 2], [2, 2]] -> 2 * 4 / 2 = 4; z2 cov off-diagonal 0.
    expected = 25 * 0.5 + 25 * (1 - 0.01) / 4 + 4.0
    assert VICRegLoss()(z1, ref_emb=z2).item() == pytest.approx(expected)
    with pytest.raises(TypeError, match="self-supervised.*MetricEmbedder"):
        VICRegLoss()(z1, torch.tensor([0, 1]), ref_emb=z2)
    with pytest.raises(ValueError, match="second view"):
        VICRegLoss()(z1)
    with pytest.raises(ValueError, match="same shape"):
        VICRegLoss()(z1, ref_emb=z2[:1])


def test_metric_embedder_asks_vicreg_for_its_two_views():
    # VICReg trains on two augmented views (tests/test_deep_finetune.py); without
    # train_transform there are none, which fit says before training.
    pytest.importorskip("skorch")
    from skmetric.deep import MetricEmbedder

    X = torch.randn(20, 4).numpy()
    y = [0, 1] * 10
    est = MetricEmbedder(loss="vicreg", max_epochs=1, batch_size=10, verbose=0)
    with pytest.raises(ValueError, match="train_transform"):
        est.fit(X, y)
