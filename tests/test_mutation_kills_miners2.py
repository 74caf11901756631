"""Tests that kill mutants of the angular and HDC miners (fourth session) that survived
``scripts/mutation.py``: ``AngularMiner(normalize=True)`` (with and without a reference
set), the strict angle threshold and the defaults, checked against
pytorch-metric-learning and a triplet-by-triplet brute force."""

import itertools
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pml_miners = pytest.importorskip("pytorch_metric_learning.miners")

import torch.nn.functional as F  # noqa: E402

from skmetric.deep.miners import AngularMiner, HDCMiner  # noqa: E402


def _batch(seed, n, dim=4, n_classes=3):
    g = torch.Generator().manual_seed(seed)
    # Norms from 0.2 to 3.2: normalising (or not) changes which triplets pass.
    emb = torch.randn(n, dim, generator=g, dtype=torch.float64) * (
        0.2 + 3 * torch.rand(n, 1, generator=g, dtype=torch.float64))
    return emb, torch.randint(0, n_classes, (n,), generator=g)


def _angular_brute_force(emb, labels, ref, ref_labels, angle):
    """Triplets (a, p, n), a from the batch, p and n from the reference, whose angle at n,
    ``atan(|a - p| / (2 |n - (a + p) / 2|))``, exceeds ``angle`` (as a set)."""
    emb, ref = emb.numpy(), ref.numpy()
    same_batch = ref_labels is None
    ref_labels = labels if same_batch else ref_labels
    out = set()
    for a, p, n in itertools.product(range(len(emb)), range(len(ref)), range(len(ref))):
        if (labels[a] != ref_labels[p] or labels[a] == ref_labels[n]
                or (same_batch and a == p)):
            continue
        ap = np.linalg.norm(emb[a] - ref[p])
        nc = np.linalg.norm(ref[n] - (emb[a] + ref[p]) / 2)
        if math.atan(ap / (2 * nc)) > angle:
            out.add((a, p, n))
    return out


def _as_set(triplets):
    return set(zip(*(t.tolist() for t in triplets), strict=True))


@pytest.mark.parametrize("with_ref", [False, True])
def test_angular_miner_normalize_mines_the_unit_vectors(with_ref):
    """normalize=True equals mining the row-normalised embeddings (and reference):
    against brute force, and PML's miner (which never normalises) given unit vectors."""
    emb, labels = _batch(0, 14)
    ref, ref_labels = _batch(1, 11) if with_ref else (None, None)
    kwargs = {"ref_emb": ref, "ref_labels": ref_labels} if with_ref else {}
    got = AngularMiner(0.6, normalize=True)(emb, labels, **kwargs)
    unit = F.normalize(emb, dim=1)
    unit_ref = F.normalize(ref, dim=1) if with_ref else None
    expected = _angular_brute_force(unit, labels, unit if unit_ref is None else unit_ref,
                                    ref_labels, 0.6)
    raw = _angular_brute_force(emb, labels, emb if ref is None else ref, ref_labels, 0.6)
    assert expected and expected != raw  # normalising matters on this batch
    assert _as_set(got) == expected
    kwargs_unit = {"ref_emb": unit_ref, "ref_labels": ref_labels} if with_ref else {}
    theirs = pml_miners.AngularMiner(math.degrees(0.6))(unit, labels, **kwargs_unit)
    for x, y in zip(got, theirs, strict=True):
        assert torch.equal(x, y)


def _same_as_pml(ours, theirs):
    """Equal index tuples (and order) on three batches, with and without a reference set."""
    for seed in range(3):
        emb, labels = _batch(seed, 16)
        ref, ref_labels = _batch(seed + 10, 9)
        for kwargs in ({}, {"ref_emb": ref, "ref_labels": ref_labels}):
            got = ours(emb, labels, **kwargs)
            assert len(got[0]) > 0
            for x, y in zip(got, theirs(emb, labels, **kwargs), strict=True):
                assert torch.equal(x, y)


def test_angular_miner_defaults_equal_pml():
    """Default angle 20 degrees (in radians), no normalisation: PML's AngularMiner()."""
    miner = AngularMiner()
    assert miner.angle == math.radians(20) and miner.normalize is False
    _same_as_pml(miner, pml_miners.AngularMiner())


def test_angular_miner_threshold_is_strict():
    """A triplet whose angle equals ``angle`` exactly is not mined (PML: ``angles >
    angle``); one a float below it is."""
    emb = torch.tensor([[0.0, 0.0], [2.0, 0.0], [1.0, 1.0]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 1])
    # The angle as the miner (and PML) computes it, with pairwise_distance's eps.
    a, p, n = emb[[0, 1]], emb[[1, 0]], emb[[2, 2]]
    angles = torch.atan(F.pairwise_distance(a, p) / (2 * F.pairwise_distance(n, (a + p) / 2)))
    at = float(angles.max())
    assert len(AngularMiner(at)(emb, labels)[0]) == int((angles > at).sum())
    theirs = pml_miners.AngularMiner(math.degrees(at))
    if theirs.angle == at:  # np.radians(degrees(at)) round-trips: compare with PML too
        assert len(theirs(emb, labels)[0]) == len(AngularMiner(at)(emb, labels)[0])
    below = math.nextafter(at, 0.0)
    assert len(AngularMiner(below)(emb, labels)[0]) == int((angles > below).sum()) > 0


def test_hdc_miner_defaults_equal_pml():
    """Default 50 %, Euclidean distance on normalised embeddings: PML's HDCMiner()."""
    miner = HDCMiner()
    assert (miner.filter_percentage, miner.normalize) == (0.5, True)
    _same_as_pml(miner, pml_miners.HDCMiner())
