"""Deep metric losses: agreement with pytorch-metric-learning, hand cases, gradients, errors."""

import math

import pytest

torch = pytest.importorskip("torch")
pml_losses = pytest.importorskip("pytorch_metric_learning.losses")
pml_distances = pytest.importorskip("pytorch_metric_learning.distances")
pml_miners = pytest.importorskip("pytorch_metric_learning.miners")
pml_regularizers = pytest.importorskip("pytorch_metric_learning.regularizers")

from _loss_agreement import mined as _mined  # noqa: E402
from _loss_agreement import value_and_grad as _value_and_grad  # noqa: E402
from torch import nn  # noqa: E402

from skmetric.deep.losses import (  # noqa: E402
    ALIASES,
    LOSSES,
    CircleLoss,
    ContrastiveLoss,
    GeneralizedLiftedStructureLoss,
    LiftedStructureLoss,
    MarginLoss,
    MultiSimilarityLoss,
    NPairsLoss,
    TripletMarginLoss,
    get_loss,
)

# The pair-based losses of this module (the registry also holds proxy losses).
PAIR_LOSSES = {
    "contrastive": ContrastiveLoss,
    "triplet_margin": TripletMarginLoss,
    "lifted_structure": LiftedStructureLoss,
    "generalized_lifted_structure": GeneralizedLiftedStructureLoss,
    "npairs": NPairsLoss,
    "multi_similarity": MultiSimilarityLoss,
    "margin": MarginLoss,
    "circle": CircleLoss,
}

PML_DISTANCE = {
    "euclidean": lambda norm: pml_distances.LpDistance(normalize_embeddings=norm),
    "sqeuclidean": lambda norm: pml_distances.LpDistance(normalize_embeddings=norm, power=2),
    "cosine_similarity": lambda norm: pml_distances.CosineSimilarity(),
    "dot": lambda norm: pml_distances.DotProductSimilarity(normalize_embeddings=norm),
}

# (our loss, the same loss in pytorch-metric-learning), each built from (distance, normalize).
CASES = {
    "contrastive": (
        lambda d, nz: ContrastiveLoss(0.2, 0.8, distance=d, normalize=nz),
        lambda d, nz: pml_losses.ContrastiveLoss(0.2, 0.8, distance=PML_DISTANCE[d](nz)),
    ),
    "contrastive_sim": (
        lambda d, nz: ContrastiveLoss(0.9, 0.1, distance=d, normalize=nz),
        lambda d, nz: pml_losses.ContrastiveLoss(0.9, 0.1, distance=PML_DISTANCE[d](nz)),
    ),
    "triplet": (
        lambda d, nz: TripletMarginLoss(0.1, distance=d, normalize=nz),
        lambda d, nz: pml_losses.TripletMarginLoss(0.1, distance=PML_DISTANCE[d](nz)),
    ),
    "triplet_swap_smooth": (
        lambda d, nz: TripletMarginLoss(0.1, swap=True, smooth_loss=True, distance=d,
                                        normalize=nz),
        lambda d, nz: pml_losses.TripletMarginLoss(0.1, swap=True, smooth_loss=True,
                                                   distance=PML_DISTANCE[d](nz)),
    ),
    "lifted": (
        lambda d, nz: LiftedStructureLoss(1.0, 0.1, distance=d, normalize=nz),
        lambda d, nz: pml_losses.LiftedStructureLoss(1.0, 0.1, distance=PML_DISTANCE[d](nz)),
    ),
    "generalized_lifted": (
        lambda d, nz: GeneralizedLiftedStructureLoss(1.0, 0.1, distance=d, normalize=nz),
        lambda d, nz: pml_losses.GeneralizedLiftedStructureLoss(
            1.0, 0.1, distance=PML_DISTANCE[d](nz)),
    ),
    "npairs": (
        lambda d, nz: NPairsLoss(l2_reg=0.01, distance=d, normalize=nz),
        lambda d, nz: pml_losses.NPairsLoss(
            distance=PML_DISTANCE[d](nz), embedding_reg_weight=0.01,
            embedding_regularizer=pml_regularizers.LpRegularizer(power=2)),
    ),
    "multi_similarity": (
        lambda d, nz: MultiSimilarityLoss(2.0, 40.0, 0.5, distance=d, normalize=nz),
        lambda d, nz: pml_losses.MultiSimilarityLoss(2.0, 40.0, 0.5,
                                                     distance=PML_DISTANCE[d](nz)),
    ),
    "margin": (
        lambda d, nz: MarginLoss(0.2, nu=0.1, beta=1.0, learn_beta=True, distance=d,
                                 normalize=nz),
        lambda d, nz: pml_losses.MarginLoss(0.2, nu=0.1, beta=1.0, learn_beta=True,
                                            distance=PML_DISTANCE[d](nz)),
    ),
    "margin_per_class": (
        lambda d, nz: MarginLoss(0.2, nu=0.1, beta=0.8, learn_beta=True, num_classes=5,
                                 distance=d, normalize=nz),
        lambda d, nz: pml_losses.MarginLoss(0.2, nu=0.1, beta=0.8, learn_beta=True,
                                            num_classes=5, distance=PML_DISTANCE[d](nz)),
    ),
    "circle": (
        lambda d, nz: CircleLoss(0.25, 30.0),
        lambda d, nz: pml_losses.CircleLoss(0.25, 30.0),
    ),
}
# Distances each case is compared under (similarity margins need similarity-like values).
DISTANCES = {
    "contrastive": [("euclidean", True), ("sqeuclidean", False), ("euclidean", False)],
    "contrastive_sim": [("cosine_similarity", True)],
    "triplet": [("euclidean", True), ("cosine_similarity", True), ("sqeuclidean", False)],
    "triplet_swap_smooth": [("euclidean", True), ("cosine_similarity", True)],
    "lifted": [("euclidean", True), ("cosine_similarity", True)],
    "generalized_lifted": [("euclidean", True), ("dot", False)],
    "npairs": [("dot", True), ("dot", False), ("euclidean", True)],
    "multi_similarity": [("cosine_similarity", True), ("euclidean", True)],
    "margin": [("euclidean", True), ("cosine_similarity", True)],
    "margin_per_class": [("euclidean", True)],
    "circle": [("cosine_similarity", True)],
}
PARAMS = [(name, d, nz) for name, ds in DISTANCES.items() for d, nz in ds]


def _batch(seed, n=40, dim=6, n_classes=5):
    g = torch.Generator().manual_seed(seed)
    emb = torch.randn(n, dim, generator=g, dtype=torch.float64)
    labels = torch.randint(0, n_classes, (n,), generator=g)
    return emb, labels




@pytest.mark.parametrize("name, distance, normalize", PARAMS)
@pytest.mark.parametrize("mined", [None, "triplets", "pairs"])
def test_loss_value_and_gradient_match_pytorch_metric_learning(name, distance, normalize, mined):
    ours, theirs = (build(distance, normalize) for build in CASES[name])
    for seed in range(2):
        emb, labels = _batch(seed)
        if name == "margin_per_class":
            labels = labels % 5
        indices = _mined(emb, labels, mined)
        v1, g1 = _value_and_grad(ours, emb, labels, indices_tuple=indices)
        v2, g2 = _value_and_grad(theirs, emb, labels, indices_tuple=indices)
        assert v1.ndim == 0
        torch.testing.assert_close(v1, v2.reshape(()), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(g1, g2, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["contrastive", "triplet", "lifted", "generalized_lifted",
                                  "multi_similarity", "margin", "circle"])
def test_loss_with_reference_embeddings_matches_pytorch_metric_learning(name):
    distance = "cosine_similarity" if name == "circle" else "euclidean"
    ours, theirs = (build(distance, True) for build in CASES[name])
    emb, labels = _batch(7, n=12)
    ref, ref_labels = _batch(8, n=30)
    v1, g1 = _value_and_grad(ours, emb, labels, ref_emb=ref, ref_labels=ref_labels)
    v2, g2 = _value_and_grad(theirs, emb, labels, ref_emb=ref, ref_labels=ref_labels)
    torch.testing.assert_close(v1, v2.reshape(()), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(g1, g2, rtol=1e-5, atol=1e-6)


def test_learned_beta_gets_the_same_gradient_as_pytorch_metric_learning():
    emb, labels = _batch(3)
    labels = labels % 5
    ours = MarginLoss(0.2, nu=0.1, beta=0.8, learn_beta=True, num_classes=5)
    theirs = pml_losses.MarginLoss(0.2, nu=0.1, beta=0.8, learn_beta=True, num_classes=5)
    ours(emb, labels).backward()
    theirs(emb, labels).backward()
    assert isinstance(ours.betas, nn.Parameter)
    torch.testing.assert_close(ours.betas.grad, theirs.beta.grad.to(ours.betas.grad.dtype))


def _tiny():
    # Points on a line, not normalised: distances are easy to compute by hand.
    emb = torch.tensor([[0.0], [1.0], [3.0], [4.5]], dtype=torch.float64)
    return emb, torch.tensor([0, 0, 1, 1])


def test_triplet_and_contrastive_losses_on_a_hand_computed_batch():
    emb, labels = _tiny()
    # Triplets (a, p, n) with d(a,p) - d(a,n) + 1: anchor 0: 1-3+1=-1, 1-4.5+1<0;
    # anchor 1: 1-2+1=0, 1-3.5+1<0; anchor 2: 1.5-3+1=-0.5, 1.5-2+1=0.5;
    # anchor 3: 1.5-4.5+1<0, 1.5-3.5+1<0. Only one non-zero triplet: 0.5.
    loss = TripletMarginLoss(margin=1.0, normalize=False)(emb, labels)
    assert loss.item() == pytest.approx(0.5)
    # Contrastive, pos_margin 0.5, neg_margin 2.5: positives (both directions) 0.5, 0.5,
    # 1.0, 1.0 -> mean 0.75; negatives within 2.5: d(1,2) = 2 -> 0.5 twice -> mean 0.5.
    loss = ContrastiveLoss(pos_margin=0.5, neg_margin=2.5, normalize=False)(emb, labels)
    assert loss.item() == pytest.approx(0.75 + 0.5)
    # A triplet list given by hand (anchor 2, positive 3, negative 1): 1.5 - 2 + 1.
    loss = TripletMarginLoss(margin=1.0, normalize=False)(
        emb, labels, indices_tuple=(torch.tensor([2]), torch.tensor([3]), torch.tensor([1])))
    assert loss.item() == pytest.approx(0.5)


def test_lifted_and_npairs_losses_on_a_hand_computed_batch():
    emb, labels = _tiny()
    # Lifted, neg_margin 4: pair (0,1): negatives of 0 are 3, 4.5 and of 1 are 2, 3.5.
    neg = math.log(sum(math.exp(4 - d) for d in (3, 4.5, 2, 3.5)))
    j01 = neg + 1.0
    neg23 = math.log(sum(math.exp(4 - d) for d in (3, 2, 4.5, 3.5)))
    j23 = neg23 + 1.5
    expected = (j01**2 + j23**2) / 2 / 2  # each pair appears in both orders
    loss = LiftedStructureLoss(neg_margin=4.0, normalize=False)(emb, labels)
    assert loss.item() == pytest.approx(expected)
    # N-pairs with the dot product: pairs (0, 1) and (2, 3).
    logits = torch.tensor([[0.0 * 1.0, 0.0 * 4.5], [3.0 * 1.0, 3.0 * 4.5]])
    expected = nn.functional.cross_entropy(logits, torch.arange(2)).item()
    loss = NPairsLoss(normalize=False)(emb, labels)
    assert loss.item() == pytest.approx(expected)


def test_losses_return_a_differentiable_zero_without_valid_tuples():
    emb = torch.randn(4, 3, requires_grad=True)
    for name, cls in PAIR_LOSSES.items():
        loss = cls()(emb, torch.tensor([0, 1, 2, 3]))  # no positive pairs at all
        assert loss.ndim == 0, name
        loss.backward()
        assert torch.isfinite(emb.grad).all(), name


GRADCHECK = {
    "contrastive": lambda: ContrastiveLoss(0.1, 1.2),
    "triplet": lambda: TripletMarginLoss(0.3, smooth_loss=True),
    "triplet_swap": lambda: TripletMarginLoss(0.3, swap=True),
    "lifted": lambda: LiftedStructureLoss(1.0),
    "generalized_lifted": lambda: GeneralizedLiftedStructureLoss(1.0, distance="sqeuclidean"),
    "npairs": lambda: NPairsLoss(l2_reg=0.1, normalize=False),
    "multi_similarity": lambda: MultiSimilarityLoss(),
    "margin": lambda: MarginLoss(learn_beta=True, nu=0.1),
}


@pytest.mark.parametrize("name", sorted(GRADCHECK))
def test_gradient_matches_finite_differences(name):
    # CircleLoss is excluded on purpose: its pair weights are detached by definition, so
    # its gradient is not the derivative of its value.
    loss = GRADCHECK[name]()
    emb, labels = _batch(11, n=10, dim=3, n_classes=3)
    emb.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda e: loss(e, labels), (emb,), eps=1e-6, atol=1e-5)
    if name == "margin":
        beta = loss.betas.detach().double().requires_grad_(True)
        emb = emb.detach()

        def as_function_of_beta(b):
            return torch.func.functional_call(loss, {"betas": b}, (emb, labels))

        assert torch.autograd.gradcheck(as_function_of_beta, (beta,), eps=1e-6, atol=1e-5)


def test_get_loss_accepts_names_aliases_and_modules():
    assert isinstance(get_loss("triplet_margin", margin=0.3), TripletMarginLoss)
    assert get_loss("TripletMarginLoss", margin=0.3).margin == 0.3
    assert isinstance(get_loss("Multi-Similarity"), MultiSimilarityLoss)
    for alias in ("triplet", "n_pair", "lifted"):
        assert type(get_loss(alias)) is LOSSES[ALIASES[alias]]
    mine = ContrastiveLoss()
    assert get_loss(mine) is mine
    assert all(LOSSES[name] is cls and not cls.requires_classes
               for name, cls in PAIR_LOSSES.items())
    with pytest.raises(ValueError, match="Valid names.*contrastive"):
        get_loss("no_such_loss")
    with pytest.raises(ValueError, match="only be given with a loss name"):
        get_loss(mine, margin=1.0)
    with pytest.raises(TypeError, match="nn.Module"):
        get_loss(3)


def test_bad_inputs_raise_clear_errors():
    loss = TripletMarginLoss()
    emb = torch.randn(6, 3)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    with pytest.raises(ValueError, match="one label per embedding"):
        loss(emb, labels[:5])
    with pytest.raises(ValueError, match="must be 2-D"):
        loss(emb[:, 0], labels)
    with pytest.raises(ValueError, match="NaN or infinity"):
        loss(torch.full((6, 3), float("nan")), labels)
    with pytest.raises(ValueError, match="labels are required"):
        loss(emb, None)
    with pytest.raises(ValueError, match="triplets .* or pairs"):
        loss(emb, labels, indices_tuple=(torch.tensor([0]),))
    with pytest.raises(ValueError, match="outside"):
        loss(emb, labels, indices_tuple=(torch.tensor([0]), torch.tensor([9]), torch.tensor([2])))
    with pytest.raises(ValueError, match="only with distance"):
        CircleLoss(distance="euclidean")
    with pytest.raises(ValueError, match="Unknown distance"):
        ContrastiveLoss(distance="manhattan")
    with pytest.raises(ValueError, match="triplets_per_anchor"):
        TripletMarginLoss(triplets_per_anchor=0)
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        MarginLoss(num_classes=2)(emb, labels)


def test_random_triplets_per_anchor_is_seeded():
    emb, labels = _batch(5)
    a = TripletMarginLoss(0.5, triplets_per_anchor=3, random_state=0)(emb, labels)
    b = TripletMarginLoss(0.5, triplets_per_anchor=3, random_state=0)(emb, labels)
    assert a.item() == b.item() > 0
