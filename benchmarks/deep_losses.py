"""Benchmark skmetric's deep losses and miners against pytorch-metric-learning (PML).

For each loss + miner pair, times one forward + backward pass (mining included) at
batch sizes 256 and 1024 with 128-dimensional embeddings and 4 samples per class, for
skmetric and PML in the same run, and reports the time ratio and the peak memory. A
second table times the miners alone. Peak memory is ``torch.cuda``'s peak
allocation on a GPU; on the CPU it is the rise of the process's peak resident set size
(Linux ``VmHWM``, reset through ``/proc/self/clear_refs``).

Before any case is timed, its loss value and gradient are asserted equal to PML's on the
same batch (``LOSS_RTOL``), and every miner's tuples are asserted to be the same set as
PML's; cases with a random miner (distance-weighted sampling draws differently in the two
libraries) are timed without that check, and the table says so.

Run ``.venv/bin/python benchmarks/deep_losses.py [--quick] [--device cuda] [--record]``;
``benchmarks/deep.py`` may call :func:`run_loss_benchmark`.
"""

import argparse
import ctypes
import gc
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Run, add_common_args  # noqa: E402

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


# PML's lifted structure loss builds a (positive pairs x negative pairs) matrix: about
# 12 GB of float32 at batch 1024, so it is not run there.
_PML_SKIP = {("lifted_structure", 1024)}
# The angular miner keeps every triplet within its angle, O(batch^3) of them (47 616 at
# batch 128 on random embeddings, 2.4 s in either library): not run at batch 1024.
_MINER_SKIP = {("angular", 1024)}
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


def _step(loss, miner, emb, labels, call=_call):
    indices = None if miner is None else miner(emb, labels)
    value = call(loss, emb, labels, indices)
    value.backward()
    emb.grad = None
    return value


def _measure(make_loss, make_miner, emb, labels, repeats, call=_call):
    loss = make_loss().to(emb.device)
    miner = None if make_miner is None else make_miner()
    _step(loss, miner, emb, labels, call)  # warm-up
    times = []
    for _ in range(repeats):
        if emb.device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        _step(loss, miner, emb, labels, call)
        if emb.device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    with _PeakMemory(emb.device) as mem:
        _step(loss, miner, emb, labels, call)
    return min(times), mem.peak


def _measure_miner(make_miner, emb, labels, repeats):
    miner = make_miner()
    miner(emb, labels)
    times = []
    for _ in range(repeats):
        if emb.device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        miner(emb, labels)
        if emb.device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    with _PeakMemory(emb.device) as mem:
        miner(emb, labels)
    return min(times), mem.peak


def _batch(batch_size, dim, per_class, device, seed=0):
    g = torch.Generator().manual_seed(seed)
    emb = torch.randn(batch_size, dim, generator=g).to(device).requires_grad_(True)
    labels = torch.arange(batch_size // per_class).repeat_interleave(per_class).to(device)
    return emb, labels


def run_loss_benchmark(batch_sizes=(256, 1024), dim=128, per_class=4, repeats=3,
                       device=None, cases=None, miners=True, verbose=True, run=None,
                       miner_cases=None):
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

    Returns
    -------
    rows : list of dict
        One dict per measurement (kind, case, batch, times in ms, ratio, peak MiB).
    markdown : str
        The two tables as markdown.
    """
    run = run if run is not None else Run("deep_losses", quick=True)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cpu":
        _fixed_mmap_threshold()
    rows = []
    all_cases = _cases(dim=dim, n_classes=max(batch_sizes) // per_class)
    if cases is not None and set(cases) - set(all_cases):
        raise ValueError(f"unknown cases {sorted(set(cases) - set(all_cases))}; known: "
                         f"{sorted(all_cases)}")
    for batch_size in batch_sizes:
        emb, labels = _batch(batch_size, dim, per_class, device)
        for name, (sk_loss, sk_miner, pml_loss, pml_miner, *more) in all_cases.items():
            if cases is not None and name not in cases:
                continue
            extras = more[0] if more else {}
            e_case, l_case = (_square(emb, labels) if extras.get("square")
                              else (emb, labels))
            if name in _RANDOM:
                run.note(f"{name}: random miner, values not compared (timed only)")
            elif (name, batch_size) not in _PML_SKIP:
                check_loss(run, f"{name}, batch {len(e_case)}", sk_loss(), _make(sk_miner),
                           pml_loss(), _make(pml_miner), e_case, l_case, extras)
            t_sk, m_sk = _measure(sk_loss, sk_miner, e_case, l_case, repeats,
                                  extras.get("sk_call", _call))
            if (name, batch_size) in _PML_SKIP:
                t_pml = m_pml = float("nan")
            else:
                t_pml, m_pml = _measure(pml_loss, pml_miner, e_case, l_case, repeats,
                                        extras.get("pml_call", _call))
            rows.append(dict(kind="loss", case=name, batch=len(e_case), skmetric_ms=1e3 * t_sk,
                             pml_ms=1e3 * t_pml, ratio=t_sk / t_pml, skmetric_mib=m_sk,
                             pml_mib=m_pml))
            if verbose:
                print(_format_row(rows[-1]), flush=True)
        emb = emb.detach()
        for name, (sk_miner, pml_miner, *more) in (_miner_cases() if miners else {}).items():
            if miner_cases is not None and name not in miner_cases:
                continue
            if (name, batch_size) in _MINER_SKIP:
                run.note(f"{name} miner: not run at batch {batch_size} (see _MINER_SKIP)")
                continue
            check_miner(run, f"{name}, batch {batch_size}", sk_miner(), pml_miner(), emb,
                        labels, seed=more[0]["seed"] if more else None)
            t_sk, m_sk = _measure_miner(sk_miner, emb, labels, repeats)
            t_pml, m_pml = _measure_miner(pml_miner, emb, labels, repeats)
            rows.append(dict(kind="miner", case=name, batch=batch_size, skmetric_ms=1e3 * t_sk,
                             pml_ms=1e3 * t_pml, ratio=t_sk / t_pml, skmetric_mib=m_sk,
                             pml_mib=m_pml))
            if verbose:
                print(_format_row(rows[-1]), flush=True)
    return rows, _markdown(rows, device, dim, per_class)


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
    def num(x, fmt):
        return "n/a" if x != x else format(x, fmt)

    return (f"| {r['case']} | {r['batch']} | {num(r['skmetric_ms'], '.1f')} | "
            f"{num(r['pml_ms'], '.1f')} | {num(r['ratio'], '.2f')} | "
            f"{num(r['skmetric_mib'], '.1f')} | {num(r['pml_mib'], '.1f')} |")


def _markdown(rows, device, dim, per_class):
    out = [f"Device: {device}; dim {dim}; {per_class} samples per class; best of the "
           "timed repeats; forward + backward, mining included.", ""]
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
    add_common_args(parser)
    args = parser.parse_args(argv)
    run = Run("deep_losses", args)
    sizes = (128,) if args.quick else (256, 1024)
    repeats = 1 if args.quick else args.repeats
    # quick: a few cases, one per code path (sync of weights, own call, k x k batch, seed)
    cases = (["contrastive", "triplet + semihard", "multi_similarity + ms miner", "circle",
              "p2sgrad", "vicreg (z2 = rolled batch)", "smooth_ap (k x k batch)",
              "contrastive + uniform_histogram miner"] if args.quick else None)
    # quick: not the angular miner (seconds at batch 128: it keeps O(batch^3) triplets)
    miner_cases = ([name for name in _miner_cases() if name != "angular"] if args.quick
                   else None)
    rows, markdown = run_loss_benchmark(sizes, repeats=repeats, device=args.device,
                                        verbose=True, cases=cases, run=run,
                                        miner_cases=miner_cases)
    columns = ["case", "batch", "skmetric (ms)", "PML (ms)", "time ratio (skmetric / PML)",
               "peak MiB skmetric", "peak MiB PML"]
    for kind, title in (("loss", "loss + miner"), ("miner", "miner alone")):
        run.table(kind, title, columns,
                  [_format_row(r).strip("| ").split(" | ") for r in rows if r["kind"] == kind])
    print()
    print(markdown)
    run.finish()


if __name__ == "__main__":
    main()
