"""Tests written to kill the mutants of skmetric.metrics that survived the metrics' own
tests (issue #22; tests/README.md, "Mutation testing").

Every expected value comes from an independent reference: a brute-force ranking in NumPy
(float64 distances from scipy's ``cdist``, a stable sort so ties go to the smaller index),
scikit-learn's ``roc_curve`` / ``average_precision_score`` and threshold sweeps written from
the definitions, or a tiny case worked by hand.
"""

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from sklearn.metrics import average_precision_score, roc_curve

from skmetric import metrics as m

# ------------------------------------------------------------ brute-force retrieval reference


def _rankings(query, q_labels, reference, r_labels, exclude_self):
    """Per query: the relevance (0/1) of the references in rank order, ties by index."""
    D = cdist(query, reference)
    if exclude_self:
        D[np.arange(len(query)), np.arange(len(query))] = np.inf
    order = np.argsort(D, axis=1, kind="stable")
    rel = (r_labels[order] == q_labels[:, None]).astype(float)
    if exclude_self:  # the own row is last after the sort; drop it
        rel = rel[:, :-1]
    return rel


def _reference_metrics(query, q_labels, reference=None, r_labels=None, ks=(1,), max_k=None,
                       ref_includes_query=False):
    """Per-query P@k, R@k, R-precision, MAP@R and full AP from their definitions (NaN for
    queries without a relevant reference)."""
    q_labels = np.asarray(q_labels)
    if reference is None:
        reference, r_labels, exclude = query, q_labels, True
    else:
        r_labels, exclude = np.asarray(r_labels), ref_includes_query
    rel = _rankings(query, q_labels, reference, r_labels, exclude)
    out = {}
    R_full = rel.sum(axis=1).astype(int)
    R = R_full if max_k is None else np.minimum(R_full, max_k)
    for k in ks:
        out[f"precision_at_{k}"] = rel[:, :k].sum(axis=1) / k
        out[f"recall_at_{k}"] = (rel[:, :k].sum(axis=1) > 0).astype(float)
    rp, mapr, ap = [], [], []
    for row, r in zip(rel, R, strict=True):
        if r == 0:
            rp.append(np.nan), mapr.append(np.nan), ap.append(np.nan)
            continue
        prec = np.cumsum(row) / np.arange(1, len(row) + 1)
        rp.append(row[:r].sum() / r)
        mapr.append((prec[:r] * row[:r]).sum() / r)
        ap.append((prec * row).sum() / row.sum())
    out["r_precision"], out["map_at_r"] = np.array(rp), np.array(mapr)
    out["mean_average_precision"] = np.array(ap)
    lone = R_full == 0
    for name in out:
        out[name][lone] = np.nan
    return out, q_labels, lone


def _average(values, labels, lone, average):
    keep = ~lone
    if average == "query":
        return float(np.mean(values[keep]))
    classes = np.unique(labels[keep])
    return float(np.mean([values[keep][labels[keep] == c].mean() for c in classes]))


def _integer_data(rng, n, d, n_classes, high=4):
    """Integer coordinates (exact distances, many exact ties) and unbalanced labels with
    one lone class."""
    X = rng.randint(0, high, size=(n, d)).astype(float)
    y = rng.randint(n_classes, size=n)
    y[0] = n_classes  # a lone query
    return X, y


CASES = ["same_set", "separate_reference", "ref_includes_query"]


def _case(rng, case):
    X, y = _integer_data(rng, 23, 2, 3)
    if case == "same_set":
        return dict(query=X, query_labels=y), dict(query=X, q_labels=y)
    R, ry = _integer_data(rng, 31, 2, 3)
    ry[0] = 1  # query 0's class is then absent from the references: it is lone
    if case == "separate_reference":
        return (dict(query=X, query_labels=y, reference=R, reference_labels=ry),
                dict(query=X, q_labels=y, reference=R, r_labels=ry))
    RR, rry = np.vstack([X, R]), np.concatenate([y, ry])
    return (dict(query=X, query_labels=y, reference=RR, reference_labels=rry,
                 ref_includes_query=True),
            dict(query=X, q_labels=y, reference=RR, r_labels=rry, ref_includes_query=True))


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("blocks", [{}, {"working_memory": 0.0005}, {"chunk_size": 3}])
def test_every_retrieval_metric_equals_a_brute_force_ranking(case, blocks):
    """Per-query values of the report and of each single metric against brute force, with
    exact ties, a lone query, several k, and blocks of one or a few queries."""
    rng = np.random.RandomState(0)
    args, ref_args = _case(rng, case)
    ks = (1, 2, 5)
    expected, labels, lone = _reference_metrics(**ref_args, ks=ks)
    report = m.retrieval_report(**args, k=ks, mean_ap=True, average=None, **blocks)
    for name, values in expected.items():
        np.testing.assert_allclose(report[name], values, err_msg=name, atol=1e-12)
    assert report["n_queries"] == len(labels) and report["n_lone_queries"] == lone.sum()
    assert lone.sum() == 1
    for k in ks:
        np.testing.assert_allclose(m.precision_at_k(**args, k=k, average=None, **blocks),
                                   expected[f"precision_at_{k}"], atol=1e-12)
        np.testing.assert_allclose(m.recall_at_k(**args, k=k, average=None, **blocks),
                                   expected[f"recall_at_{k}"], atol=1e-12)
    np.testing.assert_allclose(m.r_precision(**args, average=None, **blocks),
                               expected["r_precision"], atol=1e-12)
    np.testing.assert_allclose(m.map_at_r(**args, average=None, **blocks),
                               expected["map_at_r"], atol=1e-12)
    wm = {"working_memory": blocks["working_memory"]} if "working_memory" in blocks else {}
    np.testing.assert_allclose(m.mean_average_precision(**args, average=None, **wm),
                               expected["mean_average_precision"], atol=1e-12)


@pytest.mark.parametrize("average", ["query", "class"])
def test_averages_equal_the_reference_means(average):
    """"query" means over the queries that are not lone, "class" over classes of those."""
    rng = np.random.RandomState(1)
    args, ref_args = _case(rng, "separate_reference")
    expected, labels, lone = _reference_metrics(**ref_args, ks=(3,))
    report = m.retrieval_report(**args, k=3, mean_ap=True, average=average)
    for name, values in expected.items():
        assert report[name] == pytest.approx(_average(values, labels, lone, average)), name
    assert m.precision_at_k(**args, k=3, average=average) == pytest.approx(
        _average(expected["precision_at_3"], labels, lone, average))
    assert m.mean_average_precision(**args, average=average) == pytest.approx(
        _average(expected["mean_average_precision"], labels, lone, average))


def test_class_average_with_classes_of_unequal_sizes_and_gaps_in_the_codes():
    """Per class, then over classes: a class absent from the queries (code between two
    present ones) must not count as a class with mean 0."""
    X = np.array([[0.0], [0.1], [0.2], [5.0], [5.1], [9.0], [9.05], [9.1], [9.2]])
    y = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])
    Q, qy = X[[0, 1, 2, 5, 6, 7, 8]], y[[0, 1, 2, 5, 6, 7, 8]]  # class 1 only in refs
    expected, labels, lone = _reference_metrics(Q, qy, X, y, ks=(2,), ref_includes_query=False)
    for average in ("query", "class"):
        got = m.precision_at_k(Q, qy, X, y, k=2, average=average)
        assert got == pytest.approx(_average(expected["precision_at_2"], labels, lone, average))


@pytest.mark.parametrize("max_k", [1, 2, 3])
def test_max_k_caps_r_for_r_precision_and_map_at_r(max_k):
    rng = np.random.RandomState(2)
    X, y = _integer_data(rng, 30, 2, 2, high=3)
    expected, _, _ = _reference_metrics(X, y, ks=(1,), max_k=max_k)
    for name, func in (("r_precision", m.r_precision), ("map_at_r", m.map_at_r)):
        np.testing.assert_allclose(func(X, y, max_k=max_k, average=None), expected[name],
                                   err_msg=name)
    report = m.retrieval_report(X, y, k=1, max_k=max_k, average=None)
    np.testing.assert_allclose(report["map_at_r"], expected["map_at_r"])


def test_map_at_r_counts_only_the_hits_within_r():
    """Query 0's ranking: hit, miss, hit, hit (R = 3): MAP@R = (1 + 2/3) / 3, not
    including the hit at rank 4, and R-precision 2/3."""
    X = np.array([[0.0], [1.0], [2.0], [3.0], [4.0], [100.0]])
    y = np.array([0, 0, 1, 0, 5, 0])
    assert m.map_at_r(X, y, average=None)[0] == pytest.approx((1 + 2 / 3) / 3)
    assert m.r_precision(X, y, average=None)[0] == pytest.approx(2 / 3)
    assert m.mean_average_precision(X, y, average=None)[0] == pytest.approx(
        (1 + 2 / 3 + 3 / 5) / 3)


def test_full_ranking_ap_equals_scikit_learn_average_precision():
    """AP over the full ranking of distinct distances is scikit-learn's
    ``average_precision_score`` of the negated distances."""
    rng = np.random.RandomState(3)
    Q, qy = rng.randn(9, 3), rng.randint(3, size=9)
    R, ry = rng.randn(40, 3), rng.randint(3, size=40)
    got = m.mean_average_precision(Q, qy, R, ry, average=None)
    D = cdist(Q, R)
    expected = [average_precision_score(ry == c, -d) for c, d in zip(qy, D, strict=True)]
    np.testing.assert_allclose(got, expected)


def test_k_above_the_available_references_is_refused_and_skipped_in_the_report():
    X = np.arange(5.0)[:, None]
    y = np.array([0, 0, 1, 1, 1])
    # 4 references per query: k=4 is allowed, k=5 is not.
    assert m.precision_at_k(X, y, k=4) == pytest.approx(
        np.mean([1 / 4, 1 / 4, 2 / 4, 2 / 4, 2 / 4]))
    with pytest.raises(ValueError, match="k=5 is more than the 4 references available"):
        m.precision_at_k(X, y, k=5)
    report = m.retrieval_report(X, y, k=(4, 5))
    assert "precision_at_4" in report and "precision_at_5" not in report
    with pytest.raises(ValueError, match="Every k is above the 4 references available"):
        m.retrieval_report(X, y, k=(5, 6))


def test_ref_includes_query_checks_the_rows_up_to_round_off():
    rng = np.random.RandomState(4)
    Q, qy = rng.randn(5, 3) * 100, np.array([0, 1, 0, 1, 0])
    R, ry = rng.randn(6, 3), np.array([1, 0, 1, 0, 1, 0])
    ref = np.vstack([Q, R])
    labels = np.concatenate([qy, ry])
    # A float32 copy of the queries (relative error ~6e-8) is accepted ...
    expected = m.precision_at_k(Q, qy, ref, labels, ref_includes_query=True, average=None)
    close = ref.copy()
    close[:5] = Q.astype(np.float32)
    np.testing.assert_allclose(
        m.precision_at_k(Q, qy, close, labels, ref_includes_query=True, average=None),
        expected)
    # ... a row moved by 1e-3 relative to the largest magnitude is not.
    moved = ref.copy()
    moved[2, 1] += 1e-3 * np.abs(Q).max()
    with pytest.raises(ValueError, match="first len\\(query\\) references must be the"):
        m.precision_at_k(Q, qy, moved, labels, ref_includes_query=True)
    with pytest.raises(ValueError, match="first len\\(query\\) references must be the"):
        m.precision_at_k(Q, qy, R[:4], ry[:4], ref_includes_query=True)  # too few rows
    wrong = labels.copy()
    wrong[1] = 0
    with pytest.raises(ValueError, match="first len\\(query\\) references must be the"):
        m.precision_at_k(Q, qy, ref, wrong, ref_includes_query=True)


def test_one_reference_besides_the_query_is_enough():
    X = np.array([[0.0], [1.0]])
    assert m.precision_at_k(X, [0, 0], k=1) == 1.0
    assert m.map_at_r(X, [0, 0]) == 1.0
    with pytest.raises(ValueError, match="at least 2 samples"):
        m.precision_at_k(X[:1], [0], k=1)


# --------------------------------------------------------------- verification references


def _pairs(rng, n=60, ties=True):
    y = rng.randint(2, size=n)
    scores = rng.randn(n) + 1.2 * y
    if ties:
        scores = np.round(scores, 1)
    return scores, y


def _tar_at_far_brute(scores, y, far):
    """Largest TAR over every threshold (each distinct score, and +inf) with FAR <= far."""
    pos, neg = scores[y == 1], scores[y != 1]
    best = 0.0
    for t in np.concatenate([np.unique(scores), [np.inf]]):
        if np.mean(neg >= t) <= far:
            best = max(best, np.mean(pos >= t))
    return best


def _eer_brute(scores, y):
    """EER by linear interpolation of FAR - FRR between consecutive operating points."""
    fpr, tpr, _ = roc_curve(y, scores, drop_intermediate=False)
    frr = 1 - tpr
    for i in range(1, len(fpr)):
        g0, g1 = fpr[i - 1] - frr[i - 1], fpr[i] - frr[i]
        if g0 < 0 <= g1:
            t = -g0 / (g1 - g0)
            return fpr[i - 1] + t * (fpr[i] - fpr[i - 1])
    raise AssertionError("no crossing")


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("similar", [True, False])
def test_verification_metrics_equal_brute_force_sweeps(seed, similar):
    rng = np.random.RandomState(seed)
    scores, y01 = _pairs(rng)
    y = np.where(y01 == 1, 1, -1) if seed % 2 else y01
    given = scores if similar else -scores
    fars = np.array([0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0])
    np.testing.assert_allclose(
        m.tar_at_far(given, y, far=fars, greater_is_similar=similar),
        [_tar_at_far_brute(scores, y01, f) for f in fars])
    single = m.tar_at_far(given, y, far=0.1, greater_is_similar=similar)
    assert isinstance(single, float) and single == _tar_at_far_brute(scores, y01, 0.1)
    assert m.equal_error_rate(given, y, greater_is_similar=similar) == pytest.approx(
        _eer_brute(scores, y01))
    far, tar, thr, area = m.verification_roc(given, y, greater_is_similar=similar,
                                             drop_intermediate=False)
    fpr, tpr, sk_thr = roc_curve(y01, scores, drop_intermediate=False)
    np.testing.assert_allclose(far, fpr)
    np.testing.assert_allclose(tar, tpr)
    np.testing.assert_allclose(thr, sk_thr if similar else -sk_thr)
    dropped = m.verification_roc(given, y, greater_is_similar=similar)
    assert len(dropped.far) == len(roc_curve(y01, scores)[0]) < len(far)
    assert area == pytest.approx(dropped.auc)


@pytest.mark.parametrize("similar", [True, False])
def test_best_threshold_accuracy_equals_a_sweep_over_midpoints(similar):
    rng = np.random.RandomState(5)
    for _ in range(5):
        scores, y = _pairs(rng, n=40)
        given = scores if similar else -scores
        acc, thr = m.best_threshold_accuracy(given, y, greater_is_similar=similar)
        values = np.unique(scores)
        cands = np.concatenate([[values[0] - 1], (values[:-1] + values[1:]) / 2,
                                [values[-1] + 1]])
        accs = [np.mean((scores >= t) == (y == 1)) for t in cands]
        assert acc == pytest.approx(max(accs))
        predicted = (given >= thr) if similar else (given <= thr)
        assert np.mean(predicted == (y == 1)) == pytest.approx(acc)


def test_eer_threshold_is_the_operating_point_nearer_the_crossing():
    # Similar pairs 0.9, 0.7; dissimilar 0.8, 0.6. ROC (thr: far, tar): inf: 0, 0;
    # 0.9: 0, .5; 0.8: .5, .5; 0.7: .5, 1; 0.6: 1, 1. FAR - FRR: -1, -.5, 0, .5, 1.
    s, y = [0.9, 0.8, 0.7, 0.6], [1, 0, 1, 0]
    eer, thr = m.equal_error_rate(s, y, return_threshold=True)
    assert eer == 0.5 and thr == 0.8
    eer_d, thr_d = m.equal_error_rate([-v for v in s], y, greater_is_similar=False,
                                      return_threshold=True)
    assert eer_d == 0.5 and thr_d == -0.8
    # Crossing at t = 1/3 of the way from (0, 0.5) at 0.9 to (0.5, 0.75)... built so that
    # the nearer point is the earlier one: similar 0.9, 0.85, 0.5; dissimilar 0.8, 0.4, 0.3.
    s2, y2 = [0.9, 0.85, 0.8, 0.5, 0.4, 0.3], [1, 1, 0, 1, 0, 0]
    fpr, tpr, sk_thr = roc_curve(y2, s2, drop_intermediate=False)
    gap = fpr - (1 - tpr)
    i = int(np.argmax(gap >= 0))
    t = -gap[i - 1] / (gap[i] - gap[i - 1])
    eer2, thr2 = m.equal_error_rate(s2, y2, return_threshold=True)
    assert eer2 == pytest.approx(fpr[i - 1] + t * (fpr[i] - fpr[i - 1]))
    assert thr2 == (sk_thr[i] if t >= 0.5 else sk_thr[i - 1])
    # The first operating point (threshold inf) is never returned.
    eer3, thr3 = m.equal_error_rate([0.9, 0.1], [0, 1], return_threshold=True)
    assert eer3 == 1.0 and np.isfinite(thr3)


def test_same_rows_tolerance_is_1e_5_of_the_spread_plus_float32_rounding():
    """The first rows of the reference may differ from the queries by up to 1e-5 times
    the queries' spread (largest deviation from their mean) plus 2**-22 times their
    largest magnitude: here near that bound (accepted) and 1.5 times it (refused); queries
    all zero admit no gap at all."""
    Q, qy = np.array([[0.0], [1.0]]), np.array([0, 0])
    ry = np.array([0, 0, 1, 1])
    bound = 1e-5 * 0.5 + 2.0**-22
    near = np.array([[0.99 * bound], [1.0], [3.0], [4.0]])
    assert m.precision_at_k(Q, qy, near, ry, ref_includes_query=True) == 1.0
    beyond = np.array([[1.5 * bound], [1.0], [3.0], [4.0]])
    with pytest.raises(ValueError, match="first len\\(query\\) references must be the"):
        m.precision_at_k(Q, qy, beyond, ry, ref_includes_query=True)
    with pytest.raises(ValueError, match="first len\\(query\\) references must be the"):
        m.precision_at_k(np.zeros((2, 1)), qy, np.array([[1e-300], [0.0], [3.0], [4.0]]),
                         ry, ref_includes_query=True)


@pytest.mark.parametrize("call, error, match", [
    (lambda X, y: m.precision_at_k(X, y, k=0), ValueError, "k must be an integer >= 1"),
    (lambda X, y: m.recall_at_k(X, y, k=True), ValueError, "k must be an integer >= 1"),
    (lambda X, y: m.precision_at_k(X, y, k=1.0), ValueError, "k must be an integer >= 1"),
    (lambda X, y: m.map_at_r(X, y, max_k=0), ValueError, "max_k must be an integer >= 1"),
    (lambda X, y: m.r_precision(X, y, average="mean"), ValueError, "average must be one of"),
    (lambda X, y: m.mean_average_precision(X, y, average="all"), ValueError,
     "average must be one of"),
    (lambda X, y: m.retrieval_report(X, y, k=1, average="all"), ValueError,
     "average must be one of"),
    (lambda X, y: m.map_at_r(X, y, X, y, ref_includes_query=1), TypeError,
     "ref_includes_query must be a bool"),
    (lambda X, y: m.precision_at_k(X, y, chunk_size=0), ValueError,
     "chunk_size must be a positive int"),
    (lambda X, y: m.map_at_r(X, y, chunk_size=0), ValueError,
     "chunk_size must be a positive int"),
    (lambda X, y: m.retrieval_report(X, y, chunk_size=0), ValueError,
     "chunk_size must be a positive int"),
    (lambda X, y: m.recall_at_k(X, y, working_memory=-1), ValueError,
     "working_memory must be a positive number"),
])
def test_checks_hold_when_scikit_learn_parameter_validation_is_skipped(call, error, match):
    """With ``set_config(skip_parameter_validation=True)`` the functions' own checks still
    refuse bad values with a clear message (no wrong number, no deep traceback)."""
    import sklearn

    X, y = np.arange(6.0)[:, None], np.array([0, 0, 1, 1, 2, 2])
    with sklearn.config_context(skip_parameter_validation=True), pytest.raises(error,
                                                                                match=match):
        call(X, y)


def test_verification_orientation_checked_when_parameter_validation_is_skipped():
    import sklearn

    with sklearn.config_context(skip_parameter_validation=True), pytest.raises(
            TypeError, match="greater_is_similar must be True .similarity scores. or False"):
        m.tar_at_far([0.1, 0.2], [0, 1], greater_is_similar=1)


def test_single_metrics_pass_the_mahalanobis_map_and_the_blocks_to_the_engine():
    rng = np.random.RandomState(6)
    X, y = rng.randn(40, 3), rng.randint(3, size=40)
    M = np.diag([1.0, 25.0, 0.04])
    L = np.sqrt(M)
    mapped = X @ L.T
    for func in (m.r_precision, m.map_at_r, m.mean_average_precision):
        np.testing.assert_allclose(func(X, y, metric="mahalanobis", M=M, average=None),
                                   func(mapped, y, average=None))
    for func in (m.precision_at_k, m.recall_at_k):
        np.testing.assert_allclose(func(X, y, k=3, metric="mahalanobis", M=M, average=None),
                                   func(mapped, y, k=3, average=None))
    np.testing.assert_allclose(
        m.retrieval_report(X, y, k=3, metric="mahalanobis", M=M, average=None)["map_at_r"],
        m.map_at_r(mapped, y, average=None))


def test_best_threshold_separates_adjacent_floats():
    """Scores one ulp apart are separable: the midpoint between them rounds to one of the
    two values, and must not be the first rejected one (it was: accuracy 0.5)."""
    a, b = 1.0, np.nextafter(1.0, 2.0)
    for scores, y, similar in (([b, a], [1, 0], True), ([a, b], [1, 0], False),
                               ([-a, -b], [1, 0], True), ([1e308, np.inf], [1, 0], False)):
        if not np.all(np.isfinite(scores)):
            scores = [1.7e308, np.finfo(float).max]  # the midpoint's sum overflows
        acc, thr = m.best_threshold_accuracy(scores, y, greater_is_similar=similar)
        assert acc == 1.0
        s = np.asarray(scores)
        accepted = s >= thr if similar else s <= thr
        np.testing.assert_array_equal(accepted, np.asarray(y) == 1)


def test_tar_at_far_refuses_empty_or_nested_targets_and_returns_python_floats():
    scores, y = [0.9, 0.8, 0.3, 0.1], [1, -1, 1, -1]
    for far in ([], [[0.1]], [0.5, 1.5], -0.1):
        with pytest.raises(ValueError, match="far must be a number or a sequence"):
            m.tar_at_far(scores, y, far=far)
    assert type(m.tar_at_far(scores, y, far=0.5)) is float
    assert m.tar_at_far(scores, y, far=[0.5]).shape == (1,)


def test_eer_threshold_at_the_half_way_point_and_near_the_first_point():
    # ROC (thr: far, tar): inf: 0, 0; 0.9: 0, .5; 0.5: .5, 1; 0.1: 1, 1. FAR - FRR: -1,
    # -.5, .5, 1: the crossing is half-way between 0.9 and 0.5; ties go to the later one.
    eer, thr = m.equal_error_rate([0.9, 0.5, 0.5, 0.1], [1, 1, 0, 0], return_threshold=True)
    assert eer == 0.25 and thr == 0.5
    # inf: 0, 0; 0.9: 0, .9; 0.1: 1, 1. FAR - FRR: -1, -.1, 1: t = 1/11, nearer 0.9.
    s = [0.9] * 9 + [0.1, 0.1]
    eer, thr = m.equal_error_rate(s, [1] * 10 + [0], return_threshold=True)
    assert eer == pytest.approx(1 / 11) and thr == 0.9


@pytest.mark.parametrize("scores, y, match", [
    ([], [], "scores must be a non-empty 1-D numeric array"),
    ([[0.1, 0.2]], [[0, 1]], "scores must be a non-empty 1-D numeric array"),
    ([0.5], [1], "y needs both similar"),
])
def test_verification_input_messages(scores, y, match):
    with pytest.raises(ValueError, match=match):
        m.tar_at_far(scores, y)


def test_eer_threshold_inside_a_straight_run_of_the_roc():
    # FAR = 1/4 from 0.95 to 0.6 while TAR climbs: FAR - FRR = -.75, -.5, -.25, 0 (at
    # 0.7), .25. The threshold is the operating point 0.7, which a ROC with the points of
    # straight runs dropped (scikit-learn's drop_intermediate) would not hold.
    s = [0.95, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3]
    y = [0, 1, 1, 1, 1, 0, 0, 0]
    assert m.equal_error_rate(s, y, return_threshold=True) == (0.25, 0.7)
