"""Kill tests of NCA's prior_strength code (mutation testing, issue #22): ``NCA._strength``,
``NCA._fit_samples`` and ``NCA._fit_lbfgs``.

References are independent of the implementation: scikit-learn's
NeighborhoodComponentsAnalysis for the plain fit, scipy's L-BFGS-B on the penalised NCA
objective written from its definition, hand values and the full messages.
"""

import re
import time
import warnings

import numpy as np
import pytest
from scipy.optimize import minimize
from sklearn.datasets import load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.neighbors import NeighborhoodComponentsAnalysis
from sklearn.preprocessing import MinMaxScaler

import skmetric._compute._inner_cv as inner_cv
from skmetric import NCA
from skmetric._compute._inner_cv import PATH_TOL


def _wine():
    X, y = load_wine(return_X_y=True)
    return MinMaxScaler().fit_transform(X), y


def _penalised_nca(L, X, y, L0, strength):
    """``-sum_i sum_{j in class(i), j != i} p_ij + strength * n * ||L - L0||_F^2``, the
    objective of NCA's docstring, with ``p_ij`` the softmax of ``-||L x_i - L x_j||^2``."""
    Z = X @ L.T
    d = np.sum((Z[:, None, :] - Z[None, :, :]) ** 2, axis=-1)
    np.fill_diagonal(d, np.inf)
    d_min = d.min(axis=1, keepdims=True)
    p = np.exp(-(d - d_min))
    p /= p.sum(axis=1, keepdims=True)
    same = y[:, None] == y[None, :]
    return -float(np.sum(p * same)) + strength * X.shape[0] * float(np.sum((L - L0) ** 2))


def test_explicit_strength_minimises_the_penalised_objective_scaled_by_n_samples():
    """scipy's L-BFGS-B on the objective written from its definition (n != n_features, so
    a penalty scaled by the number of features would move the optimum)."""
    X, y = _wine()
    X, y = X[::4, :3], y[::4]  # 45 samples, 3 features
    L0 = np.array([[1.0, 0.2, 0.0], [0.0, 1.0, 0.3]])
    strength = 1e-2
    nca = NCA(init=L0, prior_strength=strength, tol=1e-10, max_iter=500).fit(X, y)
    ref = minimize(lambda v: _penalised_nca(v.reshape(L0.shape), X, y, L0, strength),
                   L0.ravel(), method="L-BFGS-B",
                   options={"ftol": 1e-14, "gtol": 1e-10, "maxiter": 2000})
    assert nca.prior_strength_ == strength
    np.testing.assert_allclose(nca.components_, ref.x.reshape(L0.shape), atol=2e-4)
    assert nca.objective_ == pytest.approx(ref.fun, rel=1e-7)
    assert nca.objective_ == pytest.approx(
        _penalised_nca(nca.components_, X, y, L0, strength), rel=1e-10)


def test_classes_of_two_samples_are_enough_and_auto_falls_back_to_the_plain_fit():
    """Every class has two samples: NCA fits (a sample is pulled to its one neighbour of
    class), but no stratified inner fold can be made, so 'auto' means strength 0."""
    rng = np.random.RandomState(0)
    X = rng.standard_normal((6, 4))
    y = np.array([0, 0, 1, 1, 2, 2])
    auto = NCA(random_state=0).fit(X, y)
    assert auto.prior_strength_ == 0.0
    ref = NeighborhoodComponentsAnalysis(random_state=0).fit(X, y)
    np.testing.assert_allclose(auto.components_, ref.components_, rtol=1e-3, atol=1e-3)


def test_classes_of_one_sample_are_refused_with_the_full_message():
    X = np.arange(8.0).reshape(4, 2)
    message = ("NCA needs at least one class with two or more samples: a sample is pulled "
               "towards the other samples of its class, and every class in y has a single "
               "sample.")
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        NCA(prior_strength=0).fit(X, [0, 1, 2, 3])


def test_auto_init_uses_the_labels_like_scikit_learns():
    """n_components=2 <= n_classes - 1: both 'auto' inits are LDA, which needs y."""
    X, y = _wine()
    ours = NCA(n_components=2, prior_strength=0, random_state=0).fit(X, y)
    ref = NeighborhoodComponentsAnalysis(n_components=2, random_state=0).fit(X, y)
    np.testing.assert_allclose(np.abs(ours.components_), np.abs(ref.components_),
                               rtol=1e-3, atol=1e-3)


def test_auto_inner_fits_run_at_a_user_tolerance_above_the_path_tolerance(monkeypatch):
    X, y = _wine()
    tols = []
    real = inner_cv.minimize_lbfgs

    def spy(objective, x0, backend, **kwargs):
        tols.append(kwargs.get("tol"))
        return real(objective, x0, backend, **kwargs)

    monkeypatch.setattr(inner_cv, "minimize_lbfgs", spy)
    assert 1e-2 > PATH_TOL
    NCA(tol=1e-2, random_state=1).fit(X, y)
    assert tols and all(tol == 1e-2 for tol in tols)


def _auto_line(capsys, **params):
    X, y = _wine()
    nca = NCA(verbose=True, **params).fit(X, y)
    lines = [line for line in capsys.readouterr().out.splitlines()
             if line.startswith("[NCA] prior_strength 'auto': ")]
    assert len(lines) == 1
    return lines[0], nca


def test_verbose_auto_prints_each_strengths_score_and_the_choice(capsys):
    line, nca = _auto_line(capsys, random_state=1)
    pattern = (r"\[NCA\] prior_strength 'auto': inf: (\d\.\d{4}), 0\.01: (\d\.\d{4}), "
               r"0\.001: (\d\.\d{4}), 0\.0001: (\d\.\d{4}), 0: (\d\.\d{4}) -> (\S+)")
    match = re.fullmatch(pattern, line)
    assert match is not None, line
    assert float(match.group(6)) == nca.prior_strength_


def test_auto_inner_folds_are_seeded_by_random_state(capsys):
    """The default init on wine is the identity, whatever random_state: only the inner
    folds depend on it, and so do the printed held-out scores."""
    seeded, _ = _auto_line(capsys, random_state=1)
    unseeded, _ = _auto_line(capsys, random_state=None)
    assert seeded.split(" -> ")[0] != unseeded.split(" -> ")[0]


def test_verbose_training_time_is_the_fits_duration(capsys):
    X, y = _wine()
    before = time.perf_counter()
    NCA(prior_strength=1e-3, verbose=True, max_iter=20).fit(X, y)
    elapsed = time.perf_counter() - before
    found = re.findall(r"^\[NCA\] training took (\d+\.\d\d)s$", capsys.readouterr().out,
                       flags=re.MULTILINE)
    assert len(found) == 1
    assert 0 <= float(found[0]) <= elapsed + 0.01


def test_fit_stuck_at_its_initialisation_warns_with_the_learners_name():
    X, y = _wine()
    with pytest.warns(ConvergenceWarning) as record:
        NCA(init="identity", prior_strength=0).fit(X * 1e5, y)
    messages = [str(w.message) for w in record]
    assert any(m.startswith("NCA stopped at its initialisation: the squared distances")
               for m in messages), messages


def test_max_iter_warning_only_when_verbose_with_the_full_message(capsys):
    X, y = _wine()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        NCA(prior_strength=1e-3, max_iter=2).fit(X, y)
    message = "NCA did not converge in max_iter=2 iterations; increase max_iter or tol."
    with pytest.warns(ConvergenceWarning, match=f"^{re.escape(message)}$"):
        NCA(prior_strength=1e-3, max_iter=2, verbose=True).fit(X, y)
