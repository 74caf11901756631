"""More tests that kill mutants of skmetric/deep/losses/ that survived ``scripts/mutation.py``
(third session; see tests/README.md).

The references are pytorch-metric-learning 2.9 (PML) and the losses' formulas. A reducer is
public API (``reducer(losses, indices, kind, embeddings, labels)``, see
``skmetric.deep.losses.reducers``): a user's reducer sees every term with the index of the
sample, pair or triplet it belongs to, and PML hands its reducers the same terms; the first
test checks both, term by term.
"""


import math

import pytest

torch = pytest.importorskip("torch")
pml_losses = pytest.importorskip("pytorch_metric_learning.losses")
pml_reducers = pytest.importorskip("pytorch_metric_learning.reducers")
pml_regularizers = pytest.importorskip("pytorch_metric_learning.regularizers")
pml_distances = pytest.importorskip("pytorch_metric_learning.distances")

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
    "proxy_anchor": (lambda r: losses.ProxyAnchorLoss(C, D, reducer=r),
                     lambda r: pml_losses.ProxyAnchorLoss(C, D, reducer=r)),
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


#: The losses that take a reference set (``ref_emb``, ``ref_labels``), in PML too.
WITH_REFERENCE = ["contrastive", "triplet_margin", "multi_similarity", "circle", "margin",
                  "margin_learn_beta", "margin_class_betas", "generalized_lifted_structure",
                  "lifted_structure"]


@pytest.mark.parametrize("name, reference",
                         [(n, False) for n in sorted(RECORDED)]
                         + [(n, True) for n in WITH_REFERENCE])
def test_reducer_receives_pml_s_terms_with_their_indices(name, reference):
    """The same kinds, in the same order, each with the same (index, value) terms as PML's
    reducer gets; indices are sample indices (the anchors of element terms), and the
    reducer is handed the batch's embeddings and labels. With a reference set, pairs are
    taken against its labels."""
    ours_factory, theirs_factory = RECORDED[name]
    for seed in range(2):
        emb, labels = _batch(seed, dim=D, n_classes=C)
        ref_kwargs = {}
        if reference:
            ref, ref_labels = _batch(seed + 7, n=11, dim=D, n_classes=C)
            ref_kwargs = {"ref_emb": ref, "ref_labels": ref_labels}
        torch.manual_seed(seed)
        theirs = theirs_factory(_PMLRecorder()).double()
        recorder = _Recorder(emb, labels)
        ours = ours_factory(recorder).double()
        _sync_weights(ours, theirs)
        _PML_CALLS.clear()
        value = ours(emb, labels, **ref_kwargs)
        expected = theirs(emb, labels, **ref_kwargs)
        assert value.item() == pytest.approx(expected.item(), rel=1e-6, abs=1e-9)
        # PML hands over a literal 0 for a sub-loss that is off (MarginLoss's beta
        # regulariser without learn_beta); skmetric skips the call.
        pml_calls = [c for c in _PML_CALLS if torch.is_tensor(c[2])]
        assert [c[0] for c in recorder.calls] == [c[0] for c in pml_calls]
        for (kind, idx, vals), (_, pidx, pvals) in zip(recorder.calls, pml_calls,
                                                       strict=True):
            assert _rows(kind, idx, vals) == _rows(kind, pidx, pvals), kind


# --- ProxyNCALoss: target probabilities that underflow -----------------------------------

def _proxy_nca_pair(scale, reducer=None, pml_reducer=None):
    """ProxyNCA with proxies on the coordinate axes: a sample that points away from its
    class proxy has a target probability below exp(-2 scale), zero as a float64 softmax
    for a scale above about 375."""
    ours = losses.ProxyNCALoss(C, D, softmax_scale=scale, reducer=reducer).double()
    kwargs = {} if pml_reducer is None else {"reducer": pml_reducer}
    theirs = pml_losses.ProxyNCALoss(C, D, softmax_scale=scale, **kwargs).double()
    proxies = torch.eye(C, D, dtype=torch.float64) * torch.tensor([[1.0], [2.0], [0.5], [3.0]],
                                                                   dtype=torch.float64)
    ours.proxies.data, theirs.proxies.data = proxies.clone(), proxies.clone()
    return ours, theirs


def _proxy_nca_batch(n_away):
    """Eight samples, two per class. The first ``n_away`` point away from their class proxy
    (their target probability underflows at a large scale); the others lie halfway between
    their proxy and the next one (target probability near 1/2: a loss near log 2)."""
    g = torch.Generator().manual_seed(3)
    labels = torch.arange(C).repeat(2)
    eye = torch.eye(C, D, dtype=torch.float64)
    emb = eye[labels] + eye[(labels + 1) % C]
    emb = emb + 1e-3 * torch.randn(emb.shape, generator=g, dtype=torch.float64)
    emb[:n_away] = -eye[labels[:n_away]]
    return emb, labels


@pytest.mark.parametrize("reducer", [None, "mean", "avg_non_zero", "recorder"])
@pytest.mark.parametrize("n_away", [0, 1, 3, 7, 8])
def test_proxy_nca_drops_underflowed_targets_as_pml(reducer, n_away):
    """Samples whose target probability is exactly 0 leave the mean (PML drops them); with
    all of them dropped the loss is 0 and still connected to the graph."""
    emb, labels = _proxy_nca_batch(n_away)
    pml_reducer = {None: None, "mean": pml_reducers.MeanReducer(),
                   "avg_non_zero": pml_reducers.AvgNonZeroReducer(),
                   "recorder": _PMLRecorder()}[reducer]
    ours_reducer = _Recorder(emb, labels) if reducer == "recorder" else reducer
    ours, theirs = _proxy_nca_pair(500.0, ours_reducer, pml_reducer)
    _PML_CALLS.clear()
    e1, e2 = emb.clone().requires_grad_(True), emb.clone().requires_grad_(True)
    v1, v2 = ours(e1, labels), theirs(e2, labels)
    v1.backward()
    if n_away == 8:  # PML's mean of no term is NaN; skmetric's is a connected 0
        assert v1.item() == 0 and torch.equal(e1.grad, torch.zeros_like(emb))
        return
    assert v1.item() == pytest.approx(v2.item(), rel=1e-6, abs=1e-9)
    assert v1.item() > 0.1  # the kept samples' terms are near log 2, not 0
    v2.backward()
    torch.testing.assert_close(e1.grad, e2.grad, rtol=1e-5, atol=1e-9)
    if reducer == "recorder" and n_away < 8:
        (kind, idx, vals), = ours_reducer.calls
        assert _rows(kind, idx, vals) == _rows(*_PML_CALLS[0])
        assert idx.tolist() == list(range(n_away, 8))  # the kept samples, by index


@pytest.mark.parametrize("reducer", [None, "mean"])
@pytest.mark.parametrize("n_away", [0, 2])
def test_proxy_nca_miner_weights_match_pml(reducer, n_away):
    """Miner weights count the anchors; an underflowed sample drops out with its weight."""
    emb, labels = _proxy_nca_batch(n_away)
    ours, theirs = _proxy_nca_pair(500.0, reducer,
                                   None if reducer is None else pml_reducers.MeanReducer())
    tuples = (torch.tensor([0, 2, 2, 5, 6, 6, 6]), torch.tensor([4, 6, 6, 1, 2, 2, 2]),
              torch.tensor([1, 3, 1, 0, 0, 0, 1]))
    v1, g1 = _value_and_grad(ours, emb, labels, tuples)
    v2, g2 = _value_and_grad(theirs, emb, labels, tuples)
    assert v1 == pytest.approx(v2, rel=1e-6) and v1 > 0.1
    torch.testing.assert_close(g1, g2, rtol=1e-5, atol=1e-9)


# --- MarginLoss: the beta regulariser, one triplet, no active term -----------------------

MARGIN_CONFIGS = [dict(learn_beta=True), dict(nu=0.3, learn_beta=True),
                  dict(nu=0.3, beta=0.8, learn_beta=True, num_classes=C),
                  dict(nu=0.3, beta=0.8, num_classes=C)]


def _margin_pair(config):
    ours = losses.MarginLoss(**config).double()
    theirs = pml_losses.MarginLoss(**config)
    if config.get("num_classes"):  # unequal class boundaries, the same in both
        betas = ours.betas.data + torch.linspace(0, 0.3, C, dtype=torch.float64)
        ours.betas.data = betas.clone()
        theirs.beta.data = betas.clone().float()
    return ours, theirs


def _value_and_grad(loss, emb, labels, *args):
    emb = emb.clone().requires_grad_(True)
    value = loss(emb, labels, *args)
    grad, = torch.autograd.grad(value, emb, allow_unused=True, materialize_grads=True)
    return value.item(), grad


@pytest.mark.parametrize("config", MARGIN_CONFIGS, ids=str)
def test_margin_loss_beta_regulariser_matches_pml(config):
    """``nu * beta`` added as PML adds it: once (one beta) or per active term (per-class
    betas), and nothing when no term is active; also with exactly one triplet, one of
    whose two hinges is active."""
    emb, labels = _batch(0, dim=D, n_classes=C)
    easy = torch.eye(C, D, dtype=torch.float64).repeat(3, 1) * 3  # every hinge 0
    easy_labels = torch.arange(C).repeat(3)
    one = (torch.tensor([0]), torch.tensor([4]), torch.tensor([1]))
    for args in ((emb, labels), (easy, easy_labels), (emb, labels, one)):
        ours, theirs = _margin_pair(config)
        v1, g1 = _value_and_grad(ours, *args)
        v2, g2 = _value_and_grad(theirs, *(a.float() if a.is_floating_point() else a
                                           for a in args[:2]), *args[2:])
        assert v1 == pytest.approx(v2, rel=1e-5, abs=1e-6)
        torch.testing.assert_close(g1.float(), g2, rtol=1e-4, atol=1e-6)


def test_margin_loss_stores_its_arguments_and_learns_nothing_by_default():
    """Attributes are the constructor's arguments (get_params, clone); by default beta is a
    fixed buffer, not a parameter an optimizer would move."""
    loss = losses.MarginLoss()
    assert (loss.margin, loss.nu, loss.beta, loss.learn_beta, loss.num_classes,
            loss.triplets_per_anchor, loss.distance, loss.normalize) == (
        0.2, 0.0, 1.2, False, None, "all", "euclidean", True)
    assert list(loss.parameters()) == []
    assert losses.MarginLoss(beta=0.7, learn_beta=True).beta == 0.7


# --- NPairsLoss ---------------------------------------------------------------------------

def test_npairs_loss_refuses_a_reference_set_by_name():
    emb, labels = _batch(0)
    with pytest.raises(ValueError, match="^NPairsLoss compares the batch with itself: ref_emb "
                                         "is not supported. Pass only embeddings and labels"):
        losses.NPairsLoss()(emb, labels, ref_emb=emb, ref_labels=labels)


@pytest.mark.parametrize("reducer", [None, "mean"])
@pytest.mark.parametrize("labels", [[0, 1, 2, 3, 4, 5], [0, 0, 1, 2, 3, 3, 3, 4, 5, 5, 5, 5]],
                         ids=["no pair", "singletons"])
def test_npairs_loss_with_l2_reg_and_singletons_matches_pml(reducer, labels):
    """The norm penalty is added also when no class has a pair; classes of one sample
    (and runs longer than two) pick their pair as PML does."""
    labels = torch.tensor(labels)
    emb, _ = _batch(1, n=len(labels), dim=D)
    kwargs = {} if reducer is None else {"reducer": reducer}
    pml_kwargs = {} if reducer is None else {"reducer": pml_reducers.MeanReducer()}
    ours = losses.NPairsLoss(l2_reg=0.5, normalize=False, **kwargs)
    theirs = pml_losses.NPairsLoss(
        embedding_regularizer=pml_regularizers.LpRegularizer(power=2), embedding_reg_weight=0.5,
        distance=pml_distances.DotProductSimilarity(normalize_embeddings=False), **pml_kwargs)
    v1, g1 = _value_and_grad(ours, emb, labels)
    v2, g2 = _value_and_grad(theirs, emb, labels)
    assert v1 == pytest.approx(v2, rel=1e-6)
    torch.testing.assert_close(g1, g2, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("reducer", [None, "mean"])
def test_npairs_loss_with_an_empty_miner_output_is_the_norm_penalty(reducer):
    """A miner that found no pair: the loss is the l2 penalty alone, as PML's."""
    emb, labels = _batch(2, n=8, dim=D)
    empty = tuple(torch.empty(0, dtype=torch.long) for _ in range(4))
    kwargs = {} if reducer is None else {"reducer": reducer}
    ours = losses.NPairsLoss(l2_reg=0.5, normalize=False, **kwargs)
    theirs = pml_losses.NPairsLoss(
        embedding_regularizer=pml_regularizers.LpRegularizer(power=2), embedding_reg_weight=0.5,
        distance=pml_distances.DotProductSimilarity(normalize_embeddings=False))
    v1, g1 = _value_and_grad(ours, emb, labels, empty)
    v2, g2 = _value_and_grad(theirs, emb, labels, empty)
    assert v1 == pytest.approx(v2, rel=1e-6) and v1 > 0
    torch.testing.assert_close(g1, g2, rtol=1e-5, atol=1e-9)


def test_margin_loss_without_normalisation_matches_pml():
    emb, labels = _batch(4, dim=D, n_classes=C)
    ours = losses.MarginLoss(margin=0.5, beta=2.0, normalize=False).double()
    theirs = pml_losses.MarginLoss(margin=0.5, beta=2.0,
                                   distance=pml_distances.LpDistance(normalize_embeddings=False))
    v1, g1 = _value_and_grad(ours, emb, labels)
    v2, g2 = _value_and_grad(theirs, emb.float(), labels)
    assert v1 == pytest.approx(v2, rel=1e-5)
    torch.testing.assert_close(g1.float(), g2, rtol=1e-4, atol=1e-6)


# --- ProxyAnchorLoss: large alpha (the overflow-safe branch), absent classes ----------------

def _proxy_anchor_pair(alpha, margin, n_classes=6):
    ours = losses.ProxyAnchorLoss(n_classes, D, margin=margin, alpha=alpha)
    theirs = pml_losses.ProxyAnchorLoss(n_classes, D, margin=margin, alpha=alpha).double()
    g = torch.Generator().manual_seed(5)
    proxies = torch.randn(n_classes, D, generator=g, dtype=torch.float64)
    ours.proxies.data = proxies.float()
    theirs.proxies.data = proxies.clone()
    return ours, theirs, proxies


@pytest.mark.parametrize("alpha, margin", [(64.0, 0.1), (50.0, 0.9), (32.0, 0.1)])
def test_proxy_anchor_in_float32_with_large_alpha_matches_pml_in_float64(alpha, margin):
    """alpha * (1 + margin) beyond log(sqrt(float32 max)) ~ 44: the sums of exp must take
    the log-sum-exp branch (one embedding sits on a wrong class's proxy, where exp(z)
    overflows float32). Classes 4 and 5 are absent from the batch: their positive terms
    are 0."""
    ours, theirs, proxies = _proxy_anchor_pair(alpha, margin)
    emb, labels = _batch(6, n=12, dim=D, n_classes=4)
    emb[0] = proxies[1] * 2  # sample 0 (class 0) on class 1's proxy
    v1, g1 = _value_and_grad(ours, emb.float(), labels)
    v2, g2 = _value_and_grad(theirs, emb, labels)
    assert math.isfinite(v1)
    assert v1 == pytest.approx(v2, rel=1e-4)
    torch.testing.assert_close(g1.double(), g2, rtol=1e-3, atol=1e-5)


def test_proxy_anchor_with_a_single_class_in_the_batch_matches_pml():
    """One class present (not the last): the positive term is averaged over one proxy."""
    ours, theirs, _ = _proxy_anchor_pair(32.0, 0.1)
    emb, _ = _batch(7, n=8, dim=D)
    labels = torch.full((8,), 2)
    v1, g1 = _value_and_grad(ours.double(), emb, labels)
    v2, g2 = _value_and_grad(theirs, emb, labels)
    assert v1 == pytest.approx(v2, rel=1e-6)
    torch.testing.assert_close(g1, g2, rtol=1e-5, atol=1e-9)
