"""More tests that kill mutants of skmetric/deep/losses/ that survived ``scripts/mutation.py``
(third session; see tests/README.md).

The references are pytorch-metric-learning 2.9 (PML) and the losses' formulas. A reducer is
public API (``reducer(losses, indices, kind, embeddings, labels)``, see
``skmetric.deep.losses.reducers``): a user's reducer sees every term with the index of the
sample, pair or triplet it belongs to, and PML hands its reducers the same terms; the first
test checks both, term by term.
"""


import pytest

torch = pytest.importorskip("torch")
pml_losses = pytest.importorskip("pytorch_metric_learning.losses")
pml_reducers = pytest.importorskip("pytorch_metric_learning.reducers")

from skmetric.deep import losses  # noqa: E402
from skmetric.deep.losses import MeanReducer  # noqa: E402


def _batch(seed=0, n=16, dim=5, n_classes=4):
    g = torch.Generator().manual_seed(seed)
    emb = torch.randn(n, dim, generator=g, dtype=torch.float64) * (
        0.3 + 2 * torch.rand(n, 1, generator=g, dtype=torch.float64))
    labels = torch.randint(0, n_classes, (n,), generator=g)
    labels[:n_classes] = torch.arange(n_classes)  # every class present
    return emb, labels


# --- The terms and indices a reducer receives --------------------------------------------

_PML_CALLS = []


class _PMLRecorder(pml_reducers.MeanReducer):
    """PML's mean reducer that writes down what it is given (PML deep-copies a reducer per
    sub-loss, so the record is a module-level list)."""

    def reduce_the_loss(self, losses, loss_indices, reduction_type, kwargs, embeddings,
                        labels):
        _PML_CALLS.append((reduction_type, loss_indices, losses))
        return super().reduce_the_loss(losses, loss_indices, reduction_type, kwargs,
                                       embeddings, labels)


class _Recorder(MeanReducer):
    """skmetric's mean reducer that writes down its calls and checks the tensors it is
    handed are the batch's own embeddings and labels."""

    def __init__(self, embeddings=None, labels=None):
        super().__init__()
        self.calls, self.expected = [], (embeddings, labels)

    def forward(self, losses, indices, kind, embeddings, labels):
        emb, lab = self.expected
        assert embeddings is emb or torch.equal(embeddings, emb)
        assert torch.equal(labels, lab)
        self.calls.append((kind, indices, losses))
        return super().forward(losses, indices, kind, embeddings, labels)


def _rows(kind, indices, values):
    """The terms as sorted (index tuple, value) rows; one row for an already reduced term."""
    if not torch.is_tensor(values):  # PML's "no terms" is the integer 0
        return []
    values = values.detach().reshape(-1).tolist()
    if kind == "already_reduced":
        return [((), round(v, 9)) for v in values]
    if torch.is_tensor(indices):
        indices = (indices,)
    keys = list(zip(*(t.reshape(-1).tolist() for t in indices), strict=True))
    assert len(keys) == len(values)
    return sorted((k, round(v, 9)) for k, v in zip(keys, values, strict=True))


C, D = 4, 5
# name -> (skmetric loss, PML loss), each from the reducer; proxy losses share weights.
RECORDED = {
    "contrastive": (lambda r: losses.ContrastiveLoss(0.1, 0.9, reducer=r),
                    lambda r: pml_losses.ContrastiveLoss(0.1, 0.9, reducer=r)),
    "triplet_margin": (lambda r: losses.TripletMarginLoss(0.3, reducer=r),
                       lambda r: pml_losses.TripletMarginLoss(0.3, reducer=r)),
    "multi_similarity": (lambda r: losses.MultiSimilarityLoss(reducer=r),
                         lambda r: pml_losses.MultiSimilarityLoss(reducer=r)),
    "lifted_structure": (lambda r: losses.LiftedStructureLoss(reducer=r),
                         lambda r: pml_losses.LiftedStructureLoss(reducer=r)),
    "generalized_lifted_structure": (
        lambda r: losses.GeneralizedLiftedStructureLoss(reducer=r),
        lambda r: pml_losses.GeneralizedLiftedStructureLoss(reducer=r)),
    "npairs": (lambda r: losses.NPairsLoss(reducer=r),
               lambda r: pml_losses.NPairsLoss(reducer=r)),
    "circle": (lambda r: losses.CircleLoss(reducer=r),
               lambda r: pml_losses.CircleLoss(reducer=r)),
    "margin": (lambda r: losses.MarginLoss(reducer=r),
               lambda r: pml_losses.MarginLoss(reducer=r)),
    "margin_learn_beta": (
        lambda r: losses.MarginLoss(nu=0.3, beta=0.9, learn_beta=True, reducer=r),
        lambda r: pml_losses.MarginLoss(nu=0.3, beta=0.9, learn_beta=True, reducer=r)),
    "margin_class_betas": (
        lambda r: losses.MarginLoss(nu=0.3, beta=0.9, learn_beta=True, num_classes=C,
                                    reducer=r),
        lambda r: pml_losses.MarginLoss(nu=0.3, beta=0.9, learn_beta=True, num_classes=C,
                                        reducer=r)),
    "proxy_nca": (lambda r: losses.ProxyNCALoss(C, D, reducer=r),
                  lambda r: pml_losses.ProxyNCALoss(C, D, reducer=r)),
}


def _sync_weights(ours, theirs):
    """PML's random proxies copied into ours; MarginLoss's betas made unequal per class
    (PML calls them ``beta``)."""
    if hasattr(ours, "proxies"):
        ours.proxies.data = theirs.proxies.data.clone()
    if getattr(ours, "num_classes", None) and hasattr(ours, "betas"):
        betas = ours.betas.data + torch.linspace(0, 0.3, len(ours.betas), dtype=torch.float64)
        ours.betas.data = betas.clone()
        theirs.beta.data = betas.clone()


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_reducer_receives_pml_s_terms_with_their_indices(name):
    """The same kinds, in the same order, each with the same (index, value) terms as PML's
    reducer gets; indices are sample indices (the anchors of element terms), and the
    reducer is handed the batch's embeddings and labels."""
    ours_factory, theirs_factory = RECORDED[name]
    for seed in range(2):
        emb, labels = _batch(seed, dim=D, n_classes=C)
        torch.manual_seed(seed)
        theirs = theirs_factory(_PMLRecorder()).double()
        recorder = _Recorder(emb, labels)
        ours = ours_factory(recorder).double()
        _sync_weights(ours, theirs)
        _PML_CALLS.clear()
        value = ours(emb, labels)
        expected = theirs(emb, labels)
        assert value.item() == pytest.approx(expected.item(), rel=1e-6, abs=1e-9)
        # PML hands over a literal 0 for a sub-loss that is off (MarginLoss's beta
        # regulariser without learn_beta); skmetric skips the call.
        pml_calls = [c for c in _PML_CALLS if torch.is_tensor(c[2])]
        assert [c[0] for c in recorder.calls] == [c[0] for c in pml_calls]
        for (kind, idx, vals), (_, pidx, pvals) in zip(recorder.calls, pml_calls,
                                                       strict=True):
            assert _rows(kind, idx, vals) == _rows(kind, pidx, pvals), kind
