"""Learned metrics moved toward their prior along the geodesic between the two.

The better optimum of a metric learner's objective often generalises worse on small data
than a metric closer to its prior (Euclidean distance, ITML's ``M0``). LFDA and ITML take
a ``prior_strength``: :func:`geodesic_map` moves their learned map to the point of the
affine-invariant geodesic from the prior metric to the learned one at a fraction
``1 / (1 + strength)`` of the way (0: the learned map, infinity: the prior). Every point of
the path comes from one fit and one SVD, so 'auto' (the choice of
:func:`~skmetric._compute._inner_cv.choose_strength` among :data:`GEODESIC_STRENGTHS` for
ITML, between the two ends for LFDA) costs one fit per inner fold.
"""

import math

from scipy import linalg

# Candidates of ITML's 'auto', strongest first: geodesic fractions 0 (the prior), 1/4,
# 1/2, 3/4, 1.
GEODESIC_STRENGTHS = (math.inf, 3.0, 1.0, 1.0 / 3.0, 0.0)


def geodesic_path(L, L0, strengths):
    """``[(strength, geodesic_map(L, L0, strength)), ...]`` for each strength.

    One pseudo-inverse and one SVD serve the whole path (the maps are those of
    :func:`geodesic_map`, computed by the same operations).
    """
    basis = _geodesic_basis(L, L0) if any(s != 0 for s in strengths) else None
    return [(s, L if s == 0 else _geodesic_point(*basis, s)) for s in strengths]


def scaled_euclidean_path(L, strengths):
    """``geodesic_path(L, ||L||_2 * I, strengths)``, from one SVD of ``L``.

    The prior is Euclidean distance times the map's largest gain: scaled with ``L``, it
    keeps a learner's equivariance (its map on ``s * X`` being its map on X divided by s)
    at every strength. ``L L0^+ = L / ||L||_2`` has the singular vectors of ``L``, so the
    SVD that gives the scale gives the whole path; no SVD when every strength is 0.
    A zero map has no gain to scale by: its prior is plain Euclidean distance (``L0 = I``).
    """
    if all(s == 0 for s in strengths):
        return [(s, L) for s in strengths]
    _, gains, Vt = linalg.svd(L, full_matrices=False)
    top = gains[0] if gains[0] > 0 else 1.0
    return [(s, L if s == 0 else _geodesic_point(gains / top, top * Vt, s)) for s in strengths]


def geodesic_map(L, L0, strength):
    """A map whose metric lies on the geodesic from ``L0^T L0`` to ``L^T L``.

    With ``W = L L0^+ = U S V^T`` (the learned map expressed on the prior's output), the map
    ``diag(S^t) V^T L0`` with ``t = 1 / (1 + strength)`` has the metric
    ``M0^(1/2) (M0^(-1/2) M M0^(-1/2))^t M0^(1/2)``, the affine-invariant (and LogDet)
    geodesic between the prior metric ``M0`` and the learned ``M``, when ``L0`` is square
    and invertible. ``t = 1`` gives ``L`` up to a rotation (the same distances), ``t = 0``
    the prior's distances on the row space of ``W`` (all of them when ``W`` is square and
    invertible).

    Parameters
    ----------
    L : ndarray of shape (n_components, n_features)
        The learned map.
    L0 : ndarray of shape (n_prior, n_features)
        The prior map (the identity for Euclidean distances).
    strength : float
        Non-negative; 0 returns ``L`` itself, ``np.inf`` the prior.
    """
    if strength == 0:
        return L
    return _geodesic_point(*_geodesic_basis(L, L0), strength)


def _geodesic_basis(L, L0):
    """``(S, V^T L0)`` of the SVD ``L L0^+ = U S V^T``: every point of the geodesic."""
    _, s, Vt = linalg.svd(L @ linalg.pinv(L0), full_matrices=False)
    return s, Vt @ L0


def _geodesic_point(s, basis, strength):
    t = 0.0 if math.isinf(strength) else 1.0 / (1.0 + strength)
    return (s**t)[:, None] * basis
