"""Exact power-of-two scaling, overflow-free row norms and a safe square root, on any
Array API namespace: the numerical pieces the distance engine is built from."""

import math

import numpy as np

from .._array_api import is_torch_namespace

# float32 / float64: (largest binary exponent, the exponent range left unscaled).
_EXPONENTS = {4: (128, 31), 8: (1024, 255)}


def safe_exponent(arrays, xp, itemsize):
    """e such that the arrays times 2**e have their largest magnitude in [0.5, 1), or 0
    when that magnitude m is already within 2**±(emax/4) (float64: 2**±255). Either way
    no squared norm of fewer than 2**(emax/2) features can overflow, and an entry down
    to about 2**-(emax/4) times m keeps a normal square."""
    peak = max(scalar(xp.max(xp.abs(A)), xp) for A in arrays)
    bound = 2.0 ** _EXPONENTS[itemsize][1]
    if peak == 0 or 1 / bound <= peak <= bound:
        return 0
    return -math.frexp(peak)[1]


def times_pow2(A, e, xp, inplace=False):
    """A * 2**e, exactly (barring over/underflow of the result), in steps that each fit
    the dtype's range; in place when ``inplace`` and A is NumPy."""
    emax = _EXPONENTS[4 if A.dtype == xp.float32 else 8][0]
    inplace = inplace and isinstance(A, np.ndarray)
    while e != 0:
        step = max(-(emax // 2), min(emax // 2, e))
        if inplace:
            with np.errstate(over="ignore"):  # inf exactly where the true value overflows
                A *= 2.0 ** step
        else:
            A = A * 2.0 ** step
        e -= step
    return A


def constant(a, xp):
    """``a`` cut from torch's autograd graph (a constant shift, e.g. the centre, changes no
    distance, so no gradient flows through it); other namespaces as is."""
    return a.detach() if is_torch_namespace(xp) else a


def scalar(a, xp):
    """The 0-d array ``a`` as a Python float (outside any autograd graph)."""
    return float(constant(a, xp))


def _peak_scaled(X, xp):
    """``X``'s rows divided by their largest magnitudes, and those magnitudes (a column).

    The scaled rows' squares can neither overflow nor underflow (as in ``hypot``); zero rows
    stay zero.
    """
    peak = constant(xp.max(xp.abs(X), axis=1, keepdims=True), xp)
    return X / xp.where(peak == 0, xp.ones_like(peak), peak), peak


def row_norms(X, xp):
    """Euclidean norms of the rows of ``X``, right at any magnitude (no overflow in squares)."""
    unit, peak = _peak_scaled(X, xp)
    return peak[:, 0] * xp.sqrt(xp.sum(unit * unit, axis=1))


def unit_rows(X, xp):
    """The rows of ``X`` scaled to norm 1; zero rows stay zero, so their cosine distance
    to anything is 1 (as scikit-learn)."""
    X, _ = _peak_scaled(X, xp)
    norms = xp.sqrt(xp.sum(X * X, axis=1, keepdims=True))
    return X / xp.where(norms == 0, xp.ones_like(norms), norms)


def row_sq_norms(X, xp, numpy):
    """Squared Euclidean norms of the rows (einsum for NumPy: no temporary)."""
    if numpy:
        return np.einsum("ij,ij->i", X, X)
    return xp.sum(X * X, axis=1)


def safe_sqrt(D, xp):
    """Elementwise square root of the non-negative D whose (sub)gradient at 0 is 0, not
    inf (as ``torch.cdist``): autograd through a zero distance stays finite."""
    positive = D > 0
    return xp.where(positive, xp.sqrt(xp.where(positive, D, xp.ones_like(D))),
                    xp.zeros_like(D))


def cos_from_difference(sq_diff, u_nonzero, v_nonzero, xp):
    """Cosine distances from the squared differences of unit rows u, v: ``||u - v||² / 2``
    (= ``1 - u·v``), accurate to about eps over the angle where ``1 - u·v`` loses all its
    digits to nearly parallel rows; clipped to [0, 2]. A zero row (indicator 0, where a
    unit row has 1) stays zero in the normalisation and is at distance exactly 1."""
    both = (u_nonzero * v_nonzero) > 0
    return xp.where(both, xp.clip(sq_diff / 2, min=0.0, max=2.0), xp.ones_like(sq_diff))
