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


# --- the margin-softmax losses' clamp of the target cosine to [-1, 1] -----------------------

def _on_and_opposite_their_weights(dtype):
    """Embeddings exactly along (six) or against (six) their class's weight column, of varied
    norms: their normalised cosines round to just above 1 or below -1 for some of them (in
    float32 and float64 with this seed), where acos is NaN without the clamp."""
    g = torch.Generator().manual_seed(0)
    w = torch.randn(6, 4, generator=g, dtype=dtype)
    labels = torch.arange(12) % 4
    r = torch.tensor([0.3, 0.7, 1.3, 2.9, 5.0, 0.11, 3.3, 7.7, 1.9, 0.45, 2.2, 9.1],
                     dtype=dtype)[:, None]
    sign = torch.tensor([1.0] * 6 + [-1.0] * 6, dtype=dtype)[:, None]
    return sign * r * w[:, labels].T, labels, w


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", ["LargeMarginSoftmaxLoss", "SphereFaceLoss"])
def test_l_softmax_on_and_opposite_the_class_weights_matches_pml(name, dtype):
    pml_losses = pytest.importorskip("pytorch_metric_learning.losses")
    emb, labels, w = _on_and_opposite_their_weights(dtype)
    cos = torch.nn.functional.normalize(emb, dim=1) @ torch.nn.functional.normalize(w, dim=0)
    target = cos.gather(1, labels[:, None])
    assert (target > 1).any() and (target < -1).any()  # the case this test is about
    ours = getattr(losses, name)(4, 6, margin=3, scale=1.0, lambda_start=0).to(dtype)
    ref = getattr(pml_losses, name)(4, 6, margin=3, scale=1).to(dtype)
    ours.W.data, ref.W.data = w.clone(), w.clone()
    results = []
    for loss in (ours, ref):
        e = emb.clone().requires_grad_(True)
        value = loss(e, labels)
        value.backward()
        results.append((value.detach(), e.grad, loss.W.grad))
    assert all(torch.isfinite(t).all() for t in results[0])
    torch.testing.assert_close(results[0], results[1])


class _OwnReductionLoss(_NamedWeightsLoss):
    """A user's proxy loss that owns a ``reducer`` argument (so the shared option is not
    added, see ``_options``) and keeps it under another name: ``reduce_elements`` must then
    average, as for a loss without a reducer."""

    def __init__(self, num_classes, embedding_size, reducer="own"):
        super().__init__(num_classes, embedding_size)
        self.own_reduction = reducer

    def class_weights(self):
        return self.anchors.T


def test_reduce_elements_averages_for_a_loss_without_a_reducer_attribute():
    loss = _OwnReductionLoss(3, 4)
    assert "reducer" not in vars(loss)
    g = torch.Generator().manual_seed(1)
    emb = torch.randn(6, 4, generator=g)
    labels = torch.tensor([0, 1, 2, 2, 1, 0])
    logits = emb @ loss.anchors.detach()
    terms = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
    torch.testing.assert_close(loss(emb, labels), terms.mean())
    # A miner's pairs weigh each sample by its count relative to the most frequent (PML's
    # convert_to_weights): sample 0 twice, 1 and 3 once each, the others not at all.
    tuples = (torch.tensor([0]), torch.tensor([1]), torch.tensor([0]), torch.tensor([3]))
    weights = torch.tensor([1.0, 0.5, 0.0, 0.5, 0.0, 0.0])
    torch.testing.assert_close(loss(emb, labels, tuples), (terms * weights).mean())


@pytest.mark.parametrize("given", ["ref_emb", "ref_labels", "both"])
def test_proxy_losses_refuse_ref_emb_or_ref_labels_alone_with_the_full_message(given):
    g = torch.Generator().manual_seed(2)
    emb = torch.randn(5, 4, generator=g)
    labels = torch.tensor([0, 1, 2, 0, 1])
    ref = {"ref_emb": emb.clone(), "ref_labels": labels.clone()}
    kwargs = ref if given == "both" else {given: ref[given]}
    message = ("ArcFaceLoss compares embeddings with its class proxies; ref_emb and "
               "ref_labels are not supported.")
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        losses.ArcFaceLoss(3, 4)(emb, labels, **kwargs)


@pytest.mark.parametrize("bad", [-1, 3])
def test_proxy_losses_refuse_labels_out_of_range_with_the_full_message(bad):
    emb = torch.randn(4, 4, generator=torch.Generator().manual_seed(3))
    labels = torch.tensor([0, 2, bad, 1])
    low, high = min(bad, 0), max(bad, 2)
    message = (f"labels must be class indices in [0, 3); got values in [{low}, {high}]. "
               "Encode them with sklearn.preprocessing.LabelEncoder (MetricEmbedder does "
               "this for you).")
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        losses.CosFaceLoss(3, 4)(emb, labels)


@pytest.mark.parametrize("tuples", [
    (torch.tensor([0]), torch.tensor([2]), torch.tensor([5])),  # one triplet
    (torch.tensor([0]), torch.tensor([1]), torch.tensor([4]), torch.tensor([3])),  # one pair each
    (torch.tensor([0, 0, 4]), torch.tensor([1, 2, 3]), torch.tensor([5, 5, 5])),
])
def test_proxy_miner_weights_default_equal_pml_convert_to_weights(tuples):
    """Every index of the tuples counts by default (PML's convert_to_weights), also for a
    single triplet or pair, where weights of 1 for all samples would be wrong."""
    lmu = pytest.importorskip("pytorch_metric_learning.utils.loss_and_miner_utils")
    emb = torch.randn(6, 4, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    expected = lmu.convert_to_weights(tuples, labels, dtype=torch.float64)
    torch.testing.assert_close(BaseProxyLoss._miner_weights(tuples, emb), expected)


def test_a_self_reduced_proxy_loss_hands_its_value_and_batch_to_a_user_reducer():
    """P2SGrad reduces itself ("already_reduced" terms, as PML's): a user's reducer gets the
    value, no indices, that kind, and the batch's embeddings and labels, and its output is
    the loss."""
    calls = []

    def reducer(terms, indices, kind, embeddings, labels):
        calls.append((terms.detach().clone(), indices, kind, embeddings, labels))
        return 2 * terms

    g = torch.Generator().manual_seed(5)
    emb = torch.randn(6, 4, generator=g, dtype=torch.float64)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    plain = losses.P2SGradLoss(3, 4).double()
    ours = losses.P2SGradLoss(3, 4, reducer=reducer).double()
    ours.load_state_dict(plain.state_dict())
    expected = plain(emb, labels)
    torch.testing.assert_close(ours(emb, labels), 2 * expected)
    [(terms, indices, kind, got_emb, got_labels)] = calls
    torch.testing.assert_close(terms, expected.detach())
    assert indices is None and kind == "already_reduced"
    torch.testing.assert_close(got_emb, emb)
    assert torch.equal(got_labels, labels)
