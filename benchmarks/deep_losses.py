"""Benchmark skmetric's deep losses and miners against pytorch-metric-learning (PML).

For each loss + miner pair, times one forward + backward pass (mining included) at
batch sizes 256 and 1024 with 128-dimensional embeddings and 4 samples per class, for
skmetric and PML in the same run, and reports the time ratio and the peak memory. A
second table times the triplet miners alone. Peak memory is ``torch.cuda``'s peak
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


# name: (skmetric loss, skmetric miner, PML loss, PML miner); built lazily.
def _cases():
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
    }


def _miner_cases():
    _, M = _pml()
    return {
        f"{kind} (TripletMarginMiner)": (
            lambda kind=kind: sk_miners.TripletMarginMiner(0.2, kind),
            lambda kind=kind: M.TripletMarginMiner(0.2, type_of_triplets=kind))
        for kind in ("all", "hard", "semihard", "easy")
    } | {"batch_hard": (sk_miners.BatchHardMiner, M.BatchHardMiner)}


# PML's lifted structure loss builds a (positive pairs x negative pairs) matrix: about
# 12 GB of float32 at batch 1024, so it is not run there.
_PML_SKIP = {("lifted_structure", 1024)}
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


def check_miner(run, what, sk_miner, pml_miner, emb, labels):
    with torch.no_grad():
        ours, ref = _tuple_rows(sk_miner(emb, labels)), _tuple_rows(pml_miner(emb, labels))
    run.check_same(f"{what}: mined tuples vs PML", ours, ref)


def check_loss(run, what, sk_loss, sk_miner, pml_loss, pml_miner, emb, labels):
    """Same loss value and gradient as PML on the same batch (and the same mined tuples)."""
    if sk_miner is not None:
        check_miner(run, what, sk_miner, pml_miner, emb, labels)
    values, grads = [], []
    for loss, miner in ((sk_loss, sk_miner), (pml_loss, pml_miner)):
        e = emb.detach().clone().requires_grad_(True)
        value = loss(e, labels, None if miner is None else miner(e, labels))
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


def _step(loss, miner, emb, labels):
    indices = None if miner is None else miner(emb, labels)
    value = loss(emb, labels, indices)
    value.backward()
    emb.grad = None
    return value


def _measure(make_loss, make_miner, emb, labels, repeats):
    loss = make_loss().to(emb.device)
    miner = None if make_miner is None else make_miner()
    _step(loss, miner, emb, labels)  # warm-up
    times = []
    for _ in range(repeats):
        if emb.device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        _step(loss, miner, emb, labels)
        if emb.device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    with _PeakMemory(emb.device) as mem:
        _step(loss, miner, emb, labels)
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
                       device=None, cases=None, miners=True, verbose=True, run=None):
    """Time skmetric's and PML's loss + miner pairs and triplet miners in the same run.

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
        Also time the triplet miners alone (second table).
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
    all_cases = _cases()
    for batch_size in batch_sizes:
        emb, labels = _batch(batch_size, dim, per_class, device)
        for name, (sk_loss, sk_miner, pml_loss, pml_miner) in all_cases.items():
            if cases is not None and name not in cases:
                continue
            if name in _RANDOM:
                run.note(f"{name}: random miner, values not compared (timed only)")
            elif (name, batch_size) not in _PML_SKIP:
                check_loss(run, f"{name}, batch {batch_size}", sk_loss(), _make(sk_miner),
                           pml_loss(), _make(pml_miner), emb, labels)
            t_sk, m_sk = _measure(sk_loss, sk_miner, emb, labels, repeats)
            if (name, batch_size) in _PML_SKIP:
                t_pml = m_pml = float("nan")
            else:
                t_pml, m_pml = _measure(pml_loss, pml_miner, emb, labels, repeats)
            rows.append(dict(kind="loss", case=name, batch=batch_size, skmetric_ms=1e3 * t_sk,
                             pml_ms=1e3 * t_pml, ratio=t_sk / t_pml, skmetric_mib=m_sk,
                             pml_mib=m_pml))
            if verbose:
                print(_format_row(rows[-1]), flush=True)
        emb = emb.detach()
        for name, (sk_miner, pml_miner) in (_miner_cases() if miners else {}).items():
            check_miner(run, f"{name}, batch {batch_size}", sk_miner(), pml_miner(), emb,
                        labels)
            t_sk, m_sk = _measure_miner(sk_miner, emb, labels, repeats)
            t_pml, m_pml = _measure_miner(pml_miner, emb, labels, repeats)
            rows.append(dict(kind="miner", case=name, batch=batch_size, skmetric_ms=1e3 * t_sk,
                             pml_ms=1e3 * t_pml, ratio=t_sk / t_pml, skmetric_mib=m_sk,
                             pml_mib=m_pml))
            if verbose:
                print(_format_row(rows[-1]), flush=True)
    return rows, _markdown(rows, device, dim, per_class)


def _make(factory):
    return None if factory is None else factory()


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
    for kind, title in (("loss", "loss + miner"), ("miner", "triplet miner alone")):
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
    cases = (["contrastive", "triplet + semihard", "multi_similarity + ms miner", "circle"]
             if args.quick else None)
    rows, markdown = run_loss_benchmark(sizes, repeats=repeats, device=args.device,
                                        verbose=True, cases=cases, run=run)
    columns = ["case", "batch", "skmetric (ms)", "PML (ms)", "time ratio (skmetric / PML)",
               "peak MiB skmetric", "peak MiB PML"]
    for kind, title in (("loss", "loss + miner"), ("miner", "triplet miner alone")):
        run.table(kind, title, columns,
                  [_format_row(r).strip("| ").split(" | ") for r in rows if r["kind"] == kind])
    print()
    print(markdown)
    run.finish()


if __name__ == "__main__":
    main()
