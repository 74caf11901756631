"""Tests that kill mutants of skmetric/supervised/_lmnn.py (fourth session) that survived
``scripts/mutation.py``: the solvers (the gradient-descent step-size rule, its stopping
test) and the objective functions the earlier runs did not reach.

The references are independent of the module: the LMNN objective written triplet by
triplet in torch (its gradient by autograd, not the module's Laplacian form), and the
reference gradient-descent rule of metric-learn's LMNN (step ``learn_rate``, halved while a
step does not lower the objective, raised 1% after each accepted step; stop once an
iteration at or past ``min_iter`` changes the objective by less than ``convergence_tol``)
written as a plain loop on that objective.
"""

import re
import time
import warnings

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.exceptions import ConvergenceWarning

import skmetric.supervised._lmnn as lmnn_module
from skmetric import LMNN
from skmetric.supervised._lmnn import (
    _find_impostors,
    _pair_distances,
    _PriorPenalty,
    _select_target_neighbors,
)

torch = pytest.importorskip("torch")


def _objective(L, X, y, targets, reg, prior=None):
    """``(loss, grad)`` of the LMNN objective: every triplet (i, j->i, l) with y_l != y_i;
    with ``prior=(L0, strength)`` plus ``strength * n * min_c trace((L - c L0) C (L - c
    L0)^T)``, C the covariance of X (the documented prior penalty)."""
    Lt = torch.as_tensor(L, dtype=torch.float64).clone().requires_grad_(True)
    Z = torch.as_tensor(X, dtype=torch.float64) @ Lt.T
    D = ((Z[:, None, :] - Z[None, :, :]) ** 2).sum(-1)  # (n, n) squared distances
    t = torch.as_tensor(targets)
    d_t = torch.gather(D, 1, t)  # (n, k)
    other = torch.as_tensor(y[:, None] != y[None, :])  # (n, n)
    hinge = (1.0 + d_t[:, :, None] - D[:, None, :]).clamp_min(0) * other[:, None, :]
    loss = reg * d_t.sum() + (1 - reg) * hinge.sum()
    if prior is not None:
        loss = loss + _penalty(Lt, X, *prior)
    loss.backward()
    return loss.item(), Lt.grad.numpy()


def _penalty(Lt, X, L0, strength):
    """``strength * n * min_c trace((L - c L0) C (L - c L0)^T)`` in torch (C: X's covariance)."""
    L0 = torch.as_tensor(L0, dtype=torch.float64)
    Xc = torch.as_tensor(X - X.mean(axis=0), dtype=torch.float64)
    C = Xc.T @ Xc / X.shape[0]
    c = torch.trace(Lt @ C @ L0.T) / torch.trace(L0 @ C @ L0.T)  # the best multiple
    M = Lt - c * L0
    return strength * X.shape[0] * torch.trace(M @ C @ M.T)


def _reference_gd(L, X, y, targets, reg, lr, min_iter, max_iter, tol, prior=None):
    """metric-learn's LMNN gradient descent on ``_objective``: ``(L, n_iter, objectives)``."""
    objective, grad = _objective(L, X, y, targets, reg, prior)
    seen = [objective]
    for it in range(1, max_iter + 1):
        while True:
            L_next = L - lr * grad
            obj_next, grad_next = _objective(L_next, X, y, targets, reg, prior)
            if obj_next <= objective:
                break
            lr /= 2
        delta = obj_next - objective
        L, objective, grad = L_next, obj_next, grad_next
        seen.append(objective)
        lr *= 1.01
        if it >= min_iter and abs(delta) < tol:
            return L, it, seen
    return L, max_iter, seen


def _data(seed=0, n=24):
    X, y = make_blobs(n_samples=n, centers=3, n_features=3, cluster_std=2.5, random_state=seed)
    return X, y


@pytest.mark.parametrize("learn_rate, min_iter, tol", [
    (1.0, 5, 1e-3),   # a step far too long: halved many times, then raised 1% per step
    (1e-3, 3, 1e-2),  # steps accepted at once; stops on the change of the objective
])
def test_gd_solver_equals_the_reference_step_size_rule(learn_rate, min_iter, tol):
    X, y = _data()
    targets = _select_target_neighbors(X, y, 2)
    L, n_iter, seen = _reference_gd(np.eye(3), X, y, targets, 0.4, learn_rate, min_iter, 60,
                                    tol)
    assert min_iter < n_iter < 60  # stopped by the tolerance, after min_iter
    lmnn = LMNN(init="identity", n_neighbors=2, solver="gd", learn_rate=learn_rate,
                regularization=0.4, min_iter=min_iter, max_iter=60,
                convergence_tol=tol, verbose=True, prior_strength=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # it converged: no warning
        lmnn.fit(X, y)
    assert lmnn.n_iter_ == n_iter
    np.testing.assert_allclose(lmnn.components_, L, rtol=1e-9, atol=1e-12)
    assert lmnn.objective_ == pytest.approx(seen[-1], rel=1e-10)


@pytest.mark.parametrize("init", ["identity", "random"])
def test_gd_solver_with_a_prior_equals_the_reference(init):
    """prior_strength > 0: the same step-size rule on the objective plus the prior
    penalty (its distance to the ray of multiples of L0), and objective_ includes it."""
    X, y = _data(2)
    lmnn = LMNN(init=init, n_neighbors=2, solver="gd", learn_rate=1e-2, regularization=0.6,
                min_iter=2, max_iter=40, convergence_tol=1e-3, prior_strength=0.05,
                random_state=0)
    L0 = LMNN(init=init, n_neighbors=2, prior_strength=np.inf, random_state=0).fit(X, y)
    L0 = L0.components_
    targets = _select_target_neighbors(X @ L0.T, y, 2)
    L, n_iter, seen = _reference_gd(L0, X, y, targets, 0.6, 1e-2, 2, 40, 1e-3,
                                    prior=(L0, 0.05))
    plain = _reference_gd(L0, X, y, targets, 0.6, 1e-2, 2, 40, 1e-3)[0]
    assert not np.allclose(L, plain, rtol=1e-3)  # the prior changes the path
    lmnn.fit(X, y)
    assert lmnn.n_iter_ == n_iter
    np.testing.assert_allclose(lmnn.components_, L, rtol=1e-9, atol=1e-12)
    assert lmnn.objective_ == pytest.approx(seen[-1], rel=1e-10)


def test_gd_solver_runs_at_least_min_iter_iterations():
    """With a tolerance every iteration meets, the solver stops exactly at min_iter."""
    X, y = _data(1)
    targets = _select_target_neighbors(X, y, 2)
    for min_iter in (0, 1, 4):
        L, n_iter, _ = _reference_gd(np.eye(3), X, y, targets, 0.5, 1e-4, min_iter, 30, 1e9)
        assert n_iter == max(min_iter, 1)
        lmnn = LMNN(init="identity", n_neighbors=2, solver="gd", learn_rate=1e-4,
                    min_iter=min_iter, max_iter=30, convergence_tol=1e9,
                    prior_strength=0).fit(X, y)
        assert lmnn.n_iter_ == n_iter
        np.testing.assert_allclose(lmnn.components_, L, rtol=1e-9, atol=1e-12)


def test_gd_solver_runs_max_iter_when_the_objective_stays_put(capsys, monkeypatch):
    """Well separated classes with regularization=0: no hinge is active at the identity,
    so the objective is 0 and its gradient 0; each change is exactly 0, which is not
    below convergence_tol=0, so the solver runs max_iter iterations and says it did not
    converge, printing a header and one line per iteration numbered 1..max_iter (with
    the seconds elapsed). A step that leaves
    the objective equal is accepted (the reference halves the step only when the
    objective rises), so each iteration evaluates the objective once."""
    X, y = make_blobs(n_samples=12, centers=[[0, 0], [50, 0]], cluster_std=0.5, random_state=0)
    targets = _select_target_neighbors(X, y, 2)
    assert _objective(np.eye(2), X, y, targets, 0.0)[0] == 0.0
    calls = []
    objective = lmnn_module._lmnn_objective
    monkeypatch.setattr(lmnn_module, "_lmnn_objective",
                        lambda *args: calls.append(1) or objective(*args))
    with pytest.warns(ConvergenceWarning, match="did not converge in 7 iterations"):
        start = time.perf_counter()
        lmnn = LMNN(init="identity", n_neighbors=2, solver="gd", regularization=0.0,
                    min_iter=0, max_iter=7, convergence_tol=0.0, verbose=True).fit(X, y)
        took = time.perf_counter() - start
    assert lmnn.n_iter_ == 7
    assert len(calls) == 1 + 7 + 1  # at L0, one step per iteration, objective_ at the end
    np.testing.assert_array_equal(lmnn.components_, np.eye(2))
    out = capsys.readouterr().out
    assert "[LMNN]       iter        objective     active elapsed (s)" in out.splitlines()
    rows = re.findall(r"^\[LMNN\]\s+(\d+)/7\s.*\s(\S+)$", out, re.M)
    assert [r[0] for r in rows] == [str(i) for i in range(1, 8)]
    # The last column is the time elapsed since the solver started, within the fit's.
    assert all(0 <= float(r[1]) <= took + 0.005 for r in rows)


@pytest.mark.parametrize("empty", [range(0, 7), range(14, 28)])
def test_pair_distances_skips_anchor_blocks_without_pairs(empty, monkeypatch):
    """Many pairs sorted by anchor (read off dense blocks) where whole blocks of anchors
    have no pair, at the start or in the middle: the later blocks still count."""
    rs = np.random.RandomState(7)
    Z = rs.standard_normal((40, 3))
    keep = rs.rand(40, 40) < 0.9
    keep[list(empty)] = False
    i, l = np.nonzero(keep)
    i, l = i.astype(np.int32), l.astype(np.int32)
    assert len(i) * 16 >= 40 * 40  # the dense path
    monkeypatch.setattr(lmnn_module, "_BLOCK_ELEMENTS", 7 * 40)  # 7 anchors per block
    expected = ((Z[i] - Z[l]) ** 2).sum(1)
    np.testing.assert_allclose(_pair_distances(Z, i, l), expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("scale", [1.0, 1.5])
def test_find_impostors_against_brute_force_on_the_radius_and_at_max_pairs(scale,
                                                                        monkeypatch):
    """Integer points put pairs exactly on the radius ``scale * (1 + max_j d_ij)``: they
    are not impostors (strict). ``max_pairs`` equal to the number found returns them;
    one fewer returns None. Small blocks of anchors."""
    rs = np.random.RandomState(11)
    Z = rs.randint(0, 4, (25, 2)).astype(float)
    y = np.arange(25) % 3
    targets = _select_target_neighbors(Z, y, 2)
    radii = scale * (1 + np.max(((Z[:, None] - Z[targets]) ** 2).sum(-1), axis=1))
    D = ((Z[:, None] - Z[None]) ** 2).sum(-1)
    other = y[:, None] != y[None]
    assert np.any((D == radii[:, None]) & other)  # some pairs on the radius
    expected = sorted(zip(*np.nonzero((D < radii[:, None]) & other), strict=True))
    monkeypatch.setattr(lmnn_module, "_BLOCK_ELEMENTS", 4 * 25)  # 4 anchors per block
    for max_pairs in (None, len(expected)):
        i, l = _find_impostors(Z, y, targets, scale, max_pairs)
        assert list(zip(i.tolist(), l.tolist(), strict=True)) == expected
    assert _find_impostors(Z, y, targets, scale, len(expected) - 1) is None


@pytest.mark.parametrize("strength", [0.7, 1.0])
def test_prior_penalty_and_its_rescaled_form_against_autograd(strength):
    """The penalty's value and gradient equal autograd of its definition; ``rescaled(s)``
    is the same penalty for ``L * s`` acting on ``X / s`` (so its gradient is the original
    one divided by s), which the L-BFGS solver relies on."""
    rs = np.random.RandomState(4)
    X = rs.standard_normal((30, 3)) * np.array([0.01, 1.0, 300.0]) + 5.0
    L0, L = rs.standard_normal((2, 3)), rs.standard_normal((2, 3))
    Lt = torch.as_tensor(L).clone().requires_grad_(True)
    value = _penalty(Lt, X, L0, strength)
    value.backward()
    prior = _PriorPenalty.for_samples(L0, X, strength)
    got, grad = prior.value_grad(L)
    assert got == pytest.approx(value.item(), rel=1e-10)
    np.testing.assert_allclose(grad, Lt.grad.numpy(), rtol=1e-9, atol=1e-12)
    scale = X.std(axis=0)
    got, grad = prior.rescaled(scale).value_grad(L * scale)
    assert got == pytest.approx(value.item(), rel=1e-10)
    np.testing.assert_allclose(grad, Lt.grad.numpy() / scale, rtol=1e-9, atol=1e-12)
    assert _PriorPenalty.for_samples(L0, X, 0.0) is None


def test_class_sizes_at_the_boundary():
    """Each sample needs n_neighbors other samples of its class: a class of exactly
    n_neighbors + 1 samples fits, one of n_neighbors is rejected, naming that class."""
    X, y = _data(3, n=18)
    y = y.copy()
    y[np.flatnonzero(y == 2)[3:]] = 0  # class 2 keeps 3 samples
    params = {"init": "identity", "max_iter": 2, "min_iter": 0, "solver": "gd"}
    lmnn = LMNN(n_neighbors=2, **params).fit(X, y)
    assert lmnn.components_.shape == (3, 3)
    y[np.flatnonzero(y == 2)[2:]] = 1  # class 2 keeps 2 samples
    with pytest.raises(ValueError) as err:
        LMNN(n_neighbors=2, **params).fit(X, y)
    assert str(err.value) == (
        "Class 2 has only 2 sample(s); LMNN with n_neighbors=2 needs at least "
        "n_neighbors + 1 = 3 per class. Lower n_neighbors or drop the small classes.")


def test_infinite_prior_returns_the_initial_map(capsys):
    """prior_strength=inf is the initial map itself: with init='auto' and fewer
    components than classes, scikit-learn's LDA directions (the labels reach the
    initialisation), after 0 iterations, converged (no warning), objective_ the triplet
    objective there; verbose prints the header."""
    X, y = _data(5, n=30)
    lmnn = LMNN(n_components=2, n_neighbors=2, prior_strength=np.inf, verbose=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        lmnn.fit(X, y)
    L0 = LinearDiscriminantAnalysis(n_components=2).fit(X, y).scalings_.T[:2]
    np.testing.assert_allclose(lmnn.components_, L0, rtol=1e-12)
    assert lmnn.n_iter_ == 0
    targets = _select_target_neighbors(X @ L0.T, y, 2)
    assert lmnn.objective_ == pytest.approx(_objective(L0, X, y, targets, 0.5)[0], rel=1e-10)
    assert "0 iterations" in capsys.readouterr().out


def test_lbfgs_is_invariant_to_the_units_of_the_features():
    """The L-BFGS solver works on features scaled to unit variance: refitting on X with
    features in other units (x1000, x0.01), from the correspondingly rescaled init, takes
    the same steps, so components_ equal the first fit's in the new units."""
    X, y = _data(6)
    units = np.array([1.0, 1000.0, 0.01])
    L0 = np.random.RandomState(0).standard_normal((3, 3))
    params = {"n_neighbors": 2, "max_iter": 12, "min_iter": 0}
    first = LMNN(init=L0, **params).fit(X, y)
    second = LMNN(init=L0 / units, **params).fit(X * units, y)
    assert first.n_iter_ == second.n_iter_ > 1
    np.testing.assert_allclose(second.components_ * units, first.components_, rtol=1e-6,
                               atol=1e-9 * np.abs(first.components_).max())


def test_lbfgs_with_a_prior_reaches_the_reference_objective():
    """With a prior, L-BFGS minimises the objective plus the penalty: its objective_ is
    no higher than where the reference gradient descent on that sum gets (a solver that
    ignored the prior would end far from L0 with a large penalty)."""
    X, y = _data(2)
    L0 = np.random.RandomState(0).standard_normal((3, 3))
    targets = _select_target_neighbors(X @ L0.T, y, 2)
    _, _, seen = _reference_gd(L0, X, y, targets, 0.5, 1e-3, 200, 200, 0.0, prior=(L0, 1.0))
    lmnn = LMNN(init=L0, n_neighbors=2, prior_strength=1.0, max_iter=200).fit(X, y)
    plain = LMNN(init=L0, n_neighbors=2, max_iter=200, prior_strength=0).fit(X, y)
    assert _objective(plain.components_, X, y, targets, 0.5, (L0, 1.0))[0] > 1.05 * seen[-1]
    assert lmnn.objective_ <= seen[-1] * (1 + 1e-6)
    assert lmnn.objective_ == pytest.approx(
        _objective(lmnn.components_, X, y, targets, 0.5, (L0, 1.0))[0], rel=1e-10)


def test_lbfgs_verbose_numbers_iterations_across_rounds(capsys):
    """verbose L-BFGS: one line per iteration numbered 1..n_iter_ without gaps across
    the impostor re-search rounds, each with the active-triplet count of its iterate
    (positive at the start here: overlapping classes)."""
    X, y = _data(7, n=40)
    lmnn = LMNN(init="identity", n_neighbors=2, max_iter=60, min_iter=0, verbose=True)
    lmnn.fit(X, y)
    out = capsys.readouterr().out
    rows = re.findall(r"^\[LMNN\]\s+(\d+)/60\s+\S+\s+(\d+)\s", out, re.M)
    assert "impostors re-searched" in out and lmnn.n_iter_ > 25  # more than one round
    assert [int(r[0]) for r in rows] == list(range(1, lmnn.n_iter_ + 1))
    assert any(int(r[1]) > 0 for r in rows)
