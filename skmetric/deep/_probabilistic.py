"""ProbabilisticEmbedder: a MetricEmbedder whose samples are Gaussians (PFE)."""

import numpy as np
from skorch import NeuralNet

from ._embedder import MetricEmbedder
from .pfe import MLSLoss, ProbabilisticModule, mutual_likelihood_score


class ProbabilisticEmbedder(MetricEmbedder):
    """Probabilistic face embeddings: a trunk's embedding μ plus a learned variance σ².

    The trunk (``module``) maps a sample to μ; an uncertainty head maps the trunk's output to
    log σ² per dimension. Training maximises the mutual likelihood score (MLS) of same-class
    pairs (:class:`~skmetric.deep.pfe.MLSLoss`), which teaches the head to give large
    variances to samples whose μ is unreliable (blurred, occluded, noisy inputs).

    The usual recipe (``freeze_trunk=True``) trains only the head on top of a trained trunk:
    pass the ``module_`` of a fitted :class:`MetricEmbedder` as ``module``. With
    ``freeze_trunk=False`` trunk and head train jointly; give ``loss__mu_loss`` a metric loss
    on μ then (MLS alone has no negatives). The loss reads ``[μ, log σ²]``: a metric loss
    given as ``loss`` itself is refused (it would score both halves as one embedding).

    All parameters of :class:`MetricEmbedder` apply (``module__*``, ``lr``, ``max_epochs``,
    ``samples_per_class``...), plus:

    Parameters
    ----------
    freeze_trunk : bool, default=True
        Train only the uncertainty head.
    uncertainty_hidden : int, default=64
        Hidden width of the uncertainty head.
    uncertainty_input : {'embedding', 'input'}, default='embedding'
        What the head reads: the trunk's raw embedding (as the paper's head reads trunk
        features), or the flattened input sample, which keeps quality cues (occlusion,
        blur) that a well-trained embedding learns to ignore.

    Attributes
    ----------
    module_ : ProbabilisticModule
        The trunk and the head; its output is ``[μ, log σ²]``.

    References
    ----------
    .. [1] Y. Shi, A. K. Jain. "Probabilistic face embeddings", ICCV 2019.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skmetric.deep import MetricEmbedder, ProbabilisticEmbedder
    >>> X, y = load_digits(return_X_y=True)
    >>> X = X / 16.0
    >>> base = MetricEmbedder(max_epochs=2, random_state=0, verbose=0).fit(X, y)
    >>> pfe = ProbabilisticEmbedder(module=base.module_, max_epochs=2,
    ...                             random_state=0, verbose=0).fit(X, y)
    >>> mu, var = pfe.transform(X[:5]), pfe.transform_uncertainty(X[:5])
    >>> mu.shape == var.shape
    True
    """

    def __init__(self, module=None, *, loss=MLSLoss, miner=None, freeze_trunk=True,
                 uncertainty_hidden=64, uncertainty_input="embedding", lr=1e-3,
                 max_epochs=10, **kwargs):
        super().__init__(module, loss=loss, miner=miner, lr=lr, max_epochs=max_epochs,
                         **kwargs)
        self.freeze_trunk = freeze_trunk
        self.uncertainty_hidden = uncertainty_hidden
        self.uncertainty_input = uncertainty_input

    def _check_params(self):
        super()._check_params()
        loss = self._loss_class()
        if not getattr(loss, "takes_variances", False):
            # A metric loss would silently score the concatenation [μ, log σ²] as one
            # embedding (and a proxy loss fail on its size).
            raise ValueError(
                f"{type(self).__name__} trains with a loss of [μ, log σ²] such as MLSLoss "
                f"(the default); {loss.__name__} would take both halves for one embedding. "
                f"To train μ with it as well, pass loss__mu_loss={loss.__name__}(...) and "
                "freeze_trunk=False; for embeddings alone use MetricEmbedder. (A loss of "
                "your own reading [μ, log σ²] declares takes_variances = True.)")

    def initialize_module(self):
        """Build the trunk as MetricEmbedder does, then wrap it with the uncertainty head."""
        super().initialize_module()
        if self.uncertainty_input not in ("embedding", "input"):
            raise ValueError(
                "uncertainty_input must be 'embedding' or 'input'; got "
                f"{self.uncertainty_input!r}."
            )
        from_input = self.uncertainty_input == "input"
        self.module_ = ProbabilisticModule(
            self.module_, self.embedding_dim_, hidden=self.uncertainty_hidden,
            freeze_trunk=self.freeze_trunk,
            input_features=int(np.prod(self.input_shape_)) if from_input else None,
        )
        self.module_.to(self.device)
        return self

    def infer(self, x, **fit_params):
        # The module already normalises μ; its log σ² half must stay as is.
        x = self._prepare_batch(x)
        with self._explain_single_sample_batch(x):
            return NeuralNet.infer(self, x, **fit_params)

    #: The uncertainty head's size is read from the trunk's output on the input shape.
    _trunk_needs_input_shape = True

    @property
    def _export_normalizes(self):
        return False  # the output is [μ, log σ²]; μ is normalised by the module itself

    def _mean_and_variance(self, X):
        X = self._check_inference_data(X)
        out = self.forward(X, training=False, device="cpu").detach().numpy()
        dim = out.shape[1] // 2
        return out[:, :dim], np.exp(out[:, dim:])

    def transform(self, X, return_variance=False):
        """The means μ of the embeddings (and their variances σ² if ``return_variance``).

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
        return_variance : bool, default=False

        Returns
        -------
        mu : ndarray of shape (n_samples, embedding_dim_)
        var : ndarray of shape (n_samples, embedding_dim_), only with ``return_variance``
        """
        mu, var = self._mean_and_variance(X)
        return (mu, var) if return_variance else mu

    def transform_uncertainty(self, X):
        """The per-dimension variances σ² of the embeddings, shape (n_samples, dim)."""
        return self._mean_and_variance(X)[1]

    def pair_score(self, X1, X2):
        """Mutual likelihood score of the pairs ``(X1[i], X2[i])`` (higher = same class)."""
        if len(X1) != len(X2):  # else named after mutual_likelihood_score's arguments
            raise ValueError(f"X1 and X2 must hold as many samples (the pairs (X1[i], "
                             f"X2[i])); got {len(X1)} and {len(X2)}.")
        mu1, var1 = self._mean_and_variance(X1)
        mu2, var2 = self._mean_and_variance(X2)
        return mutual_likelihood_score(mu1.astype(np.float64), var1.astype(np.float64),
                                       mu2.astype(np.float64), var2.astype(np.float64))

    @property
    def _n_features_out(self):
        return self.embedding_dim_
