"""Tests that kill mutants of skmetric/_nca.py that survived ``scripts/mutation.py``.

References are independent of the implementation: the NCA objective written directly from
its definition (``-sum_i sum_{j in class(i)} p_ij``) with torch autograd for its gradient,
and ``torch.optim.Adam`` (the published constants) for the mini-batch mode.
"""

import time

import numpy as np
import pytest
from sklearn.datasets import load_iris, load_wine, make_blobs
from sklearn.preprocessing import StandardScaler

from skmetric import NCA

torch = pytest.importorskip("torch")


def _objective_autograd(L, X, y, rows=None):
    """``-sum_{i in rows} sum_{j in class(i), j != i} softmax_j(-||L x_i - L x_j||^2)``."""
    L = torch.as_tensor(L, dtype=torch.float64).clone().requires_grad_(True)
    X = torch.as_tensor(X, dtype=torch.float64)
    y = torch.as_tensor(y)
    n = X.shape[0]
    rows = torch.arange(n) if rows is None else torch.as_tensor(rows)
    Z = X @ L.T
    d = ((Z[rows, None, :] - Z[None, :, :]) ** 2).sum(-1)
    d[torch.arange(len(rows)), rows] = float("inf")
    p = torch.softmax(-d, dim=1)
    loss = -(p * (y[rows, None] == y[None, :])).sum()
    loss.backward()
    return loss.item(), L.grad.numpy()


def _wine(n=60):
    X, y = load_wine(return_X_y=True)
    idx = np.random.RandomState(0).choice(len(X), n, replace=False)
    return StandardScaler().fit_transform(X[idx]), y[idx]


def _adam_reference(X, y, L0, batch_size, epochs, seed, tol=None, strength=0.0):
    """The mini-batch mode rebuilt from ``torch.optim.Adam``: same query order (the
    estimator's RandomState draws one permutation per epoch), lr = 1e-2 max|L0|. With
    ``strength``, the documented prior ``strength * n_samples * ||L - L0||_F^2``, of which
    a batch of ``b`` queries carries the share ``b / n_samples`` (autograd differentiates
    it)."""
    rs = np.random.RandomState(seed)
    L = torch.tensor(L0, dtype=torch.float64, requires_grad=True)
    lr = 1e-2 * float(np.abs(L0).max())
    opt = torch.optim.Adam([L], lr=lr, betas=(0.9, 0.999), eps=1e-8)
    Xt, yt = torch.as_tensor(X), torch.as_tensor(y)
    previous, totals = None, []
    for _ in range(epochs):
        order = rs.permutation(len(X))
        total = 0.0
        for b in range(0, len(X), batch_size):
            rows = torch.as_tensor(order[b:b + batch_size])
            opt.zero_grad()
            Z = Xt @ L.T
            d = ((Z[rows, None, :] - Z[None, :, :]) ** 2).sum(-1)
            d[torch.arange(len(rows)), rows] = float("inf")
            p = torch.softmax(-d, dim=1)
            loss = -(p * (yt[rows, None] == yt[None, :])).sum()
            if strength:
                loss = loss + strength * len(rows) * ((L - torch.as_tensor(L0)) ** 2).sum()
            loss.backward()
            opt.step()
            total += loss.item()
        totals.append(total)
        if tol is not None and previous is not None and (
                abs(previous - total) <= tol * max(abs(total), 1.0)):
            break
        previous = total
    return L.detach().numpy(), totals


@pytest.mark.parametrize("batch_size", [16, 25])
def test_minibatch_mode_is_adam_on_the_nca_objective(batch_size):
    """Batch mode equals torch's Adam (lr, betas, eps, bias correction) step for step, with
    a last batch shorter than the others when batch_size does not divide n_samples."""
    X, y = _wine()
    L0 = 0.5 * np.eye(4, X.shape[1])
    nca = NCA(init=L0, batch_size=batch_size, max_iter=3, tol=0.0, random_state=3).fit(X, y)
    ref, totals = _adam_reference(X, y, L0, batch_size, epochs=3, seed=3)
    np.testing.assert_allclose(nca.components_, ref, rtol=1e-9, atol=1e-12)
    assert nca.n_iter_ == 3
    assert nca.objective_ == pytest.approx(totals[-1], rel=1e-10)


def test_minibatch_mode_step_size_scales_with_the_initial_map():
    """Adam moves entries by about lr per step: lr is 1e-2 times the largest |L0| entry."""
    X, y = _wine()
    L0 = 3.0 * np.eye(3, X.shape[1])
    nca = NCA(init=L0, batch_size=60, max_iter=2, tol=0.0, random_state=0).fit(X, y)
    ref, _ = _adam_reference(X, y, L0, 60, epochs=2, seed=0)
    np.testing.assert_allclose(nca.components_, ref, rtol=1e-9, atol=1e-12)


def test_minibatch_mode_stops_when_the_epoch_objective_settles():
    """Stop when |previous - total| <= tol * max(|total|, 1): checked against the epoch
    objectives of the reference run, for a tol just above and just below the change."""
    X, y = _wine()
    L0 = 0.5 * np.eye(4, X.shape[1])
    _, totals = _adam_reference(X, y, L0, 20, epochs=6, seed=1)
    rel = [abs(a - b) / max(abs(b), 1.0) for a, b in zip(totals[:-1], totals[1:], strict=True)]
    # The relative change from epoch 2 to 3; stopping there needs tol >= rel[1] and the
    # change from epoch 1 to 2 above tol.
    assert rel[0] > rel[1]
    tol = rel[1] * (1 + 1e-6)
    nca = NCA(init=L0, batch_size=20, max_iter=6, tol=tol, random_state=1).fit(X, y)
    assert nca.n_iter_ == 3
    assert nca.objective_ == pytest.approx(totals[2], rel=1e-10)
    later = NCA(init=L0, batch_size=20, max_iter=6, tol=rel[1] * (1 - 1e-6),
                random_state=1).fit(X, y)
    assert later.n_iter_ > 3


def test_minibatch_default_tol_is_1e_4():
    """tol=None stops batch mode at a relative epoch change of 1e-4 (17 epochs here)."""
    X, y = make_blobs(40, centers=3, n_features=4, cluster_std=1.0, random_state=0)
    L0 = np.eye(2, 4)
    _, totals = _adam_reference(X, y, L0, 10, epochs=40, seed=1, tol=1e-4)
    nca = NCA(init=L0, batch_size=10, max_iter=40, random_state=1).fit(X, y)
    assert 5 < nca.n_iter_ == len(totals) < 40


def test_objective_and_gradient_equal_autograd_of_the_definition():
    from skmetric.supervised._nca import _nca_loss_grad  # private: the objective itself

    X, y = _wine()
    L = 0.4 * np.random.RandomState(2).standard_normal((3, X.shape[1]))
    loss, grad = _nca_loss_grad(L, X, y)
    ref_loss, ref_grad = _objective_autograd(L, X, y)
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-9, atol=1e-12)
    rows = np.array([5, 0, 17, 59, 33])
    loss, grad = _nca_loss_grad(L, X, y, rows=rows)
    ref_loss, ref_grad = _objective_autograd(L, X, y, rows=rows)
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-9, atol=1e-12)


def test_verbose_minibatch_prints_each_epoch_and_the_total_time(capsys):
    from sklearn.exceptions import ConvergenceWarning

    X, y = _wine()
    t0 = time.perf_counter()
    with pytest.warns(ConvergenceWarning, match="did not converge in max_iter=3 epochs"):
        nca = NCA(batch_size=30, max_iter=3, tol=0.0, verbose=True, random_state=0).fit(X, y)
    wall = time.perf_counter() - t0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split() == ["[NCA]", "epoch", "objective", "elapsed", "(s)"]
    epochs = [line.split() for line in lines[1:-1]]
    assert [e[1] for e in epochs] == ["1/3", "2/3", "3/3"]
    assert float(epochs[-1][2]) == pytest.approx(nca.objective_, rel=1e-5)
    # The elapsed column counts seconds since the fit started.
    assert all(0 <= float(e[3]) <= wall + 0.01 for e in epochs)
    assert lines[-1].startswith("[NCA] training took ") and lines[-1].endswith("s")


def test_verbose_lbfgs_elapsed_counts_from_the_start_of_the_fit(capsys):
    X, y = load_iris(return_X_y=True)
    t0 = time.perf_counter()
    NCA(max_iter=200, verbose=True, random_state=0).fit(X, y)
    wall = time.perf_counter() - t0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()
            if "/" in line.split()[1]]
    assert rows and all(0 <= float(r[3]) <= wall + 0.01 for r in rows)


def test_default_tol_is_scikit_learns_1e_5():
    """tol=None runs L-BFGS with tol=1e-5 (scikit-learn's default), not scipy's own
    tolerances, which would run longer."""
    X, y = _wine()
    plain = {"init": "identity", "max_iter": 500, "prior_strength": 0}  # one L-BFGS run
    default = NCA(**plain).fit(X, y)
    explicit = NCA(**plain, tol=1e-5).fit(X, y)
    assert default.n_iter_ == explicit.n_iter_ < 500
    np.testing.assert_array_equal(default.components_, explicit.components_)
    assert NCA(**plain, tol=1e-9).fit(X, y).n_iter_ > default.n_iter_


def test_verbose_warns_when_max_iter_is_reached():
    from sklearn.exceptions import ConvergenceWarning

    X, y = load_iris(return_X_y=True)
    with pytest.warns(ConvergenceWarning, match="did not converge in max_iter=2 iterations"):
        NCA(max_iter=2, verbose=1, random_state=0).fit(X, y)


def test_n_components_given_with_an_init_array_must_match_its_rows():
    """n_components defaults to the init array's rows, but a given one is checked."""
    X, y = load_iris(return_X_y=True)
    init = np.random.RandomState(0).standard_normal((2, 4))
    with pytest.raises(ValueError, match="expected"):
        NCA(init=init, n_components=3, max_iter=2).fit(X, y)
    with pytest.raises(ValueError, match="must be 2-D"):
        NCA(init=np.ones(4), max_iter=2).fit(X, y)


def test_numpy_fit_does_not_need_torch(monkeypatch):
    """device=None on NumPy input computes in NumPy: it works where torch is missing."""
    import sys

    X, y = load_iris(return_X_y=True)
    ref = NCA(n_components=2, max_iter=5, random_state=0).fit(X, y)
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    nca = NCA(n_components=2, max_iter=5, random_state=0).fit(X, y)
    np.testing.assert_array_equal(nca.components_, ref.components_)
    with pytest.raises(ImportError):
        NCA(n_components=2, max_iter=5, device="cpu").fit(X, y)


def test_objective_stays_finite_for_far_apart_points_and_outliers():
    """The softmax is shifted by each row's own maximum: the row of an outlier, whose
    nearest neighbour is at a squared distance near 900 (exp underflows there), stays
    exact."""
    from skmetric.supervised._nca import _nca_loss_grad  # private: the objective itself

    X, y = _wine(30)
    X[0, :3] += 17.0  # an outlier far from every other sample in the 3 mapped features
    L = np.eye(3, X.shape[1])
    d = ((X[0, :3] - X[1:, :3]) ** 2).sum(1)
    assert 745 < d.min() and d.max() - d.min() < 600
    loss, grad = _nca_loss_grad(L, X, y)
    ref_loss, ref_grad = _objective_autograd(L, X, y)
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-9, atol=1e-12)


def test_documented_defaults_and_preprocessor():
    X, y = load_iris(return_X_y=True)
    params = NCA().get_params()
    assert {k: params[k] for k in ("init", "n_components", "max_iter", "tol", "verbose",
                                   "preprocessor", "batch_size", "device")} == {
        "init": "auto", "n_components": None, "max_iter": 100, "tol": None,
        "verbose": False, "preprocessor": None, "batch_size": None, "device": None}
    # Indices into a preprocessor give the same fit as the rows themselves.
    by_rows = NCA(n_components=2, max_iter=5, random_state=0).fit(X, y)
    by_index = NCA(n_components=2, max_iter=5, random_state=0, preprocessor=X).fit(
        np.arange(len(X)), y)
    np.testing.assert_array_equal(by_index.components_, by_rows.components_)


def test_verbose_minibatch_does_not_warn_when_it_converges(capsys):
    import warnings

    X, y = make_blobs(40, centers=3, n_features=4, cluster_std=1.0, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a ConvergenceWarning would fail the test
        nca = NCA(init=np.eye(2, 4), batch_size=10, max_iter=40, verbose=True,
                  random_state=1).fit(X, y)
    assert nca.n_iter_ < 40
    assert "did not converge" not in capsys.readouterr().out
