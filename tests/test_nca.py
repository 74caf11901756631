"""NCA: objective and gradient, agreement with scikit-learn, torch backend, batch mode."""

import tracemalloc

import numpy as np
import pytest
from scipy.optimize import check_grad
from sklearn.datasets import load_digits, load_iris, load_wine, make_blobs
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier, NeighborhoodComponentsAnalysis
from sklearn.preprocessing import StandardScaler

import skmetric.supervised._nca as nca_module
from skmetric import NCA
from skmetric.supervised._nca import _nca_loss_grad


def _knn_accuracy(Xtr, ytr, Xte, yte, k=3):
    return KNeighborsClassifier(n_neighbors=k).fit(Xtr, ytr).score(Xte, yte)


def _scaled_wine():
    X, y = load_wine(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def _noisy_digits(n_samples=700, n_noise=30, seed=0):
    """Digits scaled to [0, 1] with noise features that swamp the Euclidean distance."""
    X, y = load_digits(return_X_y=True)
    rng = np.random.RandomState(seed)
    idx = rng.choice(X.shape[0], n_samples, replace=False)
    noise = rng.normal(scale=0.5, size=(n_samples, n_noise))
    return np.hstack([X[idx] / 16, noise]), y[idx]


def test_gradient_matches_finite_differences(rng):
    X, y = _scaled_wine()
    L = 0.3 * rng.standard_normal((3, X.shape[1]))

    def f(v):
        return _nca_loss_grad(v.reshape(L.shape), X, y)[0]

    def g(v):
        return _nca_loss_grad(v.reshape(L.shape), X, y)[1].ravel()

    assert check_grad(f, g, L.ravel()) < 1e-5 * np.linalg.norm(g(L.ravel()))
    # The same holds for the objective restricted to a batch of queries.
    rows = rng.choice(X.shape[0], 40, replace=False)
    fb = lambda v: _nca_loss_grad(v.reshape(L.shape), X, y, rows=rows)[0]  # noqa: E731
    gb = lambda v: _nca_loss_grad(v.reshape(L.shape), X, y, rows=rows)[1].ravel()  # noqa: E731
    assert check_grad(fb, gb, L.ravel()) < 1e-5 * np.linalg.norm(gb(L.ravel()))


def test_objective_and_gradient_equal_sklearn_at_same_L(rng, monkeypatch):
    X, y = _scaled_wine()
    L = 0.5 * rng.standard_normal((4, X.shape[1]))
    sk = NeighborhoodComponentsAnalysis()
    sk.n_iter_, sk.verbose = 1, 0
    sk_loss, sk_grad = sk._loss_grad_lbfgs(L.ravel(), X, y[:, None] == y[None, :], -1.0)
    loss, grad = _nca_loss_grad(L, X, y)
    assert loss == pytest.approx(sk_loss, rel=1e-10)
    np.testing.assert_allclose(grad.ravel(), sk_grad, rtol=1e-8, atol=1e-10)
    # The blockwise evaluation (memory-bounded), here over 12 blocks of 15 queries given in
    # shuffled order, gives the same numbers.
    monkeypatch.setattr(nca_module, "_BLOCK_ELEMENTS", 15 * X.shape[0])
    blocked_loss, blocked_grad = _nca_loss_grad(L, X, y, rows=rng.permutation(X.shape[0]))
    assert blocked_loss == pytest.approx(loss, rel=1e-12)
    np.testing.assert_allclose(blocked_grad, grad, rtol=1e-10, atol=1e-12 * np.abs(grad).max())
    # Without rows the whole set is evaluated in those blocks too.
    whole_blocks_loss, whole_blocks_grad = _nca_loss_grad(L, X, y)
    assert whole_blocks_loss == pytest.approx(loss, rel=1e-12)
    np.testing.assert_allclose(whole_blocks_grad, grad, rtol=1e-10,
                               atol=1e-12 * np.abs(grad).max())


def test_fit_agrees_with_sklearn_same_init():
    X, y = _scaled_wine()
    Xtr, Xte, ytr, yte = train_test_split(X, y, stratify=y, random_state=0)
    ours = NCA(init="pca", n_components=4, max_iter=60, random_state=0,
               prior_strength=0).fit(Xtr, ytr)
    ref = NeighborhoodComponentsAnalysis(init="pca", n_components=4, max_iter=60, tol=0,
                                         random_state=0).fit(Xtr, ytr)
    # Same starting point: the objective at the reference's solution is evaluated the same.
    ref_obj = _nca_loss_grad(ref.components_, Xtr, ytr)[0]
    assert ours.objective_ == pytest.approx(ref_obj, rel=0.02)
    acc = _knn_accuracy(ours.transform(Xtr), ytr, ours.transform(Xte), yte)
    ref_acc = _knn_accuracy(ref.transform(Xtr), ytr, ref.transform(Xte), yte)
    assert abs(acc - ref_acc) <= 0.01 + 1e-12


def test_improves_knn_on_unscaled_wine_and_noisy_digits():
    X, y = load_wine(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, stratify=y, random_state=0)
    # Unscaled, the softmax saturates from the identity; 'auto' starts from LDA here.
    nca = NCA(n_components=2, max_iter=50, random_state=0).fit(Xtr, ytr)
    base = _knn_accuracy(Xtr, ytr, Xte, yte)
    assert _knn_accuracy(nca.transform(Xtr), ytr, nca.transform(Xte), yte) >= base + 0.1

    X, y = _noisy_digits()
    Xtr, Xte, ytr, yte = train_test_split(X, y, stratify=y, random_state=0)
    base = _knn_accuracy(Xtr, ytr, Xte, yte)
    nca = NCA(n_components=20, max_iter=40, random_state=0).fit(Xtr, ytr)
    assert nca.components_.shape == (20, X.shape[1])
    assert _knn_accuracy(nca.transform(Xtr), ytr, nca.transform(Xte), yte) >= base + 0.1


def test_batch_mode_improves_accuracy():
    X, y = _noisy_digits(n_samples=1200)
    Xtr, Xte, ytr, yte = train_test_split(X, y, stratify=y, random_state=0)
    base = _knn_accuracy(Xtr, ytr, Xte, yte)
    nca = NCA(batch_size=64, max_iter=8, n_components=20, random_state=0).fit(Xtr, ytr)
    assert 1 <= nca.n_iter_ <= 8
    assert _knn_accuracy(nca.transform(Xtr), ytr, nca.transform(Xte), yte) >= base + 0.05


def test_batch_mode_memory_is_far_below_n_squared():
    X, y = make_blobs(n_samples=4000, centers=5, n_features=8, random_state=0)
    nca = NCA(batch_size=16, max_iter=1, random_state=0)
    tracemalloc.start()
    nca.fit(X, y)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    n = X.shape[0]
    # A single n x n float64 matrix would take 8 n^2 bytes (128 MB here).
    assert peak < 8 * n * n / 20


def test_torch_cpu_matches_numpy():
    torch = pytest.importorskip("torch")
    X, y = load_iris(return_X_y=True)
    rng = np.random.RandomState(1)
    L = rng.standard_normal((2, 4))
    loss, grad = _nca_loss_grad(L, X, y)
    t_loss, t_grad = _nca_loss_grad(torch.as_tensor(L), torch.as_tensor(X), torch.as_tensor(y))
    assert t_loss == pytest.approx(loss, rel=1e-10)
    np.testing.assert_allclose(t_grad.numpy(), grad, rtol=1e-8, atol=1e-12)

    ref = NCA(n_components=2, max_iter=20, random_state=0).fit(X, y)
    on_cpu = NCA(n_components=2, max_iter=20, random_state=0, device="cpu").fit(X, y)
    from_tensor = NCA(n_components=2, max_iter=20, random_state=0).fit(
        torch.as_tensor(X), torch.as_tensor(y)
    )
    for est in (on_cpu, from_tensor):
        assert isinstance(est.components_, np.ndarray)
        np.testing.assert_allclose(est.components_, ref.components_, rtol=1e-5, atol=1e-8)
        assert est.objective_ == pytest.approx(ref.objective_, rel=1e-5)
    # Batch mode runs the same Adam steps in torch.
    ref_b = NCA(n_components=2, max_iter=3, batch_size=32, random_state=0).fit(X, y)
    cpu_b = NCA(n_components=2, max_iter=3, batch_size=32, random_state=0, device="cpu").fit(X, y)
    np.testing.assert_allclose(cpu_b.components_, ref_b.components_, rtol=1e-5, atol=1e-8)


@pytest.mark.gpu
def test_cuda_matches_numpy():
    torch = pytest.importorskip("torch")
    X, y = load_iris(return_X_y=True)
    ref = NCA(n_components=2, max_iter=20, random_state=0).fit(X, y)
    gpu = NCA(n_components=2, max_iter=20, random_state=0, device="cuda").fit(X, y)
    np.testing.assert_allclose(gpu.components_, ref.components_, rtol=1e-5, atol=1e-8)
    on_tensor = NCA(n_components=2, max_iter=20, random_state=0).fit(
        torch.as_tensor(X, device="cuda"), torch.as_tensor(y, device="cuda")
    )
    np.testing.assert_allclose(on_tensor.components_, ref.components_, rtol=1e-5, atol=1e-8)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_verbose_random_state_and_n_iter(capsys):
    X, y = load_iris(return_X_y=True)
    nca = NCA(max_iter=5, verbose=True, init="random", random_state=0).fit(X, y)
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("[NCA]") and "e+" in line]
    assert len(lines) == nca.n_iter_ and 1 <= nca.n_iter_ <= 5
    # The printed objective of the last iteration is the final objective.
    assert float(lines[-1].split()[2]) == pytest.approx(nca.objective_, rel=1e-5)
    same = NCA(max_iter=5, init="random", random_state=0).fit(X, y)
    other = NCA(max_iter=5, init="random", random_state=1).fit(X, y)
    np.testing.assert_array_equal(same.components_, nca.components_)
    assert not np.allclose(other.components_, nca.components_)
    # An init array sets n_components when n_components is None.
    init = np.random.RandomState(0).standard_normal((2, 4))
    assert NCA(init=init, max_iter=3).fit(X, y).components_.shape == (2, 4)


@pytest.mark.parametrize(
    "params, X_change, y_change, error, match",
    [
        ({}, "nan", None, ValueError, "NaN"),
        ({}, None, "one_class", ValueError, "at least two classes"),
        ({}, None, "continuous", ValueError, "Unknown label type"),
        ({}, "one_sample", None, ValueError, "sample"),
        ({"n_components": 5}, None, None, ValueError, "n_components=5"),
        ({"init": "magic"}, None, None, ValueError, "init"),
        ({"init": np.eye(3, 5)}, None, None, ValueError, "init array"),
        ({"max_iter": 0}, None, None, ValueError, "max_iter"),
        ({"batch_size": 0}, None, None, ValueError, "batch_size"),
        ({"device": "tpu"}, None, None, ValueError, "device"),
        ({"tol": -1.0}, None, None, ValueError, "tol"),
    ],
)
def test_bad_input_raises_clear_error(params, X_change, y_change, error, match):
    X, y = load_iris(return_X_y=True)
    X = X.copy()
    if X_change == "nan":
        X[3, 1] = np.nan
    elif X_change == "one_sample":
        X, y = X[:1], y[:1]
    if y_change == "one_class":
        y = np.zeros_like(y)
    elif y_change == "continuous":
        y = np.linspace(0, 1, y.shape[0])
    with pytest.raises(error, match=match):
        NCA(**{"max_iter": 2, **params}).fit(X, y)
