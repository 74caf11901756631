"""Tests written to kill the mutants of the learners' compute layer that survived every
earlier test (issue #22; tests/README.md, "Seventh session (2026-12-01): `_lbfgs.py`,
`_backend.py`, `_params.py`"): the L-BFGS driver, the backend resolver and the parameter
constraints of the public functions.

References are independent of the code under test: scipy's L-BFGS-B called directly with
the documented options, the namespaces, devices and dtypes of torch and array-api-strict
themselves, scikit-learn's ``validate_params`` messages and hand-written values.
"""

import inspect
import numbers
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import minimize
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval, InvalidParameterError, validate_params

from skmetric import MLKR, NCA, kneighbors, pairwise_distances, radius_neighbors
from skmetric._compute._backend import resolve_backend
from skmetric._compute._lbfgs import minimize_lbfgs

# ------------------------------------------------------------ skmetric/_compute/_lbfgs.py


def _quadratic(seed, n):
    rng = np.random.RandomState(seed)
    B = rng.randn(n, n)
    return B @ B.T + n * np.eye(n), rng.randn(n)


def test_a_float32_start_is_optimised_in_float64_as_scipy_does_on_its_float64_copy():
    # The driver hands scipy a float64 copy of the start: scipy evaluates the objective at
    # iterates of the start's dtype, so a float32 start must not make every iterate float32.
    A, b = _quadratic(3, 6)
    x0 = (np.random.RandomState(4).randn(2, 3) / 3).astype(np.float32)
    seen = []

    def loss_grad(X):  # a 2-D map and a 2-D gradient, as the learners' objectives
        seen.append(X.copy())
        x = X.reshape(-1)
        return 0.5 * float(x @ (A @ x)) - float(b @ x), (A @ x - b).reshape(2, 3)

    res = minimize_lbfgs(loss_grad, x0, resolve_backend(np.zeros(1)), max_iter=100,
                         tol=1e-12)
    direct_seen = []

    def direct(x):
        direct_seen.append(x.copy())
        return 0.5 * float(x @ (A @ x)) - float(b @ x), A @ x - b

    ref = minimize(direct, x0.astype(np.float64).ravel(), method="L-BFGS-B", jac=True,
                   tol=1e-12, options={"maxiter": 100})
    assert len(seen) == len(direct_seen) > 3
    for X, x in zip(seen, direct_seen, strict=True):
        assert X.shape == (2, 3) and X.dtype == np.float64
        np.testing.assert_array_equal(X.ravel(), x)
    assert res.x.shape == (2, 3) and res.x.dtype == np.float64
    np.testing.assert_array_equal(res.x.ravel(), ref.x)
    assert (res.fun, res.n_iter, res.converged) == (ref.fun, ref.nit, True)


def _warnings_of(call):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()
    return [w for w in caught if issubclass(w.category, ConvergenceWarning)]


def test_the_iteration_limit_warning_is_written_out_in_full_and_points_at_the_users_line():
    # The warning names the learner and the limit, says what to do, and (as every skmetric
    # warning, see skmetric/_warn.py) is attributed to the user's line, whatever the depth
    # of the learner's call: the test's own lines here.
    A, b = _quadratic(2, 20)

    def loss_grad(x):
        return 0.5 * float(x @ (A @ x)) - float(b @ x), A @ x - b

    backend = resolve_backend(np.zeros(20))
    (direct,) = _warnings_of(
        lambda: minimize_lbfgs(loss_grad, np.zeros(20), backend, max_iter=2, warn="Q"))
    assert str(direct.message) == ("Q did not converge in max_iter=2 iterations; increase "
                                   "max_iter or tol.")
    X, y = load_iris(return_X_y=True)
    (nca,) = _warnings_of(lambda: NCA(max_iter=2, verbose=1).fit(X, y))
    (mlkr,) = _warnings_of(lambda: MLKR(max_iter=2).fit(X, X[:, 0]))
    assert str(nca.message).startswith("NCA did not converge in max_iter=2 iterations")
    assert str(mlkr.message).startswith("MLKR did not converge in max_iter=2 iterations")
    for w in (direct, nca, mlkr):
        assert not {"skmetric", "sklearn"} & set(Path(w.filename).parts), w.filename
        if "MUTANT_UNDER_TEST" not in os.environ:  # mutmut's trampoline adds stack frames
            assert w.filename == __file__, (w.filename, w.lineno)


# ---------------------------------------------------------- skmetric/_compute/_backend.py


def test_an_explicit_dtype_wins_over_the_inputs_and_numpy_keeps_an_array_of_that_dtype():
    # float64 data fitted in float32 (dtype='float32'): the computation's dtype, in each
    # namespace's own dtype objects, is the one asked for, not the data's.
    torch = pytest.importorskip("torch")
    X = np.ones((3, 2))
    backend = resolve_backend(X, dtype="float32")
    assert backend.is_numpy and backend.dtype == np.float32
    assert resolve_backend(torch.ones(3, 2, dtype=torch.float64), dtype="float32").dtype \
        is torch.float32
    assert resolve_backend(X, "cpu", dtype="float32").dtype is torch.float32
    out = backend.asarray(np.arange(3.0))  # float64 data cast to the backend's float32
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    np.testing.assert_array_equal(out, [0.0, 1.0, 2.0])
    # An array already in the backend's dtype is used as is: no copy of the training data.
    same = resolve_backend(X).asarray(X)
    assert same.dtype == np.float64 and np.shares_memory(same, X)


def test_an_unsupported_namespace_is_refused_with_the_default_learner_name_in_full():
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError) as info:
        resolve_backend(torch.ones(2, 2), namespaces=("numpy",))
    assert str(info.value) == ("This learner computes in numpy; got X as a torch array. "
                               "Convert it to a NumPy array (or a torch tensor) first.")


def test_the_torch_backend_puts_every_array_on_its_own_device_in_its_dtype():
    # The shape-only 'meta' device stands in for a GPU: an array reaching the backend is
    # created there (not on the default CPU), a tensor already there is not fetched through
    # the host (a meta tensor has no values to fetch), floats take the backend's dtype and
    # integers (indices) keep theirs.
    torch = pytest.importorskip("torch")
    meta = torch.device("meta")
    backend = resolve_backend(torch.empty(3, 2, device="meta", dtype=torch.float32),
                              dtype="float64")
    assert backend.device == meta and backend.dtype is torch.float64
    for a in (np.arange(3.0, dtype=np.float32), torch.empty(3, device="meta")):
        out = backend.asarray(a)
        assert torch.is_tensor(out) and out.device == meta and out.dtype is torch.float64
        assert out.shape == (3,)
    for a in (np.arange(3), torch.arange(3, device="meta")):
        out = backend.asarray(a)
        assert out.device == meta and out.dtype is torch.int64
    cpu = resolve_backend(np.ones((3, 2)), "cpu", dtype="float32")
    out = cpu.asarray(np.arange(4))
    assert out.dtype is torch.int64 and out.tolist() == [0, 1, 2, 3]
    tensor = torch.arange(4.0, dtype=torch.float32)
    assert cpu.asarray(tensor) is tensor  # already on the backend, in its dtype


def test_a_read_only_array_is_copied_so_the_tensor_can_be_written_safely():
    # torch cannot protect a read-only NumPy buffer: writing to a tensor that shared it
    # would change the caller's read-only array.
    torch = pytest.importorskip("torch")
    frozen = np.arange(4.0)
    frozen.flags.writeable = False
    out = resolve_backend(frozen, "cpu").asarray(frozen)
    assert torch.is_tensor(out) and out.dtype is torch.float64
    out += 1.0
    np.testing.assert_array_equal(frozen, [0.0, 1.0, 2.0, 3.0])
    np.testing.assert_array_equal(out.numpy(), [1.0, 2.0, 3.0, 4.0])


# ----------------------------------------------------------- skmetric/_compute/_params.py

# scikit-learn's own constraints for the documented ranges: the messages that the public
# functions must give for a value out of range.
_REFERENCE = {
    "chunk_size": [Interval(numbers.Integral, 1, None, closed="left"), None],
    "working_memory": [Interval(numbers.Real, 0, None, closed="neither"), None],
    "n_threads": [Interval(numbers.Integral, 1, None, closed="left"), None],
    "n_neighbors": [Interval(numbers.Integral, 1, None, closed="left")],
    "radius": [Interval(numbers.Real, 0, None, closed="left")],
}


def _sklearn_message(func_name, param, value):
    """scikit-learn's ``validate_params`` message for ``param=value`` of ``func_name``."""

    def reference(**kwargs):
        pass

    reference.__name__ = reference.__qualname__ = func_name
    reference.__signature__ = inspect.Signature(
        [inspect.Parameter(param, inspect.Parameter.KEYWORD_ONLY, default=None)])
    checked = validate_params({param: _REFERENCE[param]},
                              prefer_skip_nested_validation=True)(reference)
    with pytest.raises(InvalidParameterError) as info:
        checked(**{param: value})
    return str(info.value)


@pytest.mark.parametrize("func, param, value, refused_by_sklearn", [
    (pairwise_distances, "chunk_size", 0, 0),
    (pairwise_distances, "chunk_size", True, 0),
    (pairwise_distances, "working_memory", 0.0, 0.0),
    (pairwise_distances, "working_memory", -1, -1),
    (pairwise_distances, "working_memory", np.True_, 0.0),
    (pairwise_distances, "n_threads", 0, 0),
    (kneighbors, "n_neighbors", 0, 0),
    (kneighbors, "n_neighbors", np.True_, 0),
    (kneighbors, "n_neighbors", 2.0, 2.0),
    (radius_neighbors, "radius", -0.5, -0.5),
    (radius_neighbors, "radius", False, -0.5),
])
def test_counts_and_budgets_out_of_range_or_boolean_get_sklearns_message(
        func, param, value, refused_by_sklearn):
    # A value out of the documented range is refused by the parameter check itself, with
    # scikit-learn's message (not later, by the engine, with another); a bool is not taken
    # for 0 or 1 (scikit-learn's Interval would), with the same message naming the bool.
    X = np.arange(8.0).reshape(4, 2)
    with pytest.raises(InvalidParameterError) as info:
        func(X, **{param: value})
    expected = _sklearn_message(func.__name__, param, refused_by_sklearn)
    expected = expected.replace(f"Got {refused_by_sklearn!r} instead",
                                f"Got {value!r} instead")
    assert str(info.value) == expected
    # The values just inside the range are accepted.
    inside = {"chunk_size": 1, "working_memory": 1e-3, "n_threads": 1, "n_neighbors": 1,
              "radius": 0.0}[param]
    func(X, **{param: inside})
