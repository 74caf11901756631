"""One checker of array input for every array library (NumPy, torch, CuPy, array-api-strict).

Array API arrays keep their namespace and device; anything else (lists, pandas frames) is
read as a NumPy array. The checks and their messages are the same for every caller:
the distance engine, the retrieval metrics and the learners' torch/CuPy paths.
"""

import numpy as np
import scipy.sparse as sp
from array_api_compat import array_namespace, device, is_array_api_obj

__all__ = ["check_input", "check_inputs"]


def check_input(X, name="X", *, n_features=None, owner=None, ndim=2):
    """``X`` validated: numeric, real, non-empty, finite, of floating dtype.

    Parameters
    ----------
    X : array or array-like
        An Array API array (NumPy, torch, CuPy, ...) stays in its namespace and on its
        device; anything else is read with ``np.asarray``.
    name : str, default="X"
        How messages call ``X``.
    n_features : int, default=None
        The number of features ``X`` must have (e.g. the fitted ``n_features_in_``).
    owner : str, default=None
        The estimator that expects ``n_features`` features, named in the message.
    ndim : int or None, default=2
        The number of dimensions; None accepts any number from 1 up, features along the
        last axis.

    Returns
    -------
    X : array
        Integers and booleans become float64; floating arrays keep their dtype.
    """
    X = _as_array(X, name)
    xp = array_namespace(X)
    _check_shape(X, name, ndim)
    if n_features is not None and X.shape[-1] != n_features:
        if owner is None:
            raise ValueError(
                f"{name} has shape {tuple(X.shape)}; expected {n_features} features along "
                "its last axis."
            )
        raise ValueError(
            f"{name} has {X.shape[-1]} features, but {owner} was fitted with {n_features} "
            "features; pass samples with the features seen in fit."
        )
    return _as_finite_float(X, xp, _float_dtype(xp, [(name, X.dtype)]), name)


def check_inputs(X, Y=None, *, names=("X", "Y")):
    """``X`` and ``Y`` (None allowed) checked as :func:`check_input`, and together.

    They must come from one array library and device and have the same number of
    features; mixed floating dtypes are promoted (float32 with float64 gives float64).

    Returns
    -------
    X, Y, xp
        The floating arrays (``Y`` None when it was None) and their namespace.
    """
    X = _as_array(X, names[0])
    Y = None if Y is None else _as_array(Y, names[1])
    pairs = [(names[0], X)] if Y is None else [(names[0], X), (names[1], Y)]
    xp = _common_namespace(pairs)
    for name, A in pairs:
        _check_shape(A, name, 2)
    if Y is not None and Y.shape[1] != X.shape[1]:
        raise ValueError(
            f"{names[0]} has {X.shape[1]} features but {names[1]} has {Y.shape[1]}; both "
            "must have the same number of features."
        )
    dtype = _float_dtype(xp, [(name, A.dtype) for name, A in pairs])
    checked = [_as_finite_float(A, xp, dtype, name) for name, A in pairs]
    return checked[0], (None if Y is None else checked[1]), xp


def _as_array(X, name):
    """``X`` itself if an Array API array, else ``np.asarray(X)``; sparse is refused."""
    if sp.issparse(X):
        raise TypeError(
            f"{name} is a sparse matrix; skmetric needs dense arrays. Call {name}.toarray() "
            "first."
        )
    if is_array_api_obj(X):
        return X
    X = np.asarray(X)
    if X.dtype.kind not in "biufc":
        try:
            X = X.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name} must be numeric; got dtype {X.dtype}.") from exc
    return X


def _common_namespace(pairs):
    """The one namespace of the arrays; a TypeError when libraries or devices differ."""
    try:
        xp = array_namespace(*(A for _, A in pairs))
    except TypeError as exc:
        got = " and ".join(f"{name} a {type(A).__module__}.{type(A).__name__}"
                           for name, A in pairs)
        raise TypeError(
            f"{' and '.join(n for n, _ in pairs)} must come from the same array library "
            f"(e.g. both NumPy or both torch); got {got}. Convert one of them."
        ) from exc
    devices = [device(A) for _, A in pairs]
    if any(d != devices[0] for d in devices[1:]):
        got = " and ".join(f"{name} on {d}" for (name, _), d in zip(pairs, devices,
                                                                      strict=True))
        raise TypeError(
            f"{' and '.join(n for n, _ in pairs)} must live on the same device; got {got}. "
            "Move one of them, e.g. Y.to(X.device) for torch."
        )
    return xp


def _check_shape(X, name, ndim):
    if (ndim is not None and X.ndim != ndim) or X.ndim == 0:
        if ndim != 2:
            raise ValueError(
                f"Expected a {ndim or 'at least 1'}-D array for {name}, features along its "
                f"last axis; got {X.ndim} dimension(s), shape {tuple(X.shape)}."
            )
        raise ValueError(
            f"Expected a 2-D array for {name} of shape (n_samples, n_features); got "
            f"{X.ndim} dimension(s), shape {tuple(X.shape)}. Reshape with "
            f"{name}.reshape(-1, 1) for a single feature or {name}.reshape(1, -1) for a "
            "single sample."
        )
    if any(s == 0 for s in X.shape):
        raise ValueError(
            f"{name} is empty (shape {tuple(X.shape)}); at least 1 sample and 1 feature "
            "are required."
        )


def _float_dtype(xp, named_dtypes):
    """The floating dtype the arrays are computed in: their floating dtypes promoted,
    float64 when any is integral or boolean."""
    floats = []
    for name, dt in named_dtypes:
        if xp.isdtype(dt, "complex floating"):
            raise ValueError(
                f"Complex data is not supported ({name} has dtype {dt}); pass real-valued "
                "arrays."
            )
        if not xp.isdtype(dt, ("real floating", "integral", "bool")):
            raise TypeError(f"{name} must be numeric; got dtype {dt}.")
        if xp.isdtype(dt, "real floating"):
            floats.append(dt)
    if len(floats) < len(named_dtypes):
        floats.append(xp.float64)
    return xp.result_type(*floats)


def _as_finite_float(A, xp, dtype, name):
    if A.dtype != dtype:
        A = xp.astype(A, dtype)
    if not bool(xp.all(xp.isfinite(A))):
        raise ValueError(
            f"{name} contains NaN or infinity. Remove or impute those values (e.g. with "
            "sklearn.impute.SimpleImputer) first."
        )
    return A
