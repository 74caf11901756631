"""LFDA: local scatter matrices, the eigenproblem, embeddings, 3-NN gains, bad input."""

import warnings

import numpy as np
import pytest
from scipy import linalg
from sklearn.datasets import load_digits, load_wine
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.model_selection import cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline

import skmetric.supervised._lfda as lfda_module
from skmetric import LFDA
from skmetric.supervised._lfda import _local_scatters


def _pairwise_scatters(X, y, k):
    """Sugiyama's definition, pair by pair: 1/2 sum_ij W_ij (x_i - x_j)(x_i - x_j)^T."""
    n, d = X.shape
    scale = np.zeros(n)
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        D = ((X[idx, None] - X[None, idx]) ** 2).sum(-1)
        scale[idx] = np.sqrt(np.sort(D, axis=1)[:, min(k, idx.size - 1)])
    S_b, S_w = np.zeros((d, d)), np.zeros((d, d))
    for i in range(n):
        for j in range(n):
            diff = np.outer(X[i] - X[j], X[i] - X[j])
            if y[i] == y[j]:
                n_c = np.sum(y == y[i])
                A = np.exp(-((X[i] - X[j]) ** 2).sum() / (scale[i] * scale[j]))
                S_w += 0.5 * A / n_c * diff
                S_b += 0.5 * A * (1 / n - 1 / n_c) * diff
            else:
                S_b += 0.5 / n * diff
    return S_b, S_w


def _digits_with_noise(n_noise=64, seed=0):
    X, y = load_digits(return_X_y=True)
    rng = np.random.RandomState(seed)
    return np.hstack([X, 16 * rng.rand(X.shape[0], n_noise)]), y


def _cv_3nn(learner, X, y):
    steps = [learner] if learner is not None else []
    return cross_val_score(make_pipeline(*steps, KNeighborsClassifier(3)), X, y, cv=5).mean()


@pytest.mark.parametrize("k", [1, 3, 50])
def test_local_scatters_match_the_pairwise_definition(k, monkeypatch):
    rng = np.random.RandomState(0)
    X, y = rng.randn(36, 3), np.arange(36) % 3
    expected_b, expected_w = _pairwise_scatters(X, y, k)
    S_b, S_w, _ = _local_scatters(X, y, k)
    np.testing.assert_allclose(S_b, expected_b, atol=1e-10)
    np.testing.assert_allclose(S_w, expected_w, atol=1e-10)
    # Row blocks of the affinities give the same matrices as one block.
    monkeypatch.setattr(lfda_module, "_BLOCK_ELEMENTS", 20)
    S_b2, S_w2, _ = _local_scatters(X, y, k)
    np.testing.assert_allclose(S_b2, S_b, atol=1e-10)
    np.testing.assert_allclose(S_w2, S_w, atol=1e-10)


def test_plain_embedding_solves_the_generalized_eigenproblem():
    X, y = load_wine(return_X_y=True)
    lfda = LFDA(n_components=5, k=7, embedding_type="plain").fit(X, y)
    S_b, S_w, _ = _local_scatters(X, np.unique(y, return_inverse=True)[1], 7)
    V = lfda.components_.T
    vals = lfda.eigenvalues_
    assert np.all(np.diff(vals) <= 0)
    np.testing.assert_allclose(S_b @ V, (S_w @ V) * vals, rtol=1e-6,
                               atol=1e-8 * np.abs(S_b).max())
    np.testing.assert_allclose(V.T @ S_w @ V, np.eye(5), atol=1e-6)
    # The kept eigenvalues are the largest ones.
    all_vals = linalg.eigh(S_b, S_w, eigvals_only=True)
    np.testing.assert_allclose(vals, np.sort(all_vals)[::-1][:5], rtol=1e-6)


def test_embedding_types_weight_or_orthonormalize_the_same_directions():
    X, y = load_wine(return_X_y=True)
    plain = LFDA(n_components=4, embedding_type="plain").fit(X, y)
    weighted = LFDA(n_components=4, embedding_type="weighted").fit(X, y)
    ortho = LFDA(n_components=4, embedding_type="orthonormalized").fit(X, y)
    np.testing.assert_allclose(weighted.components_,
                               plain.components_ * np.sqrt(plain.eigenvalues_)[:, None])
    np.testing.assert_allclose(ortho.components_ @ ortho.components_.T, np.eye(4), atol=1e-10)
    # Orthonormalising keeps the span of the plain directions.
    P = ortho.components_.T @ ortho.components_
    np.testing.assert_allclose(P @ plain.components_.T, plain.components_.T, atol=1e-8)


def test_improves_3nn_accuracy_on_unscaled_wine():
    X, y = load_wine(return_X_y=True)
    euclidean = _cv_3nn(None, X, y)
    assert _cv_3nn(LFDA(k=7), X, y) > euclidean + 0.15
    assert _cv_3nn(LFDA(n_components=2, k=7), X, y) > euclidean + 0.15


def test_improves_3nn_accuracy_on_digits_with_noise_features():
    X, y = _digits_with_noise()
    euclidean = _cv_3nn(None, X, y)
    assert _cv_3nn(LFDA(k=7), X, y) > euclidean + 0.01


def test_keeps_a_multimodal_class_apart_where_lda_cannot():
    # Class 0 is two clusters on either side of class 1 along feature 0, so the class means
    # coincide and LDA's single direction is useless; feature 1 is noise.
    rng = np.random.RandomState(0)
    n = 60
    centers = np.r_[-4 * np.ones(n), 4 * np.ones(n), np.zeros(n)]
    X = np.c_[centers + 0.3 * rng.randn(3 * n), rng.randn(3 * n)]
    y = np.r_[np.zeros(2 * n), np.ones(n)].astype(int)
    lfda = LFDA(n_components=1, k=5).fit(X, y)
    direction = lfda.components_[0] / np.linalg.norm(lfda.components_[0])
    assert abs(direction[0]) > 0.99
    lfda_acc = cross_val_score(KNeighborsClassifier(3), lfda.transform(X), y, cv=5).mean()
    lda = LinearDiscriminantAnalysis(n_components=1).fit(X, y)
    lda_acc = cross_val_score(KNeighborsClassifier(3), lda.transform(X), y, cv=5).mean()
    assert lfda_acc > 0.95 > lda_acc + 0.2


def test_constant_features_and_duplicates_give_finite_components():
    rng = np.random.RandomState(0)
    X = np.c_[rng.randn(30, 3), np.ones(30)]
    X[5] = X[6] = X[7] = X[4]  # duplicates: zero local scale
    y = np.arange(30) % 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a constant feature is dropped, not regularised
        lfda = LFDA(k=2).fit(X, y)
    assert np.all(np.isfinite(lfda.components_))
    # The constant feature gets no weight; the others the map learned without it.
    np.testing.assert_array_equal(lfda.components_[:, 3], 0)
    without = LFDA(k=2).fit(X[:, :3], y).components_
    np.testing.assert_allclose(lfda.components_[:3, :3], without, rtol=1e-10, atol=1e-12)
    assert np.allclose(lfda.transform(X)[:, -1], 0)  # the padded direction is empty


def test_more_features_than_samples_per_class_warns_and_stays_finite():
    rng = np.random.RandomState(0)
    X, y = rng.randn(12, 20), np.arange(12) % 2
    with pytest.warns(UserWarning, match="singular"):
        lfda = LFDA(n_components=3, k=2).fit(X, y)
    assert np.all(np.isfinite(lfda.components_))


def test_large_k_is_capped_by_class_size():
    X, y = load_wine(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        big = LFDA(k=1000).fit(X, y).components_
    # The classes have 59, 71 and 48 samples: k >= 70 reaches every class's farthest member.
    np.testing.assert_allclose(big, LFDA(k=70).fit(X, y).components_)


@pytest.mark.parametrize("params, match", [
    ({"k": 0}, "'k' parameter"),
    ({"k": 2.5}, "'k' parameter"),
    ({"embedding_type": "whitened"}, "'embedding_type' parameter"),
    ({"n_components": 14}, "n_components"),
    ({"n_components": 0}, "n_components"),
])
def test_bad_parameters_are_rejected(params, match):
    X, y = load_wine(return_X_y=True)
    with pytest.raises(ValueError, match=match):
        LFDA(**params).fit(X, y)


def test_bad_labels_are_rejected():
    rng = np.random.RandomState(0)
    X = rng.randn(20, 3)
    with pytest.raises(ValueError, match="at least 2 samples per class"):
        LFDA().fit(X, np.r_[np.zeros(19), 1])
    with pytest.raises(ValueError, match="at least two classes"):
        LFDA().fit(X, np.zeros(20))
    with pytest.raises(ValueError, match="Unknown label type"):
        LFDA().fit(X, rng.randn(20))
    with pytest.raises(ValueError, match="requires y"):
        LFDA().fit(X, None)


def test_preprocessor_indices_give_the_same_map():
    X, y = load_wine(return_X_y=True)
    direct = LFDA(n_components=3).fit(X, y)
    indexed = LFDA(n_components=3, preprocessor=X).fit(np.arange(len(X)), y)
    np.testing.assert_allclose(indexed.components_, direct.components_)
    np.testing.assert_allclose(indexed.transform(np.arange(5)), direct.transform(X[:5]))
