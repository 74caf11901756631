"""KernelPCA: equal to scikit-learn's when exact, Nyström landmarks, the array path, errors;
kernelised metric learning beats a linear metric where no linear one separates."""

import numpy as np
import pytest
from sklearn.datasets import load_digits, make_circles
from sklearn.decomposition import KernelPCA as SkKernelPCA
from sklearn.kernel_ridge import KernelRidge
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler

from skmetric import KernelPCA, make_kernel_learner
from skmetric.supervised._nca import NCA

KERNELS = ["linear", "rbf", "poly", "sigmoid", "cosine"]


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X / 16.0, y


def _same_up_to_sign(a, b, rtol=1e-7):
    signs = np.sign(np.sum(a * b, axis=0))
    np.testing.assert_allclose(a, b * signs, rtol=rtol, atol=rtol * np.abs(b).max())


def _kernel(kernel, A, B, gamma=0.05, degree=2, coef0=0.5):
    """The kernels' textbook formulas."""
    if kernel == "rbf":
        return np.exp(-gamma * ((A[:, None, :] - B[None, :, :]) ** 2).sum(-1))
    if kernel == "cosine":
        unit = lambda M: M / np.linalg.norm(M, axis=1, keepdims=True)  # noqa: E731
        return unit(A) @ unit(B).T
    return {"linear": A @ B.T, "poly": (gamma * A @ B.T + coef0) ** degree,
            "sigmoid": np.tanh(gamma * A @ B.T + coef0)}[kernel]


@pytest.mark.parametrize("kernel", KERNELS)
def test_exact_numpy_mode_is_the_eigendecomposition_of_the_centred_kernel(kernel, digits):
    X, X_new = digits[0][:300], digits[0][300:307]
    ours = KernelPCA(n_components=6, kernel=kernel, gamma=0.05, degree=2, coef0=0.5,
                     random_state=0)
    Z = ours.fit_transform(X)
    # Reference: eigenpairs (w, v) of the doubly centred K; sample i maps to sqrt(w) v_i, and
    # a new point x to (centred k(x, X)) v / sqrt(w).
    K = _kernel(kernel, X, X)
    n = len(X)
    H = np.eye(n) - 1.0 / n
    w, V = np.linalg.eigh(H @ K @ H)
    w, V = w[::-1][:6], V[:, ::-1][:, :6]
    np.testing.assert_allclose(ours.eigenvalues_, w, rtol=1e-8)
    _same_up_to_sign(Z, V * np.sqrt(w), rtol=1e-6)
    K_new = _kernel(kernel, X_new, X)
    K_new_c = K_new - K.mean(0) - K_new.mean(1, keepdims=True) + K.mean()
    _same_up_to_sign(ours.transform(X_new), K_new_c @ V / np.sqrt(w), rtol=1e-6)


def test_precomputed_kernel_and_inverse_transform_match_scikit_learn(digits):
    X = digits[0][:200]
    K = X @ X.T
    np.testing.assert_allclose(KernelPCA(4, kernel="precomputed").fit_transform(K),
                               SkKernelPCA(4, kernel="precomputed").fit_transform(K))
    params = dict(n_components=8, kernel="rbf", gamma=0.02, fit_inverse_transform=True)
    ours, ref = KernelPCA(**params).fit(X), SkKernelPCA(**params).fit(X)
    np.testing.assert_allclose(ours.inverse_transform(ours.transform(X)),
                               ref.inverse_transform(ref.transform(X)))


@pytest.mark.parametrize("kernel", KERNELS)
def test_array_path_on_torch_cpu_matches_scikit_learn_up_to_sign(kernel, digits):
    torch = pytest.importorskip("torch")
    X = digits[0][:250]
    params = dict(n_components=5, kernel=kernel, gamma=0.05, degree=2, coef0=0.5)
    ref = SkKernelPCA(**params).fit(X)
    ours = KernelPCA(**params, device="cpu").fit(X)
    np.testing.assert_allclose(ours.eigenvalues_, ref.eigenvalues_, rtol=1e-8)
    Z = ours.transform(X[:50])
    assert isinstance(Z, np.ndarray)  # NumPy in, NumPy out
    _same_up_to_sign(Z, ref.transform(X[:50]))
    Zt = ours.transform(torch.from_numpy(X[:50]))
    assert isinstance(Zt, torch.Tensor) and Zt.dtype == torch.float64
    np.testing.assert_allclose(Zt.numpy(), Z, rtol=1e-10, atol=1e-12)
    # torch input without device= computes in torch too
    Zin = KernelPCA(**params).fit_transform(torch.from_numpy(X))
    assert isinstance(Zin, torch.Tensor)
    _same_up_to_sign(Zin[:50].numpy(), ref.transform(X[:50]))


def test_array_path_on_array_api_strict(digits):
    xps = pytest.importorskip("array_api_strict")
    X = digits[0][:120]
    ref = SkKernelPCA(3, kernel="rbf", gamma=0.05).fit(X)
    Z = KernelPCA(3, kernel="rbf", gamma=0.05).fit_transform(xps.asarray(X))
    _same_up_to_sign(np.asarray(Z), ref.transform(X))


def test_landmarks_equal_to_all_samples_reproduce_the_exact_spectrum(digits):
    X = digits[0][:150]
    ref = SkKernelPCA(6, kernel="rbf", gamma=0.05).fit(X)
    ours = KernelPCA(6, kernel="rbf", gamma=0.05, n_landmarks=150, random_state=0).fit(X)
    np.testing.assert_allclose(ours.eigenvalues_, ref.eigenvalues_, rtol=1e-6)
    _same_up_to_sign(ours.transform(X), ref.transform(X), rtol=1e-5)


@pytest.mark.parametrize("method", ["uniform", "kmeans++"])
def test_landmark_knn_accuracy_within_one_point_of_exact_on_digits(method, digits):
    X, y = digits
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
    params = dict(n_components=30, kernel="rbf", gamma=0.02)
    exact = make_pipeline(KernelPCA(**params), KNeighborsClassifier(3)).fit(Xtr, ytr)
    approx = make_pipeline(
        KernelPCA(**params, n_landmarks=400, landmark_method=method, random_state=0),
        KNeighborsClassifier(3),
    ).fit(Xtr, ytr)
    kpca = approx[0]
    assert kpca.landmarks_.shape == (400, 64)
    assert kpca.landmark_components_.shape == (400, 30)
    assert not hasattr(kpca, "X_fit_")  # no n×n or n×d copy kept
    assert approx.score(Xte, yte) >= exact.score(Xte, yte) - 0.01


def test_landmarks_are_reproducible_with_random_state(digits):
    X = digits[0][:300]
    a = KernelPCA(4, kernel="rbf", n_landmarks=50, random_state=3).fit_transform(X)
    b = KernelPCA(4, kernel="rbf", n_landmarks=50, random_state=3).fit_transform(X)
    np.testing.assert_array_equal(a, b)


def test_landmark_inverse_transform_reconstructs_approximately(digits):
    X = digits[0][:400]
    kpca = KernelPCA(30, kernel="rbf", gamma=0.02, n_landmarks=200, alpha=1e-3,
                     fit_inverse_transform=True, random_state=0).fit(X)
    Z = kpca.transform(X)
    X_hat = kpca.inverse_transform(Z)
    # The pre-image map is kernel ridge regression from the landmarks' embeddings back to
    # the landmarks, with the same kernel and alpha.
    ridge = KernelRidge(alpha=1e-3, kernel="rbf", gamma=0.02)
    ridge.fit(kpca.transform(kpca.landmarks_), kpca.landmarks_)
    np.testing.assert_allclose(X_hat, ridge.predict(Z), rtol=1e-7, atol=1e-9)
    # It reconstructs nearly as well as the exact mode fitted on all 400 samples (19% vs
    # 17% relative error here).
    exact = KernelPCA(30, kernel="rbf", gamma=0.02, alpha=1e-3,
                      fit_inverse_transform=True).fit(X)

    def error(X_rec):
        return np.linalg.norm(X_rec - X) / np.linalg.norm(X - X.mean(0))

    assert error(X_hat) < 1.15 * error(exact.inverse_transform(exact.transform(X))) < 0.25
    # Without fit_inverse_transform the method is absent (so generic code does not call it).
    plain = KernelPCA(30, kernel="rbf", gamma=0.02, n_landmarks=200, random_state=0).fit(X)
    assert not hasattr(plain, "inverse_transform")
    with pytest.raises(AttributeError) as info:
        plain.inverse_transform(Z)
    assert "needs fit_inverse_transform=True" in str(info.value.__cause__)


@pytest.mark.parametrize(
    "params, X, match",
    [
        (dict(kernel="laplacian"), np.ones((5, 2)), "kernel"),
        (dict(n_landmarks=20), np.random.RandomState(0).rand(10, 2), "exceeds the number"),
        (dict(kernel="precomputed"), np.ones((3, 4)), "square"),
        (dict(kernel="precomputed", n_landmarks=2), np.ones((3, 3)), "n_landmarks cannot"),
        (dict(n_landmarks=0), np.ones((5, 2)), "n_landmarks"),
        (dict(landmark_method="random"), np.ones((5, 2)), "landmark_method"),
        (dict(device="tpu"), np.ones((5, 2)), "device must be"),
        (dict(n_landmarks=3), np.array([[0.0, np.nan]] * 5), "NaN"),
    ],
)
def test_bad_parameters_and_inputs_raise_clear_errors(params, X, match):
    with pytest.raises(ValueError, match=match):
        KernelPCA(**params).fit(X)


def test_kernel_nca_beats_linear_nca_on_concentric_circles():
    # No linear map to one dimension separates concentric circles; a kernel one does.
    X, y = make_circles(n_samples=300, factor=0.5, noise=0.08, random_state=0)
    linear = make_pipeline(NCA(n_components=1, random_state=0), KNeighborsClassifier(3))
    kernel = make_pipeline(
        make_kernel_learner(NCA(n_components=1, random_state=0), gamma=2.0, n_components=20),
        KNeighborsClassifier(3),
    )
    acc_linear = cross_val_score(linear, X, y, cv=5).mean()
    acc_kernel = cross_val_score(kernel, X, y, cv=5).mean()
    assert acc_linear < 0.85
    assert acc_kernel > 0.97
    assert acc_kernel - acc_linear > 0.15


def test_kernel_learner_is_tunable_in_grid_search():
    X, y = make_circles(n_samples=150, factor=0.5, noise=0.08, random_state=1)
    pipe = make_pipeline(
        MinMaxScaler(),
        make_kernel_learner(NCA(n_components=1, max_iter=30, random_state=0), n_components=10,
                            n_landmarks=40, random_state=0),
        KNeighborsClassifier(3),
    )
    # gamma=500 makes every sample its own island (0.72); small gammas all separate the
    # circles, 0.01 included (NCA rescales the quadratic components). The bad value first:
    # a grid that ignored the parameter would keep it.
    grid = GridSearchCV(pipe, {"pipeline__kpca__gamma": [500.0, 5.0]}, cv=3).fit(X, y)
    assert grid.best_params_["pipeline__kpca__gamma"] == 5.0
    assert grid.best_score_ > 0.9
