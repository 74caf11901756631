"""The learners' compute layer: the backend resolver, the L-BFGS driver, the shared init."""

import warnings

import numpy as np
import pytest
from scipy.optimize import minimize
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning

import skmetric.supervised._covariance as covariance_module
from skmetric import (
    MLKR,
    NCA,
    Covariance,
    ITML_Supervised,
    LSML_Supervised,
    MMC_Supervised,
    SDML_Supervised,
)
from skmetric._compute._backend import resolve_backend
from skmetric._compute._lbfgs import minimize_lbfgs
from skmetric._init import initial_components

# -- resolve_backend -----------------------------------------------------------------------

def test_numpy_input_computes_in_numpy_in_its_float_dtype():
    b64 = resolve_backend(np.ones((3, 2)))
    assert b64.is_numpy and b64.device is None and b64.dtype == np.float64
    assert resolve_backend(np.ones((3, 2), dtype=np.float32)).dtype == np.float32
    # Integers, lists and frames compute in float64; an explicit dtype wins.
    assert resolve_backend([[1, 2]]).dtype == np.float64
    assert resolve_backend(np.ones((3, 2), dtype=np.float32), dtype="float64").dtype == np.float64
    out = b64.asarray(np.arange(3, dtype=np.float32))
    assert isinstance(out, np.ndarray) and out.dtype == np.float64
    assert b64.asarray(np.arange(3)).dtype.kind == "i"  # indices keep their integer dtype


def test_torch_input_stays_in_torch_on_its_own_device_and_dtype():
    torch = pytest.importorskip("torch")
    backend = resolve_backend(torch.ones(3, 2, dtype=torch.float32))
    assert backend.name == "torch" and backend.device == torch.device("cpu")
    assert backend.dtype == torch.float32
    # A tensor on another device (the shape-only 'meta' device stands in for cuda:1) is
    # computed there, not moved to a default device.
    on_meta = resolve_backend(torch.empty(3, 2, device="meta"), dtype="float64")
    assert on_meta.device == torch.device("meta") and on_meta.dtype == torch.float64


def test_device_parameter_selects_torch_for_numpy_input():
    torch = pytest.importorskip("torch")
    backend = resolve_backend(np.ones((3, 2)), "cpu", dtype="float64")
    assert backend.name == "torch" and backend.device == torch.device("cpu")
    frozen = np.arange(4.0)
    frozen.flags.writeable = False
    moved = backend.asarray(frozen.astype(np.float32))
    assert torch.is_tensor(moved) and moved.dtype == torch.float64
    assert torch.is_tensor(backend.asarray(frozen))  # read-only buffers are copied


def test_auto_without_cuda_is_numpy_and_bad_devices_raise(monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_backend(np.ones((2, 2)), "auto").is_numpy
    with pytest.raises(ValueError, match="no CUDA device"):
        resolve_backend(np.ones((2, 2)), "cuda")
    with pytest.raises(ValueError, match="device must be"):
        resolve_backend(np.ones((2, 2)), "tpu")


def test_a_namespace_the_learner_cannot_compute_in_is_refused_clearly():
    xs = pytest.importorskip("array_api_strict")
    X = xs.asarray(np.ones((4, 2)))
    assert resolve_backend(X).name == "array_api_strict"  # accepted when any is
    with pytest.raises(TypeError, match="NCA computes in numpy or torch; got X as a "
                                        "array_api_strict array"):
        resolve_backend(X, namespaces=("numpy", "torch"), learner="NCA")


def test_covariance_computes_in_torch_for_a_torch_input(monkeypatch):
    torch = pytest.importorskip("torch")
    X, _ = load_iris(return_X_y=True)
    namespaces = []
    compute = covariance_module._covariance

    def spy(Xb, xp):
        namespaces.append(xp.__name__)
        return compute(Xb, xp)

    monkeypatch.setattr(covariance_module, "_covariance", spy)
    M_np = Covariance().fit(X).get_mahalanobis_matrix()
    assert namespaces == []  # NumPy input: np.cov
    M_torch = Covariance().fit(torch.as_tensor(X)).get_mahalanobis_matrix()
    assert namespaces == ["array_api_compat.torch"]
    np.testing.assert_allclose(M_torch, M_np, rtol=1e-10)


# -- minimize_lbfgs ------------------------------------------------------------------------

def _quadratic(seed=0, n=6):
    rng = np.random.RandomState(seed)
    B = rng.randn(n, n)
    return B @ B.T + n * np.eye(n), rng.randn(n)


def _loss_grad(A, b):
    def loss_grad(x):
        return 0.5 * float(x @ (A @ x)) - float(b @ x), A @ x - b
    return loss_grad


def test_driver_takes_scipys_steps_to_the_known_optimum():
    A, b = _quadratic()
    x0 = np.zeros((2, 3))
    seen = []
    res = minimize_lbfgs(lambda X: _loss_grad(A, b)(X.reshape(-1)), x0,
                         resolve_backend(x0), max_iter=100, tol=1e-10,
                         callback=lambda it, f: seen.append((it, f)))
    direct = minimize(_loss_grad(A, b), np.zeros(6), method="L-BFGS-B", jac=True, tol=1e-10,
                      options={"maxiter": 100})
    assert res.x.shape == (2, 3) and res.converged
    np.testing.assert_array_equal(res.x.ravel(), direct.x)
    assert res.n_iter == direct.nit and res.fun == direct.fun
    np.testing.assert_allclose(res.x.ravel(), np.linalg.solve(A, b), rtol=1e-6)
    assert [it for it, _ in seen] == list(range(1, res.n_iter + 1))
    assert all(f1 <= f0 for (_, f0), (_, f1) in zip(seen, seen[1:], strict=False))
    assert seen[-1][1] == res.fun


def test_driver_evaluates_on_the_backend_and_passes_ftol_gtol():
    torch = pytest.importorskip("torch")
    A, b = _quadratic(1)
    At, bt = torch.as_tensor(A), torch.as_tensor(b)
    kinds = set()

    def loss_grad(x):
        kinds.add(type(x).__name__)
        g = At @ x - bt
        return 0.5 * (x @ (At @ x)) - bt @ x, g

    backend = resolve_backend(np.zeros(6), "cpu", dtype="float64")
    res = minimize_lbfgs(loss_grad, np.zeros(6), backend, max_iter=50, ftol=1e-12, gtol=1e-12)
    assert kinds == {"Tensor"}
    direct = minimize(_loss_grad(A, b), np.zeros(6), method="L-BFGS-B", jac=True,
                      options={"maxiter": 50, "ftol": 1e-12, "gtol": 1e-12})
    np.testing.assert_allclose(res.x, direct.x, rtol=1e-12, atol=1e-14)
    assert res.n_iter == direct.nit


def test_driver_reports_the_iteration_limit_and_warns_only_when_asked():
    A, b = _quadratic(2, n=20)
    backend = resolve_backend(np.zeros(20))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quiet = minimize_lbfgs(_loss_grad(A, b), np.zeros(20), backend, max_iter=2)
    assert quiet.n_iter == 2 and not quiet.converged
    with pytest.warns(ConvergenceWarning, match="Q did not converge in max_iter=2"):
        minimize_lbfgs(_loss_grad(A, b), np.zeros(20), backend, max_iter=2, warn="Q")


# -- the learners on the shared pieces -------------------------------------------------------

@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_initial_components_takes_n_components_from_an_init_array():
    X, y = load_iris(return_X_y=True)
    init = np.arange(8.0).reshape(2, 4)
    np.testing.assert_array_equal(initial_components(init, None, X, y), init)
    with pytest.raises(ValueError, match="must be 2-D"):
        initial_components(np.ones(4), None, X, y)
    with pytest.raises(ValueError, match="expected \\(n_components, n_features\\) = \\(3, 4\\)"):
        initial_components(init, 3, X, y)
    # MLKR shares the rule with NCA and LMNN: a 2-row init array learns a 2-D map.
    mlkr = MLKR(init=np.eye(2, 4), max_iter=3).fit(X, X[:, 0])
    assert mlkr.components_.shape == (2, 4)


def test_nca_verbose_warns_when_lbfgs_hits_max_iter():
    X, y = load_iris(return_X_y=True)
    with pytest.warns(ConvergenceWarning, match="NCA did not converge in max_iter=2"):
        NCA(max_iter=2, verbose=1).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        NCA(max_iter=2).fit(X, y)  # as scikit-learn: only verbose fits warn


# -- the shared fit of the *_Supervised variants ---------------------------------------------

@pytest.mark.parametrize("cls, size, labelled", [
    (MMC_Supervised, 2, True), (SDML_Supervised, 2, True), (ITML_Supervised, 2, True),
    (LSML_Supervised, 4, False),
])
def test_supervised_variants_fit_their_algorithm_on_drawn_tuples(cls, size, labelled,
                                                                 monkeypatch):
    X, y = load_iris(return_X_y=True)
    seen = []
    monkeypatch.setattr(cls, "_fit", lambda self, tuples, *rest: seen.append((tuples, rest))
                        or self)
    cls(n_constraints=15, random_state=0).fit(X, y)
    (tuples, rest), = seen
    assert tuples.shape == (30 if labelled else 15, size, 4)
    if labelled:  # 15 similar and 15 dissimilar pairs, labelled +1 / -1
        np.testing.assert_array_equal(np.sort(rest[0]), [-1] * 15 + [1] * 15)
    # Every tuple is made of training samples.
    rows = {tuple(r) for r in X}
    assert all(tuple(s) in rows for s in tuples.reshape(-1, 4))


def test_labelled_learners_share_the_single_class_error():
    X, y = load_iris(return_X_y=True)
    for est in (NCA(), MMC_Supervised(), LSML_Supervised()):
        with pytest.raises(ValueError, match=f"{type(est).__name__} needs samples of at least "
                                             "two classes.*single class 0"):
            est.fit(X[:50], y[:50])
