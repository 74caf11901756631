"""RCA and RCA_Supervised: whitening by within-chunk covariance, 3-NN gains, bad input."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_iris, load_wine
from sklearn.model_selection import cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline

from skmetric import RCA, Constraints, RCA_Supervised


def _chunk_covariance(X, chunks):
    """Within-chunk covariance, chunk by chunk."""
    rows = []
    for c in np.unique(chunks[chunks >= 0]):
        members = X[chunks == c]
        rows.append(members - members.mean(axis=0))
    centred = np.vstack(rows)
    return centred.T @ centred / centred.shape[0]


def _wine_chunks(n_chunks=40, chunk_size=3, seed=0):
    X, y = load_wine(return_X_y=True)
    return X, y, Constraints(y).chunks(n_chunks, chunk_size, random_state=seed)


def test_full_rank_map_whitens_the_within_chunk_covariance():
    X, _, chunks = _wine_chunks()
    L = RCA().fit(X, chunks).components_
    C = _chunk_covariance(X, chunks)
    np.testing.assert_allclose(L @ C @ L.T, np.eye(13), atol=1e-8)
    np.testing.assert_allclose(L.T @ L, np.linalg.inv(C), rtol=1e-6)
    np.testing.assert_allclose(L, L.T, atol=1e-10)  # the symmetric C^{-1/2}


def test_reduced_map_keeps_least_within_chunk_variance_and_whitens_it():
    X, _, chunks = _wine_chunks()
    rca = RCA(n_components=3).fit(X, chunks)
    L = rca.components_
    C = _chunk_covariance(X, chunks)
    T = np.cov(X[chunks >= 0], rowvar=False, bias=True)
    assert L.shape == (3, 13)
    np.testing.assert_allclose(L @ C @ L.T, np.eye(3), atol=1e-8)
    # Its directions have the smallest within-chunk / total variance ratios.
    ratios = np.diag(L @ C @ L.T) / np.diag(L @ T @ L.T)
    lam = np.sort(np.linalg.eigvals(np.linalg.solve(T, C)).real)
    np.testing.assert_allclose(np.sort(ratios), lam[:3], rtol=1e-6)


def test_unassigned_samples_do_not_change_the_map():
    X, _, chunks = _wine_chunks()
    X2 = X.copy()
    X2[chunks == -1] *= 7.5
    np.testing.assert_allclose(RCA().fit(X2, chunks).components_,
                               RCA().fit(X, chunks).components_)
    # Chunk ids are labels only: renumbering them changes nothing.
    renamed = np.where(chunks >= 0, chunks * 3 + 11, -1)
    np.testing.assert_allclose(RCA().fit(X, renamed).components_,
                               RCA().fit(X, chunks).components_)


def test_supervised_draws_chunks_with_constraints_and_random_state():
    X, y = load_iris(return_X_y=True)
    rca = RCA_Supervised(n_chunks=30, chunk_size=3, random_state=5).fit(X, y)
    expected = Constraints(y).chunks(n_chunks=30, chunk_size=3, random_state=5)
    np.testing.assert_array_equal(rca.chunks_, expected)
    np.testing.assert_allclose(rca.components_, RCA().fit(X, expected).components_)
    other = RCA_Supervised(n_chunks=30, chunk_size=3, random_state=6).fit(X, y)
    assert not np.allclose(rca.components_, other.components_)


def test_improves_3nn_accuracy_on_unscaled_wine():
    X, y = load_wine(return_X_y=True)

    def cv(*steps):
        return cross_val_score(make_pipeline(*steps, KNeighborsClassifier(3)), X, y,
                               cv=5).mean()

    euclidean = cv()
    assert cv(RCA_Supervised(n_chunks=40, chunk_size=2, random_state=0)) > euclidean + 0.2
    assert cv(RCA_Supervised(n_components=5, n_chunks=40, chunk_size=2,
                             random_state=0)) > euclidean + 0.2


def test_improves_3nn_when_noise_features_vary_within_classes():
    rng = np.random.RandomState(0)
    n = 300
    y = rng.randint(0, 3, n)
    signal = np.eye(3)[y] * 2 + 0.3 * rng.randn(n, 3)
    X = np.hstack([signal, 4 * rng.randn(n, 5)])
    euclidean = cross_val_score(KNeighborsClassifier(3), X, y, cv=5).mean()
    learned = cross_val_score(
        make_pipeline(RCA_Supervised(n_chunks=60, chunk_size=3, random_state=0),
                      KNeighborsClassifier(3)), X, y, cv=5).mean()
    assert learned > euclidean + 0.2


def test_rank_deficient_chunks_warn_and_suggest_a_fix():
    X, y = load_wine(return_X_y=True)
    with pytest.warns(UserWarning, match=r"rank 5 while.*span 9 of 13.*n_components<=5.*PCA"):
        rca = RCA_Supervised(n_chunks=5, chunk_size=2, random_state=0).fit(X, y)
    assert np.all(np.isfinite(rca.components_))
    assert np.linalg.matrix_rank(rca.components_) == 5
    with pytest.raises(ValueError, match="n_components=8 is too many"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            RCA_Supervised(n_components=8, n_chunks=5, chunk_size=2, random_state=0).fit(X, y)


@pytest.mark.parametrize("chunks, match", [
    (np.full(20, -1), "at least one chunk of two"),
    (np.arange(20), "at least one chunk of two"),
    (np.r_[np.zeros(10), -2 * np.ones(10)].astype(int), "-1 for samples in no chunk"),
    (np.r_[np.zeros(10), 0.5 * np.ones(10)], "Unknown label type|integer ids"),
    (np.array(["a", "b"] * 10, dtype=object), "Unknown label type"),
])
def test_bad_chunks_are_rejected(chunks, match):
    X = np.random.RandomState(0).randn(20, 3)
    with pytest.raises(ValueError, match=match):
        RCA().fit(X, chunks)


@pytest.mark.parametrize("params, match", [
    ({"n_chunks": 0}, "'n_chunks' parameter"),
    ({"chunk_size": 1}, "chunk_size must be at least 2"),
    ({"n_chunks": 500}, "Not enough samples for 500 chunks"),
    ({"n_components": 20}, "n_components"),
])
def test_bad_supervised_parameters_are_rejected(params, match):
    X, y = load_iris(return_X_y=True)
    with pytest.raises(ValueError, match=match):
        RCA_Supervised(**params).fit(X, y)


def test_bad_labels_are_rejected():
    X, y = load_iris(return_X_y=True)
    # One class is not bad: chunks group samples of one class (tests/test_hunt_weak_s30.py).
    with pytest.raises(ValueError, match="Unknown label type"):
        RCA_Supervised(n_chunks=5).fit(X, np.linspace(0, 1, 150))
    with pytest.raises(ValueError, match="requires y"):
        RCA_Supervised().fit(X, None)
    with pytest.raises(ValueError, match="requires y"):
        RCA().fit(X, None)


def test_preprocessor_indices_give_the_same_map():
    X, _, chunks = _wine_chunks()
    direct = RCA().fit(X, chunks)
    indexed = RCA(preprocessor=X).fit(np.arange(len(X)), chunks)
    np.testing.assert_allclose(indexed.components_, direct.components_)
