"""Tests that kill mutants of the reducers (``skmetric/deep/losses/reducers.py``) and of the
options every loss shares (``skmetric/deep/losses/_options.py``) that survived
``scripts/mutation.py`` (seventh session; see tests/README.md).

The references are pytorch-metric-learning 2.9's reducers and losses (PML), values worked
out by hand, and the documented error messages (checked in full: a test that matches a
fragment lets a garbled message through). Each test was seen to fail on the surviving
mutants planted by hand that its docstring names.
"""

import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pml_reducers = pytest.importorskip("pytorch_metric_learning.reducers")

from skmetric.deep.losses import (  # noqa: E402
    ClassWeightedReducer,
    MeanReducer,
    PerAnchorReducer,
    ThresholdReducer,
)
from skmetric.deep.losses.reducers import get_reducer  # noqa: E402


def _randn(*shape, seed=0, dtype=torch.float64):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _pml(reducer, losses, indices, kind, embeddings, labels):
    """PML's reducer called on the same terms (its input is a dict of one loss)."""
    loss_dict = {"loss": {"losses": losses, "indices": indices, "reduction_type": kind}}
    return reducer(loss_dict, embeddings, labels)


def _raises_exactly(error, message):
    return pytest.raises(error, match=f"^{re.escape(message)}$")


# --- reducers.py: the error messages, in full -------------------------------------------

def test_reducer_errors_say_what_was_wrong_and_what_to_do_in_full():
    """Planted: every surviving message mutant (text wrapped in XX, lower- or upper-cased,
    replaced by None; the got-part's ``type(None)``)."""
    emb, labels = torch.zeros(2, 2), torch.arange(2)
    kinds = ("element", "pos_pair", "neg_pair", "triplet", "already_reduced")
    with _raises_exactly(ValueError, f"kind must be one of {kinds}; got 'pair'."):
        MeanReducer()(torch.ones(2), torch.arange(2), "pair", emb, labels)
    with _raises_exactly(ValueError, "ThresholdReducer needs low, high or both; with "
                                     "neither, use MeanReducer."):
        ThresholdReducer()
    with _raises_exactly(ValueError, "weights must be a 1-D array of finite class weights; "
                                     "got shape (2, 2)."):
        ClassWeightedReducer([[1.0, 2.0], [3.0, 4.0]])
    with _raises_exactly(TypeError, "reducer must be a reducer or None; got str."):
        PerAnchorReducer("mean")
    with _raises_exactly(ValueError, "PerAnchorReducer reduces pair or element terms, not "
                                     "triplets; use it with a pair loss such as "
                                     "ContrastiveLoss."):
        PerAnchorReducer()(torch.ones(2), (torch.arange(2),) * 3, "triplet", emb, labels)
    with _raises_exactly(ValueError, "Unknown reducer 'median'; the names are ['avg_non_zero', "
                                     "'mean', 'per_anchor'], or pass a reducer object such "
                                     "as ThresholdReducer(low=0.1)."):
        get_reducer("median")


# --- reducers.py: values ----------------------------------------------------------------

@pytest.mark.parametrize("kind", ["element", "pos_pair", "triplet"])
def test_threshold_reducer_bounds_are_exclusive_as_in_pml(kind):
    """Terms equal to ``low`` or ``high`` are left out: of 0.2, 0.5, 0.8 and 1.0 with bounds
    (0.2, 0.8) only 0.5 counts (PML: the same). Planted: ``losses <= self.high``."""
    losses = torch.tensor([0.2, 0.5, 0.8, 1.0], dtype=torch.float64)
    emb, labels = _randn(4, 3), torch.tensor([0, 0, 1, 1])
    idx = torch.arange(4)
    indices = {"element": idx, "pos_pair": (idx, idx.flip(0)),
               "triplet": (idx, idx.flip(0), idx.roll(1))}[kind]
    for low, high, expected in [(0.2, 0.8, 0.5), (None, 0.8, 0.35), (0.5, None, 0.9)]:
        ours = ThresholdReducer(low=low, high=high)(losses, indices, kind, emb, labels)
        theirs = _pml(pml_reducers.ThresholdReducer(low=low, high=high), losses, indices,
                      kind, emb, labels)
        torch.testing.assert_close(ours, torch.tensor(expected, dtype=torch.float64))
        torch.testing.assert_close(ours, theirs)


def test_class_weighted_reducer_keeps_the_terms_dtype_as_in_pml():
    """Float32 terms with float64 class weights (0.1 is not a float32): the result is
    float32 and equals PML's, which casts the weights to the terms' dtype. Planted: the
    cast's ``dtype=None`` and ``dtype`` dropped (the result became float64)."""
    weights = np.array([0.1, 0.7, 1.3])
    losses = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
    labels = torch.tensor([2, 0, 1, 0, 2])
    emb = _randn(5, 2, dtype=torch.float32)
    a = torch.tensor([0, 1, 2, 3, 4])
    for kind, indices in [("element", a), ("neg_pair", (a, a.flip(0)))]:
        ours = ClassWeightedReducer(weights)(losses, indices, kind, emb, labels)
        theirs = _pml(pml_reducers.ClassWeightedReducer(torch.as_tensor(weights)), losses,
                      indices, kind, emb, labels)
        assert ours.dtype == torch.float32
        torch.testing.assert_close(ours, theirs)
        # by hand: (1.3 + 0.2 + 2.1 + 0.4 + 6.5) / 5
        torch.testing.assert_close(ours, torch.tensor(2.1))


class _PMLInner(pml_reducers.MeanReducer):
    """PML's mean reducer that writes down what its PerAnchorReducer hands it."""

    calls = []

    def reduce_the_loss(self, losses, loss_indices, reduction_type, kwargs, embeddings,
                        labels):
        self.calls.append((losses, loss_indices, reduction_type, embeddings, labels))
        return super().reduce_the_loss(losses, loss_indices, reduction_type, kwargs,
                                       embeddings, labels)


@pytest.mark.parametrize("kind", ["element", "pos_pair", "neg_pair"])
def test_per_anchor_reducer_hands_its_inner_reducer_what_pml_hands_it(kind):
    """The inner reducer gets the per-anchor means (or the element terms) with the sample
    indices, "element", and the batch's own embeddings and labels, as PML's inner reducer
    does. Planted: the inner call's ``indices``, ``embeddings`` and ``labels`` -> None."""
    emb, labels = _randn(5, 3, seed=1), torch.tensor([0, 1, 1, 0, 2])
    losses = torch.tensor([1.0, 3.0, 5.0, 2.0], dtype=torch.float64)
    indices = (torch.tensor([0, 0, 2, 4]), torch.tensor([3, 1, 1, 2]))
    if kind == "element":
        losses, indices = torch.tensor([1.0, 3.0, 5.0, 2.0, 4.0], dtype=torch.float64), \
            torch.tensor([4, 3, 2, 1, 0])
    calls = []

    def inner(*args):
        calls.append(args)
        return MeanReducer()(*args)

    ours = PerAnchorReducer(inner)(losses, indices, kind, emb, labels)
    _PMLInner.calls.clear()
    theirs = _pml(pml_reducers.PerAnchorReducer(_PMLInner()), losses, indices, kind, emb,
                  labels)
    torch.testing.assert_close(ours, theirs)
    [(terms, idx, inner_kind, got_emb, got_labels)] = calls
    [(pml_terms, pml_idx, pml_kind, pml_emb, pml_labels)] = _PMLInner.calls
    torch.testing.assert_close(terms, pml_terms)
    assert torch.equal(idx, pml_idx) and inner_kind == pml_kind == "element"
    assert got_emb is emb and pml_emb is emb and got_labels is labels and pml_labels is labels
    if kind != "element":  # anchors 0, 2, 4 have pairs; 1, 3 none: (4 + 5 + 2 + 0 + 0) / 5
        torch.testing.assert_close(terms, torch.tensor([2.0, 0.0, 5.0, 0.0, 2.0],
                                                       dtype=torch.float64))
        torch.testing.assert_close(ours, torch.tensor(1.8, dtype=torch.float64))


def test_per_anchor_class_weighted_reducer_gives_pml_value_and_gradient():
    """Per-anchor means weighted by each anchor's class, value and gradient against PML's
    ``PerAnchorReducer(ClassWeightedReducer(w))``. Planted: the inner call's ``labels`` ->
    None."""
    emb, labels = _randn(6, 3, seed=2), torch.tensor([0, 1, 2, 0, 1, 2])
    weights = [0.5, 2.0, 3.0]
    a, o = torch.tensor([0, 0, 1, 3, 5, 5]), torch.tensor([3, 4, 4, 0, 2, 1])
    values = torch.relu(_randn(6, seed=3)) + 0.1
    results = []
    for make in (lambda t: PerAnchorReducer(ClassWeightedReducer(weights))(
                     t, (a, o), "pos_pair", emb, labels),
                 lambda t: _pml(pml_reducers.PerAnchorReducer(pml_reducers.ClassWeightedReducer(
                     torch.tensor(weights))), t, (a, o), "pos_pair", emb, labels)):
        t = values.clone().requires_grad_(True)
        value = make(t)
        value.backward()
        results.append((value.detach(), t.grad))
    torch.testing.assert_close(results[0], results[1])
    v = values.tolist()  # by hand: anchors 0 (class 0), 1 (class 1), 3 (class 0) and 5 (class 2)
    expected = (0.5 * (v[0] + v[1]) / 2 + 2.0 * v[2] + 0.5 * v[3] + 3.0 * (v[4] + v[5]) / 2) / 6
    torch.testing.assert_close(results[0][0], torch.tensor(expected, dtype=torch.float64))


# --- _options.py ------------------------------------------------------------------------

pml_losses = pytest.importorskip("pytorch_metric_learning.losses")

from skmetric.deep import losses  # noqa: E402
from skmetric.deep.losses._base import mean_or_zero  # noqa: E402
from skmetric.deep.losses._options import COLUMN_TERMS  # noqa: E402


def _value_and_grad(loss, emb, labels, **kwargs):
    e = emb.clone().requires_grad_(True)
    value = loss(e, labels, **kwargs)
    value.backward()
    return value.detach(), e.grad


@pytest.mark.parametrize("given", ["no_pairs", "zero_terms"])
def test_default_reduction_of_no_positive_term_is_pmls_graph_connected_zero(given):
    """A miner's tuples with no pair, or pairs whose hinge terms are all 0: the loss's own
    reduction (``mean_nonzero``) gives 0 with a zero gradient (not None), as PML's
    ``ContrastiveLoss``. Planted: ``reduce_terms`` handing its default ``embeddings=None``."""
    emb = _randn(6, 4, seed=4)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    empty = torch.zeros(0, dtype=torch.long)
    tuples = {"no_pairs": (empty,) * 4,
              # positives within the margin 2 (unit vectors), negatives beyond 0
              "zero_terms": (torch.tensor([0, 2]), torch.tensor([1, 3]),
                             torch.tensor([0, 4]), torch.tensor([2, 1]))}[given]
    ours = losses.ContrastiveLoss(pos_margin=2.0, neg_margin=0.0)
    theirs = pml_losses.ContrastiveLoss(pos_margin=2.0, neg_margin=0.0)
    value, grad = _value_and_grad(ours, emb, labels, indices_tuple=tuples)
    ref_value, ref_grad = _value_and_grad(theirs, emb, labels, indices_tuple=tuples)
    assert float(value) == float(ref_value) == 0.0
    torch.testing.assert_close(grad, ref_grad)
    torch.testing.assert_close(grad, torch.zeros_like(emb))


class _OwnReducerLoss(losses.BaseLoss):
    """A user's loss that owns a ``reducer`` argument (so the shared option is not added)
    and keeps it under another name: its terms then get its own default reduction."""

    supports_reducer = True

    def __init__(self, reducer="own"):
        super().__init__()
        self.own_reducer = reducer

    def compute_loss(self, embeddings, labels, indices_tuple, ref_emb, ref_labels):
        terms = embeddings.pow(2).sum(dim=1)
        return self.reduce(terms, torch.arange(len(terms)), "element", embeddings, labels,
                           mean_or_zero)


def test_a_loss_that_owns_reducer_gets_its_default_reduction():
    """Mean of the squared norms, by hand. Planted: ``getattr(loss, "reducer")`` without
    its default None (an AttributeError for such a loss)."""
    loss = _OwnReducerLoss()
    assert "reducer" not in vars(loss) and loss.own_reducer == "own"
    emb = torch.tensor([[1.0, 2.0], [0.0, 3.0], [2.0, 2.0]])
    torch.testing.assert_close(loss(emb, torch.tensor([0, 1, 0])), torch.tensor(22.0 / 3))


@pytest.mark.parametrize("wrap", [False, True])
def test_refused_class_weights_say_why_and_what_to_do_in_full(wrap):
    """Also a ClassWeightedReducer inside a PerAnchorReducer. Planted: the message's second
    sentence wrapped in XX, lower- and upper-cased."""
    reducer = losses.ClassWeightedReducer([1.0, 2.0])
    reducer = losses.PerAnchorReducer(reducer) if wrap else reducer
    message = (f"MultiSimilarityLoss does not take a ClassWeightedReducer: {COLUMN_TERMS} Use "
               "another reducer, or weight the classes by sampling (e.g. MPerClassSampler).")
    with _raises_exactly(ValueError, message):
        losses.MultiSimilarityLoss(reducer=reducer)


class _SelfReducedLoss(losses.BaseLoss):
    """A user's loss that reduces its terms itself (``supports_reducer`` stays False)."""

    def compute_loss(self, embeddings, labels, indices_tuple, ref_emb, ref_labels):
        return embeddings.sum()


def test_shared_option_errors_name_the_loss_and_say_what_to_do_in_full():
    """Planted: the refusal's second sentence wrapped in XX, lower- and upper-cased; the
    parameter check's ``caller_name=None`` (the message then names no loss)."""
    with _raises_exactly(ValueError, "_SelfReducedLoss reduces its terms itself and does not "
                                     "take reducer= yet. Use the default reduction, or a loss "
                                     "whose supports_reducer is True."):
        _SelfReducedLoss(reducer="mean")
    assert _SelfReducedLoss().reducer is None  # no reducer given: accepted
    with _raises_exactly(ValueError, "The 'embedding_reg_weight' parameter of ContrastiveLoss "
                                     "must be a float in the range (-inf, inf). Got nan "
                                     "instead."):
        losses.ContrastiveLoss(embedding_reg_weight=float("nan"))
