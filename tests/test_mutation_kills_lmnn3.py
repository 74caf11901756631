"""Tests that kill mutants of skmetric/supervised/_lmnn.py (sixth session) that survived
``scripts/mutation.py``: LMNN's L-BFGS driver (its rounds between impostor searches, the
feature scaling, the stopping and "missed impostor" tests, the round budgets), the fit
entry points (``_fit_samples``, ``_choose_strength``), and NCA's batch-mode stopping rule.

The reference for the L-BFGS driver is :func:`_reference_rounds`, the rule documented in
``LMNN``'s docstring and ``_fit_lbfgs``'s comments written as a plain loop: scipy's
``minimize(method="L-BFGS-B")`` called directly on the LMNN objective over a brute-force
candidate set, a brute-force "was an active impostor missed" test, and the round logic.
It evaluates the same objective functions as the module (``_lmnn_loss_grad``, tested
against the triplet-by-triplet definition in ``test_mutation_kills_lmnn.py``), so both take
bit-identical L-BFGS steps and their decisions can be compared exactly, also at the
boundaries of the tolerances.
"""

import re
import warnings

import numpy as np
import pytest
from scipy.optimize import minimize
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier
from sklearn.utils import check_random_state

import skmetric.supervised._lmnn as lmnn_module
from skmetric import LMNN
from skmetric.supervised._lmnn import (
    _lmnn_loss_grad,
    _lmnn_loss_grad_blocked,
    _PriorPenalty,
    _with_prior,
)

ROUND, MAX_ROUND = 25, 200  # the documented round lengths: 25 doubling up to 200


def _sqdist(Z):
    diff = Z[:, None, :] - Z[None, :, :]
    return (diff * diff).sum(-1)


def _brute_targets(Z, y, k):
    """Each sample's k nearest samples of its class (brute force)."""
    D = _sqdist(Z)
    D[y[:, None] != y[None, :]] = np.inf
    np.fill_diagonal(D, np.inf)
    return np.argsort(D, axis=1, kind="stable")[:, :k]


def _pairs_within(Z, y, targets, factor):
    """Pairs (i, l), y_l != y_i, with d_il < factor * (1 + max_j d_ij), sorted by i."""
    D = _sqdist(Z)
    radius = factor * (1.0 + np.take_along_axis(D, targets, 1).max(axis=1))
    return np.nonzero((D < radius[:, None]) & (y[:, None] != y[None, :]))


def _reference_rounds(X, y, L0, *, k=2, reg=0.5, tol=1e-3, min_iter=0, max_iter=1000,
                      strength=0.0, slack=0.5, max_pairs=np.inf):
    """LMNN's documented L-BFGS solver: ``(L, n_iter, converged, messages, histories)``.

    Features are scaled to unit standard deviation (a feature whose std is at most 1e-12
    times max(largest std, 1) counts as constant and keeps its units), L-BFGS-B (ftol =
    gtol = 1e-10) runs in rounds of 25 iterations doubling up to 200, each on the impostor
    candidates found at its start (pairs within (1 + slack) times the margin radius; more
    than ``max_pairs`` of them: the exact objective instead). After a round the impostors
    are searched again: the round missed some when an active pair at its end was not a
    candidate and the exact objective exceeds the round's by more than ``tol`` times
    itself (then the next round is 25 long). It stops after a round that missed none and
    either made no iteration, or lowered the objective over its last 25 iterations by at
    most ``tol`` times the objective there, with ``min_iter`` iterations done; or after
    ``max_iter`` iterations (not converged).
    """
    std = X.std(axis=0)
    scale = np.where(std <= 1e-12 * max(std.max(), 1.0), 1.0, std)
    Xs, L = X / scale, L0 * scale
    targets = _brute_targets(X @ L0.T, y, k)
    prior = (None if strength == 0
             else _PriorPenalty.for_samples(L0, X, strength).rescaled(scale))

    def search(L):
        pairs = _pairs_within(Xs @ L.T, y, targets, 1.0 + slack)
        return None if len(pairs[0]) > max_pairs else pairs

    def objective(L, cand):
        out = (_lmnn_loss_grad_blocked(L, Xs, y, targets, reg) if cand is None
               else _lmnn_loss_grad(L, Xs, targets, *cand, reg))
        return _with_prior(out, prior, L)[:2]

    it, budget, messages, histories = 0, ROUND, [], []
    cand = search(L)
    while True:
        history = []

        def fun(flat, cand=cand, history=history, shape=L.shape):
            loss, grad = objective(flat.reshape(shape), cand)
            if not history:
                history.append(loss)  # the round's starting objective
            return loss, grad.ravel()

        res = minimize(fun, L.ravel(), jac=True, method="L-BFGS-B",
                       callback=_recorder(history),
                       options={"maxiter": min(budget, max_iter - it), "ftol": 1e-10,
                                "gtol": 1e-10})
        it, L = it + res.nit, res.x.reshape(L.shape)
        searched, cand = cand, search(L)
        missed = False
        if searched is not None:
            active = set(zip(*map(list, _pairs_within(Xs @ L.T, y, targets, 1.0)),
                             strict=True))
            missed = cand is None or bool(active - set(zip(*map(list, searched), strict=True)))
            if missed and cand is not None:
                exact = objective(L, cand)[0]
                missed = exact - res.fun > tol * abs(exact)
        histories.append(history)
        window = history[-ROUND - 1:]
        small_gain = window[0] - window[-1] <= tol * abs(window[0])
        done = not missed and (res.nit == 0 or (small_gain and it >= min_iter))
        messages.append(f"[LMNN] impostors re-searched at iteration {it}: " + (
            "active ones were missed, next round on the new set" if missed
            else "none missed, converged" if done else "none missed, still improving"))
        if done or it >= max_iter:
            return L / scale, it, done, messages, histories
        budget = ROUND if missed else min(2 * budget, MAX_ROUND)


def _recorder(history):
    def callback(intermediate_result):  # scipy passes the OptimizeResult by this name
        history.append(float(intermediate_result.fun))
    return callback


def _data(seed=0, n=40, units=(1.0, 10.0, 0.1)):
    """Three overlapping classes in len(units) features of different units."""
    rng = np.random.RandomState(seed)
    y = np.arange(n) % 3
    X = rng.standard_normal((n, len(units))) + 0.8 * y[:, None]
    return X * np.asarray(units), y


def _fit(X, y, capsys, **params):
    """LMNN's plain fit (init identity, 2 neighbours) and its re-search lines and iteration
    rows."""
    params = {"init": "identity", "n_neighbors": 2, "min_iter": 0, "prior_strength": 0,
              **params}
    lmnn = LMNN(verbose=True, **params)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        lmnn.fit(X, y)
    out = capsys.readouterr().out
    lines = [s for s in out.splitlines() if "re-searched" in s]
    rows = re.findall(r"^\[LMNN\]\s+(\d+)/\d+\s+(\S+)\s", out, re.M)
    warned = any(issubclass(w.category, ConvergenceWarning)
                 and "did not converge" in str(w.message) for w in caught)
    return lmnn, lines, rows, warned


def _check_against_reference(X, y, capsys, *, slack=0.5, max_pairs=np.inf, **params):
    ref_L, ref_iter, ref_conv, ref_lines, histories = _reference_rounds(
        X, y, np.eye(X.shape[1]), slack=slack, max_pairs=max_pairs,
        **{k: v for k, v in params.items() if k != "k"})
    fit_params = {{"reg": "regularization", "tol": "convergence_tol",
                   "strength": "prior_strength", "k": "n_neighbors"}.get(k, k): v
                  for k, v in params.items()}
    lmnn, lines, rows, warned = _fit(X, y, capsys, **fit_params)
    assert lines == ref_lines
    assert lmnn.n_iter_ == ref_iter
    assert warned == (not ref_conv)  # verbose: a ConvergenceWarning when not converged
    np.testing.assert_allclose(lmnn.components_, ref_L, rtol=1e-12, atol=1e-14)
    # One row per iteration, numbered across rounds, with the objective after it.
    expected = [f"{v:.6e}" for h in histories for v in h[1:]]
    assert [int(r[0]) for r in rows] == list(range(1, ref_iter + 1))
    assert [r[1] for r in rows] == expected
    return ref_lines, histories


@pytest.mark.parametrize("params", [
    {"tol": 1e-3},  # a few rounds, growing budgets
    {"tol": 1e-3, "min_iter": 60},
    {"tol": 1e-3, "min_iter": 55},  # converges exactly when min_iter is reached
    {"tol": 0.0, "max_iter": 30},  # the last round is cut to the 5 iterations left
    {"tol": 0.0, "max_iter": 25},  # stops exactly at max_iter after one round
    {"tol": 1e-6, "max_iter": 400},
    {"tol": 1e-4, "strength": 0.05},
])
def test_lbfgs_rounds_equal_the_reference(params, capsys):
    """The solver's rounds, iterates, verbose lines and convergence flag equal the
    reference's, on three overlapping classes in features of different units."""
    X, y = _data(0)
    lines, _ = _check_against_reference(X, y, capsys, **params)
    assert len(lines) >= 1


@pytest.mark.parametrize("params", [
    {"tol": 1e-6},  # misses that count: rounds restart at 25
    {"tol": 1e-6, "strength": 0.05},  # the exact objective includes the prior
    {"tol": 0.3},  # misses that add too little to count
    {"tol": 1e-3, "reg": 0.9},
])
def test_lbfgs_rounds_with_missed_impostors_equal_the_reference(params, capsys,
                                                                  monkeypatch):
    """Candidates without slack: impostors enter during a round and are missed; the
    missed/counted decision and the round that follows equal the reference's."""
    monkeypatch.setattr(lmnn_module, "_SLACK", 0.0)
    X, y = _data(1)
    lines, _ = _check_against_reference(X, y, capsys, slack=0.0, **params)
    assert any("were missed" in s for s in lines) or params["tol"] == 0.3


def test_lbfgs_rounds_are_capped_at_200_iterations(capsys):
    """Rounds that never converge on their own: the budget doubles 25, 50, 100, 200 and
    then stays at 200 (the documented cap), equal to the reference. Fifteen features in
    units from 1e-2 to 1e2 and tol=0 make L-BFGS run two full rounds of 200."""
    rng = np.random.RandomState(6)
    X, y = _data(6, 60, tuple(10.0 ** rng.uniform(-2, 2, 15)))
    _, histories = _check_against_reference(X, y, capsys, tol=0.0)
    lengths = [len(h) - 1 for h in histories]
    # Two consecutive rounds cut at MAX_ROUND: the second one would have gone on.
    assert any(a == b == MAX_ROUND for a, b in zip(lengths[:-1], lengths[1:], strict=True)), lengths
    assert max(lengths) == MAX_ROUND


@pytest.mark.parametrize("max_pairs", [0, 200])
def test_lbfgs_rounds_on_the_blocked_evaluation_equal_the_reference(max_pairs, capsys,
                                                                    monkeypatch):
    """More candidates than max_pairs: the round evaluates the exact objective by blocks
    and cannot miss an impostor (0: always so; 200: only while the classes overlap)."""
    monkeypatch.setattr(lmnn_module, "_MAX_PAIRS", max_pairs)
    X, y = _data(2)
    _check_against_reference(X, y, capsys, max_pairs=max_pairs, tol=1e-4)


def _column_at_the_threshold(X):
    """A column (two nonzero entries) whose std in ``[X, column]`` is exactly 1e-12 times
    max(largest std, 1), found by walking its entries float by float."""
    n = len(X)
    c = 1e-12 * np.sqrt(n / 2)
    for _ in range(64):
        column = np.zeros(n)
        column[:2] = c, -c
        std = np.column_stack([X, column]).std(axis=0)
        if std[-1] == 1e-12 * max(std.max(), 1.0):
            return column
        c = np.nextafter(c, np.inf if std[-1] < 1e-12 * max(std.max(), 1.0) else 0.0)
    raise AssertionError("no column at the threshold")


@pytest.mark.parametrize("column", ["constant", "negligible", "threshold", "tiny"])
def test_lbfgs_feature_scaling_of_near_constant_features_equals_the_reference(column, capsys):
    """A fourth feature that counts as constant (std exactly 0; std 1e-13 times the
    largest, 1e6; std exactly 1e-12 times max(largest, 1)) keeps its units; one just above
    the threshold (std 1.5e-12 when the largest std is below 1) is scaled to unit variance
    like the others."""
    X, y = _data(3, units=(1.0, 1.0, 1.0))
    extra = np.random.RandomState(4).standard_normal(len(X))
    if column == "constant":
        X = np.column_stack([X, np.ones(len(X))])
    elif column == "negligible":
        X = np.column_stack([X * 1e6, extra * 1e-7])
    elif column == "threshold":
        X = 0.5 * X / X.std(axis=0)
        X = np.column_stack([X, _column_at_the_threshold(X)])
    else:
        X = np.column_stack([0.5 * X / X.std(axis=0), extra / extra.std() * 1.5e-12])
    _check_against_reference(X, y, capsys, tol=1e-3)


def _boundary_tol(gain, base):
    """The float ``t`` with ``t * base == gain`` exactly, the smallest with ``gain <= t *
    base`` (one float less gives ``gain > t * base``)."""
    t = gain / base
    near = [t]
    for step in (0.0, 1.0):
        for _ in range(8):
            near.append(np.nextafter(near[-1] if step else near[0], step))
    exact = [c for c in near if c * base == gain]
    assert exact, "no tolerance lands exactly on the boundary"
    t = min(exact)
    assert gain > np.nextafter(t, 0.0) * base
    return t


@pytest.mark.parametrize("params, at_round", [
    ({}, 1),  # a round of 25 iterations: all 26 objectives are the window
    ({"strength": 0.05}, 2),  # a round of 50: the window is its last 26 objectives
])
def test_lbfgs_stops_exactly_at_the_small_gain_boundary(params, at_round, capsys):
    """The round's gain over its last 25 iterations, ``w[0] - w[-1]``, compared with
    ``tol * |w[0]|`` (at most: small): with tol on the boundary the fit stops after that
    round; one float lower, it goes on."""
    X, y = _data(0)
    *_, histories = _reference_rounds(X, y, np.eye(3), tol=1e-4, **params)
    window = histories[at_round][-ROUND - 1:]
    tol = _boundary_tol(window[0] - window[-1], abs(window[0]))
    stop_at = sum(len(h) - 1 for h in histories[:at_round + 1])
    _, histories = _check_against_reference(X, y, capsys, tol=tol, **params)
    assert len(histories) == at_round + 1
    assert sum(len(h) - 1 for h in histories) == stop_at
    _, histories = _check_against_reference(X, y, capsys, tol=np.nextafter(tol, 0.0),
                                            **params)
    assert len(histories) > at_round + 1


def test_lbfgs_missed_impostors_that_add_nothing_do_not_count(capsys):
    """Only the pull term (regularization=1): impostors found active after a round add
    exactly 0 to the objective, which is not more than tol=0 times it, so the round
    counts as having missed none."""
    X, y = _data(0)
    lines, _ = _check_against_reference(X, y, capsys, reg=1.0, tol=0.0, max_iter=20)
    assert lines[0].endswith("at iteration 11: none missed, still improving")


def test_lbfgs_stops_at_once_on_a_flat_objective(capsys):
    """No active hinge and no pull (regularization=0): the objective is 0 with a zero
    gradient, L-BFGS makes no iteration, and the fit stops converged although min_iter
    is 10."""
    rng = np.random.RandomState(5)
    y = np.arange(20) % 2
    X = rng.standard_normal((20, 3)) + 100.0 * y[:, None]
    lines, _ = _check_against_reference(X, y, capsys, reg=0.0, min_iter=10, tol=1e-3)
    assert lines == ["[LMNN] impostors re-searched at iteration 0: none missed, converged"]


def _knn_score(Z_train, y_train, Z_valid, y_valid):
    """The documented inner score, by scikit-learn: 3-NN accuracy plus half the purity."""
    knn = KNeighborsClassifier(n_neighbors=3).fit(Z_train, y_train)
    neighbours = knn.kneighbors(Z_valid, return_distance=False)
    purity = np.mean(y_train[neighbours] == y_valid[:, None])
    return knn.score(Z_valid, y_valid) + 0.5 * purity


def _auto_reference(X, y, params, random_state):
    """'auto' written from its documentation: 3 stratified shuffled inner folds (seeded by
    random_state, 0 when None), on each a fit with the prior itself (inf) and the plain
    fit (0), scored on the held-out fold (scikit-learn's 3-NN); the best mean wins, ties
    to inf."""
    seed = check_random_state(0 if random_state is None else random_state).randint(
        np.iinfo(np.int32).max)
    folds = StratifiedKFold(3, shuffle=True, random_state=seed).split(X, y)
    scores = {np.inf: 0.0, 0.0: 0.0}
    for train, valid in folds:
        for strength in scores:
            L = LMNN(prior_strength=strength, random_state=random_state,
                     **params).fit(X[train], y[train]).components_
            scores[strength] += _knn_score(X[train] @ L.T, y[train], X[valid] @ L.T,
                                           y[valid]) / 3
    return (np.inf if scores[np.inf] >= scores[0.0] - 1e-12 else 0.0), scores


@pytest.mark.parametrize("units, random_state", [
    ((1.0, 1.0, 1.0), None),
    ((1.0, 1.0, 1.0), 7),
    ((1.0, 30.0, 0.05), 0),
])
def test_auto_prior_strength_equals_the_inner_cv_reference(units, random_state):
    """prior_strength='auto': the chosen strength, every candidate's mean inner score and
    the final map equal the reference inner cross-validation's."""
    X, y = _data(8, n=36, units=units)
    params = {"init": "identity", "n_neighbors": 2, "max_iter": 30, "min_iter": 0}
    lmnn = LMNN(prior_strength="auto", random_state=random_state, **params).fit(X, y)
    best, scores = _auto_reference(X, y, params, random_state)
    assert lmnn.prior_strength_ == best
    assert list(lmnn.prior_scores_) == [np.inf, 0.0]
    assert lmnn.prior_scores_ == pytest.approx(scores, rel=1e-12)
    plain = LMNN(prior_strength=best, random_state=random_state, **params).fit(X, y)
    np.testing.assert_allclose(lmnn.components_, plain.components_, rtol=1e-12)
    assert lmnn.objective_ == pytest.approx(plain.objective_, rel=1e-12)


def test_auto_prior_strength_picks_both_candidates():
    """The reference picks the prior on one dataset and the plain fit on the other, and
    so does 'auto' (a choice fixed to one of them would fail one case)."""
    params = {"init": "identity", "n_neighbors": 2, "max_iter": 30, "min_iter": 0}
    chosen = set()
    for units in [(1.0, 1.0, 1.0), (1.0, 30.0, 0.05)]:
        X, y = _data(8, n=36, units=units)
        best, _ = _auto_reference(X, y, params, 0)
        assert LMNN(prior_strength="auto", random_state=0, **params).fit(X, y).prior_strength_ \
            == best
        chosen.add(best)
    assert chosen == {np.inf, 0.0}


@pytest.mark.parametrize("smallest, cross_validated", [(4, False), (5, True)])
def test_auto_prior_strength_needs_n_neighbors_plus_one_per_class_in_each_inner_fold(
        smallest, cross_validated):
    """With n_neighbors=2, every inner training fold (2/3 of a class, rounded down) must
    hold 3 samples of each class: 5 suffice, 4 do not (then the plain objective, no scores)."""
    rng = np.random.RandomState(9)
    y = np.repeat([0, 1, 2], [smallest, 8, 8])
    X = rng.standard_normal((len(y), 3)) + y[:, None]
    lmnn = LMNN(init="identity", n_neighbors=2, max_iter=20, prior_strength="auto",
                random_state=0).fit(X, y)
    assert list(lmnn.prior_scores_) == ([np.inf, 0.0] if cross_validated else [])
    if not cross_validated:
        assert lmnn.prior_scores_ == {}  # documented: empty, not None
        assert lmnn.prior_strength_ == 0.0 and isinstance(lmnn.prior_strength_, float)
        plain = LMNN(init="identity", n_neighbors=2, max_iter=20, prior_strength=0).fit(X, y)
        np.testing.assert_array_equal(lmnn.components_, plain.components_)


# NCA's batch mode stops when an epoch changes the summed objective by at most
# tol * max(|total|, 1) (the rule of tests/test_mutation_kills_nca.py's Adam reference).

def _nca_stop_epoch(totals, tol):
    """The epoch at which the documented rule stops, given each epoch's total."""
    for epoch in range(1, len(totals)):
        if abs(totals[epoch - 1] - totals[epoch]) <= tol * max(abs(totals[epoch]), 1.0):
            return epoch + 1
    return len(totals)


def test_nca_batch_mode_stops_exactly_at_the_tolerance_boundary():
    """With tol exactly on the relative change between epochs 2 and 3 (|t2 - t3| = tol *
    max(|t3|, 1) in floats), batch mode stops after epoch 3; one float lower, later. The
    epoch totals are NCA's own (objective_ after k epochs with tol=0), checked against
    torch's Adam on the objective written from its definition."""
    from test_mutation_kills_nca import _adam_reference, _wine

    from skmetric import NCA
    X, y = _wine()
    L0 = 0.5 * np.eye(4, X.shape[1])
    params = {"init": L0, "batch_size": 20, "random_state": 1}
    totals = [NCA(max_iter=k, tol=0.0, **params).fit(X, y).objective_ for k in (1, 2, 3, 4)]
    _, ref = _adam_reference(X, y, L0, 20, epochs=4, seed=1)
    np.testing.assert_allclose(totals, ref, rtol=1e-10)
    tol = _boundary_tol(abs(totals[1] - totals[2]), max(abs(totals[2]), 1.0))
    assert _nca_stop_epoch(totals, tol) == 3
    assert _nca_stop_epoch(totals, np.nextafter(tol, 0.0)) == 4
    assert NCA(max_iter=6, tol=tol, **params).fit(X, y).n_iter_ == 3
    assert NCA(max_iter=6, tol=np.nextafter(tol, 0.0), **params).fit(X, y).n_iter_ > 3


@pytest.mark.parametrize("factor", [0.6, 0.8, 1.25])
def test_nca_batch_mode_stopping_rule_with_a_total_below_one(factor):
    """Eight interleaved points of two classes in one feature: every epoch's total is
    below 1 in magnitude, so the change is compared with tol itself (max(|total|, 1) = 1).
    The stopping epoch equals the rule's on the reference Adam totals."""
    from test_mutation_kills_nca import _adam_reference

    from skmetric import NCA
    X = np.arange(8.0)[:, None]
    y = np.arange(8) % 2
    L0 = np.array([[1.2]])
    _, totals = _adam_reference(X, y, L0, 4, epochs=8, seed=2)
    assert all(abs(t) < 0.5 for t in totals)
    tol = factor * abs(totals[0] - totals[1])  # around the first change, the smallest
    expected = _nca_stop_epoch(totals, tol)
    nca = NCA(init=L0, batch_size=4, max_iter=8, tol=tol, random_state=2).fit(X, y)
    assert nca.n_iter_ == expected


def test_k_alias_warns_with_its_message_and_fits_as_n_neighbors():
    """The deprecated k warns (FutureWarning, the message in full) and fits exactly as
    n_neighbors=k."""
    X, y = _data(0, n=24)
    message = r"^LMNN's parameter k was renamed n_neighbors; k will be removed\.$"
    with pytest.warns(FutureWarning, match=message):
        lmnn = LMNN(k=2, init="identity", max_iter=5).fit(X, y)
    plain = LMNN(n_neighbors=2, init="identity", max_iter=5).fit(X, y)
    np.testing.assert_array_equal(lmnn.components_, plain.components_)


def test_defaults_are_metric_learns():
    """The defaults of metric-learn 0.7's LMNN (its documented signature, written out
    here), plus skmetric's own solver, device and prior (prior_strength=0.3: a pull toward
    the initial map, see benchmarks/README.md; 0 is metric-learn's objective)."""
    metric_learn_defaults = {
        "init": "auto", "n_neighbors": 3, "min_iter": 50, "max_iter": 1000,
        "learn_rate": 1e-7, "regularization": 0.5, "convergence_tol": 0.001,
        "verbose": False, "preprocessor": None, "n_components": None, "random_state": None,
        "k": "deprecated"}
    params = LMNN().get_params()
    assert params == {**metric_learn_defaults, "solver": "lbfgs", "device": None,
                      "prior_strength": 0.3}
    assert all(type(params[k]) is type(v) for k, v in metric_learn_defaults.items())


def test_default_fit_is_silent(capsys):
    X, y = _data(0, n=24)
    LMNN(init="identity", n_neighbors=2, max_iter=5).fit(X, y)
    assert capsys.readouterr().out == ""


def test_preprocessor_resolves_sample_indices():
    """X given as indices into ``preprocessor`` fits exactly as the indexed samples."""
    X, y = _data(0, n=24)
    order = np.random.RandomState(0).permutation(len(X))
    lmnn = LMNN(preprocessor=X, init="identity", n_neighbors=2, max_iter=30)
    assert lmnn.get_params()["preprocessor"] is X
    lmnn.fit(order, y[order])
    plain = LMNN(init="identity", n_neighbors=2, max_iter=30).fit(X[order], y[order])
    np.testing.assert_array_equal(lmnn.components_, plain.components_)


def test_impostor_pairs_equal_brute_force_in_their_index_dtype():
    """``_find_impostors`` returns the pairs within the margin radius (brute force), as
    int32 on NumPy (the many pairs in half the memory, as documented) and int64 on torch."""
    import torch

    from skmetric.supervised._lmnn import _find_impostors
    X, y = _data(0)
    targets = _brute_targets(X, y, 2)
    expected = _pairs_within(X, y, targets, 1.5)
    for xp_X, xp_y, xp_t, dtype in [
            (X, y, targets, np.int32),
            (torch.as_tensor(X), torch.as_tensor(y), torch.as_tensor(targets), torch.int64)]:
        i, l = _find_impostors(xp_X, xp_y, xp_t, 1.5)
        assert i.dtype == dtype and l.dtype == dtype
        np.testing.assert_array_equal(np.asarray(i), expected[0])
        np.testing.assert_array_equal(np.asarray(l), expected[1])


def test_verbose_summary_line(capsys):
    """The closing line: the final objective, the iterations and the elapsed seconds of
    the fit (between 0 and the wall time around it)."""
    import time

    X, y = _data(0, n=24)
    lmnn = LMNN(init="identity", n_neighbors=2, max_iter=40, verbose=True)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # 40 iterations: not converged
        lmnn.fit(X, y)
    wall = time.perf_counter() - start
    out = capsys.readouterr().out
    found = re.findall(r"^\[LMNN\] objective (\S+), (\d+) iterations in (\S+)s$", out, re.M)
    assert len(found) == 1, out
    objective, n_iter, seconds = found[0]
    assert objective == f"{lmnn.objective_:.6e}" and int(n_iter) == lmnn.n_iter_
    assert 0.0 <= float(seconds) <= wall + 0.01


def test_stuck_warning_names_lmnn_and_spares_the_prior_map():
    """Samples of magnitude 1e20 with an identity start: the plain objective is flat,
    LMNN stops at once and says so with its name; with prior_strength=inf the map is the
    prior (the start) by definition, with no such warning."""
    X, y = _data(0, n=24)
    X = X * 1e20
    message = r"^LMNN stopped at its initialisation: "
    with pytest.warns(ConvergenceWarning, match=message):
        assert LMNN(init="identity", n_neighbors=2).fit(X, y).n_iter_ == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lmnn = LMNN(init="identity", n_neighbors=2, prior_strength=np.inf).fit(X, y)
    assert lmnn.n_iter_ == 0
    np.testing.assert_array_equal(lmnn.components_, np.eye(X.shape[1]))


@pytest.mark.parametrize("strength", [0.05, 3.0])
def test_nca_batch_mode_prior_equals_adam_on_the_penalised_objective(strength):
    """Batch mode with a prior: every step equals torch's Adam on the NCA objective plus
    the batch's share of ``prior_strength * n_samples * ||L - L0||^2``; the epoch totals
    (``objective_``) include it. Batches of 16 of 48 samples and a last one of 5 of 37."""
    from test_mutation_kills_nca import _adam_reference

    from skmetric import NCA
    for n, batch in [(48, 16), (37, 16)]:
        X, y = _data(3, n=n, units=(1.0, 2.0, 0.5, 1.5))
        L0 = 0.7 * np.eye(3, 4)
        nca = NCA(init=L0, batch_size=batch, max_iter=4, tol=0.0, random_state=4,
                  prior_strength=strength).fit(X, y)
        ref, totals = _adam_reference(X, y, L0, batch, epochs=4, seed=4, strength=strength)
        assert nca.prior_strength_ == strength
        np.testing.assert_allclose(nca.components_, ref, rtol=1e-9, atol=1e-12)
        assert nca.objective_ == pytest.approx(totals[-1], rel=1e-10)
        assert nca.n_iter_ == 4


def test_nca_batch_mode_convergence_warning_message():
    """Verbose batch mode that runs out of epochs says so, with what to do."""
    from skmetric import NCA
    X, y = _data(3, n=24)
    message = (r"^NCA did not converge in max_iter=2 epochs; increase max_iter or tol\.$")
    with pytest.warns(ConvergenceWarning, match=message):
        NCA(init=np.eye(3), batch_size=8, max_iter=2, tol=0.0, random_state=0,
            prior_strength=0.0, verbose=True).fit(X, y)
