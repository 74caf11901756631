"""LMNN's default (issue 21): ``prior_strength=0.3``, a pull toward the initial map
(1 in the seventh session; 0.3 since the eighth, see ``benchmarks/README.md``).

The default fit is checked against the objective written independently of the module
(``_objective`` of ``test_mutation_kills_lmnn2``: every triplet in torch, gradient by
autograd, the documented penalty ``strength * n * min_c trace((L - c L0) C (L - c L0)^T)``)
at strength 0.3 with ``L0`` the identity (``init='auto'`` with as many components as
features and fewer classes than features): the reference gradient descent on it, and the
L-BFGS fit's ``objective_``. ``prior_strength=0`` stays metric-learn's plain objective.
"""

import numpy as np
import pytest
from sklearn.datasets import load_wine
from sklearn.preprocessing import MinMaxScaler
from test_mutation_kills_lmnn2 import _data, _objective, _reference_gd

from skmetric import LMNN
from skmetric.supervised._lmnn import _select_target_neighbors

STRENGTH = 0.3


def test_the_default_strength_is_0_3():
    assert LMNN().get_params()["prior_strength"] == STRENGTH
    X, y = _data(0)
    assert LMNN(n_neighbors=2, max_iter=5).fit(X, y).prior_strength_ == STRENGTH


def test_default_gd_fit_is_the_reference_descent_on_the_objective_plus_the_default_prior():
    """solver='gd' at the defaults follows metric-learn's step rule on the objective plus
    the strength-0.3 penalty toward L0 = I, step for step; the plain descent goes elsewhere."""
    X, y = _data(2)
    targets = _select_target_neighbors(X, y, 2)
    params = dict(n_neighbors=2, solver="gd", learn_rate=1e-2, min_iter=2, max_iter=40,
                  convergence_tol=1e-3)
    L, n_iter, seen = _reference_gd(np.eye(3), X, y, targets, 0.5, 1e-2, 2, 40, 1e-3,
                                    prior=(np.eye(3), STRENGTH))
    plain = _reference_gd(np.eye(3), X, y, targets, 0.5, 1e-2, 2, 40, 1e-3)[0]
    assert not np.allclose(L, plain, rtol=1e-3)
    lmnn = LMNN(**params).fit(X, y)
    assert lmnn.n_iter_ == n_iter
    np.testing.assert_allclose(lmnn.components_, L, rtol=1e-9, atol=1e-12)
    assert lmnn.objective_ == pytest.approx(seen[-1], rel=1e-10)
    zero = LMNN(**params, prior_strength=0).fit(X, y)
    np.testing.assert_allclose(zero.components_, plain, rtol=1e-9, atol=1e-12)


def test_default_lbfgs_fit_minimises_the_objective_plus_the_default_prior():
    """On MinMax-scaled wine (the protocol's preprocessing), the default L-BFGS fit ends
    at least as low on the penalised objective as the reference descent does, its
    ``objective_`` is that objective at ``components_``, and the plain fit is worse on
    it (it ignores the pull)."""
    X, y = load_wine(return_X_y=True)
    X = MinMaxScaler().fit_transform(X)[::2]
    y = y[::2]
    targets = _select_target_neighbors(X, y, 3)
    prior = (np.eye(X.shape[1]), STRENGTH)
    _, _, seen = _reference_gd(np.eye(X.shape[1]), X, y, targets, 0.5, 1e-3, 100, 100, 0.0,
                               prior=prior)
    lmnn = LMNN(max_iter=200).fit(X, y)
    exact = _objective(lmnn.components_, X, y, targets, 0.5, prior)[0]
    assert lmnn.objective_ == pytest.approx(exact, rel=1e-10)
    assert lmnn.objective_ <= seen[-1] * (1 + 1e-6)
    plain = LMNN(max_iter=200, prior_strength=0).fit(X, y)
    assert _objective(plain.components_, X, y, targets, 0.5, prior)[0] > 1.01 * exact
