"""Bugs found off the happy path of the weakly supervised learners and their constraints.

Each test failed before its fix: pair draws that missed distinct pairs near the number the
labels allow, MLKR on targets in small units (and complex ones), inverse-covariance maps of
samples without variance, pair labels given as objects or strings, 1-D non-integer indices
into a preprocessor, rate-constrained threshold calibration on pairs of one kind, LSML's
complex weights, pair predictions in another convention than the fit labels (scikit-learn's
'accuracy' silently wrong on 0 / 1 labels), calibration_params checked only after the fit,
and RCA_Supervised refusing a single class.
"""

import warnings

import numpy as np
import pytest
from test_hunt_classical_s29 import _blobs  # three blobs along feature 0

import skmetric
from skmetric import Constraints

# -- distinct pairs near the number the labels allow ---------------------------------------

@pytest.mark.parametrize("labels", [np.repeat(np.arange(100), 2), np.repeat(np.arange(2), 30),
                                    np.r_[np.zeros(40), np.ones(3), 2 * np.ones(9)]],
                         ids=["100x2", "2x30", "unbalanced"])
def test_every_distinct_pair_is_drawn_when_nearly_all_are_requested(labels):
    constraints = Constraints(labels)
    possible = {"similar": constraints._n_possible_pairs(True),
                "dissimilar": constraints._n_possible_pairs(False)}
    # Random partners missed the last few: 19632 of the 19800 dissimilar pairs of 100
    # classes of 2 were drawn, with a warning that the labels allowed 19800.
    requests = {n + k for n in possible.values() for k in (-1, 0, 3)}
    requests |= {(n + 3) // 4 for n in possible.values()}
    for n in sorted(requests):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            a, b, c, d = constraints.positive_negative_pairs(n, random_state=0)
        messages = [str(w.message) for w in caught]
        for kind, first, second in (("similar", a, b), ("dissimilar", c, d)):
            pairs = np.sort(np.column_stack([first, second]), axis=1)
            expected = min(n, possible[kind])
            assert len(pairs) == expected
            assert len(np.unique(pairs, axis=0)) == expected
            assert np.all(pairs[:, 0] != pairs[:, 1])
            assert np.all((labels[pairs[:, 0]] == labels[pairs[:, 1]]) == (kind == "similar"))
            warned = [m for m in messages if f"distinct {kind} pairs" in m]
            if n > possible[kind]:
                assert warned == [f"Only {expected} distinct {kind} pairs could be generated "
                                  f"(requested {n}); the labels allow {expected}."]
            else:
                assert warned == []
    # Reproducible with a seed, as before.
    n = possible["dissimilar"] - 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fewer similar pairs than n
        first, again = (constraints.positive_negative_pairs(n, random_state=3)[2]
                        for _ in range(2))
    np.testing.assert_array_equal(first, again)


# -- MLKR's targets in any units -----------------------------------------------------------

def test_mlkr_learns_the_same_map_whatever_the_units_of_the_targets():
    rng = np.random.RandomState(0)
    X = rng.randn(60, 3)
    y = np.sin(2 * X[:, 0]) + 0.1 * X[:, 1]
    reference = skmetric.MLKR(random_state=0).fit(X, y)
    assert reference.n_iter_ > 5
    # The loss scales with the square of y, and L-BFGS's tests are absolute below a loss of
    # 1: targets in thousandths stopped after one step, at 1e-5 at the identity (n_iter_ 0).
    for scale, shift in ((1e-3, 0.0), (1e-5, 0.0), (1e-8, 0.0), (1e4, 0.0), (1.0, 1e9)):
        mlkr = skmetric.MLKR(random_state=0).fit(X, y * scale + shift)
        np.testing.assert_allclose(mlkr.components_, reference.components_, rtol=1e-3,
                                   atol=1e-3)
    # A power of two is exact: the same map to the last bit, with the penalty too.
    for params in ({}, {"prior_strength": 1e-2}):
        np.testing.assert_array_equal(
            skmetric.MLKR(random_state=0, **params).fit(X, y * 2.0**-30).components_,
            skmetric.MLKR(random_state=0, **params).fit(X, y).components_)
    # Constant targets are a valid, trivial problem: nothing moves.
    np.testing.assert_array_equal(skmetric.MLKR(max_iter=5).fit(X, np.full(60, 3.0))
                                  .components_, np.eye(3))


def test_mlkr_refuses_complex_targets():
    X, _ = _blobs()
    # astype(float64) kept the real part with only NumPy's ComplexWarning.
    with pytest.raises(ValueError, match=r"Complex data not supported: y is complex \(dtype "
                                         r"complex128\), and MLKR regresses real"):
        skmetric.MLKR(max_iter=5).fit(X, np.arange(30) * (1 + 1j))


# -- samples without variance --------------------------------------------------------------

@pytest.mark.parametrize("make", [
    lambda X, y: skmetric.Covariance().fit(X),
    lambda X, y: skmetric.Covariance(device="cpu").fit(X),
    lambda X, y: skmetric.RCA().fit(X, y),
    lambda X, y: skmetric.RCA_Supervised(n_chunks=5, random_state=0).fit(X, y),
    lambda X, y: skmetric.LFDA(k=2).fit(X, y),
], ids=["Covariance", "Covariance_torch", "RCA", "RCA_Supervised", "LFDA"])
def test_inverse_covariance_maps_of_constant_samples_are_refused(make):
    y = np.arange(30) % 3
    # The covariance of a constant 0.1 is round-off (1e-33): Covariance returned a map of
    # 2e8, RCA of 1e16, LFDA of 6e33, measuring nothing but that round-off; a constant 1.0
    # gave Covariance and RCA an all-zero map (every distance 0), LFDA at 7.7 scipy's "The
    # leading minor of order 1 of B is not positive definite".
    for value in (1.0, 0.1, 7.7):
        with pytest.raises(ValueError, match=r"found no variance in (X|the samples in "
                                             r"chunks): every feature is constant"):
            make(np.full((30, 3), value), y)
    # One constant feature among varying ones is fine: it gets no weight.
    X, _ = _blobs()
    X[:, 2] = 0.1
    components = make(X, y).components_
    assert np.all(np.isfinite(components))
    assert np.abs(components @ [0.0, 0.0, 1.0]).max() < 1e-6 * np.abs(components).max()


def test_rca_refuses_chunks_of_identical_samples():
    X, _ = _blobs()
    X[:6] = 0.1
    chunks = np.r_[[0, 0, 0, 1, 1, 1], -np.ones(24, dtype=int)]
    with pytest.raises(ValueError, match="RCA found no variance in the samples in chunks"):
        skmetric.RCA().fit(X, chunks)


# -- pair labels as objects or strings -----------------------------------------------------

def test_pair_labels_in_an_object_array_are_read_as_numbers_and_strings_named():
    X, y = _blobs()
    idx, y_pm = Constraints(y).pairs(15, random_state=0)
    reference = skmetric.ITML(preprocessor=X, max_iter=20).fit(idx, y_pm)
    # Numbers in an object array (a pandas column of object dtype) were refused with
    # "found [1, 1, 1, 1, 1]", labels that look valid.
    for labels in (y_pm.astype(object), (y_pm == 1).astype(int).astype(object),
                   [bool(v == 1) for v in y_pm]):
        fitted = skmetric.ITML(preprocessor=X, max_iter=20).fit(idx, np.asarray(labels))
        np.testing.assert_array_equal(fitted.components_, reference.components_)
        assert fitted.threshold_ == reference.threshold_
        assert fitted.score(idx, np.asarray(labels)) == reference.score(idx, y_pm)
    # Strings are refused as strings: the message listed ['1', '1', ...], valid-looking.
    with pytest.raises(ValueError, match=r"found strings \(dtype <U21, e\.g\. \['1', '1', "):
        skmetric.ITML(preprocessor=X).fit(idx, y_pm.astype(str))
    with pytest.raises(ValueError, match=r"not all numbers \(dtype object, e\.g\. \[1, None"):
        skmetric.ITML(preprocessor=X).fit(idx[:2], np.array([1, None], dtype=object))


# -- 1-D indices into a preprocessor -------------------------------------------------------

@pytest.mark.parametrize("make", [
    lambda X: skmetric.ITML_Supervised(max_iter=5, prior_strength=0, preprocessor=X),
    lambda X: skmetric.RCA_Supervised(n_chunks=5, preprocessor=X),
    lambda X: skmetric.MLKR(max_iter=50, preprocessor=X),
    lambda X: skmetric.Covariance(preprocessor=X),
], ids=["ITML_Supervised", "RCA_Supervised", "MLKR", "Covariance"])
def test_one_dimensional_indices_that_are_not_integers_are_named(make):
    X, y = _blobs()
    learner = make(X)
    # A separate fitted learner: a fit that fails leaves its learner unfitted.
    fitted = make(X).fit(np.arange(30), y)
    np.testing.assert_array_equal(fitted.transform(np.arange(4)), fitted.transform(X[:4]))
    # Float (or boolean, or text) indices fell through to scikit-learn's "Expected 2D array,
    # got 1D array instead ... Reshape your data", which names no preprocessor.
    for indices in (np.arange(30.0), np.arange(30) % 2 == 0, np.arange(30).astype(str)):
        with pytest.raises(TypeError, match=r"With a preprocessor, X must hold integer "
                                            r"indices into it; got dtype"):
            learner.fit(indices, y)
        with pytest.raises(TypeError, match=r"X must hold integer indices"):
            fitted.transform(indices[:4])


# -- threshold calibration on pairs of one kind --------------------------------------------

def test_rate_strategies_need_both_kinds_of_pairs():
    X, y = _blobs()
    idx, y_pairs = Constraints(y).pairs(20, random_state=0)
    itml = skmetric.ITML(preprocessor=X, max_iter=20).fit(idx, y_pairs)
    similar, dissimilar = idx[y_pairs == 1], idx[y_pairs == -1]
    # max_tnr on dissimilar pairs only said "No threshold reaches min_rate=0.5"; max_tpr on
    # similar pairs only returned a threshold above every distance.
    for strategy in ("max_tpr", "max_tnr"):
        for pairs, labels, only in ((similar, np.ones(20), "similar"),
                                    (dissimilar, np.zeros(20), "dissimilar")):
            with pytest.raises(ValueError, match=rf"strategy='{strategy}' needs both similar "
                                                 rf"and dissimilar .* found only {only}"):
                itml.calibrate_threshold(pairs, labels, strategy=strategy, min_rate=0.5)
        itml.calibrate_threshold(idx, y_pairs, strategy=strategy, min_rate=0.5)
        rates = _rates(itml.predict(idx), y_pairs)
        assert rates[strategy == "max_tpr"] >= 0.5  # the bounded rate: TNR for max_tpr
    # Accuracy and F-beta are defined on one kind: all dissimilar -> none predicted similar.
    for strategy in ("accuracy", "f_beta"):
        itml.calibrate_threshold(dissimilar, -np.ones(20), strategy=strategy)
        assert np.all(itml.predict(dissimilar) == -1)
        itml.calibrate_threshold(similar, np.ones(20), strategy=strategy)
        assert np.all(itml.predict(similar) == 1)


def _rates(predicted, labels):
    """(TPR, TNR) of predicted pair labels."""
    return (np.mean(predicted[labels == 1] == 1), np.mean(predicted[labels == -1] == -1))


def test_lsml_refuses_complex_and_text_weights():
    X, y = _blobs()
    quadruplets = Constraints(y).quadruplets(20, random_state=0)
    # np.asarray(weights, dtype=float64) kept the real part with only a ComplexWarning, and
    # text failed with NumPy's "could not convert string to float".
    with pytest.raises(ValueError, match=r"weights is complex \(dtype complex128\)"):
        skmetric.LSML(preprocessor=X).fit(quadruplets, weights=np.ones(20) * (1 + 1j))
    with pytest.raises(TypeError, match="weights must hold numbers"):
        skmetric.LSML(preprocessor=X).fit(quadruplets, weights=["a"] * 20)
    with pytest.raises(ValueError, match="weights is complex"):
        skmetric.LSML_Supervised(n_constraints=20, weights=np.ones(20) * 1j).fit(X, y)
    weighted = skmetric.LSML(preprocessor=X, max_iter=30).fit(quadruplets, weights=np.arange(1, 21))
    listed = skmetric.LSML(preprocessor=X, max_iter=30).fit(quadruplets, weights=list(range(1, 21)))
    np.testing.assert_array_equal(weighted.components_, listed.components_)


# -- predict in the convention of the fit labels --------------------------------------------

@pytest.mark.parametrize("convention", ["plus_minus", "zero_one", "bool", "float_zero_one"])
def test_scikit_learn_scorers_of_pair_predictions_compare_like_with_like(convention):
    from sklearn.base import clone
    from sklearn.model_selection import KFold, cross_val_score
    X, y = _blobs(60)
    idx, y_pm = Constraints(y).pairs(60, random_state=0)
    labels = {"plus_minus": y_pm, "zero_one": (y_pm == 1).astype(int),
              "bool": y_pm == 1, "float_zero_one": (y_pm == 1).astype(float)}[convention]
    itml = skmetric.ITML(preprocessor=X, max_iter=20)
    cv = KFold(3, shuffle=True, random_state=0)
    # Fitted on 0 / 1 labels, predict answered -1 / +1: 'accuracy' counted every dissimilar
    # pair wrong (0.41 instead of 0.82) and 'f1' was NaN ("Target is multiclass").
    for scoring in ("accuracy", "f1"):
        scores = cross_val_score(itml, idx, labels, scoring=scoring, cv=cv)
        np.testing.assert_array_equal(scores, cross_val_score(itml, idx, y_pm, scoring=scoring,
                                                              cv=cv))
        assert scores.min() > 0.6  # far above the 0.41 of the mixed conventions
    fitted = clone(itml).fit(idx, labels)
    predicted = fitted.predict(idx)
    assert set(np.unique(predicted)) <= set(np.unique(labels))
    assert predicted.dtype.kind == np.asarray(labels).dtype.kind or convention.startswith("float")
    np.testing.assert_array_equal(predicted == fitted.classes_[1],
                                  clone(itml).fit(idx, y_pm).predict(idx) == 1)


# -- calibration_params checked before the fit ---------------------------------------------

@pytest.mark.parametrize("learner", [skmetric.ITML(max_iter=5), skmetric.SDML(balance_param=1e-3),
                                     skmetric.MMC(max_iter=5)], ids=["ITML", "SDML", "MMC"])
def test_calibration_params_are_checked_before_the_fit_runs(learner):
    from sklearn.base import clone
    X, y = _blobs()
    idx, y_pairs = Constraints(y).pairs(15, random_state=0)
    # They were checked by calibrate_threshold after the whole fit (minutes on real data),
    # an unknown key as Python's "got an unexpected keyword argument", a string as "dictionary
    # update sequence element #0 has length 1".
    for params, error, match in [
        ({"strategy": "bad"}, ValueError, "strategy must be one of"),
        ({"strategy": "max_tpr"}, ValueError, r"needs min_rate in \[0, 1\]; got None"),
        ({"strategy": "f_beta", "beta": 0}, ValueError, "beta must be a finite number > 0"),
        ({"min_rte": 0.5}, ValueError, r"unknown key\(s\) 'min_rte'; .* 'min_rate'"),
        ("accuracy", TypeError, "calibration_params must be a dict"),
    ]:
        est = clone(learner).set_params(preprocessor=X)
        with pytest.raises(error, match=match):
            est.fit(idx, y_pairs, calibration_params=params)
        assert not hasattr(est, "components_")  # refused before the fit ran
    similar_only = idx[y_pairs == 1]
    est = clone(learner).set_params(preprocessor=X)
    with pytest.raises(ValueError, match="needs both similar and dissimilar"):
        est.fit(similar_only, np.ones(len(similar_only)),
                calibration_params={"strategy": "max_tnr", "min_rate": 0.5})
    assert not hasattr(est, "components_")
    params = {"strategy": "f_beta", "beta": 2.0}
    fitted = clone(learner).set_params(preprocessor=X).fit(idx, y_pairs, calibration_params=params)
    assert fitted.threshold_ == fitted.calibrate_threshold(idx, y_pairs, **params).threshold_


# -- RCA_Supervised on one class -----------------------------------------------------------

def test_rca_supervised_draws_chunks_from_a_single_class():
    X, _ = _blobs()
    y = np.zeros(30, dtype=int)
    # Refused with "needs samples of at least two classes", though chunks only group
    # samples of one class (metric-learn 0.7 fits it).
    rca = skmetric.RCA_Supervised(n_chunks=10, random_state=0).fit(X, y)
    assert np.all(np.isfinite(rca.components_))
    np.testing.assert_array_equal(rca.components_,
                                  skmetric.RCA().fit(X, rca.chunks_).components_)
    assert np.bincount(rca.chunks_[rca.chunks_ >= 0]).tolist() == [2] * 10
    with pytest.raises(ValueError, match="Not enough samples for 16 chunks of size 2"):
        skmetric.RCA_Supervised(n_chunks=16).fit(X, y)
