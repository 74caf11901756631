"""One rule for where a learner computes: the namespace, device and dtype of its ``fit``.

Every learner with a ``device`` parameter calls :func:`resolve_backend` once, at the top of
``fit``, and computes on the :class:`Backend` it returns:

- ``device=None``: the input's own namespace and device (a torch tensor on ``cuda:1``
  stays there), NumPy for anything else (lists, frames, NumPy arrays);
- ``device='cpu'``, ``'cuda'``, ``'cuda:<i>'`` or a ``torch.device``: torch on that device;
- ``device='auto'``: torch on CUDA when a GPU is present, else NumPy.
"""

from dataclasses import dataclass

import numpy as np
from array_api_compat import array_namespace, is_numpy_namespace

from .._array_api import device as array_device
from .._array_api import foreign_namespace, resolve_torch_device, to_host, to_numpy

__all__ = ["Backend", "resolve_backend", "to_host", "to_numpy"]


@dataclass(frozen=True)
class Backend:
    """Where a fit computes: Array API namespace ``xp``, ``device`` and float ``dtype``.

    ``device`` is None for NumPy. ``dtype`` is the floating dtype of the computation, in
    ``xp``'s own dtype objects.
    """

    xp: object
    device: object
    dtype: object

    @property
    def is_numpy(self):
        """Whether the computation runs in NumPy (on the host)."""
        return is_numpy_namespace(self.xp)

    @property
    def name(self):
        """Short name of the namespace ('numpy', 'torch', 'cupy'...), for messages."""
        return self.xp.__name__.split(".")[-1]

    def asarray(self, a):
        """``a`` (a NumPy array or any array) on this backend; floats in ``dtype``."""
        if self.is_numpy or foreign_namespace(a) not in (None, self.xp):
            a = to_numpy(a)  # across namespaces through the host
        if self.is_numpy:
            return a.astype(self.dtype, copy=False) if a.dtype.kind == "f" else a
        if isinstance(a, np.ndarray) and not a.flags.writeable:
            a = a.copy()  # torch refuses read-only buffers
        out = self.xp.asarray(a, device=self.device)
        if self.xp.isdtype(out.dtype, "real floating") and out.dtype != self.dtype:
            out = self.xp.astype(out, self.dtype)
        return out


def resolve_backend(X, device=None, *, dtype=None, namespaces=None, learner="This learner"):
    """The :class:`Backend` a fit on ``X`` computes on, given the learner's ``device``.

    Parameters
    ----------
    X : array-like
        The training input; a non-NumPy array API array (torch, CuPy) is computed in its
        own namespace and on its own device when ``device`` is None.
    device : {None, 'cpu', 'cuda', 'cuda:<i>', 'auto'} or torch.device, default=None
        The learner's ``device`` parameter (see the module docstring).
    dtype : {None, 'float32', 'float64'}, default=None
        Floating dtype of the computation; None keeps X's own floating dtype (float64 for
        integer or non-array input).
    namespaces : tuple of str, default=None
        The namespaces the learner's code supports (e.g. ``('numpy', 'torch')``); None
        accepts any Array API namespace.
    learner : str, default='This learner'
        Name used in the error message for an unsupported namespace.

    Returns
    -------
    backend : Backend
    """
    torch_device = resolve_torch_device(device)
    if torch_device is not None:
        import torch  # importable: resolve_torch_device imported it

        xp, dev = array_namespace(torch.empty(0)), torch_device
    elif device is None and foreign_namespace(X) is not None:
        xp, dev = foreign_namespace(X), array_device(X)
    else:
        xp, dev = array_namespace(np.empty(0)), None
    backend = Backend(xp, dev, None)
    if namespaces is not None and backend.name not in namespaces:
        raise TypeError(
            f"{learner} computes in {' or '.join(namespaces)}; got X as a {backend.name} "
            "array. Convert it to a NumPy array (or a torch tensor) first."
        )
    return Backend(xp, dev, _float_dtype(xp, X, dtype))


def _float_dtype(xp, X, dtype):
    """``xp``'s dtype object for ``dtype``, or X's floating dtype (float64 by default)."""
    if dtype is None:
        in_dtype = getattr(X, "dtype", None)
        name = "float32" if in_dtype is not None and str(in_dtype).endswith("float32") \
            else "float64"
    else:
        name = str(np.dtype(dtype))
    return getattr(xp, name)
