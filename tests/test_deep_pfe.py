"""Probabilistic face embeddings: the mutual likelihood score, the MLS loss, and the
ProbabilisticEmbedder's uncertainty on corrupted digits."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("skorch")

from sklearn.datasets import load_digits  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

from skmetric.deep import MetricEmbedder, ProbabilisticEmbedder  # noqa: E402
from skmetric.deep.pfe import MLSLoss, ProbabilisticModule, mutual_likelihood_score  # noqa: E402


def test_mutual_likelihood_score_matches_the_gaussian_formula(rng):
    mu1, mu2 = rng.randn(5, 3), rng.randn(5, 3)
    v1, v2 = rng.rand(5, 3) + 0.1, rng.rand(5, 3) + 0.1
    expected = []
    for a, b, s, t in zip(mu1, mu2, v1, v2, strict=True):
        # log N(a - b; 0, diag(s + t)): the likelihood that both share one latent code
        var = s + t
        expected.append(np.sum(-0.5 * (a - b) ** 2 / var - 0.5 * np.log(2 * math.pi * var)))
    np.testing.assert_allclose(mutual_likelihood_score(mu1, v1, mu2, v2), expected)
    as_torch = mutual_likelihood_score(*(torch.from_numpy(a) for a in (mu1, v1, mu2, v2)))
    assert isinstance(as_torch, torch.Tensor)
    np.testing.assert_allclose(as_torch.numpy(), expected)


def test_mutual_likelihood_score_rejects_bad_input(rng):
    a = rng.rand(4, 2)
    with pytest.raises(ValueError, match="one shape"):
        mutual_likelihood_score(a, a, a[:3], a[:3])
    with pytest.raises(ValueError, match="positive"):
        mutual_likelihood_score(a, -a, a, -a)


def test_mls_loss_is_the_mean_over_same_class_pairs_and_has_exact_gradients():
    g = torch.Generator().manual_seed(0)
    out = torch.randn(6, 8, generator=g, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([0, 0, 1, 1, 1, 2])
    loss = MLSLoss()
    mu, var = out[:, :4], torch.exp(out[:, 4:])
    pairs = [(0, 1), (2, 3), (2, 4), (3, 4)]
    expected = -sum(mutual_likelihood_score(mu[[i]], var[[i]], mu[[j]], var[[j]])
                    for i, j in pairs) / 4
    torch.testing.assert_close(loss(out, labels), expected[0])
    assert torch.autograd.gradcheck(lambda o: loss(o, labels), (out,))
    with pytest.raises(ValueError, match="even number of columns"):
        loss(torch.randn(4, 5), torch.zeros(4))


def test_frozen_trunk_gets_no_gradient_and_mu_is_normalised():
    trunk = torch.nn.Sequential(torch.nn.Linear(5, 3), torch.nn.BatchNorm1d(3))
    module = ProbabilisticModule(trunk, 3, hidden=8, freeze_trunk=True).train()
    assert not trunk.training  # frozen batch-norm statistics
    out = module(torch.randn(10, 5))
    MLSLoss()(out, torch.arange(10) % 2).backward()
    assert all(p.grad is None for p in trunk.parameters())
    assert all(p.grad is not None for p in module.head.parameters())
    torch.testing.assert_close(out[:, :3].norm(dim=1), torch.ones(10))


def _occlude(X, seed):
    rng = np.random.RandomState(seed)
    imgs = X.reshape(-1, 8, 8).copy()
    for img in imgs:
        r, c = rng.randint(0, 5, size=2)
        img[r:r + 4, c:c + 4] = 0.0
    return imgs.reshape(len(X), 64)


@pytest.mark.slow
def test_uncertainty_flags_occluded_digits_and_mls_beats_cosine_on_them():
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.4, stratify=y, random_state=0)
    base = MetricEmbedder(max_epochs=10, random_state=0).fit(Xtr, ytr)
    pfe = ProbabilisticEmbedder(module=base.module_, max_epochs=8, lr=1e-2,
                                uncertainty_input="input", random_state=0)
    pfe.fit(np.vstack([Xtr, _occlude(Xtr, 0)]), np.r_[ytr, ytr])
    # The trunk was frozen: mu is the base embedding.
    np.testing.assert_allclose(pfe.transform(Xte[:20]), base.transform(Xte[:20]), atol=1e-5)

    Xte_occ = _occlude(Xte, 1)
    u_clean = pfe.transform_uncertainty(Xte).mean(axis=1)
    u_occ = pfe.transform_uncertainty(Xte_occ).mean(axis=1)
    is_occ = np.r_[np.zeros(len(Xte)), np.ones(len(Xte))]
    assert roc_auc_score(is_occ, np.r_[u_clean, u_occ]) > 0.75
    assert np.median(u_occ) > np.median(u_clean)

    rng = np.random.RandomState(2)
    i, j = rng.randint(0, len(Xte), 4000), rng.randint(0, len(Xte), 4000)
    same = yte[i] == yte[j]
    for A, B in [(Xte_occ[i], Xte_occ[j]), (Xte[i], Xte_occ[j])]:
        auc_mls = roc_auc_score(same, pfe.pair_score(A, B))
        mu_a, mu_b = pfe.transform(A), pfe.transform(B)
        auc_cos = roc_auc_score(same, np.sum(mu_a * mu_b, axis=1))
        assert auc_mls > auc_cos, (auc_mls, auc_cos)
    mu, var = pfe.transform(Xte[:3], return_variance=True)
    assert mu.shape == var.shape == (3, pfe.embedding_dim_) and np.all(var > 0)


def test_probabilistic_embedder_rejects_bad_uncertainty_input():
    X, y = load_digits(return_X_y=True)
    with pytest.raises(ValueError, match="uncertainty_input must be"):
        ProbabilisticEmbedder(uncertainty_input="pixels", max_epochs=1).fit(X[:80], y[:80])
