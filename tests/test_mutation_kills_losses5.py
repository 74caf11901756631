"""Tests that kill mutants of the proxy losses' base (``_proxy_base.py``) and of the
margin-softmax losses' shared machinery (``_margin_softmax.py``) that survived
``scripts/mutation.py`` (fifth session; see tests/README.md, "Scores (fourth session):
margin-softmax, proxy and lifted losses", its fifth-session subsection).

The references are pytorch-metric-learning 2.9 (PML) given the same class weights, and the
documented behaviour written out here.
"""

import re

import pytest

torch = pytest.importorskip("torch")

from skmetric.deep import losses  # noqa: E402
from skmetric.deep.losses import LpRegularizer  # noqa: E402
from skmetric.deep.losses._proxy_base import BaseProxyLoss  # noqa: E402


class _NamedWeightsLoss(BaseProxyLoss):
    """A user's proxy loss whose class weights are called neither ``proxies``, ``W`` nor
    ``centers``: a cross-entropy on the embeddings times ``self.anchors`` (d, C)."""

    def __init__(self, num_classes, embedding_size):
        super().__init__(num_classes, embedding_size)
        self.anchors = self._new_weights(embedding_size, num_classes)

    def compute_loss(self, embeddings, labels, weights):
        losses_ = torch.nn.functional.cross_entropy(embeddings @ self.anchors, labels,
                                                    reduction="none")
        return self.reduce_elements(losses_, weights, embeddings, labels)


def test_a_proxy_loss_without_known_class_weights_says_to_override_class_weights():
    loss = _NamedWeightsLoss(3, 4, weight_regularizer=LpRegularizer())
    message = ("_NamedWeightsLoss does not say which of its parameters are class weights; "
               "override class_weights() to use weight_regularizer.")
    with pytest.raises(NotImplementedError, match=f"^{re.escape(message)}$"):
        loss.class_weights()
    emb = torch.randn(5, 4, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 1, 2, 0, 1])
    with pytest.raises(NotImplementedError, match=f"^{re.escape(message)}$"):
        loss(emb, labels)
    # Without a weight regularizer the loss never asks: the plain cross-entropy.
    plain = _NamedWeightsLoss(3, 4)
    plain.anchors.data = loss.anchors.data.clone()
    torch.testing.assert_close(
        plain(emb, labels),
        torch.nn.functional.cross_entropy(emb @ loss.anchors.detach(), labels))
