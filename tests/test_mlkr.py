"""MLKR: objective and gradient, NumPy / torch agreement, regression gains, bad input."""

import warnings

import numpy as np
import pytest
from scipy.optimize import check_grad
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsRegressor
from sklearn.utils import get_tags

from skmetric import MLKR
from skmetric._init import initialize_components
from skmetric.supervised._mlkr import _loss_grad


def _regression(n=200, n_noise=6, seed=0):
    """Targets depend on the first two features; the others are irrelevant noise."""
    rng = np.random.RandomState(seed)
    X = rng.randn(n, 2)
    y = np.sin(2 * X[:, 0]) + 0.5 * X[:, 1] ** 2 + 0.05 * rng.randn(n)
    return np.hstack([X, rng.randn(n, n_noise)]), y


def _brute_force_loss(L, X, y):
    Z = X @ L.T
    D = ((Z[:, None, :] - Z[None, :, :]) ** 2).sum(-1)
    K = np.exp(-D)
    np.fill_diagonal(K, 0)
    yhat = K @ y / K.sum(axis=1)
    return ((yhat - y) ** 2).sum()


@pytest.mark.parametrize("m, block_rows", [(2, None), (4, 7), (1, 1)])
def test_loss_matches_definition_and_gradient_matches_finite_differences(m, block_rows):
    rng = np.random.RandomState(1)
    X, y = rng.randn(25, 4), rng.randn(25)
    L = 0.5 * rng.randn(m, 4)
    loss, _ = _loss_grad(L, X, y, block_rows=block_rows)
    assert float(loss) == pytest.approx(_brute_force_loss(L, X, y), rel=1e-10)

    def f(flat):
        return float(_loss_grad(flat.reshape(m, 4), X, y, block_rows=block_rows)[0])

    def g(flat):
        return _loss_grad(flat.reshape(m, 4), X, y, block_rows=block_rows)[1].ravel()

    grad_norm = np.linalg.norm(g(L.ravel()))
    assert grad_norm > 1e-3
    assert check_grad(f, g, L.ravel(), epsilon=1e-6) < 1e-5 * max(grad_norm, 1.0)


def test_far_apart_samples_do_not_underflow_to_nan():
    X = np.array([[0.0], [100.0], [200.0], [300.0]])
    y = np.array([0.0, 1.0, 2.0, 3.0])
    loss, grad = _loss_grad(np.eye(1), X, y)
    assert np.isfinite(float(loss)) and np.all(np.isfinite(grad))
    # Each sample is predicted by its nearest other sample.
    assert float(loss) == pytest.approx(1 + 0 + 0 + 1)


def test_torch_cpu_objective_and_fit_match_numpy():
    torch = pytest.importorskip("torch")
    X, y = _regression(n=80, n_noise=3)
    L = np.random.RandomState(0).randn(3, X.shape[1]) * 0.3
    loss_np, grad_np = _loss_grad(L, X, y)
    loss_t, grad_t = _loss_grad(torch.tensor(L), torch.tensor(X), torch.tensor(y), block_rows=13)
    assert float(loss_t) == pytest.approx(float(loss_np), rel=1e-5)
    np.testing.assert_allclose(grad_t.numpy(), grad_np, rtol=1e-5, atol=1e-8)

    ref = MLKR(n_components=3, max_iter=30, random_state=0).fit(X, y).components_
    by_device = MLKR(n_components=3, max_iter=30, random_state=0, device="cpu").fit(X, y)
    by_input = MLKR(n_components=3, max_iter=30, random_state=0).fit(torch.tensor(X),
                                                                      torch.tensor(y))
    np.testing.assert_allclose(by_device.components_, ref, rtol=1e-5, atol=1e-8)
    auto = MLKR(n_components=3, max_iter=30, random_state=0, device="auto").fit(X, y)
    np.testing.assert_allclose(auto.components_, ref, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(by_input.components_, ref, rtol=1e-5, atol=1e-8)


@pytest.mark.gpu
def test_cuda_objective_and_fit_match_numpy():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    X, y = _regression(n=80, n_noise=3)
    L = np.random.RandomState(0).randn(3, X.shape[1]) * 0.3
    loss_np, grad_np = _loss_grad(L, X, y)
    dev = torch.device("cuda")
    loss_t, grad_t = _loss_grad(torch.tensor(L, device=dev), torch.tensor(X, device=dev),
                                torch.tensor(y, device=dev))
    assert float(loss_t) == pytest.approx(float(loss_np), rel=1e-5)
    np.testing.assert_allclose(grad_t.cpu().numpy(), grad_np, rtol=1e-5, atol=1e-8)
    ref = MLKR(n_components=3, max_iter=30, random_state=0).fit(X, y)
    gpu = MLKR(n_components=3, max_iter=30, random_state=0, device="cuda").fit(X, y)
    np.testing.assert_allclose(gpu.components_, ref.components_, rtol=1e-4, atol=1e-6)
    assert isinstance(gpu.components_, np.ndarray)


def test_improves_knn_regression_error_on_irrelevant_noisy_features():
    X, y = _regression(n=300)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, random_state=0)

    def knn_mse(A_tr, A_te):
        pred = KNeighborsRegressor(n_neighbors=3).fit(A_tr, y_tr).predict(A_te)
        return np.mean((pred - y_te) ** 2)

    mlkr = MLKR(max_iter=600, random_state=0).fit(X_tr, y_tr)
    euclidean, learned = knn_mse(X_tr, X_te), knn_mse(mlkr.transform(X_tr),
                                                       mlkr.transform(X_te))
    assert learned < 0.4 * euclidean
    # The noise features lose their weight relative to the informative ones.
    weights = np.linalg.norm(mlkr.components_, axis=0)
    assert weights[:2].min() > 2 * weights[2:].max()
    assert 1 <= mlkr.n_iter_ < 600  # converged


@pytest.mark.parametrize("init", ["auto", "pca", "identity", "random"])
def test_n_components_and_init_options_lower_the_objective(init):
    X, y = _regression(n=60, n_noise=2)
    L0 = initialize_components(2, X, None, init, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlkr = MLKR(n_components=2, init=init, max_iter=15, random_state=0).fit(X, y)
    assert mlkr.components_.shape == (2, 4)
    assert mlkr.transform(X).shape == (60, 2)
    assert float(_loss_grad(mlkr.components_, X, y)[0]) < 0.9 * _brute_force_loss(L0, X, y)


def test_array_init_and_random_state_reproducibility():
    X, y = _regression(n=50, n_noise=1)
    L0 = np.eye(3)
    fitted = MLKR(init=L0, max_iter=5).fit(X, y)
    assert not np.allclose(fitted.components_, L0)
    a = MLKR(init="random", max_iter=5, random_state=3).fit(X, y).components_
    b = MLKR(init="random", max_iter=5, random_state=3).fit(X, y).components_
    c = MLKR(init="random", max_iter=5, random_state=4).fit(X, y).components_
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_verbose_prints_the_objective_each_iteration(capsys):
    X, y = _regression(n=40, n_noise=1)
    mlkr = MLKR(max_iter=4, verbose=True).fit(X, y)
    lines = [ln for ln in capsys.readouterr().out.splitlines() if "objective" in ln]
    assert len(lines) == mlkr.n_iter_ >= 1
    objectives = [float(ln.split("objective")[1].split()[0]) for ln in lines]
    assert objectives[-1] <= objectives[0]


def test_tags_say_y_is_required_and_targets_are_continuous():
    assert get_tags(MLKR()).target_tags.required
    X, y = _regression(n=30, n_noise=0)
    MLKR(max_iter=3).fit(X, y * 1e3 + 0.123)  # continuous, large-scale targets are fine


@pytest.mark.parametrize("params, match", [
    ({"max_iter": 0}, "max_iter"),
    ({"tol": -1.0}, "tol"),
    ({"init": "lda"}, "class labels"),
    ({"init": "spectral"}, "'init' parameter"),
    ({"init": np.eye(2)}, "init array has shape"),
    ({"n_components": 5}, "n_components"),
    ({"device": "tpu"}, "device"),
    ({"device": 3}, "device"),
])
def test_bad_parameters_are_rejected(params, match):
    X, y = _regression(n=20, n_noise=1)
    with pytest.raises(ValueError, match=match):
        MLKR(**params).fit(X, y)


def test_bad_targets_are_rejected():
    X, y = _regression(n=20, n_noise=1)
    with pytest.raises(ValueError, match="requires y"):
        MLKR().fit(X, None)
    with pytest.raises(ValueError):
        MLKR().fit(X, np.array(["a"] * 20, dtype=object))
    y_nan = y.copy()
    y_nan[2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        MLKR().fit(X, y_nan)


def test_cuda_request_without_cuda_says_what_to_do():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    X, y = _regression(n=20, n_noise=1)
    with pytest.raises(ValueError, match="device='cpu'"):
        MLKR(device="cuda").fit(X, y)
