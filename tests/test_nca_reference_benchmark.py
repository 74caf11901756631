"""benchmarks/nca_reference.py's re-implementation of pyDML's NCA, checked on its own.

Its figures stand only if each SGD step is pyDML's: ``L += eta * dp_i/dL`` for the samples
in the order of ``RandomState(28).permutation``, ``eta`` starting at 0.3 and not divided by
the number of samples. The per-sample gradient is checked against skmetric's NCA gradient
(a separate implementation) and a central finite difference of ``p_i``; a whole epoch
against the same steps taken with skmetric's gradient.
"""

import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_wine
from sklearn.preprocessing import MinMaxScaler

from skmetric.supervised._nca import _nca_loss_grad

sys.path.append(str(Path(__file__).resolve().parents[1] / "benchmarks"))

import nca_reference  # noqa: E402


def _data(n=60):
    X, y = load_wine(return_X_y=True)
    keep = np.random.default_rng(0).choice(len(y), n, replace=False)
    return MinMaxScaler().fit_transform(X[keep])[:, :5], y[keep]


def _map(d, seed=1):
    return np.eye(d) + 0.4 * np.random.default_rng(seed).standard_normal((d, d))


@pytest.mark.parametrize("i", [0, 17, 59])
def test_sample_gradient_is_the_gradient_of_p_i(i):
    X, y = _data()
    L = _map(X.shape[1])
    p_i, grad = nca_reference.sample_gradient(L, X, y, i, scalar=np.float64)
    loss, ref = _nca_loss_grad(L, X, y, rows=np.array([i]))
    assert p_i == pytest.approx(-loss, rel=1e-12)
    assert 0.0 < p_i < 1.0
    np.testing.assert_allclose(grad, -ref, rtol=1e-9, atol=1e-12)
    # An independent reference: the central difference of p_i along random directions.
    rng = np.random.default_rng(i)
    for _ in range(3):
        V = rng.standard_normal(L.shape)
        h = 1e-6
        fd = (nca_reference.sample_gradient(L + h * V, X, y, i, scalar=np.float64)[0]
              - nca_reference.sample_gradient(L - h * V, X, y, i, scalar=np.float64)[0]) / (2 * h)
        assert np.sum(grad * V) == pytest.approx(fd, rel=1e-6, abs=1e-10)
    # pyDML's float32 scalars change it by rounding only.
    np.testing.assert_allclose(nca_reference.sample_gradient(L, X, y, i)[1], grad,
                               rtol=1e-5, atol=1e-7 * np.max(np.abs(grad)))


def test_expected_success_is_the_nca_objective():
    X, y = _data()
    L = _map(X.shape[1])
    success = nca_reference.expected_success(L, X, y)
    assert success.dtype == np.float32  # pyDML accumulates it in a C float
    assert float(success) == pytest.approx(-_nca_loss_grad(L, X, y)[0], rel=1e-6)


def test_one_epoch_is_pydmls_steps_in_its_shuffled_order():
    X, y = _data()
    params = {**nca_reference.PYDML_NCA, "max_iter": 1}
    L, epochs, eta = nca_reference.fit_pydml_nca(X, y, params)
    # The same steps with skmetric's gradient: from the identity, eta0 = 0.3 undivided, the
    # samples in the order of np.random.seed(28); np.random.permutation(n).
    ref = np.eye(X.shape[1])
    for i in np.random.RandomState(28).permutation(len(y)):
        ref -= 0.3 * _nca_loss_grad(ref, X, y, rows=np.array([i]))[1]
    assert epochs == 1
    np.testing.assert_allclose(L, ref, rtol=1e-5, atol=1e-7)
    assert not np.allclose(L, np.eye(X.shape[1]), atol=1e-2)  # the epoch moved the map
    # The epoch's success rose above 0 (pyDML's start): eta grew by learn_inc, in float32.
    assert eta == float(np.float32(np.float32(0.3) * np.float32(1.01)))


def test_the_fit_raises_the_expected_success():
    X, y = _data()
    L, epochs, _ = nca_reference.fit_pydml_nca(X, y, {**nca_reference.PYDML_NCA,
                                                      "max_iter": 5})
    assert 1 <= epochs <= 5
    eye = np.eye(X.shape[1])
    assert nca_reference.expected_success(L, X, y) > nca_reference.expected_success(eye, X, y)
