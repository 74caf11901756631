"""Probabilistic face embeddings (PFE, Shi & Jain 2019): a Gaussian per sample.

Each sample is embedded as a Gaussian N(μ, diag σ²): μ comes from a (usually pretrained)
trunk, σ² from a small uncertainty head. Pairs are compared by the mutual likelihood score
(MLS), the log-likelihood that both Gaussians share one latent code; the head is trained by
maximising the MLS of same-class pairs. Uncertain samples (blurred, occluded) get large σ²,
which down-weights their distance in the MLS.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from ._tuples import check_inputs


def mutual_likelihood_score(mu1, var1, mu2, var2):
    """Mutual likelihood score of pairs of Gaussian embeddings (higher = more similar).

    ``MLS = -1/2 Σ_l [(μ1_l - μ2_l)² / (σ1²_l + σ2²_l) + log(σ1²_l + σ2²_l)] - D/2 log 2π``

    Parameters
    ----------
    mu1, mu2 : array of shape (n_pairs, dim)
        Means; NumPy arrays or torch tensors (the result has the same type).
    var1, var2 : array of shape (n_pairs, dim)
        Variances σ² (positive).

    Returns
    -------
    scores : array of shape (n_pairs,)

    Examples
    --------
    >>> import numpy as np
    >>> from skmetric.deep.pfe import mutual_likelihood_score
    >>> mu = np.zeros((1, 2)); var = np.full((1, 2), 0.5)
    >>> round(float(mutual_likelihood_score(mu, var, mu, var)[0]), 4)
    -1.8379
    """
    from .._array_api import array_namespace

    xp = array_namespace(mu1, var1, mu2, var2)
    shapes = {tuple(a.shape) for a in (mu1, var1, mu2, var2)}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise ValueError(
            "mu1, var1, mu2, var2 must be 2-D arrays of one shape (n_pairs, dim); got "
            f"shapes {[tuple(a.shape) for a in (mu1, var1, mu2, var2)]}."
        )
    var = var1 + var2
    # One check (one device sync in training): each variance non-negative (a negative one
    # beside a larger positive one gave a score), their sum positive, the means finite
    # (NaN gave NaN scores).
    valid = xp.all(var1 >= 0) & xp.all(var2 >= 0) & xp.all(var > 0)
    if not bool(valid & xp.all(xp.isfinite(mu1)) & xp.all(xp.isfinite(mu2))):
        if not bool(valid):
            raise ValueError("Variances must be positive (pass σ², not log σ²); var1 or "
                             "var2 holds negative, NaN or (in both) zero values.")
        raise ValueError("mu1 and mu2 must be finite; they hold NaN or infinity.")
    dim = mu1.shape[1]
    return -0.5 * xp.sum((mu1 - mu2) ** 2 / var + xp.log(var), axis=1) \
        - 0.5 * dim * math.log(2 * math.pi)


class UncertaintyHead(nn.Module):
    """Predicts log σ² per embedding dimension from the trunk's (raw) embedding.

    Two fully connected layers with batch normalisation, then a learnable scale and shift
    of the output (as in the PFE paper), so that log σ² can settle anywhere.

    Parameters
    ----------
    in_features : int
        Size of the trunk's output.
    embedding_dim : int
        Number of variances (the embedding dimension).
    hidden : int, default=64
    """

    def __init__(self, in_features, embedding_dim, hidden=64):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(in_features, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
            nn.Linear(hidden, embedding_dim), nn.BatchNorm1d(embedding_dim, affine=False),
        )
        self.gamma = nn.Parameter(torch.tensor(0.1))
        self.beta = nn.Parameter(torch.tensor(-3.0))

    def forward(self, features):
        return self.gamma * self.layers(features) + self.beta


class ProbabilisticModule(nn.Module):
    """A trunk plus an uncertainty head; the output concatenates [μ, log σ²].

    μ is the L2-normalised trunk output. With ``freeze_trunk=True`` the trunk's weights get
    no gradient and it stays in eval mode, so only the head learns (the PFE recipe on a
    pretrained trunk).

    Parameters
    ----------
    trunk : nn.Module
        Maps inputs to embeddings of size ``embedding_dim``.
    embedding_dim : int
    hidden : int, default=64
        Hidden width of the uncertainty head.
    freeze_trunk : bool, default=True
    input_features : int or None, default=None
        If given, the head reads the flattened input (of this many values) instead of the
        trunk's embedding. The paper's head reads the trunk's intermediate feature maps;
        for a trunk that exposes none, the input keeps the quality cues (occlusion, blur)
        that a trained embedding is built to ignore.
    """

    def __init__(self, trunk, embedding_dim, hidden=64, freeze_trunk=True,
                 input_features=None):
        super().__init__()
        self.trunk = trunk
        self.head = UncertaintyHead(input_features or embedding_dim, embedding_dim, hidden)
        self.embedding_dim = embedding_dim
        self.freeze_trunk = freeze_trunk
        self.from_input = input_features is not None
        if freeze_trunk:
            for p in self.trunk.parameters():
                p.requires_grad_(False)

    def train(self, mode=True):
        super().train(mode)
        if self.freeze_trunk:
            self.trunk.eval()  # frozen batch-norm statistics too
        return self

    def forward(self, x):
        raw = self.trunk(x)
        if self.freeze_trunk:
            raw = raw.detach()
        head_input = x.flatten(1) if self.from_input else raw
        return torch.cat([F.normalize(raw, dim=1), self.head(head_input)], dim=1)


def split_output(output):
    """Split a :class:`ProbabilisticModule` output into (μ, σ²)."""
    dim = output.shape[1] // 2
    return output[:, :dim], torch.exp(output[:, dim:])


class MLSLoss(nn.Module):
    """Negative mean mutual likelihood score over all same-class pairs of a batch.

    Takes the concatenated ``[μ, log σ²]`` output of :class:`ProbabilisticModule` as its
    embeddings. Optionally adds a metric loss on μ (``mu_loss``) so that μ can be trained
    jointly: MLS alone has no negative pairs and would let μ collapse.

    Parameters
    ----------
    mu_loss : nn.Module or None, default=None
        A loss from ``skmetric.deep.losses`` applied to μ.
    mu_weight : float, default=1.0
        Its weight.
    """

    requires_classes = False
    #: Reads ``[μ, log σ²]`` (what ProbabilisticEmbedder's network returns), not embeddings:
    #: a loss of yours for ProbabilisticEmbedder declares it with this attribute.
    takes_variances = True

    def __init__(self, mu_loss=None, mu_weight=1.0):
        super().__init__()
        self.mu_loss = mu_loss
        self.mu_weight = mu_weight

    def forward(self, embeddings, labels, indices_tuple=None, ref_emb=None, ref_labels=None):
        embeddings, labels, _, _ = check_inputs(embeddings, labels)
        if embeddings.shape[1] % 2:
            raise ValueError(
                "MLSLoss expects [mu, log_var] concatenated (an even number of columns), "
                "as ProbabilisticModule outputs."
            )
        mu, var = split_output(embeddings)
        same = labels[:, None] == labels[None, :]
        i, j = torch.nonzero(torch.triu(same, diagonal=1), as_tuple=True)
        if i.numel() == 0:
            loss = (embeddings * 0).sum()
        else:
            loss = -mutual_likelihood_score(mu[i], var[i], mu[j], var[j]).mean()
        if self.mu_loss is not None:
            loss = loss + self.mu_weight * self.mu_loss(mu, labels, indices_tuple)
        return loss
