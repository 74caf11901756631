"""Solver steps and margins pinned by small independent references.

LMNN's gradient descent (metric-learn's step rule), NCA's mini-batch Adam (checked against
``torch.optim.Adam``) and ArcFace's target logit (the paper's and insightface's formulas).
"""

import math

import numpy as np
import pytest
from sklearn.datasets import load_iris, make_blobs

from skmetric import LMNN, NCA
from skmetric.supervised._lmnn import _lmnn_objective, _select_target_neighbors
from skmetric.supervised._nca import _nca_loss_grad


def _lmnn_gd_reference(L, X, y, targets, regularization, learn_rate, n_steps, shrink=2.0,
                       grow=1.01):
    """metric-learn's rule: try ``L - lr grad``; while the objective rises, halve lr and
    retry; after an accepted step, raise lr by 1%. Returns L, the objective and the number
    of halvings."""
    objective, grad, _ = _lmnn_objective(L, X, y, targets, regularization)
    halvings = 0
    for _ in range(n_steps):
        while True:
            trial = L - learn_rate * grad
            trial_objective, trial_grad, _ = _lmnn_objective(trial, X, y, targets,
                                                             regularization)
            if trial_objective <= objective:
                break
            learn_rate, halvings = learn_rate / shrink, halvings + 1
        L, objective, grad = trial, trial_objective, trial_grad
        learn_rate *= grow
    return L, objective, halvings


def test_lmnn_gradient_descent_follows_the_halve_or_grow_step_rule():
    X, y = load_iris(return_X_y=True)
    targets = _select_target_neighbors(X, y, 3)
    n_steps = 12
    # lr=0.02 overshoots at first (halved 3 times), then grows 1% per accepted step.
    expected, objective, halvings = _lmnn_gd_reference(np.eye(4), X, y, targets, 0.5, 0.02,
                                                       n_steps)
    assert halvings == 3
    lmnn = LMNN(init="identity", solver="gd", learn_rate=0.02, min_iter=n_steps,
                max_iter=n_steps, convergence_tol=0.0, prior_strength=0).fit(X, y)
    assert lmnn.n_iter_ == n_steps
    np.testing.assert_allclose(lmnn.components_, expected, rtol=1e-12, atol=1e-12)
    assert lmnn.objective_ == pytest.approx(objective, rel=1e-12)
    # Both branches of the rule matter here: other factors end elsewhere.
    for other in ({"grow": 1.05}, {"shrink": 4.0}):
        moved, _, _ = _lmnn_gd_reference(np.eye(4), X, y, targets, 0.5, 0.02, n_steps, **other)
        assert not np.allclose(lmnn.components_, moved, rtol=1e-6), other


def test_nca_minibatch_steps_are_torch_adam_steps():
    torch = pytest.importorskip("torch")
    X, y = make_blobs(n_samples=40, centers=3, n_features=4, cluster_std=2.0, random_state=0)
    L0 = np.random.RandomState(1).standard_normal((2, 4))
    seed, batch, epochs = 3, 16, 2  # batches of 16, 16 and 8: 6 Adam steps
    nca = NCA(init=L0, batch_size=batch, max_iter=epochs, tol=0.0, random_state=seed)
    nca.fit(X, y)
    assert nca.n_iter_ == epochs
    # Reference: torch's Adam (bias-corrected moments, betas (0.9, 0.999), eps 1e-8) on the
    # NCA gradient of the same mini-batches, with NCA's step size 1e-2 * max|L0|.
    L = torch.tensor(L0, requires_grad=True)
    adam = torch.optim.Adam([L], lr=1e-2 * np.abs(L0).max(), betas=(0.9, 0.999), eps=1e-8)
    rng = np.random.RandomState(seed)
    for _ in range(epochs):
        order = rng.permutation(len(X))
        for begin in range(0, len(X), batch):
            rows = order[begin:begin + batch]
            L.grad = torch.from_numpy(_nca_loss_grad(L.detach().numpy(), X, y, rows=rows)[1])
            adam.step()
    np.testing.assert_allclose(nca.components_, L.detach().numpy(), rtol=1e-10, atol=1e-12)
    assert not np.allclose(nca.components_, L0, atol=1e-3)  # the steps moved L


def _arcface_target_logits(loss, thetas):
    """The target-class logit of embeddings at angles ``thetas`` to the target's weight."""
    torch = pytest.importorskip("torch")
    thetas = torch.as_tensor(thetas, dtype=torch.float64)
    x = torch.stack([torch.cos(thetas), torch.sin(thetas)], dim=1)
    loss.W.data = torch.eye(2, dtype=torch.float64)
    logits = loss.margin_logits(x, torch.zeros(len(thetas), dtype=torch.long))
    return logits[:, 0].detach().numpy()


@pytest.mark.parametrize("margin", [0.5, 1.2])
def test_arcface_easy_margin_applies_the_margin_only_where_cos_theta_is_positive(margin):
    pytest.importorskip("torch")
    from skmetric.deep.losses import ArcFaceLoss, SubCenterArcFaceLoss

    thetas = np.array([0.05, 0.4, 1.0, math.pi / 2 - 0.02, math.pi / 2 + 0.02, 2.0, 2.8, 3.1])
    expected = 10.0 * np.where(np.cos(thetas) > 0, np.cos(thetas + margin), np.cos(thetas))
    for loss in (ArcFaceLoss(2, 2, margin=margin, scale=10.0, easy_margin=True),
                 SubCenterArcFaceLoss(2, 2, margin=margin, scale=10.0, easy_margin=True,
                                      sub_centers=1)):
        np.testing.assert_allclose(_arcface_target_logits(loss, thetas), expected,
                                   rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("margin", [0.5, 1.2])
def test_arcface_target_logit_past_pi_minus_m_continues_as_cos_minus_m_sin_m(margin):
    pytest.importorskip("torch")
    from skmetric.deep.losses import ArcFaceLoss

    edge = math.pi - margin
    below = np.array([0.1, 1.0, edge - 0.05, edge - 1e-3])
    past = np.array([edge + 1e-3, edge + 0.05, (edge + math.pi) / 2, math.pi - 0.05, 3.1])
    loss = ArcFaceLoss(2, 2, margin=margin, scale=10.0)
    np.testing.assert_allclose(_arcface_target_logits(loss, below),
                               10.0 * np.cos(below + margin), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(_arcface_target_logits(loss, past),
                               10.0 * (np.cos(past) - margin * math.sin(margin)),
                               rtol=1e-6, atol=1e-6)
    # So the target logit keeps decreasing in θ over [0, π) (cos(θ + m) alone would rise).
    grid = np.linspace(0.0, math.pi - 0.01, 400)
    assert np.all(np.diff(_arcface_target_logits(loss, grid)) < 0)
