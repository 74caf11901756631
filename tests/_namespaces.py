"""Array namespaces the distance and neighbour tests run on (shared by their test files)."""

import numpy as np
import pytest

# NumPy, array-api-strict and torch on CPU always run; CUDA ones skip cleanly without a GPU.
NAMESPACES = [
    "numpy",
    "array_api_strict",
    "torch",
    pytest.param("torch-cuda", marks=pytest.mark.gpu),
    pytest.param("cupy", marks=pytest.mark.gpu),
]


def to_namespace(a, name):
    """The NumPy array ``a`` as an array of the namespace ``name`` (same dtype)."""
    a = np.asarray(a)
    if name == "numpy":
        return a
    if name == "array_api_strict":
        xs = pytest.importorskip("array_api_strict")
        return xs.asarray(a)
    if name in ("torch", "torch-cuda"):
        torch = pytest.importorskip("torch")
        return torch.as_tensor(a, device="cuda" if name == "torch-cuda" else "cpu")
    cupy = pytest.importorskip("cupy")
    return cupy.asarray(a)


def assert_in_namespace(result, like):
    """``result`` has the array type and device of ``like``."""
    from array_api_compat import device

    assert type(result) is type(like)
    assert device(result) == device(like)


def numpy_of(a):
    from skmetric._array_api import to_numpy

    return to_numpy(a)
