"""Bugs found off the happy path of the classical (non-deep) API, eighth session.

Each test failed before its fix: labels of mixed types, LMNN's prior penalty on samples
without variance along the prior map, KernelPCA's unchecked pre-image input and kernels that
overflow, MLKR given non-numeric targets.
"""

import re
import warnings

import numpy as np
import pytest
from sklearn.base import clone

import skmetric
from skmetric import LMNN, NCA, Constraints, MetricKNeighborsClassifier
from skmetric.metrics import nmi_kmeans, precision_at_k
from skmetric.supervised._lmnn import _PriorPenalty


def _blobs(n=30, d=3, seed=0):
    rng = np.random.RandomState(seed)
    y = np.arange(n) % 3
    X = rng.randn(n, d)
    X[:, 0] += 3 * y
    return X, y


# -- labels of mixed types -----------------------------------------------------------------

# Python ints and strings in one object array cannot be sorted: np.unique raised
# "'<' not supported between instances of 'int' and 'str'" from deep inside NumPy (or, with
# an int first, scikit-learn's misleading "Unknown label type: unknown ... regression").
MIXED = [np.array(["a", 1, 2] * 10, dtype=object), np.array([1, "a", 2] * 10, dtype=object)]
MIXED_MESSAGE = r" are of different types \(int, str\).*same type"


@pytest.mark.parametrize("labels", MIXED, ids=["str_first", "int_first"])
def test_mixed_type_labels_are_named_by_every_entry_point(labels):
    X, _ = _blobs()
    with pytest.raises(TypeError, match="in y" + MIXED_MESSAGE):
        NCA(max_iter=5).fit(X, labels)  # validate_labelled: every supervised learner
    with pytest.raises(TypeError, match="in y" + MIXED_MESSAGE):
        skmetric.ITML_Supervised(max_iter=5).fit(X, labels)
    with pytest.raises(TypeError, match="in y" + MIXED_MESSAGE):
        MetricKNeighborsClassifier(3).fit(X, labels)
    with pytest.raises(TypeError, match="in labels" + MIXED_MESSAGE):
        Constraints(labels)
    with pytest.raises(TypeError, match="in query_labels" + MIXED_MESSAGE):
        precision_at_k(X, labels)
    with pytest.raises(TypeError, match="in labels" + MIXED_MESSAGE):
        nmi_kmeans(X, labels, random_state=0)
    # The same labels as one type are fine, and give the answer of integer labels.
    as_str = labels.astype(str)
    codes = np.unique(as_str, return_inverse=True)[1]
    assert precision_at_k(X, as_str) == precision_at_k(X, codes)
    np.testing.assert_array_equal(NCA(max_iter=5).fit(X, as_str).components_,
                                  NCA(max_iter=5).fit(X, codes).components_)


def test_retrieval_refuses_string_references_for_numeric_queries():
    X, y = _blobs()
    # np.concatenate turned the numbers into strings: 1 matched '1' but 1.0 became '1.0',
    # matching nothing, so every query was "lone" and the metric NaN.
    for query_labels in (y, y.astype(float)):
        with pytest.raises(TypeError, match=r"query_labels are numbers and "
                                            r"reference_labels strings"):
            precision_at_k(X, query_labels, X, y.astype(str))
    with pytest.raises(TypeError, match=r"query_labels are strings and "
                                        r"reference_labels numbers"):
        precision_at_k(X, y.astype(str), X, y)
    # Numbers of different dtypes compare by value, as before.
    assert precision_at_k(X, y, X, y.astype(float), ref_includes_query=True) == \
        precision_at_k(X, y)


# -- LMNN's prior penalty ------------------------------------------------------------------

def _penalty_by_search(L, L0, C):
    """min over c of trace((L - c L0) C (L - c L0)^T), by a dense search over c."""
    cs = np.linspace(-5, 5, 20001)
    return min(np.trace((L - c * L0) @ C @ (L - c * L0).T) for c in cs)


def test_lmnn_prior_penalty_of_a_map_without_variance_is_the_plain_spread():
    rng = np.random.RandomState(0)
    X = np.c_[rng.randn(40, 2), np.zeros((40, 2))]
    L0 = np.array([[0.0, 0.0, 1.0, 0.0]])  # moves no sample: every c L0 is as good
    L = rng.randn(1, 4)
    penalty = _PriorPenalty.for_samples(L0, X, 1.0)
    # float(0) / float(0) raised ZeroDivisionError.
    value, grad = penalty.value_grad(L)
    C = np.cov(X.T, bias=True)
    assert value == pytest.approx(penalty.weight * _penalty_by_search(L, L0, C), rel=1e-9)
    np.testing.assert_allclose(grad, 2 * penalty.weight * L @ C, rtol=1e-12)


@pytest.mark.parametrize("init", ["auto", "identity"])
def test_lmnn_fits_samples_without_variance(init):
    y = np.arange(30) % 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lmnn = LMNN(n_neighbors=1, max_iter=10, min_iter=0, init=init, prior_strength=1.0,
                    random_state=0).fit(np.ones((30, 3)), y)
    # Nothing can be learned: every distance is 0, so the map stays the initial one.
    assert np.all(np.isfinite(lmnn.components_))
    np.testing.assert_array_equal(lmnn.components_, np.eye(3))


# A start that maps every sample to one point is a stationary point of NCA's, LMNN's and
# MLKR's objectives (they see L only through ||L (x_i - x_j)||^2, whose gradient
# 2 L (x_i - x_j)(x_i - x_j)^T vanishes there): the fit returned it unchanged, an all-zero
# map for init=0 (as scikit-learn's NCA does), and LMNN's prior penalty divided by zero.
@pytest.mark.parametrize("learner", [NCA(max_iter=5), NCA(max_iter=5, prior_strength=0),
                                     LMNN(n_neighbors=1, max_iter=5, prior_strength=1.0),
                                     skmetric.MLKR(max_iter=5)],
                         ids=["NCA", "NCA_plain", "LMNN", "MLKR"])
def test_a_start_that_merges_every_sample_is_refused(learner):
    X, y = _blobs(d=4)
    X[:, 3] = 5.0
    along_constant = np.array([[0.0, 0.0, 0.0, 1.0]])
    for init in (np.zeros((4, 4)), np.zeros((2, 4)), along_constant):
        with pytest.raises(ValueError, match=r"The init array maps every sample to the same "
                                             r"point.*init='pca'"):
            clone(learner).set_params(init=init).fit(X, y)
    nearly = along_constant + [[1e-3, 0.0, 0.0, 0.0]]  # sees feature 0: a real start
    assert np.any(clone(learner).set_params(init=nearly).fit(X, y).components_[:, :3])


# -- KernelPCA -----------------------------------------------------------------------------

def _landmark_kpca(kernel, **params):
    X = np.random.RandomState(0).randn(30, 3)
    kpca = skmetric.KernelPCA(n_components=2, kernel=kernel, n_landmarks=10, random_state=0,
                              fit_inverse_transform=True, **params)
    return kpca.fit(X), X


@pytest.mark.parametrize("kernel", ["linear", "poly", "sigmoid", "rbf"])
def test_landmark_inverse_transform_checks_its_input(kernel):
    kpca, X = _landmark_kpca(kernel)
    Z = kpca.transform(X[:4])
    assert kpca.inverse_transform(Z).shape == (4, 3)
    # The linear, poly and sigmoid kernels took any array: NaN came back as NaN, a 1-D
    # array as one "sample" and a wrong width as numpy's matmul error.
    with pytest.raises(ValueError, match="NaN or infinity"):
        kpca.inverse_transform(np.full((2, 2), np.nan))
    with pytest.raises(ValueError, match="2-D array"):
        kpca.inverse_transform(Z[0])
    with pytest.raises(ValueError, match=r"points of the 2 components.*shape \(4, 3\)"):
        kpca.inverse_transform(np.c_[Z, Z[:, :1]])


MODES = {"exact": {}, "landmarks": {"n_landmarks": 10, "random_state": 0},
         "device": {"device": "cpu"}}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kernel", ["linear", "poly", "sigmoid"])
def test_kernel_pca_refuses_kernels_that_overflow(kernel, mode):
    X = np.random.RandomState(0).randn(30, 3)
    kpca = skmetric.KernelPCA(n_components=2, kernel=kernel, **MODES[mode])
    message = rf"The {kernel} kernel of these samples is not finite.*StandardScaler"
    # Dot products of features near 1e200 overflow: the landmark mode raised LinAlgError
    # ("Eigenvalues did not converge"), the device mode returned NaN components, the exact
    # mode said "Input X contains infinity" of a finite X.
    if kernel == "sigmoid":  # tanh saturates: +-1 is a kernel value, inf - inf is not
        try:
            Z = kpca.fit(X * 1e200).transform(X * 1e200)
        except ValueError as exc:
            assert re.search(message, str(exc)), str(exc)
        else:
            assert np.all(np.isfinite(Z))
        return
    with pytest.raises(ValueError, match=message):
        kpca.fit(X * 1e200)
    assert np.all(np.isfinite(kpca.fit(X).transform(X)))
    with pytest.raises(ValueError, match=message):  # 1e308 * (x_1 + x_2 + x_3) overflows
        kpca.transform(np.full((1, 3), 1e308))


# -- MLKR's targets ------------------------------------------------------------------------

@pytest.mark.parametrize("y", [np.array(["a", "b"] * 15), np.array(["a", 1.5] * 15, dtype=object)],
                         ids=["str", "object"])
def test_mlkr_names_non_numeric_targets(y):
    X, _ = _blobs()
    # Was numpy's "could not convert string to float: np.str_('b')", raised inside fit.
    with pytest.raises(ValueError, match=r"MLKR regresses real-valued targets.*NCA or LMNN"):
        skmetric.MLKR(max_iter=5).fit(X, y)
    # Numbers written as strings are numbers, as before.
    targets = np.arange(30) % 3 * 0.5
    np.testing.assert_array_equal(
        skmetric.MLKR(max_iter=5).fit(X, targets.astype(str)).components_,
        skmetric.MLKR(max_iter=5).fit(X, targets).components_)


# -- calibrate_threshold's parameters ------------------------------------------------------

@pytest.mark.parametrize("params, match", [
    # Strings failed in a comparison ("'<=' not supported between 'int' and 'str'") that
    # named no parameter; True was read as min_rate=1; beta=inf made the F-score NaN.
    ({"strategy": "max_tpr", "min_rate": "0.5"}, r"needs min_rate in \[0, 1\]; got '0.5'"),
    ({"strategy": "max_tnr", "min_rate": True}, r"needs min_rate in \[0, 1\]; got True"),
    ({"strategy": "f_beta", "beta": "a"}, r"beta must be a finite number > 0; got 'a'"),
    ({"strategy": "f_beta", "beta": np.inf}, r"beta must be a finite number > 0; got inf"),
])
def test_calibrate_threshold_names_bad_rates_and_betas(params, match):
    X, y = _blobs()
    idx, y_pairs = Constraints(y).pairs(20, random_state=0)
    itml = skmetric.ITML(preprocessor=X, max_iter=5).fit(idx, y_pairs)
    with pytest.raises(ValueError, match=match):
        itml.calibrate_threshold(idx, y_pairs, **params)
    fine = {**params, "min_rate": 0.5, "beta": 2.0}
    assert np.isfinite(itml.calibrate_threshold(idx, y_pairs, **fine).threshold_)


def test_non_finite_tuples_at_prediction_are_not_told_to_refit():
    X, y = _blobs()
    idx, y_pairs = Constraints(y).pairs(20, random_state=0)
    itml = skmetric.ITML(max_iter=5).fit(X[idx], y_pairs)
    pairs = X[idx]
    pairs[0, 1, 2] = np.nan
    # The shared check said "... before fitting." of the pairs given to predict.
    with pytest.raises(ValueError, match=r"The pairs contains NaN or infinity\. .* first\.$"):
        itml.predict(pairs)


def test_landmark_kernel_pca_answers_torch_input_in_torch():
    torch = pytest.importorskip("torch")
    kpca, X = _landmark_kpca("rbf")  # fitted on NumPy
    Z = kpca.transform(X[:5])
    # transform "returns the namespace of its input": torch input came back as NumPy.
    Z_t = kpca.transform(torch.as_tensor(X[:5]))
    assert isinstance(Z_t, torch.Tensor)
    np.testing.assert_allclose(Z_t.numpy(), Z, rtol=1e-12)
    back = kpca.inverse_transform(Z)
    back_t = kpca.inverse_transform(torch.as_tensor(Z))
    assert isinstance(back_t, torch.Tensor)
    np.testing.assert_allclose(back_t.numpy(), back, rtol=1e-12)
    # Fitted on torch, NumPy input still comes back as NumPy.
    fitted_t = skmetric.KernelPCA(n_components=2, kernel="rbf", n_landmarks=10,
                                  random_state=0).fit(torch.as_tensor(X))
    assert isinstance(fitted_t.transform(X[:5]), np.ndarray)


def test_constraints_refuse_an_unlabeled_marker_of_another_type():
    labels = np.array(["0", "0", "1", "1", "-1", "-1"])
    # String labels never equal the number -1: the '-1' samples silently became a class.
    with pytest.raises(TypeError, match=r"unlabeled=-1 cannot mark any of the labels: they "
                                        r"are strings.*unlabeled='-1'"):
        Constraints(labels, unlabeled=-1)
    with pytest.raises(TypeError, match="they are numbers"):
        Constraints(np.array([0, 0, 1, 1, -1]), unlabeled="-1")
    constraints = Constraints(labels, unlabeled="-1")
    np.testing.assert_array_equal(constraints.classes_, ["0", "1"])
    assert Constraints(np.array([0.0, 0, 1, 1, -1]), unlabeled=-1).classes_.tolist() == [0, 1]


# -- PSD checks at every scale -------------------------------------------------------------

@pytest.mark.parametrize("scale", [1e-200, 1e-10, 1.0, 1e10, 1e200])
def test_mahalanobis_matrices_are_checked_relative_to_their_scale(scale):
    X, y = _blobs(d=2)
    from skmetric.distances import pairwise_distances
    indefinite = np.diag([1.0, -1.0]) * scale
    # Tolerances were absolute below 1 (max(|M|, 1)): diag(1e-10, -1e-10) passed as PSD,
    # its negative eigenvalue clipped, and distances ignored the second feature.
    with pytest.raises(ValueError, match="not positive semi-definite"):
        pairwise_distances(X, metric="mahalanobis", M=indefinite)
    with pytest.raises(ValueError, match="not symmetric"):
        pairwise_distances(X, metric="mahalanobis", M=np.array([[1.0, 0.5], [0.0, 1.0]]) * scale)
    idx, y_pairs = Constraints(y).pairs(20, random_state=0)
    with pytest.raises(ValueError, match="prior matrix is not positive semi-definite"):
        skmetric.ITML(prior=indefinite, max_iter=5).fit(X[idx], y_pairs)
    # A PSD matrix of rank 1 (L.T @ L, with round-off) passes at every scale.
    L = np.array([[1.0, 2.0]]) * np.sqrt(scale)
    D = pairwise_distances(X, metric="mahalanobis", M=L.T @ L)
    np.testing.assert_allclose(D, pairwise_distances(X, metric="mahalanobis", L=L), rtol=1e-6)


# -- scorers check their arguments when made -----------------------------------------------

@pytest.mark.parametrize("make, name, kwargs, match", [
    ("retrieval", "precision_at_k", {"k": 0}, "'k' parameter"),
    ("retrieval", "precision_at_k", {"k": 2.5}, "'k' parameter"),
    ("retrieval", "map_at_r", {"metric": 1.5}, "'metric' parameter"),
    ("retrieval", "r_precision", {"average": "micro"}, "'average' parameter"),
    ("retrieval", "nmi", {"average_method": "mean"}, "'average_method' parameter"),
    ("retrieval", "ami", {"n_clusters": 0}, "'n_clusters' parameter"),
    ("pair", "accuracy", {"greater_is_similar": "yes"}, "'greater_is_similar' parameter"),
])
def test_scorers_refuse_bad_arguments_when_made(make, name, kwargs, match):
    from sklearn.datasets import load_iris
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    from skmetric.metrics import make_pair_scorer, make_retrieval_scorer
    factory = make_retrieval_scorer if make == "retrieval" else make_pair_scorer
    # Checked only at scoring time, inside cross-validation, where each fold's error was
    # caught: every score silently NaN (as make_pair_scorer already guards far against).
    with pytest.raises(ValueError, match=rf"{match} of make_{make}_scorer\('{name}'\)"):
        factory(name, **kwargs)
    if make == "retrieval":
        X, y = load_iris(return_X_y=True)
        cv = StratifiedKFold(3, shuffle=True, random_state=0)  # every class in each fold
        scores = cross_val_score(skmetric.Covariance(), X, y, cv=cv,
                                 scoring=factory(name, random_state=0)
                                 if name in ("nmi", "ami") else factory(name))
        assert np.all(np.isfinite(scores))


def test_retrieval_scorer_refuses_an_unknown_metric_name_when_made():
    from skmetric.metrics import make_retrieval_scorer
    with pytest.raises(ValueError, match="Unknown metric 'manhattan'; choose one of"):
        make_retrieval_scorer("map_at_r", metric="manhattan")
    assert make_retrieval_scorer("map_at_r", metric="cosine") is not None


def test_wrap_pairs_checks_its_indices_as_a_preprocessor_does():
    X = np.arange(10.0).reshape(5, 2)
    pairs, y = skmetric.wrap_pairs(X, ([0], [1], [2], [3]))
    np.testing.assert_array_equal(pairs, [[[0, 1], [2, 3]], [[4, 5], [6, 7]]])
    np.testing.assert_array_equal(y, [1, -1])
    # -1 silently paired the last sample; float indices and ragged lists failed in NumPy.
    with pytest.raises(ValueError, match=r"indices outside \[0, 5\)"):
        skmetric.wrap_pairs(X, ([-1], [0], [1], [2]))
    with pytest.raises(TypeError, match="must hold integer indices"):
        skmetric.wrap_pairs(X, ([0.5], [0], [1], [2]))
    with pytest.raises(ValueError, match=r"a and b .* same length; got shapes \(2,\) and \(1,\)"):
        skmetric.wrap_pairs(X, ([0, 1], [0], [1], [2]))


# -- FAISS index parameters ----------------------------------------------------------------

@pytest.mark.parametrize("index, params, match", [
    # M=1 and M=True crashed the interpreter (segmentation fault), M=-3 hung, ef_search=0
    # returned mostly wrong neighbours, nlist above the references or 0 and nprobe=0 raised
    # FAISS's C++ RuntimeError, floats its SWIG TypeError.
    ("hnsw", {"M": 1}, r"index_params\['M'\] must be an integer >= 2; got 1"),
    ("hnsw", {"M": True}, r"index_params\['M'\] must be an integer >= 2; got True"),
    ("hnsw", {"M": -3}, r"index_params\['M'\] must be an integer >= 2"),
    ("hnsw", {"ef_search": 0}, r"index_params\['ef_search'\] must be an integer >= 1"),
    ("hnsw", {"ef_construction": 0}, r"'ef_construction'\] must be an integer >= 1"),
    ("ivf", {"nlist": 0}, r"index_params\['nlist'\] must be an integer >= 1"),
    ("ivf", {"nlist": 2.5}, r"index_params\['nlist'\] must be an integer >= 1"),
    ("ivf", {"nlist": 31}, r"nlist=31 exceeds the 30 references"),
    ("ivf", {"nprobe": 0}, r"index_params\['nprobe'\] must be an integer >= 1"),
])
def test_faiss_index_params_are_checked_before_faiss_sees_them(index, params, match):
    pytest.importorskip("faiss")
    from skmetric.neighbors import kneighbors
    rng = np.random.RandomState(0)
    X, Y = rng.randn(20, 8), rng.randn(30, 8)
    with pytest.raises(ValueError, match=match):
        kneighbors(X, Y, 3, backend="faiss", index=index, index_params=params)
    exact = kneighbors(X, Y, 3, return_distance=False)
    fine = {"M": 16, "ef_search": 64, "nlist": 1, "nprobe": 1}
    ok = {key: fine[key] for key in params if key in fine}
    got = kneighbors(X, Y, 3, backend="faiss", index=index, index_params=ok,
                     return_distance=False)
    np.testing.assert_array_equal(got, exact)



def test_a_complex_or_text_mahalanobis_matrix_is_refused_like_l():
    from skmetric.distances import pairwise_distances
    X, _ = _blobs()
    # A complex M was cast to its real part with only NumPy's ComplexWarning (1j * I gave
    # M = 0: every distance 0); text failed with "could not convert string to float".
    with pytest.raises(ValueError, match=r"Complex data is not supported \(M has dtype"):
        pairwise_distances(X, metric="mahalanobis", M=np.eye(3) * 1j)
    with pytest.raises(TypeError, match="M must be numeric"):
        pairwise_distances(X, metric="mahalanobis", M=np.full((3, 3), "a"))
    with pytest.raises(ValueError, match="M contains NaN or infinity"):
        pairwise_distances(X, metric="mahalanobis", M=np.full((3, 3), np.nan))
    np.testing.assert_allclose(pairwise_distances(X, metric="mahalanobis", M=np.eye(3)),
                               pairwise_distances(X), rtol=1e-12)



@pytest.mark.parametrize("make, what", [
    (lambda X, y, v: NCA(init=v, max_iter=3).fit(X, y), "The init array"),
    (lambda X, y, v: skmetric.ITML_Supervised(prior=v, max_iter=3).fit(X, y),
     "The prior matrix"),
    (lambda X, y, v: skmetric.ITML_Supervised(bounds=v[0, :2], max_iter=3).fit(X, y),
     "bounds"),
    (lambda X, y, v: skmetric.SCML_Supervised(basis=v, max_iter=20, output_iter=10)
     .fit(X, y), "The basis array"),
], ids=["init", "prior", "bounds", "basis"])
def test_complex_parameter_arrays_are_refused(make, what):
    X, y = _blobs()
    # np.asarray(..., dtype=float64) kept the real part with only NumPy's ComplexWarning.
    with pytest.raises(ValueError, match=rf"{what} is complex \(dtype complex128\)"):
        make(X, y, np.eye(3) * (1 + 1j))
    with pytest.raises(TypeError, match=rf"{what} must hold numbers"):
        make(X, y, np.full((3, 3), "a"))
