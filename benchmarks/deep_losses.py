"""Benchmark skmetric's deep losses and miners against pytorch-metric-learning (PML).

For each loss + miner pair, times one forward + backward pass (mining included) at
batch sizes 256 and 1024 with 128-dimensional embeddings and 4 samples per class, for
skmetric and PML in the same run, and reports the time ratio and the peak memory. A
second table times the miners alone. Time is the process's CPU time on the CPU (run with
``OMP_NUM_THREADS=1``; other jobs on the machine do not inflate it), wall time on a GPU.
Peak memory is ``torch.cuda``'s peak
allocation on a GPU; on the CPU it is the rise of the process's peak resident set size
(Linux ``VmHWM``, reset through ``/proc/self/clear_refs``).

Before any case is timed, its loss value and gradient are asserted equal to PML's on the
same batch (``LOSS_RTOL``), and every miner's tuples are asserted to be the same set as
PML's; cases with a random miner (distance-weighted sampling draws differently in the two
libraries) are timed without that check, and the table says so.

A side is not run at a batch size where it would not fit: its peak memory and step time are
extrapolated from smaller batches (:class:`_Budget`) and compared with ``--memory-limit``
(default: half of the memory available) and ``--time-limit``; such a cell reads "n/a —
would need ~X, limit Y", and the run's notes list it.

Run ``.venv/bin/python benchmarks/deep_losses.py [--quick] [--device cuda] [--record]``;
``benchmarks/deep.py`` may call :func:`run_loss_benchmark`.
"""

import argparse
import ctypes
import gc
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS, ROOT, SCRATCH, Run, add_common_args, condition  # noqa: E402

from skmetric.deep import losses as sk_losses  # noqa: E402
from skmetric.deep import miners as sk_miners  # noqa: E402


def _pml():
    from pytorch_metric_learning import losses, miners

    return losses, miners


# name: (skmetric loss, skmetric miner, PML loss, PML miner[, extras]); built lazily.
# extras (optional dict): "sk_call" / "pml_call" (loss, emb, labels, indices) -> value when a
# loss is not called as loss(emb, labels, indices); "sync" (sk_loss, pml_loss) copies PML's
# random initial weights into skmetric's before the agreement check.
def _cases(dim=128, n_classes=256):
    L, M = _pml()
    return {
        "contrastive": (lambda: sk_losses.ContrastiveLoss(), None,
                        lambda: L.ContrastiveLoss(), None),
        "triplet (all triplets)": (lambda: sk_losses.TripletMarginLoss(0.1), None,
                                   lambda: L.TripletMarginLoss(0.1), None),
        "triplet + semihard": (
            lambda: sk_losses.TripletMarginLoss(0.1),
            lambda: sk_miners.TripletMarginMiner(0.2, "semihard"),
            lambda: L.TripletMarginLoss(0.1),
            lambda: M.TripletMarginMiner(0.2, type_of_triplets="semihard")),
        "triplet + hard": (
            lambda: sk_losses.TripletMarginLoss(0.1),
            lambda: sk_miners.TripletMarginMiner(0.2, "hard"),
            lambda: L.TripletMarginLoss(0.1),
            lambda: M.TripletMarginMiner(0.2, type_of_triplets="hard")),
        "triplet + easy": (
            lambda: sk_losses.TripletMarginLoss(0.1),
            lambda: sk_miners.TripletMarginMiner(0.01, "easy"),
            lambda: L.TripletMarginLoss(0.1),
            lambda: M.TripletMarginMiner(0.01, type_of_triplets="easy")),
        "triplet + batch_hard": (
            lambda: sk_losses.TripletMarginLoss(0.1), lambda: sk_miners.BatchHardMiner(),
            lambda: L.TripletMarginLoss(0.1), lambda: M.BatchHardMiner()),
        "margin + distance_weighted": (
            lambda: sk_losses.MarginLoss(learn_beta=True),
            lambda: sk_miners.DistanceWeightedMiner(random_state=0),
            lambda: L.MarginLoss(learn_beta=True), lambda: M.DistanceWeightedMiner()),
        "lifted_structure": (lambda: sk_losses.LiftedStructureLoss(), None,
                             lambda: L.LiftedStructureLoss(), None),
        "generalized_lifted_structure": (
            lambda: sk_losses.GeneralizedLiftedStructureLoss(), None,
            lambda: L.GeneralizedLiftedStructureLoss(), None),
        "npairs": (lambda: sk_losses.NPairsLoss(), None, lambda: L.NPairsLoss(), None),
        "multi_similarity + ms miner": (
            lambda: sk_losses.MultiSimilarityLoss(), lambda: sk_miners.MultiSimilarityMiner(),
            lambda: L.MultiSimilarityLoss(), lambda: M.MultiSimilarityMiner()),
        "circle": (lambda: sk_losses.CircleLoss(), None, lambda: L.CircleLoss(), None),
        # issue #17: the losses and miners added after PML 2.9's (defaults equal to PML's)
        "supcon": (lambda: sk_losses.SupConLoss(), None, lambda: L.SupConLoss(), None),
        "ntxent": (lambda: sk_losses.NTXentLoss(), None, lambda: L.NTXentLoss(), None),
        "nca": (lambda: sk_losses.NCALoss(), None, lambda: L.NCALoss(), None),
        "fast_ap": (lambda: sk_losses.FastAPLoss(), None, lambda: L.FastAPLoss(), None),
        "intra_pair_variance": (lambda: sk_losses.IntraPairVarianceLoss(), None,
                                lambda: L.IntraPairVarianceLoss(), None),
        "snr_contrastive": (lambda: sk_losses.SignalToNoiseRatioContrastiveLoss(), None,
                            lambda: L.SignalToNoiseRatioContrastiveLoss(), None),
        "tuplet_margin + batch_easy_hard": (
            lambda: sk_losses.TupletMarginLoss(), lambda: sk_miners.BatchEasyHardMiner(),
            lambda: L.TupletMarginLoss(), lambda: M.BatchEasyHardMiner()),
        "contrastive + pair_margin": (
            lambda: sk_losses.ContrastiveLoss(), lambda: sk_miners.PairMarginMiner(),
            lambda: L.ContrastiveLoss(), lambda: M.PairMarginMiner()),
        "angular": (lambda: sk_losses.AngularLoss(), None, lambda: L.AngularLoss(), None),
        "instance": (lambda: sk_losses.InstanceLoss(), None, lambda: L.InstanceLoss(), None),
        "histogram": (lambda: sk_losses.HistogramLoss(), None, lambda: L.HistogramLoss(),
                      None),
        "dynamic_soft_margin": (lambda: sk_losses.DynamicSoftMarginLoss(), None,
                                lambda: _pml_fixed_dynamic_soft_margin(), None),
        "manifold": (
            lambda: sk_losses.ManifoldLoss(n_classes, dim), None,
            lambda: L.ManifoldLoss(l=dim, K=n_classes), None,
            {"pml_call": lambda loss, e, y, i: loss(e, None, y),  # PML: meta-classes
             "sync": lambda ours, theirs: ours.proxies.data.copy_(theirs.proxies)}),
        # PML's Smooth-AP is right only on k classes x k samples: timed on such batches
        "smooth_ap (k x k batch)": (lambda: sk_losses.SmoothAPLoss(), None,
                                    lambda: L.SmoothAPLoss(), None, {"square": True}),
        "pnp": (lambda: sk_losses.PNPLoss(), None, lambda: L.PNPLoss(), None),
        "ranked_list (margin 0.4, Tn 1)": (
            lambda: sk_losses.RankedListLoss(0.4, 1.0), None,
            lambda: L.RankedListLoss(0.4, 1.0), None),
        "threshold_consistent_margin": (
            lambda: sk_losses.ThresholdConsistentMarginLoss(), None,
            lambda: L.ThresholdConsistentMarginLoss(), None),
        "p2sgrad": (
            lambda: sk_losses.P2SGradLoss(n_classes, dim), None,
            lambda: L.P2SGradLoss(descriptors_dim=dim, num_classes=n_classes), None,
            {"sync": lambda ours, theirs: ours.W.data.copy_(theirs.weight)}),
        "vicreg (z2 = rolled batch)": (
            lambda: sk_losses.VICRegLoss(), None, lambda: L.VICRegLoss(), None,
            {"sk_call": _self_supervised_call, "pml_call": _self_supervised_call}),
        "contrastive + hdc miner": (
            lambda: sk_losses.ContrastiveLoss(), lambda: sk_miners.HDCMiner(),
            lambda: L.ContrastiveLoss(), lambda: M.HDCMiner()),
        "contrastive + uniform_histogram miner": (
            lambda: sk_losses.ContrastiveLoss(),
            lambda: sk_miners.UniformHistogramMiner(random_state=0),
            lambda: L.ContrastiveLoss(), lambda: M.UniformHistogramMiner(),
            {"seed": 0}),  # PML draws from torch's global generator: seeded alike
        "cross_batch_memory(contrastive, 2048)": (
            lambda: sk_losses.CrossBatchMemory(sk_losses.ContrastiveLoss(), dim, 2048), None,
            lambda: L.CrossBatchMemory(L.ContrastiveLoss(), dim, 2048), None),
        "multiple_losses(contrastive + 0.5 triplet)": (
            lambda: sk_losses.MultipleLosses(
                [sk_losses.ContrastiveLoss(), sk_losses.TripletMarginLoss(0.1)], weights=[1, .5]),
            None,
            lambda: L.MultipleLosses([L.ContrastiveLoss(), L.TripletMarginLoss(0.1)],
                                     weights=[1, .5]), None),
        "self_supervised(ntxent)": (
            lambda: sk_losses.SelfSupervisedLoss(sk_losses.NTXentLoss()), None,
            lambda: L.SelfSupervisedLoss(L.NTXentLoss()), None,
            {"sk_call": _self_supervised_call, "pml_call": _self_supervised_call}),
    }


def _self_supervised_call(loss, emb, labels, indices):
    """Two views without labels: the batch and the batch rolled by one, slightly shrunk."""
    return loss(emb, ref_emb=0.9 * emb.roll(1, dims=0))


def _pml_fixed_dynamic_soft_margin():
    """PML's DynamicSoftMarginLoss with its running histogram taken out of the autograd
    graph (as skmetric's): PML's own backward fails from its second call on."""
    _, _ = _pml()
    from pytorch_metric_learning.losses import DynamicSoftMarginLoss

    class Fixed(DynamicSoftMarginLoss):
        def update_histogram(self, data):
            super().update_histogram(data.detach())

    return Fixed()


def _miner_cases():
    _, M = _pml()
    return {
        f"{kind} (TripletMarginMiner)": (
            lambda kind=kind: sk_miners.TripletMarginMiner(0.2, kind),
            lambda kind=kind: M.TripletMarginMiner(0.2, type_of_triplets=kind))
        for kind in ("all", "hard", "semihard", "easy")
    } | {"batch_hard": (sk_miners.BatchHardMiner, M.BatchHardMiner),
         # skmetric's angle is in radians (20 degrees = 0.349, its default), PML's in degrees
         "angular": (sk_miners.AngularMiner, lambda: M.AngularMiner(angle=20)),
         "hdc": (sk_miners.HDCMiner, M.HDCMiner),
         # PML draws from torch's global generator: seeded alike for the check
         "uniform_histogram": (lambda: sk_miners.UniformHistogramMiner(random_state=0),
                               M.UniformHistogramMiner, {"seed": 0})}


# Cases whose miner samples at random: the two libraries draw different tuples.
_RANDOM = {"margin + distance_weighted"}
LOSS_RTOL, LOSS_ATOL = 1e-4, 1e-6


def _tuple_rows(indices):
    """A miner's output as sorted rows: triplets (a, p, n), or pairs tagged 0/1."""
    cols = [torch.as_tensor(t).detach().cpu().long() for t in indices]
    if len(cols) == 3:
        rows = torch.stack(cols, 1)
    else:
        a1, p, a2, n = cols
        rows = torch.cat([torch.stack([torch.zeros_like(a1), a1, p], 1),
                          torch.stack([torch.ones_like(a2), a2, n], 1)])
    rows = rows.numpy()
    return rows[np.lexsort(rows.T[::-1])] if len(rows) else rows


def _call(loss, emb, labels, indices):
    return loss(emb, labels, indices)


def _mine(miner, emb, labels, seed=None):
    if miner is None:
        return None
    if seed is not None:  # PML's random miners draw from torch's global generator
        torch.manual_seed(seed)
    return miner(emb, labels)


def check_miner(run, what, sk_miner, pml_miner, emb, labels, seed=None):
    with torch.no_grad():
        ours = _tuple_rows(_mine(sk_miner, emb, labels))
        ref = _tuple_rows(_mine(pml_miner, emb, labels, seed))
    run.check_same(f"{what}: mined tuples vs PML", ours, ref)


def check_loss(run, what, sk_loss, sk_miner, pml_loss, pml_miner, emb, labels, extras=None):
    """Same loss value and gradient as PML on the same batch (and the same mined tuples)."""
    extras = extras or {}
    if "sync" in extras:
        with torch.no_grad():
            extras["sync"](sk_loss, pml_loss)
    seed = extras.get("seed")
    if sk_miner is not None:
        check_miner(run, what, sk_miner, pml_miner, emb, labels, seed)
        sk_miner, pml_miner = _make_fresh(sk_miner), _make_fresh(pml_miner)
    values, grads = [], []
    sides = ((sk_loss, sk_miner, extras.get("sk_call", _call), None),
             (pml_loss, pml_miner, extras.get("pml_call", _call), seed))
    for loss, miner, call, miner_seed in sides:
        e = emb.detach().clone().requires_grad_(True)
        value = call(loss, e, labels, _mine(miner, e, labels, miner_seed))
        value.backward()
        values.append(value.item())
        grads.append(e.grad.cpu().numpy())
    run.check_close(f"{what}: loss value vs PML", values[0], values[1], rtol=LOSS_RTOL,
                    atol=LOSS_ATOL)
    run.check_close(f"{what}: gradient vs PML", grads[0], grads[1], rtol=LOSS_RTOL,
                    atol=LOSS_ATOL)


class _PeakMemory:
    """Peak extra memory of a block: CUDA allocator peak, else the rise of peak RSS."""

    def __init__(self, device):
        self.device = device

    def __enter__(self):
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.start = torch.cuda.memory_allocated()
        else:
            Path("/proc/self/clear_refs").write_text("5")
            self.start = _rss_kib("VmRSS")
        return self

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            self.peak = (torch.cuda.max_memory_allocated() - self.start) / 2**20
        else:
            self.peak = (_rss_kib("VmHWM") - self.start) / 2**10


def _fixed_mmap_threshold():
    """Make glibc serve large blocks by mmap and return them at once, so RSS tracks usage.

    By default glibc raises its mmap threshold after the first large free and then keeps
    freed memory in the heap, which would hide later peaks from the RSS high-water mark.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 1 << 16)  # M_MMAP_THRESHOLD: fixed at 64 KiB
        libc.mallopt(-1, 1 << 16)  # M_TRIM_THRESHOLD
    except OSError:
        pass


def _rss_kib(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not found in /proc/self/status")


# Probes (one step each, to extrapolate from) start at this batch size and double.
_SMALLEST_PROBE = 16


class _Budget:
    """The one rule that decides whether a side is run at a batch size.

    Every measurement of a side (a library's loss + miner, or miner alone) is recorded as
    (batch, peak MiB, step seconds). Before a side runs at batch ``B``, its peak memory
    and step time at ``B`` are extrapolated from its two largest measured batches below
    ``B`` along the power law they imply (``peak ~ batch^e``, ``e`` clipped to [1, 4]);
    when fewer than two are known, the side is first probed (one step) at ``B // 2``, and
    so on down to batch 16, each probe under the same rule. A side whose estimate exceeds
    ``memory_mib`` or ``seconds`` is not run: its cells say "n/a — would need ~X, limit
    Y" (PML's lifted structure loss and NT-Xent, which materialise every (positive,
    negative) pair, at batch 1024 on a 23 GB machine; the angular miner's O(batch^3)
    triplets at 1024).
    """

    def __init__(self, memory_mib, seconds):
        self.memory_mib, self.seconds = memory_mib, seconds
        self.points = {}

    def record(self, key, batch, mib, seconds):
        self.points.setdefault(key, {})[batch] = (mib, seconds)

    def refusal(self, key, batch, probe):
        """None if the side may run at ``batch``, else the reason it may not.

        ``probe(b)`` runs one step at batch ``b`` and returns (peak MiB, seconds). With
        fewer than two measured batches below ``batch``, ``batch // 2`` is probed first,
        under this same rule (so a probe never runs where the estimate forbids it).
        """
        half = batch // 2
        if len(self._below(key, batch)) < 2 and half >= _SMALLEST_PROBE:
            if half not in self.points.get(key, {}):
                reason = self.refusal(key, half, probe)
                if reason is not None:  # a larger batch needs more still
                    return reason.replace("~", "more than ~", 1)
                self.record(key, half, *probe(half))
        below = self._below(key, batch)
        if len(below) < 2:
            return None
        (b1, (m1, t1)), (b2, (m2, t2)) = below[-2:]
        mib = _extrapolate(b1, max(m1, 1.0), b2, max(m2, 1.0), batch)
        seconds = _extrapolate(b1, max(t1, 1e-3), b2, max(t2, 1e-3), batch)
        if mib > self.memory_mib:
            return (f"n/a — would need ~{_gib(mib)} of memory, limit {_gib(self.memory_mib)}")
        if seconds > self.seconds:
            return f"n/a — a step would take ~{seconds:.0f} s, limit {self.seconds:.0f} s"
        return None

    def _below(self, key, batch):
        return sorted((b, v) for b, v in self.points.get(key, {}).items() if b < batch)


def _extrapolate(b1, y1, b2, y2, batch):
    """``y2 * (batch / b2)^e`` with ``e`` the exponent of the two points, clipped to [1, 4]."""
    e = min(max(np.log(y2 / y1) / np.log(b2 / b1), 1.0), 4.0)
    return y2 * (batch / b2) ** e


def _gib(mib):
    return f"{mib / 2**10:.1f} GiB" if mib >= 2**10 else f"{mib:.0f} MiB"


def default_memory_limit(device, share=0.5):
    """``share`` of the memory available now, in MiB: free CUDA memory on a GPU, else
    ``MemAvailable`` of ``/proc/meminfo`` (other processes may be using the rest)."""
    if device.type == "cuda":
        return share * torch.cuda.mem_get_info(device)[0] / 2**20
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return share * int(line.split()[1]) / 2**10
    except OSError:
        pass
    import os

    return share * os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**20


def _step(loss, miner, emb, labels, call=_call):
    indices = None if miner is None else miner(emb, labels)
    value = call(loss, emb, labels, indices)
    value.backward()
    emb.grad = None
    return value


def _timed(fn, device, repeats):
    """Best time of ``repeats`` calls of ``fn`` (after one warm-up) and the peak memory of
    one more call.

    On the CPU the time is the process's CPU time, which other jobs sharing the cores do
    not inflate (run with one thread, ``OMP_NUM_THREADS=1``, or it sums the threads); on
    a GPU it is the wall time between synchronisations.
    """
    clock = time.perf_counter if device.type == "cuda" else time.process_time
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = clock()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(clock() - start)
    with _PeakMemory(device) as mem:
        fn()
    return min(times), mem.peak


def _loss_side(make_loss, make_miner, call):
    """``batch -> step``: one forward + backward (mining included) of a fresh loss."""
    def at(emb, labels):
        loss = make_loss().to(emb.device)
        miner = None if make_miner is None else make_miner()
        return lambda: _step(loss, miner, emb, labels, call)

    return at


def _miner_side(make_miner):
    def at(emb, labels):
        miner = make_miner()
        return lambda: miner(emb, labels)

    return at


def _batch(batch_size, dim, per_class, device, seed=0):
    g = torch.Generator().manual_seed(seed)
    emb = torch.randn(batch_size, dim, generator=g).to(device).requires_grad_(True)
    labels = torch.arange(batch_size // per_class).repeat_interleave(per_class).to(device)
    return emb, labels


class _Sides:
    """Measures the two sides of a case under the :class:`_Budget` rule."""

    def __init__(self, budget, dim, per_class, device, repeats):
        self.budget, self.dim, self.per_class = budget, dim, per_class
        self.device, self.repeats = device, repeats

    def batch(self, batch_size, square=False, grad=True):
        emb, labels = _batch(batch_size, self.dim, self.per_class, self.device)
        if square:
            return _square(emb, labels)
        return (emb, labels) if grad else (emb.detach(), labels)

    def refusal(self, key, batch_size, side, square=False, grad=True):
        def probe(b):
            return _timed(side(*self.batch(b, square, grad)), self.device, 1)[::-1]

        return self.budget.refusal(key, batch_size, probe)

    def measure(self, key, side, emb, labels):
        t, mib = _timed(side(emb, labels), self.device, self.repeats)
        self.budget.record(key, len(emb), mib, t)
        return t, mib


def run_loss_benchmark(batch_sizes=(256, 1024), dim=128, per_class=4, repeats=3,
                       device=None, cases=None, miners=True, verbose=True, run=None,
                       miner_cases=None, memory_limit=None, time_limit=300.0, n_classes=None):
    """Time skmetric's and PML's loss + miner pairs and the miners alone in the same run.

    Parameters
    ----------
    batch_sizes : tuple of int, default=(256, 1024)
    dim : int, default=128
    per_class : int, default=4
        Samples per class in a batch.
    repeats : int, default=3
        Timed repetitions (the best is reported) after one warm-up.
    device : str or None
        'cpu', 'cuda', or None for CUDA when available.
    cases : list of str or None
        Subset of the loss + miner pairs (keys of ``_cases()``); None runs all.
    miners : bool, default=True
        Also time the miners alone (second table).
    miner_cases : list of str or None
        Subset of the miners (keys of ``_miner_cases()``); None runs all.
    verbose : bool, default=True
        Print each row as it is measured.
    run : _common.Run or None
        Where the agreement checks are recorded (a fresh one if None).
    memory_limit : float or None
        MiB a side may use at one step: a side estimated to need more (see
        :class:`_Budget`) is not run and its cells say so. None: half of the memory
        available at the start (``default_memory_limit``).
    time_limit : float, default=300
        Seconds one step of a side may take, estimated the same way.
    n_classes : int or None
        Classes of the proxy losses (manifold, P2SGrad); None: enough for the largest
        batch, ``max(batch_sizes) // per_class``.

    Returns
    -------
    rows : list of dict
        One dict per measurement (kind, case, batch, times in ms, ratio, peak MiB, and
        ``skmetric_skip`` / ``pml_skip``: why a side was not run, or None).
    markdown : str
        The two tables as markdown.
    """
    run = run if run is not None else Run("deep_losses", quick=True)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cpu":
        _fixed_mmap_threshold()
    if memory_limit is None:
        memory_limit = default_memory_limit(device)
    run.note(f"memory limit per step {_gib(memory_limit)}, time limit {time_limit:.0f} s "
             "(estimated from smaller batches; see _Budget)")
    sides = _Sides(_Budget(memory_limit, time_limit), dim, per_class, device, repeats)
    rows = []
    all_cases = _cases(dim=dim, n_classes=n_classes or max(batch_sizes) // per_class)
    if cases is not None and set(cases) - set(all_cases):
        raise ValueError(f"unknown cases {sorted(set(cases) - set(all_cases))}; known: "
                         f"{sorted(all_cases)}")
    for batch_size in sorted(batch_sizes):
        for name, (sk_loss, sk_miner, pml_loss, pml_miner, *more) in all_cases.items():
            if cases is not None and name not in cases:
                continue
            extras = more[0] if more else {}
            square = bool(extras.get("square"))
            both = {"skmetric": _loss_side(sk_loss, sk_miner, extras.get("sk_call", _call)),
                    "pml": _loss_side(pml_loss, pml_miner, extras.get("pml_call", _call))}
            skips = {lib: sides.refusal(("loss", name, lib), batch_size, side, square)
                     for lib, side in both.items()}
            e_case, l_case = sides.batch(batch_size, square)
            if name in _RANDOM:
                run.note(f"{name}: random miner, values not compared (timed only)")
            elif not any(skips.values()):
                check_loss(run, f"{name}, batch {len(e_case)}", sk_loss(), _make(sk_miner),
                           pml_loss(), _make(pml_miner), e_case, l_case, extras)
            rows.append(_row("loss", name, len(e_case), sides, both, skips, e_case, l_case,
                             run))
            if verbose:
                print(_format_row(rows[-1]), flush=True)
        for name, (sk_miner, pml_miner, *more) in (_miner_cases() if miners else {}).items():
            if miner_cases is not None and name not in miner_cases:
                continue
            both = {"skmetric": _miner_side(sk_miner), "pml": _miner_side(pml_miner)}
            skips = {lib: sides.refusal(("miner", name, lib), batch_size, side, grad=False)
                     for lib, side in both.items()}
            emb, labels = sides.batch(batch_size, grad=False)
            if not any(skips.values()):
                check_miner(run, f"{name}, batch {batch_size}", sk_miner(), pml_miner(), emb,
                            labels, seed=more[0]["seed"] if more else None)
            rows.append(_row("miner", name, batch_size, sides, both, skips, emb, labels, run))
            if verbose:
                print(_format_row(rows[-1]), flush=True)
    return rows, _markdown(rows, device, dim, per_class)


def _row(kind, name, batch_size, sides, both, skips, emb, labels, run):
    """Measure the sides that may run; the others' cells carry the reason."""
    row = dict(kind=kind, case=name, batch=batch_size, device=str(emb.device))
    for lib, side in both.items():
        if skips[lib]:
            t, mib = float("nan"), float("nan")
            run.note(f"{kind} {name}, batch {batch_size}: {lib} not run ({skips[lib]}); "
                     "its agreement check is not made")
        else:
            t, mib = sides.measure((kind, name, lib), side, emb, labels)
        row |= {f"{lib}_ms": 1e3 * t, f"{lib}_mib": mib, f"{lib}_skip": skips[lib]}
    row["ratio"] = row["skmetric_ms"] / row["pml_ms"]
    return row


def _square(emb, labels):
    """The first k * k rows of the batch, relabelled as k classes of k samples."""
    k = int(len(emb) ** 0.5)
    square = torch.arange(k, device=labels.device).repeat_interleave(k)
    return emb.detach()[: k * k].clone().requires_grad_(True), square


def _make(factory):
    return None if factory is None else factory()


def _make_fresh(miner):
    """A new miner of the same configuration (a seeded one restarts from its seed)."""
    if getattr(miner, "random_state", None) is not None:
        miner._generator = None
    return miner


_HEADER = ("| {title} | batch | skmetric (ms) | PML (ms) | time ratio (skmetric / PML) "
           "| peak MiB skmetric | peak MiB PML |\n|---|---|---|---|---|---|---|")


def _format_row(r):
    """A markdown row; a side that was not run shows why in its time cell."""
    def num(x, fmt):
        return "n/a" if x != x else format(x, fmt)

    def ms(lib):
        return r.get(f"{lib}_skip") or num(r[f"{lib}_ms"], ".1f")

    return (f"| {r['case']} | {r['batch']} | {ms('skmetric')} | {ms('pml')} | "
            f"{num(r['ratio'], '.2f')} | {num(r['skmetric_mib'], '.1f')} | "
            f"{num(r['pml_mib'], '.1f')} |")


def _markdown(rows, device, dim, per_class):
    clock = "wall time" if device.type == "cuda" else "process CPU time"
    out = [f"Device: {device}; dim {dim}; {per_class} samples per class; best {clock} of "
           "the timed repeats; forward + backward, mining included.", ""]
    for kind, title in (("loss", "loss + miner"), ("miner", "miner alone")):
        if not any(r["kind"] == kind for r in rows):
            continue
        out.append(_HEADER.format(title=title))
        out.extend(_format_row(r) for r in rows if r["kind"] == kind)
        out.append("")
    return "\n".join(out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="batch 128, 1 repeat, a few cases")
    parser.add_argument("--device", default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-sizes", default="256,1024",
                        help="comma-separated batch sizes (default 256,1024)")
    parser.add_argument("--cases", default=None,
                        help="loss cases separated by ';' (default: all); 'none' for none")
    parser.add_argument("--miner-cases", default=None,
                        help="miners separated by ';' (default: all); 'none' for none")
    parser.add_argument("--memory-limit", type=float, default=None,
                        help="GiB one step of a side may use; a side estimated to need more "
                             "is not run (default: half of MemAvailable, or of the free "
                             "CUDA memory)")
    parser.add_argument("--time-limit", type=float, default=300.0,
                        help="seconds one step of a side may take, estimated alike "
                             "(default 300)")
    parser.add_argument("--n-classes", type=int, default=None,
                        help="classes of the proxy losses (default: largest batch / 4)")
    parser.add_argument("--merge", nargs="+", default=None, metavar="JSON",
                        help="merge the JSON files of runs of subsets (e.g. one per batch "
                             "size) into one result instead of measuring")
    add_common_args(parser)
    args = parser.parse_args(argv)
    if args.merge:
        return _write_merged(args.merge, args.record)
    run = Run("deep_losses", args)
    sizes = (128,) if args.quick else tuple(int(b) for b in args.batch_sizes.split(","))
    repeats = 1 if args.quick else args.repeats
    # quick: a few cases, one per code path (sync of weights, own call, k x k batch, seed)
    cases = (["contrastive", "triplet + semihard", "multi_similarity + ms miner", "circle",
              "p2sgrad", "vicreg (z2 = rolled batch)", "smooth_ap (k x k batch)",
              "contrastive + uniform_histogram miner"] if args.quick else _names(args.cases))
    # quick: not the angular miner (seconds at batch 128: it keeps O(batch^3) triplets)
    miner_cases = ([name for name in _miner_cases() if name != "angular"] if args.quick
                   else _names(args.miner_cases))
    memory_limit = None if args.memory_limit is None else args.memory_limit * 2**10
    rows, markdown = run_loss_benchmark(sizes, repeats=repeats, device=args.device,
                                        verbose=True, cases=cases, run=run,
                                        miner_cases=miner_cases, memory_limit=memory_limit,
                                        time_limit=args.time_limit,
                                        n_classes=args.n_classes)
    columns = ["case", "batch", "skmetric (ms)", "PML (ms)", "time ratio (skmetric / PML)",
               "peak MiB skmetric", "peak MiB PML"]
    clock = "wall time" if torch.device(rows[0]["device"]).type == "cuda" else "CPU time"
    caption = (f"best {clock} of {repeats} repeats after a warm-up, forward + backward "
               "(mining included); peak memory of one more step")
    for kind, title in (("loss", "loss + miner"), ("miner", "miner alone")):
        run.table(kind, title, columns,
                  [_format_row(r).strip("| ").split(" | ") for r in rows if r["kind"] == kind],
                  caption=caption)
    print()
    print(markdown)
    run.finish()


def merge_runs(paths):
    """One run's data from runs of subsets (e.g. one per batch size, run side by side):
    their checks, notes and table rows, rows ordered by batch and then as the cases are
    listed (a row measured by several runs: the latest run's); the date is the earliest,
    the load averages the highest."""
    runs = [json.loads(Path(p).read_text()) for p in paths]
    runs.sort(key=lambda d: d["date"])
    data = dict(runs[0])
    data["command"] = " + ".join(d["command"] for d in runs) + " (run side by side, merged)"
    for when in ("load_before", "load_after"):
        loads = [d[when] for d in runs if d.get(when)]
        data[when] = [max(v) for v in zip(*loads, strict=True)] if loads else None
    data["checks"] = [c for d in runs for c in d["checks"]]
    data["notes"] = list(dict.fromkeys(n for d in runs for n in d["notes"]))
    order = {"loss": {name: i for i, name in enumerate(_cases())},
             "miner": {name: i for i, name in enumerate(_miner_cases())}}
    tables = {}
    for d in runs:  # a (case, batch) measured twice: the later run's row is kept
        for table in d["tables"]:
            rows = tables.setdefault(table["key"], dict(table, rows={}))["rows"]
            rows.update({(row[0], int(row[1])): row for row in table["rows"]})
    for key, table in tables.items():
        rank = order.get(key, {})
        table["rows"] = sorted(table["rows"].values(),
                               key=lambda row: (int(row[1]), rank.get(row[0], len(rank))))
    data["tables"] = list(tables.values())
    data["condition"] = condition(data)
    return data


def _write_merged(paths, record):
    path = (RESULTS if record else SCRATCH) / "deep_losses.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(merge_runs(paths), indent=1) + "\n")
    print(f"merged {len(paths)} runs into {path.relative_to(ROOT)}")


def _names(option):
    if option is None:
        return None
    return [] if option == "none" else [name.strip() for name in option.split(";")]


if __name__ == "__main__":
    main()
