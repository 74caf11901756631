"""Bug hunt of session 30 in skmetric.kernel: the landmark (Nyström) mode's number of
components beyond the landmark kernel's rank, and its component signs across backends."""

import numpy as np
import pytest
from sklearn.decomposition import KernelPCA as SkKernelPCA

from skmetric import KernelPCA


@pytest.fixture(scope="module")
def X():
    return np.random.RandomState(0).rand(40, 3)


def test_landmark_mode_returns_n_components_columns_beyond_the_kernel_rank(X):
    # The linear kernel of 3 features has rank 3: the landmark mode returned 3 columns for
    # n_components=5, where the exact mode (scikit-learn's) returns 5, the last two null.
    ref = SkKernelPCA(5, kernel="linear").fit(X)
    kpca = KernelPCA(5, kernel="linear", n_landmarks=10, random_state=0).fit(X)
    Z = kpca.transform(X)
    assert Z.shape == ref.transform(X).shape == (40, 5)
    assert kpca.eigenvalues_.shape == (5,)
    np.testing.assert_allclose(kpca.eigenvalues_, ref.eigenvalues_, atol=1e-10)
    np.testing.assert_allclose(np.abs(Z), np.abs(ref.transform(X)), atol=1e-10)
    assert np.all(Z[:, 3:] == 0)
    # remove_zero_eig keeps dropping them, as scikit-learn does.
    kept = KernelPCA(5, kernel="linear", n_landmarks=10, random_state=0, remove_zero_eig=True)
    assert kept.fit_transform(X).shape == (40, 3)


@pytest.mark.parametrize("kernel", ["rbf", "linear", "poly", "cosine"])
def test_landmark_components_have_the_same_signs_on_numpy_and_torch(kernel, X):
    # eigh's signs differ between LAPACK calls: the same fit on torch input gave some
    # components negated relative to NumPy input.
    torch = pytest.importorskip("torch")
    params = dict(n_components=3, kernel=kernel, n_landmarks=15, random_state=0)
    Z_np = KernelPCA(**params).fit_transform(X)
    Z_t = KernelPCA(**params).fit_transform(torch.as_tensor(X)).numpy()
    np.testing.assert_allclose(Z_t, Z_np, atol=1e-10)
    # scikit-learn's convention: each column of the map's largest entry is positive.
    comps = KernelPCA(**params).fit(X).landmark_components_
    assert np.all(comps[np.abs(comps).argmax(axis=0), np.arange(3)] > 0)


def test_plot_retrieval_refuses_embeddings_not_one_row_per_image():
    # Embeddings of another length were searched as given: the neighbours' indices then
    # framed the wrong reference images (or failed with a bare IndexError).
    import matplotlib

    matplotlib.use("Agg")
    from skmetric.plotting import plot_retrieval

    rng = np.random.RandomState(0)
    imgs, lab = rng.rand(6, 4, 4), np.arange(6) % 2
    with pytest.raises(ValueError, match="query_embeddings must have one row per image"):
        plot_retrieval(imgs[:3], lab[:3], imgs[3:], lab[3:], k=2,
                       query_embeddings=rng.rand(4, 5), reference_embeddings=rng.rand(3, 5))
    with pytest.raises(ValueError, match="reference_embeddings must have one row per image"):
        plot_retrieval(imgs[:3], lab[:3], imgs[3:], lab[3:], k=2,
                       query_embeddings=rng.rand(3, 5), reference_embeddings=rng.rand(2, 5))
    with pytest.raises(ValueError, match="query_embeddings must have one row per image"):
        plot_retrieval(imgs, lab, k=2, query_embeddings=rng.rand(8, 5))
    fig = plot_retrieval(imgs[:3], lab[:3], imgs[3:], lab[3:], k=2,
                         query_embeddings=rng.rand(3, 5), reference_embeddings=rng.rand(3, 5))
    assert len(fig.axes) == 9


def test_precomputed_kernel_must_be_symmetric(X):
    # eigh reads one triangle only, so an asymmetric "kernel" was silently decomposed as
    # another, symmetric one.
    K = X @ X.T
    bad = K.copy()
    bad[0, 1] += 5
    with pytest.raises(ValueError, match="symmetric kernel.*K - K.T"):
        KernelPCA(2, kernel="precomputed").fit(bad)
    ref = SkKernelPCA(2, kernel="precomputed").fit_transform(K)
    np.testing.assert_allclose(KernelPCA(2, kernel="precomputed").fit_transform(K), ref)
