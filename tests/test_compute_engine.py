"""The private compute layer (issue #18): one array checker for every library and entry
point, and the distance engine's prepared reference set, prepared once per call."""

import numpy as np
import pytest
from _namespaces import numpy_of, to_namespace

from skmetric import Covariance, KernelPCA, metrics
from skmetric._compute import _arrays, _engine
from skmetric._compute._arrays import check_input, check_inputs
from skmetric.distances import pairwise_distances
from skmetric.neighbors import kneighbors, radius_neighbors

CPU_NAMESPACES = ["numpy", "array_api_strict", "torch"]


def _entry_points(name, namespace):
    """Callables that validate ``bad`` (an array of 6 rows, 2 features) as ``name``; the
    learners' NumPy path is scikit-learn's ``validate_data``, their other paths ours."""
    X = to_namespace(np.arange(12.0).reshape(6, 2), namespace)
    y = np.array([0, 0, 1, 1, 2, 2])
    if name == "X":
        yield "pairwise_distances", lambda bad: pairwise_distances(bad)
        yield "kneighbors", lambda bad: kneighbors(bad, n_neighbors=1)
        yield "radius_neighbors", lambda bad: radius_neighbors(bad)
        if namespace != "numpy":
            fitted = Covariance().fit(numpy_of(X))
            yield "Covariance.transform", lambda bad: fitted.transform(bad)
            yield "KernelPCA.fit", lambda bad: KernelPCA(device=None).fit(bad)
    elif name == "Y":
        yield "pairwise_distances", lambda bad: pairwise_distances(X[:2, :], bad)
        yield "kneighbors", lambda bad: kneighbors(X[:2, :], bad, n_neighbors=1)
    elif name == "query":
        yield "map_at_r", lambda bad: metrics.map_at_r(bad, y)
        yield "retrieval_report", lambda bad: metrics.retrieval_report(bad, y, k=1)
    elif name == "reference":
        yield "map_at_r", lambda bad: metrics.map_at_r(X, y, bad, y)


def _bad_inputs(namespace):
    X = np.arange(12.0).reshape(6, 2)
    nan = X.copy()
    nan[2, 1] = np.nan
    inf = X.copy()
    inf[0, 0] = -np.inf
    cases = [
        ("NaN", nan, ValueError, "{name} contains NaN or infinity. Remove or impute"),
        ("inf", inf, ValueError, "{name} contains NaN or infinity. Remove or impute"),
        ("1-D", X[:, 0], ValueError, r"Expected a 2-D array for {name} of shape "
                                     r"\(n_samples, n_features\); got 1 dimension"),
        ("empty", X[:0], ValueError, r"{name} is empty \(shape \(0, 2\)\); at least 1 sample"),
    ]
    if namespace != "array_api_strict":  # it has no complex128 from NumPy's
        cases.append(("complex", X + 1j, ValueError,
                      r"Complex data is not supported \({name} has dtype"))
    return [(label, to_namespace(A, namespace), error, match)
            for label, A, error, match in cases]


@pytest.mark.parametrize("namespace", CPU_NAMESPACES)
@pytest.mark.parametrize("name", ["X", "Y", "query", "reference"])
def test_every_entry_point_rejects_bad_arrays_with_the_one_message(namespace, name):
    """The checks and their wording are one function: every public entry point, on every
    array library, gives the same message naming the argument."""
    for label, bad, error, match in _bad_inputs(namespace):
        for entry, call in _entry_points(name, namespace):
            if (entry, label) == ("Covariance.transform", "1-D"):
                continue  # a learner maps a device vector as one sample (features last)
            with pytest.raises(error, match=match.format(name=name)) as info:
                call(bad)
            assert info.type is error, (entry, label)


def test_integers_become_float64_and_float_dtypes_are_kept_or_promoted():
    ints = np.arange(6).reshape(3, 2)
    assert check_input(ints).dtype == np.float64
    assert check_input(ints.astype(bool)).dtype == np.float64
    f32 = ints.astype(np.float32)
    assert check_input(f32).dtype == np.float32
    X, Y, xp = check_inputs(f32, f32)
    assert X.dtype == Y.dtype == np.float32 and xp.__name__.endswith("numpy")
    X, Y, _ = check_inputs(f32, ints.astype(np.float64))
    assert X.dtype == Y.dtype == np.float64
    X, Y, _ = check_inputs(f32, ints)  # an integer array brings float64
    assert X.dtype == np.float64
    assert check_input([[1, 2], [3, 4]]).dtype == np.float64  # lists are read as NumPy
    with pytest.raises(TypeError, match="X must be numeric; got dtype <U1"):
        check_input([["a", "b"]])
    with pytest.raises(TypeError, match=r"X is a sparse matrix.*X.toarray\(\)"):
        import scipy.sparse as sp

        check_input(sp.eye(3, format="csr"))


def test_torch_input_keeps_its_namespace_and_dtype():
    torch = pytest.importorskip("torch")
    X = torch.arange(6, dtype=torch.float32).reshape(3, 2)
    assert check_input(X).dtype == torch.float32
    assert check_input(torch.arange(6).reshape(3, 2)).dtype == torch.float64


def test_libraries_and_devices_must_match():
    xs = pytest.importorskip("array_api_strict")
    torch = pytest.importorskip("torch")
    X = np.ones((3, 2))
    with pytest.raises(TypeError, match=r"query and reference must come from the same array "
                                        r"library .*got query a numpy.ndarray and reference "
                                        r"a torch.Tensor"):
        check_inputs(X, torch.ones(3, 2), names=("query", "reference"))
    other = xs.asarray(X, device=xs.Device("device1"))
    with pytest.raises(TypeError, match="X and Y must live on the same device; got X on "):
        check_inputs(xs.asarray(X), other)
    with pytest.raises(TypeError, match="same device"):
        kneighbors(xs.asarray(X), other, n_neighbors=1)
    with pytest.raises(ValueError, match="X has 2 features but Y has 3; both must have"):
        check_inputs(X, np.ones((3, 3)))


def test_fitted_feature_count_is_checked_with_the_owner_named():
    torch = pytest.importorskip("torch")
    X = np.random.RandomState(0).randn(20, 3)
    cov = Covariance().fit(X)
    with pytest.raises(ValueError, match="X has 2 features, but Covariance was fitted with 3"):
        cov.transform(torch.as_tensor(X[:, :2]))
    kpca = KernelPCA(n_components=2, kernel="rbf").fit(torch.as_tensor(X))
    with pytest.raises(ValueError, match="X has 2 features, but KernelPCA was fitted with 3"):
        kpca.transform(torch.as_tensor(X[:, :2]))
    assert tuple(kpca.transform(torch.as_tensor(X)).shape) == (20, 2)


def test_the_checker_is_the_only_one():
    """No module of the package checks finiteness of arrays on its own any more: the
    engine, the metrics and the learners' torch paths all call _arrays."""
    calls = []
    real = _arrays._as_finite_float

    def spy(A, xp, dtype, name):
        calls.append(name)
        return real(A, xp, dtype, name)

    X = np.random.RandomState(0).randn(12, 2)
    y = np.arange(12) % 3
    mp = pytest.MonkeyPatch()
    mp.setattr(_arrays, "_as_finite_float", spy)
    try:
        pairwise_distances(X, X[:3])
        assert calls == ["X", "Y"]
        calls.clear()
        metrics.map_at_r(X, y)
        assert calls[0] == "query"
    finally:
        mp.undo()


@pytest.mark.parametrize("namespace", CPU_NAMESPACES)
def test_engine_range_search_equals_the_whole_search(namespace):
    """kneighbors over a range of query rows (what the metrics walk) gives the rows of the
    whole search, with exclude_self meaning query i is reference start + i's twin."""
    rng = np.random.RandomState(1)
    X = to_namespace(rng.randn(50, 4), namespace)
    prep = _engine.prepare(X)
    dist, ind = prep.kneighbors(3, exclude_self=True)
    for start, stop in [(0, 7), (7, 31), (31, 50)]:
        d, i = prep.kneighbors(3, start=start, stop=stop, exclude_self=True, chunk_size=5)
        np.testing.assert_array_equal(numpy_of(i), numpy_of(ind)[start:stop])
        np.testing.assert_allclose(numpy_of(d), numpy_of(dist)[start:stop], rtol=1e-12)
    assert not np.any(numpy_of(ind) == np.arange(50)[:, None])
