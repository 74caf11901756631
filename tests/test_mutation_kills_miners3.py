"""Tests that kill mutants of the miners that survived ``scripts/mutation.py`` in the sixth
session's re-measurement on today's source: ``DistanceWeightedMiner``'s per-row shift of the
log-weights, checked against a float64 NumPy reference of the inverse-density weights."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from test_mutation_kills_miners import _rotated  # noqa: E402  (unit vector at a distance)

from skmetric.deep.miners import DistanceWeightedMiner  # noqa: E402
from skmetric.deep.miners.distance_weighted import negative_weights  # noqa: E402


def _reference_weights(mat, neg, dim, cutoff, nonzero_loss_cutoff):
    """Row-normalised 1 / q(d) over each row's drawable negatives, in float64 log space."""
    d = np.maximum(mat, cutoff)
    log_w = (2.0 - dim) * np.log(d) - ((dim - 3) / 2) * np.log(1.0 - 0.25 * d**2)
    valid = neg & (mat < nonzero_loss_cutoff) & np.isfinite(log_w)
    out = np.zeros_like(mat)
    for i in np.flatnonzero(valid.any(1)):
        w = np.exp(log_w[i, valid[i]] - log_w[i, valid[i]].max())
        out[i, valid[i]] = w / w.sum()
    return out, valid


def _two_negatives_in_reach(dim):
    """Class 0 (two points) and two negatives at 0.6 and 0.602 from point 0, where the
    log-weights are about 140: exp of twice that overflows float32."""
    points = [np.eye(dim)[0], _rotated(0, 1, 0.1, dim),
              _rotated(0, 2, 0.6, dim), _rotated(0, 3, 0.602, dim)]
    return torch.tensor(np.array(points), dtype=torch.float32), torch.tensor([0, 0, 1, 2])


def test_distance_weighted_weights_with_two_negatives_in_float32_high_dimension():
    """Each row's log-weights are shifted by their own maximum before ``exp``: in float32
    at dimension 256 the weights of a row with two drawable negatives must still equal the
    float64 reference (adding the maximum instead overflows to inf / inf = NaN)."""
    dim = 256
    emb, labels = _two_negatives_in_reach(dim)
    miner = DistanceWeightedMiner()
    mat = miner.dist(emb)
    neg = labels[:, None] != labels[None, :]
    weights, valid = negative_weights(mat, neg, dim, 0.5, 1.4)
    expected, expected_valid = _reference_weights(
        mat.double().numpy(), neg.numpy(), dim, 0.5, 1.4)
    np.testing.assert_array_equal(valid.numpy(), expected_valid)
    assert weights.dtype == torch.float32
    np.testing.assert_allclose(weights.numpy(), expected, rtol=1e-4, atol=1e-30)
    assert expected[0, 2] > 0.1 and expected[0, 3] > 0.1  # both negatives are drawn


def test_distance_weighted_miner_draws_both_negatives_in_float32_high_dimension():
    """The miner's draws for anchor 0 fall on its two negatives, each in some of 40 seeds
    (their reference weights are about 0.68 and 0.32)."""
    emb, labels = _two_negatives_in_reach(256)
    drawn = []
    for seed in range(40):
        a, p, n = DistanceWeightedMiner(random_state=seed)(emb, labels)
        assert a.tolist() == [0, 1] and p.tolist() == [1, 0]
        drawn.append(int(n[0]))
    assert set(drawn) == {2, 3}
