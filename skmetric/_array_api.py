"""Array API helpers: one code path for NumPy, torch, CuPy and array-api-strict arrays.

Inputs that are not array API objects (lists, pandas frames) are read as NumPy arrays, so
NumPy in gives NumPy out, a torch tensor in gives a torch tensor out on the same device.
"""

import numpy as np
from array_api_compat import (
    array_namespace,
    device,
    is_array_api_obj,
    is_cupy_array,
    is_numpy_namespace,
    is_torch_array,
    is_torch_namespace,
)

__all__ = [
    "array_namespace",
    "device",
    "foreign_namespace",
    "from_numpy",
    "is_numpy_namespace",
    "is_torch_namespace",
    "resolve_torch_device",
    "to_host",
    "to_numpy",
]


def foreign_namespace(X):
    """The namespace of ``X`` when it is a non-NumPy array API array, else None."""
    if isinstance(X, np.ndarray) or not is_array_api_obj(X):
        return None
    return array_namespace(X)


def to_numpy(a):
    """A NumPy copy (or view) of an array of any namespace, fetched from the device."""
    if isinstance(a, np.ndarray):
        return a
    if is_torch_array(a):
        return a.detach().cpu().numpy()
    if is_cupy_array(a):
        return a.get()
    return np.asarray(a)


def from_numpy(a, xp, dev=None):
    """The NumPy array ``a`` as an array of namespace ``xp`` on device ``dev``."""
    if is_numpy_namespace(xp):
        return a
    return xp.asarray(a, device=dev)


def resolve_torch_device(device_name):
    """Map ``device`` ('cpu', 'cuda', 'auto', a torch.device or None) to a torch device.

    Returns None for None (use NumPy) and for 'auto' without a CUDA device (NumPy is then
    the faster path). Raises ValueError for an unknown name or an unavailable CUDA device.
    """
    if device_name is None:
        return None
    from ._optional import import_optional

    bad_name = isinstance(device_name, str) and device_name not in ("cpu", "cuda", "auto") \
        and not device_name.startswith("cuda:")
    bad_object = not isinstance(device_name, str) and \
        type(device_name).__module__.split(".")[0] != "torch"
    if bad_name or bad_object:
        raise ValueError(
            "device must be None, 'cpu', 'cuda', 'cuda:<i>', 'auto' or a torch.device; got "
            f"{device_name!r}."
        )
    torch = import_optional("torch", feature=f"Fitting with device={device_name!r}")
    if device_name == "auto":
        return torch.device("cuda") if torch.cuda.is_available() else None
    dev = torch.device(device_name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device_name!r} was asked for but torch sees no CUDA device; "
            "use device='auto' (GPU when present) or device='cpu'."
        )
    return dev


def to_host(a):
    """Torch tensors as NumPy arrays (for validation); anything else (lists, frames) as is."""
    return to_numpy(a) if is_torch_array(a) else a
