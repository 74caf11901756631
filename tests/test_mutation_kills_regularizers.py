"""Tests that kill the mutants of ``deep/losses/regularizers.py`` and ``metrics/_common.py``
that survived their modules' own tests (seventh session; see tests/README.md).

The regularizers are checked against pytorch-metric-learning 2.9's, or against values by hand
where PML differs or has no such case; the metrics' label checks against the same metric
called with integer labels and against values by hand.
"""

import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pml_reducers = pytest.importorskip("pytorch_metric_learning.reducers")
pml_regularizers = pytest.importorskip("pytorch_metric_learning.regularizers")

import torch.nn.functional as F  # noqa: E402

from skmetric import metrics  # noqa: E402
from skmetric.deep.losses import (  # noqa: E402
    BaseReducer,
    CenterInvariantRegularizer,
    ClassWeightedReducer,
    LpRegularizer,
    MeanReducer,
    RegularFaceRegularizer,
    SparseCentersRegularizer,
    ThresholdReducer,
    ZeroMeanRegularizer,
)

# Ours and PML's, each built with a reducer (``None``: the default one).
PAIRS = {
    "lp": (lambda r: LpRegularizer(reducer=r),
           lambda r: pml_regularizers.LpRegularizer(reducer=r)),
    "zero_mean": (lambda r: ZeroMeanRegularizer(reducer=r),
                  lambda r: pml_regularizers.ZeroMeanRegularizer(reducer=r)),
    "center_invariant": (lambda r: CenterInvariantRegularizer(reducer=r),
                         lambda r: pml_regularizers.CenterInvariantRegularizer(reducer=r)),
    "regular_face": (lambda r: RegularFaceRegularizer(reducer=r),
                     lambda r: pml_regularizers.RegularFaceRegularizer(reducer=r)),
    # 2 classes x 3 centers: 6 pairs of centers for 6 rows, so PML's labels (one per row)
    # and indices (one per pair) have the same length, as ours.
    "sparse_centers": (lambda r: SparseCentersRegularizer(2, 3, reducer=r),
                       lambda r: pml_regularizers.SparseCentersRegularizer(2, 3, reducer=r)),
}


def _x(n=6, d=5, seed=0, dtype=torch.float64):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=dtype)


# ------------------------------------------------------------------------- the input
MESSAGE = ("A regularizer takes a 2-D tensor (embeddings, or class weights with one row "
           "per class).")


@pytest.mark.parametrize("name", sorted(PAIRS))
@pytest.mark.parametrize("bad", [
    torch.ones(4),  # a tensor, but 1-D
    torch.ones(2, 3, 4),  # 3-D
    np.ones((6, 3)),  # 2-D, but not a tensor
    [[1.0, 2.0, 3.0]] * 6,  # a list of rows
], ids=["1d", "3d", "numpy", "list"])
def test_regularizer_refuses_anything_but_a_2d_tensor_with_its_message(name, bad):
    ours = PAIRS[name][0](None)
    with pytest.raises(ValueError, match=f"^{re.escape(MESSAGE)}$"):
        ours(bad)


def test_sparse_centers_wrong_row_count_message_names_its_shape():
    with pytest.raises(ValueError, match=re.escape(
            "SparseCentersRegularizer was built for 3 classes x 4 centers = 12 rows; got 5.")):
        SparseCentersRegularizer(3, 4)(torch.randn(5, 2))


# ------------------------------------------------------------------------- reducers
class _Recording(BaseReducer):
    """Our reducer that records what a regularizer hands it (the mean of the terms)."""

    def reduce(self, losses, indices, kind, embeddings, labels):
        self.seen = (kind, indices, embeddings, labels)
        return losses.mean()


class _PMLRecording(pml_reducers.MeanReducer):
    """PML's mean reducer that records what a PML regularizer hands it."""

    def element_reduction(self, losses, loss_indices, embeddings, labels):
        self.seen = ("element", loss_indices, embeddings, labels)
        return super().element_reduction(losses, loss_indices, embeddings, labels)


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_regularizer_hands_its_reducer_what_pml_hands_its_reducer(name):
    make, make_ref = PAIRS[name]
    x = _x()
    ours, ref = _Recording(), make_ref(_PMLRecording())  # PML copies its reducer
    torch.testing.assert_close(make(ours)(x), ref(x))
    kind, indices, embeddings, labels = ours.seen
    ref_kind, ref_indices, ref_embeddings, ref_labels = ref.reducer.seen
    assert kind == ref_kind == "element"
    torch.testing.assert_close(indices, ref_indices)
    torch.testing.assert_close(labels, ref_labels)
    assert embeddings is x and ref_embeddings is x


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_regularizer_with_class_weighted_reducer_matches_pml(name):
    # The regularizers pass each row's index as its label: row i gets weights[i].
    make, make_ref = PAIRS[name]
    weights = torch.tensor([0.5, 2.0, 1.0, 3.0, 0.25, 1.5], dtype=torch.float64)
    x = _x()
    torch.testing.assert_close(make(ClassWeightedReducer(weights))(x),
                               make_ref(pml_reducers.ClassWeightedReducer(weights))(x))


def test_sparse_centers_uses_the_reducer_it_is_given_as_pml():
    # The default divides the sum by twice the number of pairs; a MeanReducer by the number.
    x = _x()
    ours, ref = (SparseCentersRegularizer(2, 3, reducer=MeanReducer()),
                 pml_regularizers.SparseCentersRegularizer(2, 3,
                                                           reducer=pml_reducers.MeanReducer()))
    value = ours(x)
    torch.testing.assert_close(value, ref(x))
    torch.testing.assert_close(value, 2 * SparseCentersRegularizer(2, 3)(x))


# RegularFace, as PML's, needs at least one other row (argmax over no rows fails).
@pytest.mark.parametrize("name", ["lp", "zero_mean", "center_invariant"])
def test_regularizer_of_no_rows_is_a_zero_connected_to_the_graph(name):
    make, make_ref = PAIRS[name]
    x = torch.zeros(0, 4, dtype=torch.float64, requires_grad=True)
    # With a threshold reducer PML returns 0 for no rows, as ours.
    value = make(ThresholdReducer(high=4.0))(x)
    assert value.item() == make_ref(pml_reducers.ThresholdReducer(high=4.0))(x).item() == 0
    # The default: 0 (PML's mean of no terms is NaN): a batch with nothing to regularise
    # adds nothing to the loss.
    default = make(None)(x)
    assert default.item() == 0.0 and default.requires_grad
    (value + default).backward()
    assert x.grad.shape == (0, 4)


# ---------------------------------------------------------------------- sparse centers
def test_sparse_centers_mask_is_not_saved_in_the_state_dict_as_pml():
    # PML keeps the mask as a plain attribute; a checkpoint of a loss with this
    # regularizer must not gain a key that PML's, or one built for other sizes, lacks.
    ours = SparseCentersRegularizer(2, 3)
    assert list(ours.state_dict()) == list(
        pml_regularizers.SparseCentersRegularizer(2, 3).state_dict()) == []
    SparseCentersRegularizer(4, 5).load_state_dict(ours.state_dict())  # strict


def test_sparse_centers_of_coinciding_centers_are_near_zero_in_float32_as_pml():
    # Each class's two centers are the same vector: cos = 1, but in float32 the product of
    # a normalised row with itself exceeds 1 for some rows; clamping 2 cos at 2 keeps the
    # square root's argument >= 0 (the others leave rounding noise of sqrt(1e-7)).
    x = torch.randn(50, 7, generator=torch.Generator().manual_seed(0)).repeat_interleave(2, 0)
    unit = F.normalize(x, dim=1)
    pair_cos = (unit @ unit.T)[0::2, 1::2].diagonal()  # row 2i with row 2i + 1
    assert (pair_cos > 1).any()  # the case this test is about
    ours = SparseCentersRegularizer(50, 2)(x)
    assert torch.isfinite(ours) and 0 <= ours.item() < 1e-3
    torch.testing.assert_close(ours, pml_regularizers.SparseCentersRegularizer(50, 2)(x))


# ------------------------------------------------------------------ metrics' labels
X = np.array([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.1, 5.0], [0.2, 0.1], [5.2, 5.2]])
Y = np.array([0, 0, 1, 1, 1, 0])


def _retrieval_values(labels):
    return (metrics.precision_at_k(X, labels, k=1), metrics.map_at_r(X, labels),
            metrics.nmi_kmeans(X, labels, random_state=0))


def _with_missing(kind):
    """Y with label 2 missing, as ``kind`` of labels."""
    if kind.startswith("float"):
        bad = Y.astype(kind)
        bad[2] = np.nan
        return bad
    names = [str(v) for v in Y]
    names[2] = None if kind == "object_none" else np.nan
    if kind.startswith("object"):
        return np.array(names, dtype=object)
    pd = pytest.importorskip("pandas")
    if kind == "pandas_string":  # pandas' own missing value, pd.NA
        return pd.Series(names, dtype="string")
    return pd.Series(names)  # object: strings and a float NaN, as read_csv gives


@pytest.mark.parametrize("labels", [Y.astype(np.float64), Y.astype(np.float32),
                                    torch.tensor(Y, dtype=torch.float32),
                                    np.array(["a", "b"])[Y],
                                    np.array(["a", "b"], dtype=object)[Y]],
                         ids=["float64", "float32", "torch_float32", "str", "object"])
def test_metrics_take_float_and_string_labels_like_integer_labels(labels):
    # By hand: each point's nearest neighbour is of its class except rows 4 and 5
    # (precision@1 = 4/6); k-means finds the two blobs, which split each class.
    expected = _retrieval_values(Y)
    assert expected[0] == pytest.approx(4 / 6)
    assert _retrieval_values(labels) == pytest.approx(expected)


@pytest.mark.parametrize("kind", ["float64", "float32", "float16", "object_none",
                                  "object_nan", "pandas_string", "pandas_object_nan"])
def test_metrics_refuse_missing_labels_with_a_message_saying_what_to_do(kind):
    # Strings with a missing value (pandas' NaN, None or pd.NA) used to reach np.unique,
    # which failed comparing str with float, None or NA.
    bad = _with_missing(kind)
    message = (" contains missing labels (NaN or None); every sample needs a label: drop "
               "the unlabelled samples (and their rows) first.")
    for call, name in [(lambda: metrics.precision_at_k(X, bad, k=1), "query_labels"),
                       (lambda: metrics.map_at_r(X[:3], Y[:3], X, bad), "reference_labels"),
                       (lambda: metrics.ami_kmeans(X, bad, random_state=0), "labels")]:
        with pytest.raises(ValueError, match=f"^{name}{re.escape(message)}$"):
            call()
