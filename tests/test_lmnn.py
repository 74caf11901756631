"""LMNN: hinge objective and gradient, impostor search, accuracy, memory, devices, bad input."""

import itertools
import tracemalloc

import numpy as np
import pytest
from scipy.optimize import check_grad
from sklearn.datasets import load_digits, load_iris, load_wine, make_blobs
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import MinMaxScaler

import skmetric.supervised._lmnn as lmnn_module
from skmetric import LMNN
from skmetric._compute._backend import resolve_backend
from skmetric.supervised._lmnn import (
    _find_impostors,
    _lmnn_loss_grad,
    _lmnn_loss_grad_blocked,
    _lmnn_objective,
    _select_target_neighbors,
)


def _knn_accuracy(Xtr, ytr, Xte, yte, k=3):
    return KNeighborsClassifier(n_neighbors=k).fit(Xtr, ytr).score(Xte, yte)


def _noisy_digits(n_samples=700, n_noise=30, seed=0):
    """Digits scaled to [0, 1] with noise features that swamp the Euclidean distance."""
    X, y = load_digits(return_X_y=True)
    rng = np.random.RandomState(seed)
    idx = rng.choice(X.shape[0], n_samples, replace=False)
    noise = rng.normal(scale=0.5, size=(n_samples, n_noise))
    return np.hstack([X[idx] / 16, noise]), y[idx]


def _brute_force_objective(L, X, y, targets, reg):
    """The LMNN objective summed triplet by triplet."""
    Z = X @ L.T
    pull, push = 0.0, 0.0
    for i, j in itertools.product(range(X.shape[0]), range(targets.shape[1])):
        t = targets[i, j]
        d_ij = np.sum((Z[i] - Z[t]) ** 2)
        pull += d_ij
        for l in np.flatnonzero(y != y[i]):
            push += max(0.0, 1.0 + d_ij - np.sum((Z[i] - Z[l]) ** 2))
    return reg * pull + (1 - reg) * push


def test_objective_equals_brute_force_sum_over_triplets(rng):
    X, y = make_blobs(n_samples=40, centers=3, n_features=3, cluster_std=2.0, random_state=0)
    L = rng.standard_normal((2, 3))
    targets = _select_target_neighbors(X, y, 2)
    loss, _, n_active = _lmnn_objective(L, X, y, targets, 0.3)
    assert loss == pytest.approx(_brute_force_objective(L, X, y, targets, 0.3), rel=1e-10)
    assert n_active > 0


def test_gradient_matches_finite_differences(rng):
    X, y = load_wine(return_X_y=True)
    X = MinMaxScaler().fit_transform(X)
    L = rng.standard_normal((4, X.shape[1]))
    targets = _select_target_neighbors(X, y, 3)
    imp_i, imp_l = _find_impostors(X @ L.T, y, targets, 1.5)

    def f(v):
        return _lmnn_loss_grad(v.reshape(L.shape), X, targets, imp_i, imp_l, 0.5)[0]

    def g(v):
        return _lmnn_loss_grad(v.reshape(L.shape), X, targets, imp_i, imp_l, 0.5)[1].ravel()

    assert check_grad(f, g, L.ravel()) < 1e-5 * np.linalg.norm(g(L.ravel()))


def test_impostor_search_matches_brute_force_in_small_blocks(rng, monkeypatch):
    X, y = make_blobs(n_samples=120, centers=3, n_features=4, cluster_std=3.0, random_state=1)
    Z = X @ rng.standard_normal((4, 4)) * 0.3
    targets = _select_target_neighbors(Z, y, 3)
    radii = 1 + np.max(((Z[:, None] - Z[targets]) ** 2).sum(-1), axis=1)
    D = ((Z[:, None] - Z[None]) ** 2).sum(-1)
    expected = set(zip(*np.nonzero((D < radii[:, None]) & (y[:, None] != y[None])), strict=True))
    monkeypatch.setattr(lmnn_module, "_BLOCK_ELEMENTS", 7 * 120)  # 7 anchors per block
    found_i, found_l = _find_impostors(Z, y, targets)
    assert set(zip(found_i.tolist(), found_l.tolist(), strict=True)) == expected
    assert len(expected) > 0


def test_target_neighbors_are_nearest_same_class_samples():
    X, y = load_iris(return_X_y=True)
    targets = _select_target_neighbors(X, y, 3)
    assert np.all(y[targets] == y[:, None])
    assert not np.any(targets == np.arange(len(y))[:, None])
    for i in (0, 60, 140):
        same = np.flatnonzero((y == y[i]) & (np.arange(len(y)) != i))
        d = np.sum((X[same] - X[i]) ** 2, axis=1)
        assert np.sort(np.sum((X[targets[i]] - X[i]) ** 2, axis=1)).max() <= np.sort(d)[2]


def test_improves_knn_on_unscaled_wine_and_noisy_digits():
    X, y = load_wine(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, stratify=y, random_state=0)
    base = _knn_accuracy(Xtr, ytr, Xte, yte)
    lmnn = LMNN(max_iter=200, random_state=0).fit(Xtr, ytr)
    assert _knn_accuracy(lmnn.transform(Xtr), ytr, lmnn.transform(Xte), yte) >= base + 0.1

    X, y = _noisy_digits()
    Xtr, Xte, ytr, yte = train_test_split(X, y, stratify=y, random_state=0)
    base = _knn_accuracy(Xtr, ytr, Xte, yte)
    lmnn = LMNN(n_components=20, max_iter=100, random_state=0).fit(Xtr, ytr)
    assert lmnn.components_.shape == (20, X.shape[1])
    assert _knn_accuracy(lmnn.transform(Xtr), ytr, lmnn.transform(Xte), yte) >= base + 0.1


def test_lbfgs_lowers_objective_more_than_reference_gradient_descent():
    X, y = load_iris(return_X_y=True)
    lbfgs = LMNN(init="identity", max_iter=100, prior_strength=0).fit(X, y)
    gd = LMNN(init="identity", solver="gd", learn_rate=1e-4, max_iter=100,
              prior_strength=0).fit(X, y)
    targets = _select_target_neighbors(X, y, 3)
    start = _lmnn_objective(np.eye(4), X, y, targets, 0.5)[0]
    assert gd.objective_ < start
    assert lbfgs.objective_ <= gd.objective_
    # objective_ is the exact objective at components_.
    exact = _lmnn_objective(lbfgs.components_, X, y, targets, 0.5)[0]
    assert lbfgs.objective_ == pytest.approx(exact, rel=1e-12)


def test_blocked_evaluation_equals_pairwise_evaluation(rng):
    X, y = load_wine(return_X_y=True)
    X = MinMaxScaler().fit_transform(X)
    L = rng.standard_normal((5, X.shape[1]))
    targets = _select_target_neighbors(X, y, 3)
    pairs = _find_impostors(X @ L.T, y, targets)
    loss, grad, active = _lmnn_loss_grad(L, X, targets, *pairs, 0.4)
    b_loss, b_grad, b_active = _lmnn_loss_grad_blocked(L, X, y, targets, 0.4)
    assert b_loss == pytest.approx(loss, rel=1e-10)
    np.testing.assert_allclose(b_grad, grad, rtol=1e-8, atol=1e-8 * np.abs(grad).max())
    assert b_active == active > 0


def test_memory_stays_below_dense_distance_matrix(monkeypatch):
    X, y = make_blobs(n_samples=3000, centers=4, n_features=5, cluster_std=1.5, random_state=0)
    # Small blocks, and few stored impostor pairs: the fit switches to blocked evaluation.
    monkeypatch.setattr(lmnn_module, "_BLOCK_ELEMENTS", 1 << 18)
    monkeypatch.setattr(lmnn_module, "_MAX_PAIRS", 20_000)
    tracemalloc.start()
    lmnn = LMNN(max_iter=10, min_iter=0, random_state=0).fit(X, y)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    n = X.shape[0]
    assert peak < 8 * n * n / 4  # a dense n x n float64 matrix would take 8 n^2 bytes
    assert 1 <= lmnn.n_iter_ <= 10


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_verbose_random_state_n_iter_and_k_alias(capsys):
    X, y = load_iris(return_X_y=True)
    lmnn = LMNN(init="random", max_iter=8, min_iter=0, verbose=True, random_state=0).fit(X, y)
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("[LMNN]") and "e+" in line]
    assert len(lines) >= lmnn.n_iter_ >= 1 and lmnn.n_iter_ <= 8
    same = LMNN(init="random", max_iter=8, min_iter=0, random_state=0).fit(X, y)
    other = LMNN(init="random", max_iter=8, min_iter=0, random_state=1).fit(X, y)
    np.testing.assert_array_equal(same.components_, lmnn.components_)
    assert not np.allclose(other.components_, lmnn.components_)
    with pytest.warns(FutureWarning, match="n_neighbors"):
        old = LMNN(k=2, max_iter=5, random_state=0).fit(X, y)
    new = LMNN(n_neighbors=2, max_iter=5, random_state=0).fit(X, y)
    np.testing.assert_allclose(old.components_, new.components_)


@pytest.mark.parametrize(
    "params, change, match",
    [
        ({}, "nan", "NaN"),
        ({}, "one_class", "at least two classes"),
        ({"n_neighbors": 3}, "small_class", r"only 3 sample\(s\).*n_neighbors \+ 1 = 4"),
        ({}, "continuous", "Unknown label type"),
        ({"n_components": 9}, None, "n_components=9"),
        ({"regularization": 1.5}, None, "regularization"),
        ({"learn_rate": 0.0}, None, "learn_rate"),
        ({"solver": "sgd"}, None, "solver"),
        ({"init": "magic"}, None, "init"),
        ({"init": np.eye(2, 3)}, None, "init array"),
        ({"max_iter": 0}, None, "max_iter"),
        ({"device": "tpu"}, None, "device must be"),
    ],
)
def test_bad_input_raises_clear_error(params, change, match):
    X, y = load_iris(return_X_y=True)
    X = X.copy()
    if change == "nan":
        X[0, 0] = np.nan
    elif change == "one_class":
        y = np.zeros_like(y)
    elif change == "small_class":
        keep = np.r_[np.arange(100), 100, 101, 102]
        X, y = X[keep], y[keep]
    elif change == "continuous":
        y = np.linspace(0, 1, len(y))
    with pytest.raises(ValueError, match=match):
        LMNN(**{"max_iter": 2, **params}).fit(X, y)


def _scaled_wine():
    X, y = load_wine(return_X_y=True)
    return MinMaxScaler().fit_transform(X), y


def test_loss_gradient_and_impostors_in_torch_equal_numpy(rng):
    torch = pytest.importorskip("torch")
    X, y = _scaled_wine()
    L = rng.standard_normal((4, X.shape[1]))
    targets = _select_target_neighbors(X, y, 3)
    Xt, yt, Lt, tt = (torch.as_tensor(a) for a in (X, y, L, targets))
    pairs = _find_impostors(X @ L.T, y, targets, 1.5)
    pairs_t = _find_impostors(Xt @ Lt.T, yt, tt, 1.5)
    assert all(torch.is_tensor(p) for p in pairs_t)
    for p, p_t in zip(pairs, pairs_t, strict=True):
        np.testing.assert_array_equal(p_t.numpy(), p)
    expected = _lmnn_loss_grad(L, X, targets, *pairs, 0.4)
    # All pairs: distances read off dense blocks; a tenth: gathered pair by pair.
    sub, sub_t = [p[::10] for p in pairs], [p[::10] for p in pairs_t]
    cases = [(_lmnn_loss_grad(Lt, Xt, tt, *pairs_t, 0.4), expected),
             (_lmnn_loss_grad_blocked(Lt, Xt, yt, tt, 0.4), expected),
             (_lmnn_loss_grad(Lt, Xt, tt, *sub_t, 0.4), _lmnn_loss_grad(L, X, targets, *sub, 0.4))]
    for got, want in cases:
        assert got[0] == pytest.approx(want[0], rel=1e-12)
        assert torch.is_tensor(got[1])
        np.testing.assert_allclose(got[1].numpy(), want[1], rtol=1e-10,
                                   atol=1e-10 * np.abs(want[1]).max())
        assert got[2] == want[2] > 0
    # Shrinking L brings new impostors in: the pairs searched at L miss some, in both.
    new = _find_impostors(X @ (0.5 * L).T, y, targets)
    new_t = _find_impostors(Xt @ (0.5 * Lt).T, yt, tt)
    assert lmnn_module._missed_impostors(X @ (0.5 * L).T, targets, pairs, new)
    assert lmnn_module._missed_impostors(Xt @ (0.5 * Lt).T, tt, pairs_t, new_t)
    assert not lmnn_module._missed_impostors(Xt @ Lt.T, tt, pairs_t, pairs_t)


def _fits_agree(device_fit, numpy_fit):
    assert isinstance(device_fit.components_, np.ndarray)
    assert device_fit.n_iter_ == numpy_fit.n_iter_
    np.testing.assert_allclose(device_fit.components_, numpy_fit.components_, rtol=1e-5,
                               atol=1e-5 * np.abs(numpy_fit.components_).max())
    assert device_fit.objective_ == pytest.approx(numpy_fit.objective_, rel=1e-5)


@pytest.mark.parametrize("solver, max_pairs", [("lbfgs", None), ("lbfgs", 100), ("gd", None)])
def test_torch_fit_matches_numpy_fit(solver, max_pairs, monkeypatch):
    torch = pytest.importorskip("torch")
    if max_pairs is not None:  # too many candidates: the blocked evaluation runs instead
        monkeypatch.setattr(lmnn_module, "_MAX_PAIRS", max_pairs)
    X, y = _scaled_wine()
    params = {"init": "pca", "n_components": 5, "max_iter": 30, "min_iter": 30,
              "solver": solver, "learn_rate": 1e-3, "random_state": 0}
    reference = LMNN(**params).fit(X, y)
    _fits_agree(LMNN(**params, device="cpu").fit(X, y), reference)
    _fits_agree(LMNN(**params).fit(torch.as_tensor(X), torch.as_tensor(y)), reference)


@pytest.mark.gpu
def test_cuda_fit_matches_numpy_fit():
    import torch

    X, y = _scaled_wine()
    params = {"init": "pca", "n_components": 5, "max_iter": 30, "min_iter": 30,
              "random_state": 0}
    reference = LMNN(**params).fit(X, y)
    _fits_agree(LMNN(**params, device="cuda").fit(X, y), reference)
    on_gpu = torch.as_tensor(X, device="cuda"), torch.as_tensor(y, device="cuda")
    _fits_agree(LMNN(**params).fit(*on_gpu), reference)


def test_auto_device_without_cuda_uses_numpy_and_cuda_without_gpu_raises(monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    backend = resolve_backend(np.zeros((2, 2)), "auto")
    assert backend.device is None and backend.is_numpy
    X, y = load_iris(return_X_y=True)
    auto = LMNN(max_iter=5, random_state=0, device="auto").fit(X, y)
    plain = LMNN(max_iter=5, random_state=0).fit(X, y)
    np.testing.assert_array_equal(auto.components_, plain.components_)
    with pytest.raises(ValueError, match="no CUDA device"):
        LMNN(max_iter=5, device="cuda").fit(X, y)
