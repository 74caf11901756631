"""Classification-based (proxy) losses: agreement with pytorch-metric-learning given the same
weights, the decision-boundary formulas on hand-built vectors, gradients, bad input."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pml_losses = pytest.importorskip("pytorch_metric_learning.losses")

from skmetric.deep.losses import (  # noqa: E402
    LOSSES,
    ArcFaceLoss,
    ClassCircleLoss,
    CosFaceLoss,
    L2SoftmaxLoss,
    LargeMarginSoftmaxLoss,
    NormFaceLoss,
    ProxyAnchorLoss,
    ProxyNCALoss,
    SoftTripleLoss,
    SphereFaceLoss,
    SubCenterArcFaceLoss,
    get_loss,
)

C, D = 6, 16


def _batch(n=48, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    emb = torch.randn(n, D, generator=g, dtype=dtype)
    labels = torch.randint(0, C, (n,), generator=g)
    return emb, labels


# ours, PML's class and kwargs, the name of the weight attribute on each side
PML_PAIRS = [
    (NormFaceLoss(C, D, scale=20.0), "NormalizedSoftmaxLoss", dict(temperature=0.05), "W", "W"),
    # PML has no annealing of the L-Softmax margin: compare with lambda_start=0.
    (LargeMarginSoftmaxLoss(C, D, margin=4, scale=1.0, lambda_start=0), "LargeMarginSoftmaxLoss",
     dict(margin=4, scale=1), "W", "W"),
    (LargeMarginSoftmaxLoss(C, D, margin=3, scale=2.0, lambda_start=0), "LargeMarginSoftmaxLoss",
     dict(margin=3, scale=2), "W", "W"),
    (SphereFaceLoss(C, D, margin=4, scale=1.0, lambda_start=0), "SphereFaceLoss",
     dict(margin=4, scale=1), "W", "W"),
    (CosFaceLoss(C, D, margin=0.35, scale=64.0), "CosFaceLoss", dict(margin=0.35, scale=64),
     "W", "W"),
    (ArcFaceLoss(C, D, margin=0.5, scale=64.0), "ArcFaceLoss",
     dict(margin=math.degrees(0.5), scale=64), "W", "W"),
    (ArcFaceLoss(C, D, margin=1.2, scale=30.0), "ArcFaceLoss",
     dict(margin=math.degrees(1.2), scale=30), "W", "W"),
    (SubCenterArcFaceLoss(C, D, margin=0.5, scale=64.0, sub_centers=3),
     "SubCenterArcFaceLoss", dict(margin=math.degrees(0.5), scale=64, sub_centers=3), "W", "W"),
    (ProxyNCALoss(C, D, softmax_scale=1.0), "ProxyNCALoss", dict(softmax_scale=1), "proxies",
     "proxies"),
    (ProxyNCALoss(C, D, softmax_scale=5.0), "ProxyNCALoss", dict(softmax_scale=5), "proxies",
     "proxies"),
    (ProxyAnchorLoss(C, D, margin=0.1, alpha=32.0), "ProxyAnchorLoss",
     dict(margin=0.1, alpha=32), "proxies", "proxies"),
    (SoftTripleLoss(C, D, centers_per_class=4, la=20.0, gamma=0.1, margin=0.01),
     "SoftTripleLoss", dict(centers_per_class=4, la=20, gamma=0.1, margin=0.01), "centers", "fc"),
]


def _pml_twin(ours, pml_name, kwargs, our_attr, pml_attr):
    pml = getattr(pml_losses, pml_name)(num_classes=C, embedding_size=D, **kwargs)
    getattr(pml, pml_attr).data = getattr(ours, our_attr).data.clone().double()
    return pml


@pytest.mark.parametrize("ours, pml_name, kwargs, our_attr, pml_attr", PML_PAIRS,
                         ids=[f"{p[1]}-{i}" for i, p in enumerate(PML_PAIRS)])
@pytest.mark.parametrize("seed", [0, 1])
def test_equal_to_pytorch_metric_learning_given_the_same_weights(ours, pml_name, kwargs,
                                                                 our_attr, pml_attr, seed):
    emb, labels = _batch(seed=seed)
    pml = _pml_twin(ours, pml_name, kwargs, our_attr, pml_attr)
    emb_ours = emb.clone().requires_grad_(True)
    emb_pml = emb.clone().requires_grad_(True)
    ours_value, pml_value = ours(emb_ours, labels), pml(emb_pml, labels)
    torch.testing.assert_close(ours_value, pml_value, rtol=1e-5, atol=1e-7)
    ours_value.backward()
    pml_value.backward()
    torch.testing.assert_close(emb_ours.grad, emb_pml.grad, rtol=1e-5, atol=1e-7)
    if pml_name != "ProxyAnchorLoss":  # PML weights miner tuples differently there
        a = torch.tensor([0, 0, 1, 2, 3, 3, 3])
        tuples = (a, a + 10, a + 20)  # sample 3 thrice: weights 1/3, 2/3 and 1
        torch.testing.assert_close(ours(emb, labels, tuples), pml(emb, labels, tuples),
                                   rtol=1e-5, atol=1e-7)


def _two_class_setup(theta1, theta2, norm=3.0):
    """x in 2-D at angle theta1 from w1 = e_x; w2 at angle theta1 + theta2 from w1, so x
    is theta2 away from w2 (both on the same side)."""
    x = norm * torch.tensor([[math.cos(theta1), math.sin(theta1)]], dtype=torch.float64)
    w2 = torch.tensor([math.cos(theta1 + theta2), math.sin(theta1 + theta2)],
                      dtype=torch.float64)
    W = torch.stack([torch.tensor([1.0, 0.0], dtype=torch.float64), w2], dim=1)
    return x, W


@pytest.mark.parametrize("theta1, theta2", [(0.2, 0.5), (0.5, 0.3), (1.0, 1.5)])
def test_decision_boundaries_follow_the_papers_formulas(theta1, theta2):
    x, W = _two_class_setup(theta1, theta2)
    y = torch.tensor([0])
    norm = float(torch.linalg.vector_norm(x))
    cases = [
        # SphereFace: ||x|| (cos(m θ1) - cos θ2), for θ1 in [0, π/m]
        (SphereFaceLoss(2, 2, margin=2, scale=1.0, lambda_start=0),
         norm * (math.cos(2 * theta1) - math.cos(theta2)) if theta1 <= math.pi / 2 else None),
        # CosFace: s (cos θ1 - m - cos θ2)
        (CosFaceLoss(2, 2, margin=0.35, scale=30.0),
         30.0 * (math.cos(theta1) - 0.35 - math.cos(theta2))),
        # ArcFace: s (cos(θ1 + m) - cos θ2)
        (ArcFaceLoss(2, 2, margin=0.5, scale=30.0),
         30.0 * (math.cos(theta1 + 0.5) - math.cos(theta2))),
    ]
    for loss, expected in cases:
        if expected is None:
            continue
        loss.W.data = W.clone()
        logits = loss.margin_logits(x, y)[0]
        assert float(logits[0] - logits[1]) == pytest.approx(expected, rel=1e-9, abs=1e-9)
        # Without a margin the logits are the plain scaled cosines.
        plain = loss.logits(x)[0]
        assert float(plain[1]) == pytest.approx(float(logits[1]))


def test_large_margin_psi_is_monotone_and_reduces_to_softmax_at_margin_one():
    from skmetric.deep.losses.large_margin_softmax import psi

    theta = torch.linspace(0, math.pi, 2001, dtype=torch.float64)
    values = psi(torch.cos(theta), 4)
    assert torch.all(values[1:] <= values[:-1] + 1e-12)
    torch.testing.assert_close(psi(torch.cos(theta), 1), torch.cos(theta))
    emb, labels = _batch()
    lsm = LargeMarginSoftmaxLoss(C, D, margin=1, scale=1.0)
    plain = torch.nn.functional.cross_entropy(emb @ lsm.W.double(), labels)
    torch.testing.assert_close(lsm(emb, labels), plain)


def test_large_margin_annealing_follows_the_schedule_and_lets_the_network_train():
    loss = SphereFaceLoss(C, D, margin=4, lambda_start=1000.0, lambda_min=5.0,
                          lambda_decay=0.12)
    emb, labels = _batch()
    assert loss.current_lambda() == 1000.0
    for _ in range(10):
        loss(emb, labels)
    assert loss.current_lambda() == pytest.approx(1000.0 / (1 + 0.12 * 10))
    loss.eval()
    loss(emb, labels)  # evaluation does not advance the schedule
    assert int(loss.n_steps) == 10
    loss.n_steps.fill_(10**6)
    assert loss.current_lambda() == 5.0

    pytest.importorskip("skorch")
    from sklearn.datasets import load_digits

    from skmetric.deep import MetricEmbedder

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    common = dict(loss="sphereface", loss__margin=4, miner=None, max_epochs=8, lr=1e-2,
                  normalize=False, samples_per_class=None, batch_size=64, random_state=0)
    annealed = MetricEmbedder(**common).fit(X, y)
    assert np.mean(annealed.predict(X) == y) > 0.9
    # Without annealing the features shrink to zero norm and the loss stalls at log(C):
    # fit stops with the collapse error instead of returning zero embeddings.
    plain = MetricEmbedder(**common, loss__lambda_start=0.0)
    with pytest.raises(ValueError, match="collapsed"):
        plain.fit(X, y)
    assert plain.history[-1]["train_loss"] == pytest.approx(np.log(10), abs=0.05)


TRAINING_SETTINGS = {
    "l2_softmax": {}, "normface": {}, "proxy_anchor": {}, "soft_triple": {},
    "large_margin_softmax": {"normalize": False, "loss__margin": 2},
    "sphereface": {"normalize": False, "loss__margin": 2},
    "cosface": {"loss__scale": 16.0}, "arcface": {"loss__scale": 16.0, "loss__margin": 0.3},
    "subcenter_arcface": {"loss__scale": 16.0, "loss__margin": 0.3},
    "proxy_nca": {"loss__softmax_scale": 8.0}, "class_circle": {"loss__gamma": 32.0},
}


@pytest.mark.parametrize("name", sorted(TRAINING_SETTINGS))
def test_metric_embedder_trains_each_proxy_loss_for_closed_and_open_set_use(name):
    pytest.importorskip("skorch")
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    from skmetric.deep import MetricEmbedder

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
    params = dict(loss=name, miner=None, max_epochs=8, lr=1e-2, samples_per_class=None,
                  batch_size=64, random_state=0, **TRAINING_SETTINGS[name])
    closed = MetricEmbedder(**params).fit(Xtr, ytr)
    assert np.mean(closed.predict(Xte) == yte) > 0.9  # the training classes, via logits
    seen = ytr < 7
    open_set = MetricEmbedder(**params).fit(Xtr[seen], ytr[seen])
    unseen = yte >= 7
    assert open_set.score(Xte[unseen], yte[unseen]) > 0.75  # chance is 1/3


def test_proxy_anchor_weights_mined_samples_inside_its_sums():
    emb, labels = _batch(n=12, seed=4)
    loss = ProxyAnchorLoss(C, D, margin=0.1, alpha=4.0).double()
    a = torch.tensor([0, 0, 1, 2])
    tuples = (a, a + 4, a + 8)  # samples 0, 4, 8 twice (weight 1); 1, 2, 5, 6, 9, 10 once
    x = torch.nn.functional.normalize(emb, dim=1).numpy()
    p = torch.nn.functional.normalize(loss.proxies.detach(), dim=1).numpy()
    cos = x @ p.T
    w = np.zeros(12)
    w[[0, 4, 8]] = 1.0
    w[[1, 2, 5, 6, 9, 10]] = 0.5
    y = labels.numpy()
    pos_terms, neg_terms = [], []
    for c in range(C):
        members = y == c
        if members.any():
            pos_terms.append(np.log1p(np.sum(w[members] * np.exp(-4.0 * (cos[members, c] - 0.1)))))
        neg_terms.append(np.log1p(np.sum(w[~members] * np.exp(4.0 * (cos[~members, c] + 0.1)))))
    expected = np.sum(pos_terms) / len(pos_terms) + np.sum(neg_terms) / C
    assert float(loss(emb, labels, tuples)) == pytest.approx(expected, rel=1e-10)
    # Where exp would overflow (alpha 1000: e^1100), the log-sum-exp path takes over.
    from scipy.special import logsumexp

    big = ProxyAnchorLoss(C, D, margin=0.1, alpha=1000.0).double()
    big.proxies.data = loss.proxies.data.clone()
    pos_terms, neg_terms = [], []
    for c in range(C):
        members = y == c
        if members.any():
            pos_terms.append(np.logaddexp(0, logsumexp(-1000.0 * (cos[members, c] - 0.1))))
        neg_terms.append(np.logaddexp(0, logsumexp(1000.0 * (cos[~members, c] + 0.1))))
    expected = np.sum(pos_terms) / len(pos_terms) + np.sum(neg_terms) / C
    assert float(big(emb, labels)) == pytest.approx(expected, rel=1e-10)


def test_l2_softmax_and_class_circle_match_hand_computation():
    emb, labels = _batch(n=10)
    l2 = L2SoftmaxLoss(C, D, scale=8.0)
    l2.b.data = torch.linspace(-1, 1, C)
    x = emb.numpy() / np.linalg.norm(emb.numpy(), axis=1, keepdims=True)
    logits = 8.0 * x @ l2.W.detach().numpy() + l2.b.detach().numpy()
    y = labels.numpy()
    expected = np.mean(np.log(np.exp(logits).sum(1)) - logits[np.arange(10), y])
    assert float(l2(emb, labels)) == pytest.approx(expected, rel=1e-10)

    circle = ClassCircleLoss(C, D, m=0.25, gamma=32.0)
    W = circle.W.detach().double().numpy()
    cos = x @ (W / np.linalg.norm(W, axis=0))
    total = 0.0
    for i in range(10):
        sp = cos[i, y[i]]
        sn = np.delete(cos[i], y[i])
        lp = -32.0 * max(1.25 - sp, 0) * (sp - 0.75)
        ln = 32.0 * np.maximum(sn + 0.25, 0) * (sn - 0.25)
        total += np.log1p(np.exp(ln).sum() * np.exp(lp))
    assert float(circle(emb, labels)) == pytest.approx(total / 10, rel=1e-6)


@pytest.mark.parametrize("name", ["l2_softmax", "normface", "large_margin_softmax",
                                  "sphereface", "cosface", "arcface", "subcenter_arcface",
                                  "proxy_nca", "proxy_anchor", "soft_triple"])
def test_gradients_pass_gradcheck_for_embeddings_and_class_weights(name):
    scale_kw = {"scale": 2.0} if name not in ("proxy_nca", "proxy_anchor", "soft_triple",
                                              "class_circle") else {}
    if name == "class_circle":
        scale_kw = {"gamma": 4.0}
    if name == "proxy_anchor":
        scale_kw = {"alpha": 4.0}
    # eval mode: the L-Softmax annealing step must not advance between evaluations
    loss = get_loss(name, num_classes=3, embedding_size=4, **scale_kw).double().eval()
    emb, labels = _batch(n=7, seed=3)
    emb = emb[:, :4].clone().requires_grad_(True)
    labels = labels % 3
    params = [p for p in loss.parameters()]
    for p in params:
        p.requires_grad_(True)

    # gradcheck through parameters: compare analytic grads of the module's own parameters.
    assert torch.autograd.gradcheck(lambda e: loss(e, labels), (emb,), eps=1e-6, atol=1e-5)
    value = loss(emb, labels)
    grads = torch.autograd.grad(value, params)
    for p, g in zip(params, grads, strict=True):
        numeric = torch.zeros_like(p)
        flat = p.data.view(-1)
        for j in range(flat.numel()):
            old = float(flat[j])
            flat[j] = old + 1e-6
            up = float(loss(emb, labels))
            flat[j] = old - 1e-6
            down = float(loss(emb, labels))
            flat[j] = old
            numeric.view(-1)[j] = (up - down) / 2e-6
        torch.testing.assert_close(g, numeric, rtol=1e-4, atol=1e-6)


def test_class_circle_gradient_treats_the_self_paced_weights_as_constants():
    # The paper stops the gradient through alpha_p and alpha_n: the analytic gradient must
    # be the finite-difference gradient of the loss with alpha frozen at the current point.
    loss = ClassCircleLoss(3, 4, m=0.25, gamma=4.0).double()
    emb, labels = _batch(n=6, seed=5)
    emb = emb[:, :4].clone().requires_grad_(True)
    labels = labels % 3
    (grad,) = torch.autograd.grad(loss(emb, labels), emb)
    W = loss.W.detach()

    def frozen(e, e_alpha):
        cos = torch.nn.functional.normalize(e, dim=1) @ torch.nn.functional.normalize(W, dim=0)
        cos_a = torch.nn.functional.normalize(e_alpha, dim=1) @ \
            torch.nn.functional.normalize(W, dim=0)
        target = torch.nn.functional.one_hot(labels, 3).bool()
        alpha = torch.where(target, 1.25 - cos_a, cos_a + 0.25).clamp_min(0)
        delta = torch.where(target, 0.75, 0.25)
        return torch.nn.functional.cross_entropy(4.0 * alpha * (cos - delta), labels)

    e0 = emb.detach()
    numeric = torch.zeros_like(e0)
    for idx in np.ndindex(*e0.shape):
        step = torch.zeros_like(e0)
        step[idx] = 1e-6
        numeric[idx] = (frozen(e0 + step, e0) - frozen(e0 - step, e0)) / 2e-6
    torch.testing.assert_close(grad, numeric, rtol=1e-5, atol=1e-8)


def test_every_proxy_loss_is_registered_and_flags_its_class_weights():
    proxy = {n for n, cls in LOSSES.items() if getattr(cls, "requires_classes", False)}
    assert proxy == {"l2_softmax", "normface", "large_margin_softmax", "sphereface", "cosface",
                     "arcface", "subcenter_arcface", "proxy_nca", "proxy_anchor",
                     "soft_triple", "class_circle", "p2sgrad"}
    assert isinstance(get_loss("AM-Softmax", num_classes=2, embedding_size=3), CosFaceLoss)
    for name in proxy:
        loss = get_loss(name, num_classes=4, embedding_size=5)
        assert sum(p.numel() for p in loss.parameters()) >= 4 * 5


@pytest.mark.parametrize("call, match", [
    (lambda: ArcFaceLoss(3, 4)(torch.randn(5, 4), torch.tensor([0, 1, 2, 3, 0])),
     r"class indices in \[0, 3\)"),
    (lambda: ArcFaceLoss(3, 4)(torch.randn(5, 6), torch.zeros(5)), "embedding_size=4"),
    (lambda: ProxyNCALoss(3, 4)(torch.randn(5, 4), torch.zeros(5), ref_emb=torch.randn(2, 4),
                                ref_labels=torch.zeros(2)), "not supported"),
    (lambda: CosFaceLoss(0, 4), "'num_classes' parameter of CosFaceLoss must be an int"),
    (lambda: ArcFaceLoss(3, 4, margin=4.0),
     r"'margin' parameter of ArcFaceLoss must be an angle in radians in \[0, pi\)"),
    (lambda: LargeMarginSoftmaxLoss(3, 4, margin=1.5),
     "'margin' parameter of LargeMarginSoftmaxLoss must be an int"),
    (lambda: SoftTripleLoss(3, 4, gamma=0),
     r"'gamma' parameter of SoftTripleLoss must be a float in the range \(0.0, inf\)"),
    (lambda: NormFaceLoss(3, 4)(torch.full((2, 4), float("nan")), torch.zeros(2)), "NaN"),
])
def test_bad_input_raises_clear_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()
