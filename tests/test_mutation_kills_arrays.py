"""Tests written to kill the mutants of the distance engine's helpers
(skmetric/_compute/_arrays.py, _blocks.py, _numerics.py) that survived every earlier test
(issue #22; tests/README.md, "Sixth session (2026-12-01): _arrays, _blocks, _numerics").

References are independent of the helpers: messages and values written out by hand,
``np.ldexp`` (one correctly rounded scaling by a power of two) and NumPy's own
arithmetic; the namespace-generic code runs on NumPy, array-api-strict and torch (CPU).
"""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from _namespaces import numpy_of, to_namespace
from array_api_compat import array_namespace
from numpy.testing import assert_array_equal

from skmetric._compute import _numerics as num
from skmetric._compute._arrays import check_inputs
from skmetric._compute._blocks import set_diagonal

CPU_NAMESPACES = ["numpy", "array_api_strict", "torch"]


def _raises(error, message, call):
    """``call()`` raises ``error`` whose text is exactly ``message``."""
    with pytest.raises(error) as info:
        call()
    assert str(info.value) == message


def _xp(name):
    return array_namespace(to_namespace(np.ones(1), name))


# ------------------------------------------------------------ skmetric/_compute/_arrays.py


def _bad_inputs(name):
    """(error, message for an array called ``name``, the bad array) for every check."""
    return [
        (TypeError, f"{name} is a sparse matrix; skmetric needs dense arrays. Call "
         f"{name}.toarray() first.", sp.eye(2, format="csr")),
        (ValueError, f"Expected a 2-D array for {name} of shape (n_samples, n_features); got "
         f"1 dimension(s), shape (2,). Reshape with {name}.reshape(-1, 1) for a single "
         f"feature or {name}.reshape(1, -1) for a single sample.", np.ones(2)),
        (ValueError, f"Expected a 2-D array for {name} of shape (n_samples, n_features); got "
         f"3 dimension(s), shape (1, 1, 2). Reshape with {name}.reshape(-1, 1) for a single "
         f"feature or {name}.reshape(1, -1) for a single sample.", np.ones((1, 1, 2))),
        (ValueError, f"{name} is empty (shape (0, 2)); at least 1 sample and 1 feature are "
         "required.", np.ones((0, 2))),
        (ValueError, f"Complex data is not supported ({name} has dtype complex128); pass "
         "real-valued arrays.", np.ones((1, 2)) + 1j),
        (TypeError, f"{name} must be numeric; got dtype <U1.", [["a", "b"]]),
        (ValueError, f"{name} contains NaN or infinity. Remove or impute those values (e.g. "
         "with sklearn.impute.SimpleImputer) first.", np.array([[1.0, np.nan]])),
    ]


def test_check_inputs_names_the_array_that_failed_with_and_without_y():
    """Each check of X alone, of X next to a good Y, and of Y next to a good X, names the
    array that failed by the name the caller gave it."""
    good = np.ones((3, 2))
    for error, message, bad in _bad_inputs("P"):
        _raises(error, message, lambda b=bad: check_inputs(b, names=("P", "R")))
        _raises(error, message, lambda b=bad: check_inputs(b, None, names=("P", "R")))
        _raises(error, message, lambda b=bad: check_inputs(b, good, names=("P", "R")))
    for error, message, bad in _bad_inputs("R"):
        _raises(error, message, lambda b=bad: check_inputs(good, b, names=("P", "R")))
    # The default names.
    _raises(ValueError, "X has 2 features but Y has 3; both must have the same number of "
            "features.", lambda: check_inputs(good, np.ones((3, 3))))


@pytest.mark.parametrize("namespace", CPU_NAMESPACES)
def test_check_inputs_returns_x_first_and_y_none_when_absent(namespace):
    X = np.arange(6.0).reshape(3, 2)
    Y = -np.arange(4, dtype=np.float32).reshape(2, 2)
    A, B, xp = check_inputs(to_namespace(X, namespace), to_namespace(Y, namespace))
    assert_array_equal(numpy_of(A), X)
    assert_array_equal(numpy_of(B), Y.astype(np.float64))
    assert xp is _xp(namespace)
    A, B, xp = check_inputs(to_namespace(X.astype(np.float32), namespace))
    assert B is None and numpy_of(A).dtype == np.float32
    assert_array_equal(numpy_of(A), X)


# ------------------------------------------------------------ skmetric/_compute/_blocks.py


@pytest.mark.parametrize("namespace", CPU_NAMESPACES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_set_diagonal_in_any_block_keeps_dtype_and_value(namespace, dtype):
    """Hand-computed: D[i, start + i] = value where that column exists, for blocks with
    one, several or no diagonal entry left; the value in D's dtype (0.1 is not a float32
    number), D's dtype kept."""
    xp = _xp(namespace)
    for rows, cols, start in ((5, 4, 3), (1, 6, 2), (3, 3, 2), (3, 8, 2), (2, 3, 3)):
        D = np.arange(float(rows * cols), dtype=dtype).reshape(rows, cols)
        expected = D.copy()
        for i in range(rows):
            if start + i < cols:
                expected[i, start + i] = dtype(0.1)
        out = set_diagonal(to_namespace(D, namespace), start, 0.1, xp)
        assert numpy_of(out).dtype == dtype
        assert_array_equal(numpy_of(out), expected, err_msg=str((rows, cols, start)))


def test_set_diagonal_writes_numpy_blocks_in_place():
    """Documented: NumPy blocks are written in place (``Prepared``'s exact-distance path
    ignores the return value and relies on it)."""
    D = np.zeros((3, 5))
    out = set_diagonal(D, 1, np.inf, _xp("numpy"))
    assert out is D
    assert_array_equal(np.isinf(D), np.eye(3, 5, k=1, dtype=bool))


# ---------------------------------------------------------- skmetric/_compute/_numerics.py


def _double_rounding_trap(dtype, first, e):
    """A value v of ``dtype`` whose v * 2**e is subnormal and rounds differently when
    computed in one step (``np.ldexp``) and in two (2**-first, then the rest): after the
    first step's rounding the second meets an exact tie."""
    sub = -1074 if dtype == np.float64 else -149  # exponent of the smallest subnormal
    t = -e - first
    v = 3 * 2.0**(sub - e) + (2**(t - 1) - 1) * 2.0**(sub + first) + 2.0**(sub + first - 1)
    assert dtype(v) == v  # exactly representable
    return dtype(v)


@pytest.mark.parametrize("namespace", CPU_NAMESPACES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_times_pow2_rounds_once_like_ldexp_within_a_step(namespace, dtype):
    """A scaling that fits one step (|e| <= emax/2: 512 in float64, 64 in float32) is one
    multiplication: exact, or rounded once into the subnormals, as ``np.ldexp``. The
    traps would come out one subnormal larger from steps of 2**(emax/8) or 2**(emax/3)."""
    xp = _xp(namespace)
    emax = 1024 if dtype == np.float64 else 128
    traps = [(emax // 8 - 1, -(emax // 8 - 1) - 23 if dtype == np.float64 else -20),
             (emax // 3, -(emax // 3) - 5)]
    for first, e in traps:
        v = _double_rounding_trap(dtype, first, e)
        A = np.array([v, -v, 1.0, 0.0], dtype=dtype)
        expected = np.ldexp(A, e)
        assert expected[0] == 3 * 2.0**(-1074 if dtype == np.float64 else -149)
        out = numpy_of(num.times_pow2(to_namespace(A, namespace), e, xp))
        assert out.dtype == dtype
        assert_array_equal(out, expected, err_msg=str((first, e)))
        if namespace == "numpy":
            B = A.copy()
            assert num.times_pow2(B, e, xp, inplace=True) is B
            assert_array_equal(B, expected)
    # Random mantissas and exponents, with normal results: exact.
    rng = np.random.default_rng(0)
    A = rng.uniform(-1, 1, 50).astype(dtype)
    for e in (-emax // 2, -37, 1, 5, emax // 2 - 3, emax // 2):
        out = numpy_of(num.times_pow2(to_namespace(A, namespace), e, xp))
        assert_array_equal(out, np.ldexp(A, e))


def test_scalars_of_torch_graphs_are_read_without_autograd_warnings():
    """A peak taken from data that requires a gradient is read outside the graph: torch
    warns when a tensor with requires_grad is converted to a Python float."""
    torch = pytest.importorskip("torch")
    xp = _xp("torch")
    X = (torch.tensor([[3.0, -2.0**300]], dtype=torch.float64) * torch.ones(
        1, 1, dtype=torch.float64, requires_grad=True))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert num.safe_exponent([X], xp, 8) == -301
        s = num.scalar(X[0, 0], xp)
    assert type(s) is float and s == 3.0


@pytest.mark.parametrize("namespace", CPU_NAMESPACES)
def test_row_squares_and_safe_sqrt_of_several_rows_below_one(namespace):
    """Hand-computed, on several rows (per-row sums) and distances in (0, 1)."""
    xp = _xp(namespace)
    X = np.array([[0.5, 0.5], [3.0, -4.0], [0.0, 0.1]])
    sq = numpy_of(num.row_sq_norms(to_namespace(X, namespace), xp, namespace == "numpy"))
    assert sq.shape == (3,)
    assert_array_equal(sq, [0.5, 25.0, 0.1 * 0.1])
    D = np.array([[0.25, 0.0, 1.0], [0.5625, 2.25, 1e-300]])
    out = numpy_of(num.safe_sqrt(to_namespace(D, namespace), xp))
    assert_array_equal(out, [[0.5, 0.0, 1.0], [0.75, 1.5, 1e-150]])
