"""Host synchronisations in the losses and miners, counted on the CPU.

On CUDA, every read of a device value by Python stops the host until the queue drains.
A ``TorchFunctionMode`` records the calls that do so on CUDA (``.item()``, ``bool()``,
``torch.where(mask)``, ``nonzero``, boolean indexing, ``bincount``, copies to the host,
...) while a loss or miner runs with ``_sync.host_checks`` answering as on an
accelerator (value checks off). Budgets: a loss given no miner or tuples of its own
format reads nothing; a miner reads its output sizes once (see skmetric/deep/_sync.py).
"""

import copy

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("skorch")

from torch.overrides import TorchFunctionMode  # noqa: E402

from skmetric.deep import _sync  # noqa: E402
from skmetric.deep.losses import LOSSES  # noqa: E402
from skmetric.deep.miners import MINERS  # noqa: E402

#: Functions and methods that read a device value on the host (a sync on CUDA).
_SYNCING = {"item", "tolist", "__bool__", "__int__", "__float__", "__index__", "nonzero",
            "argwhere", "masked_select", "cpu", "numpy", "bincount", "unique",
            "unique_consecutive", "equal", "allclose"}


class SyncCounter(TorchFunctionMode):
    """Records the torch calls of a block that would synchronise with a CUDA device."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", repr(func))
        if _syncs(name, args, kwargs):
            self.calls.append(name)
        return func(*args, **kwargs)


def _syncs(name, args, kwargs):
    if name in _SYNCING:
        return True
    if name == "where":  # torch.where(condition) alone returns data-dependent indices
        return len(args) + len(kwargs) == 1
    if name == "repeat_interleave":
        repeats = args[1] if len(args) > 1 else kwargs.get("repeats")
        return torch.is_tensor(repeats) and kwargs.get("output_size") is None
    if name in ("__getitem__", "__setitem__"):
        index = args[1] if isinstance(args[1], tuple) else (args[1],)
        return any(torch.is_tensor(i) and i.dtype == torch.bool for i in index)
    if name == "to":  # a blocking copy between host and device (CPU-to-CPU stands for it)
        to_host = any(str(a) == "cpu" for a in (*args[1:], *kwargs.values()))
        return to_host and not kwargs.get("non_blocking", False)
    return False


@pytest.fixture
def on_accelerator(monkeypatch):
    """Make the losses and miners take their accelerator path on CPU tensors."""
    monkeypatch.setattr(_sync, "host_checks", lambda x: False)


def _batch(n=32, dim=8, n_classes=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    emb = torch.randn(n, dim, generator=g)
    return emb, torch.arange(n) % n_classes


def _make_loss(cls, dim=8, n_classes=4):
    return cls(n_classes, dim) if cls.requires_classes else cls()


def _count(fn, *args, **kwargs):
    with SyncCounter() as counter:
        out = fn(*args, **kwargs)
    return out, counter.calls


def test_counter_sees_the_syncing_calls():
    # The counter itself: each of these reads a device value; the last two do not.
    x = torch.tensor([0.0, 1.0, 2.0])
    mask = x > 0
    _, calls = _count(lambda: (x.sum().item(), bool(mask.any()), torch.where(mask), x[mask],
                               torch.bincount(mask.long()), x.cpu(), int(x.sum()),
                               torch.nonzero_static(mask, size=2), torch.where(mask, x, 0)))
    assert calls == ["item", "__bool__", "where", "__getitem__", "bincount", "cpu", "__int__"]


def test_value_checks_run_on_the_host_only():
    assert _sync.host_checks(torch.zeros(1))
    assert not _sync.host_checks(torch.zeros(1, device="meta"))


def test_fetch_reads_several_sizes_at_once(on_accelerator):
    # The accelerator path: counts and extras in one read, then nonzero_static (no sync).
    mask = torch.tensor([[True, False], [True, True]])
    (rows, cols, extra), calls = _count(_sync.where, mask, extra=(mask.sum(1).max(),))
    assert calls == ["tolist"]
    assert extra == 2
    torch.testing.assert_close((rows, cols), torch.where(mask))
    torch.testing.assert_close(_sync.where(mask)[:2], torch.where(mask))


def test_where_on_the_host_is_torch_where():
    # On the CPU there is no device queue to wait for: plain torch.where (faster than
    # nonzero_static there), the extras read in the same call.
    mask = torch.tensor([[True, False], [True, True]])
    rows, cols, extra = _sync.where(mask, extra=(mask.sum(1).max(),))
    torch.testing.assert_close((rows, cols), torch.where(mask))
    assert extra == 2
    torch.testing.assert_close(_sync.counts(torch.tensor([0, 2, 2]), 4),
                               torch.bincount(torch.tensor([0, 2, 2]), minlength=4))


def _loss_call(name, cls):
    loss = _make_loss(cls)
    emb, labels = _batch()
    if name == "vicreg":  # self-supervised: two views, no labels
        return loss, (emb.requires_grad_(), None), {"ref_emb": _batch(seed=1)[0]}
    return loss, (emb.requires_grad_(), labels), {}


#: Losses that, without a miner, list every pair or triplet of the batch (as
#: pytorch-metric-learning does): the list's length is read once. The others reduce over
#: dense masks and never sync.
_LIST_ALL_TUPLES = {"triplet_margin", "margin", "dynamic_soft_margin", "lifted_structure",
                    "ntxent", "intra_pair_variance", "threshold_consistent_margin",
                    "tuplet_margin", "snr_contrastive", "angular"}
#: Losses written on triplets: given pairs, they join them (one read of the length).
_TRIPLET_LOSSES = {"triplet_margin", "margin", "dynamic_soft_margin", "histogram"}
#: Miners with a second read, each because the reference's output needs it:
#: angular keeps the triplets that pass an angle test computed on all triplets;
#: uniform_histogram draws (on the CPU, as the reference) from bins whose sizes it reads.
_MINER_BUDGET = {"angular": 2, "uniform_histogram": 2}


@pytest.mark.parametrize("name, cls", LOSSES.items())
def test_loss_without_miner_does_not_sync(name, cls, on_accelerator):
    loss, args, kwargs = _loss_call(name, cls)
    value, calls = _count(loss, *args, **kwargs)
    budget = 1 if name in _LIST_ALL_TUPLES else 0
    assert len(calls) <= budget, f"{name} syncs with the device: {calls}"
    value.backward()  # still a graph


_MINER_OF_KIND = {"pairs": "pair_margin", "triplets": "semihard"}


@pytest.mark.parametrize("kind", ["pairs", "triplets"])
@pytest.mark.parametrize("name, cls", [(n, c) for n, c in LOSSES.items() if n != "vicreg"])
def test_loss_given_tuples_does_not_sync(name, cls, kind, on_accelerator):
    loss, (emb, labels), _ = _loss_call(name, cls)
    tuples = MINERS[_MINER_OF_KIND[kind]]()(emb.detach(), labels)
    try:
        loss(emb, labels, indices_tuple=tuples)
    except ValueError as error:  # a loss of the whole batch that takes no miner
        assert "miner" in str(error)
        return
    value, calls = _count(loss, emb, labels, indices_tuple=tuples)
    budget = 1 if kind == "pairs" and name in _TRIPLET_LOSSES else 0
    assert len(calls) <= budget, f"{name} given {kind} syncs: {calls}"
    value.backward()


@pytest.mark.parametrize("output", [None, "pairs", "triplets"])
@pytest.mark.parametrize("name, cls", MINERS.items())
def test_miner_syncs_once(name, cls, output, on_accelerator):
    params = cls.__init__.__code__.co_varnames
    if output is not None and "output" not in params:
        pytest.skip(f"{name} has one output format")
    kwargs = {"output": output} if output else {}
    if "random_state" in params:
        kwargs["random_state"] = 0
    emb, labels = _batch()
    tuples, calls = _count(cls(**kwargs), emb, labels)
    assert len(calls) <= _MINER_BUDGET.get(name, 1), f"{name} syncs {len(calls)} times: {calls}"
    assert all(t.dtype == torch.long for t in tuples) and len(tuples[0])


def _value_and_grads(loss, emb, labels, **kwargs):
    emb = emb.clone().requires_grad_()
    ref = kwargs.pop("ref_emb", None)
    ref = None if ref is None else ref.clone().requires_grad_()
    value = loss(emb, labels, **kwargs, **({} if ref is None else {"ref_emb": ref}))
    value.backward()
    grads = [t.grad if t.grad is not None else torch.zeros_like(t)
             for t in (emb, ref) if t is not None]
    return value.detach(), grads


@pytest.mark.parametrize("separated", [False, True])
@pytest.mark.parametrize("kind", [None, "pairs", "triplets"])
@pytest.mark.parametrize("name, cls", LOSSES.items())
def test_accelerator_path_computes_the_same_loss(name, cls, kind, separated, monkeypatch):
    # The sync-free formulations (masked reductions, counts kept on the device) give the
    # value and gradients of the CPU path, which reads values freely; None gradients
    # (a tensor outside the graph) count as zeros. Separated classes (near one point per
    # class) make most terms zero: the branches that PML takes on an empty selection.
    loss, (emb, labels), kwargs = _loss_call(name, cls)
    emb = emb.detach()
    if separated:
        if labels is None:
            pytest.skip("vicreg has no classes")
        emb = torch.nn.functional.one_hot(labels, emb.shape[1]).to(emb.dtype) + 0.01 * emb
    if kind is not None:
        if name == "vicreg":
            pytest.skip("vicreg takes no tuples")
        kwargs["indices_tuple"] = MINERS[_MINER_OF_KIND[kind]]()(emb, labels)
    twin = copy.deepcopy(loss)  # the same proxies and state for both paths
    try:
        on_host = _value_and_grads(loss, emb, labels, **kwargs)
    except ValueError as error:  # a loss of the whole batch that takes no miner
        assert "miner" in str(error)
        return
    monkeypatch.setattr(_sync, "host_checks", lambda x: False)
    on_device = _value_and_grads(twin, emb, labels, **kwargs)
    torch.testing.assert_close(on_device, on_host)


@pytest.mark.gpu
@pytest.mark.parametrize("name, cls", [*LOSSES.items(), *MINERS.items()])
def test_cuda_counts_the_budgeted_syncs(name, cls):
    # The CPU counter's budgets, checked against CUDA's own count (warm-up call first:
    # the first call may initialise cuBLAS, which syncs once).
    emb, labels = (t.cuda() for t in _batch())
    if cls in MINERS.values():
        call, budget = (lambda: cls()(emb, labels)), _MINER_BUDGET.get(name, 1)
    else:
        loss = _make_loss(cls).cuda()
        kwargs = {"ref_emb": emb.flip(0)} if name == "vicreg" else {}
        lab = None if name == "vicreg" else labels
        call, budget = (lambda: loss(emb, lab, **kwargs)), int(name in _LIST_ALL_TUPLES)
    call()
    syncs = _sync.cuda_syncs(call)
    assert len(syncs) <= budget, f"{name}: {syncs}"
