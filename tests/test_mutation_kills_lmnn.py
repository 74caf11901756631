"""Tests that kill mutants of skmetric/_lmnn.py's objective that survived
``scripts/mutation.py``.

The reference is the LMNN objective summed triplet by triplet (Weinberger & Saul):
``reg * sum_ij d_ij + (1 - reg) * sum_ijl [1 + d_ij - d_il]_+`` over target pairs (i, j)
and differently labelled l, with the active triplets those of a strictly positive hinge.
Its gradient is checked with torch autograd of that sum, independent of the Laplacian
form the implementation uses.
"""

import itertools

import numpy as np
import pytest
from sklearn.datasets import make_blobs

import skmetric.supervised._lmnn as lmnn_module
from skmetric.supervised._lmnn import (
    _lmnn_loss_grad,
    _lmnn_loss_grad_blocked,
    _missed_impostors,
    _pair_distances,
    _select_target_neighbors,
)

torch = pytest.importorskip("torch")


def _brute_force(L, X, y, targets, reg):
    """Objective, gradient (autograd) and active-triplet count, triplet by triplet."""
    Lt = torch.as_tensor(L, dtype=torch.float64).clone().requires_grad_(True)
    Z = torch.as_tensor(X, dtype=torch.float64) @ Lt.T
    loss, active = 0.0, 0
    for i, j in itertools.product(range(X.shape[0]), range(targets.shape[1])):
        d_ij = ((Z[i] - Z[targets[i, j]]) ** 2).sum()
        loss = loss + reg * d_ij
        for l in np.flatnonzero(y != y[i]):
            hinge = 1.0 + d_ij - ((Z[i] - Z[l]) ** 2).sum()
            if hinge.item() > 0:
                loss = loss + (1 - reg) * hinge
                active += 1
    loss.backward()
    return loss.item(), Lt.grad.numpy(), active


def _all_pairs(y):
    """Every differently labelled (anchor, impostor) pair, sorted by anchor."""
    i, l = np.nonzero(y[:, None] != y[None, :])
    return i.astype(np.int32), l.astype(np.int32)


def _tie_grid():
    """Integer points where some hinges are exactly 0: anchor (0, 0), target (1, 0) at
    d = 1, impostor (1, 1) at d = 2 = 1 + d: a triplet on the margin, not active."""
    X = np.array([[0, 0], [1, 0], [1, 1], [3, 0], [3, 1], [0, 2], [4, 2], [2, 3]], float)
    y = np.array([0, 0, 1, 1, 1, 0, 1, 0])
    return X, y


def _check(L, X, y, targets, reg):
    loss, grad, active = _brute_force(L, X, y, targets, reg)
    for got in (_lmnn_loss_grad(L, X, targets, *_all_pairs(y), reg),
                _lmnn_loss_grad_blocked(L, X, y, targets, reg)):
        assert got[0] == pytest.approx(loss, rel=1e-12, abs=1e-12)
        np.testing.assert_allclose(got[1], grad, rtol=1e-10, atol=1e-10)
        assert got[2] == active


def test_triplets_on_the_margin_are_not_active():
    X, y = _tie_grid()
    targets = _select_target_neighbors(X, y, 1)
    # The grid has a hinge of exactly 0; counting it as active would change the count and
    # the gradient.
    Z = X
    ties = sum(1 for i in range(len(X)) for l in np.flatnonzero(y != y[i])
               if 1 + ((Z[i] - Z[targets[i, 0]]) ** 2).sum() == ((Z[i] - Z[l]) ** 2).sum())
    assert ties > 0
    _check(np.eye(2), X, y, targets, 0.5)


@pytest.mark.parametrize("reg", [0.0, 0.3, 1.0])
def test_objective_gradient_and_active_count_against_the_triplet_sum(reg):
    X, y = make_blobs(n_samples=24, centers=3, n_features=3, cluster_std=2.5, random_state=2)
    L = np.random.RandomState(0).standard_normal((2, 3))
    targets = _select_target_neighbors(X, y, 2)
    _check(L, X, y, targets, reg)


def test_blocked_evaluation_counts_active_triplets_over_every_block(monkeypatch):
    X, y = make_blobs(n_samples=30, centers=3, n_features=3, cluster_std=2.5, random_state=4)
    L = np.random.RandomState(1).standard_normal((3, 3))
    targets = _select_target_neighbors(X, y, 2)
    monkeypatch.setattr(lmnn_module, "_BLOCK_ELEMENTS", 4 * 30)  # 4 anchors per block
    monkeypatch.setattr(lmnn_module, "_PAIR_CHUNK", 7)  # 7 impostor pairs per chunk
    _check(L, X, y, targets, 0.4)


def _active_pairs(Z, y, targets):
    """Brute force: differently labelled (i, l) with d_il < 1 + max_j d_ij (strict)."""
    radii = 1 + np.max(((Z[:, None] - Z[targets]) ** 2).sum(-1), axis=1)
    D = ((Z[:, None] - Z[None]) ** 2).sum(-1)
    return set(zip(*np.nonzero((D < radii[:, None]) & (y[:, None] != y[None])), strict=True))


def _pairs(pairs):
    pairs = sorted(pairs)
    return (np.array([p[0] for p in pairs], dtype=np.int32),
            np.array([p[1] for p in pairs], dtype=np.int32))


@pytest.mark.parametrize("integer", [False, True])
def test_missed_impostors_against_brute_force(integer):
    """Drop each candidate pair in turn from the pairs searched: the search missed an
    active pair exactly when the dropped pair is active. Integer points put some pairs
    exactly on the radius (not active); 15 points in 2-D make pair keys i * n + l differ
    from i * dim + l."""
    rs = np.random.RandomState(3)
    Z = rs.randint(0, 4, (15, 2)).astype(float) if integer else rs.standard_normal((15, 2))
    y = np.arange(15) % 3
    targets = _select_target_neighbors(Z, y, 2)
    active = _active_pairs(Z, y, targets)
    candidates = _all_pairs(y)
    everything = set(zip(*candidates, strict=True))
    assert 0 < len(active) < len(everything)
    if integer:
        radii = 1 + np.max(((Z[:, None] - Z[targets]) ** 2).sum(-1), axis=1)
        assert any(((Z[i] - Z[l]) ** 2).sum() == radii[i] for i, l in everything)
    assert not _missed_impostors(Z, targets, candidates, candidates)
    for pair in sorted(everything):
        searched = _pairs(everything - {pair})
        assert _missed_impostors(Z, targets, searched, candidates) == (pair in active), pair
    # Nothing searched: missed iff anything is active; searched all active ones: none.
    empty = (np.zeros(0, np.int32), np.zeros(0, np.int32))
    assert _missed_impostors(Z, targets, empty, candidates)
    assert not _missed_impostors(Z, targets, _pairs(active), candidates)
    # Exactly one active candidate, searched or not.
    one = _pairs({min(active)})
    assert not _missed_impostors(Z, targets, one, one)
    assert _missed_impostors(Z, targets, _pairs(everything - {min(active)}), one)
    # No active candidate at all: nothing can be missed, even with nothing searched.
    idle = _pairs(everything - active)
    assert not _missed_impostors(Z, targets, empty, idle)


@pytest.mark.parametrize("order", ["sorted", "shuffled", "shuffled_first_smallest"])
@pytest.mark.parametrize("share", [1.0, 0.02])
def test_pair_distances_against_brute_force(order, share, monkeypatch):
    """Squared distances of pairs, many (read off dense blocks when sorted by anchor) or
    few (gathered), sorted by anchor or not (then always gathered), in small blocks."""
    rs = np.random.RandomState(5)
    Z = rs.standard_normal((40, 3))
    i, l = np.nonzero(rs.rand(40, 40) < share)
    if order != "sorted":
        perm = rs.permutation(len(i))
        i, l = i[perm], l[perm]
        if order == "shuffled_first_smallest":  # a[0] is the least anchor, rest unsorted
            first = np.argmin(i)
            i[[0, first]], l[[0, first]] = i[[first, 0]], l[[first, 0]]
    i, l = i.astype(np.int32), l.astype(np.int32)
    expected = ((Z[i] - Z[l]) ** 2).sum(1)
    monkeypatch.setattr(lmnn_module, "_BLOCK_ELEMENTS", 7 * 40)  # 7 anchors per block
    np.testing.assert_allclose(_pair_distances(Z, i, l), expected, rtol=1e-10, atol=1e-12)
