"""Shared machinery of the benchmark scripts: agreement checks, timing, load, result files.

Every script builds one :class:`Run`, checks that skmetric and each reference agree
(``run.check_close`` / ``run.check_same``) *before* it reports a ratio, adds its tables with
``run.table`` and ends with ``run.finish()``. ``finish`` writes the run as JSON (date,
command, machine, load average before and after, library versions, checks and tables):
to ``benchmarks/results/<script>.json`` with ``--record`` (the file README.md's tables are
generated from, see ``render_readme.py``), else to ``benchmarks/_out/<script>.json``.

A failed agreement check raises :class:`AgreementError`, so no ratio of a run whose two
sides computed different things is ever printed or recorded.
"""

import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
SCRATCH = HERE / "_out"
if str(ROOT) not in sys.path:  # run as `python benchmarks/x.py`: import this checkout
    sys.path.insert(0, str(ROOT))

# A run counts as "loaded" when the 1-minute load average exceeds this share of the cores.
LOADED_SHARE = 0.5
VERSIONED = ("numpy", "scipy", "sklearn", "torch", "faiss", "pytorch_metric_learning",
             "skorch", "skmetric")


class AgreementError(AssertionError):
    """skmetric and a reference disagree: the benchmark's ratios would compare apples and
    oranges, so the run stops before printing them."""


def add_common_args(parser):
    """The options every benchmark shares: ``--quick`` and ``--record``."""
    if not any("--quick" in a.option_strings for a in parser._actions):
        parser.add_argument("--quick", action="store_true",
                            help="a seconds-long smoke run (the test suite runs it)")
    parser.add_argument("--record", action="store_true",
                        help="write the results to benchmarks/results/<script>.json, the data "
                             "README.md's tables are generated from")
    return parser


def load_average():
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:  # not available on this platform
        return None


def machine():
    info = {"platform": platform.platform(), "python": platform.python_version(),
            "nproc": os.cpu_count()}
    if hasattr(os, "sched_getaffinity"):
        info["usable_cpus"] = len(os.sched_getaffinity(0))
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
        info["memory_gib"] = round(mem_kib / 2**20, 1)
    except (OSError, ValueError, IndexError):
        pass
    return info


def versions(modules=VERSIONED):
    """Versions of the given modules that are importable *and already imported* or cheap."""
    import importlib

    out = {}
    for name in modules:
        try:
            module = sys.modules.get(name) or importlib.import_module(name)
        except Exception:  # absent reference library: nothing to record
            continue
        out[name] = getattr(module, "__version__", "?")
    return out


def best_time(fn, repeats=1, warmup=False):
    """Best wall time of ``repeats`` calls of ``fn`` and the last result."""
    if warmup:
        fn()
    best, result = float("inf"), None
    for _ in range(max(repeats, 1)):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


class Run:
    """One invocation of a benchmark: its checks, tables and the conditions it ran under."""

    def __init__(self, name, args=None, quick=False):
        self.name = name
        self.quick = bool(getattr(args, "quick", quick))
        self.record = bool(getattr(args, "record", False))
        self.data = {
            "benchmark": name,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]),
            "quick": self.quick,
            "machine": machine(),
            "load_before": load_average(),
            "checks": [],
            "tables": [],
            "notes": [],
        }

    # -- agreement ------------------------------------------------------------------------
    def check_close(self, what, ours, ref, rtol=1e-5, atol=1e-8):
        """Assert that skmetric's ``ours`` equals the reference's ``ref`` within tolerance."""
        ours = np.asarray(ours, dtype=float)
        ref = np.asarray(ref, dtype=float)
        if ours.shape != ref.shape:
            raise AgreementError(f"{what}: shapes differ, skmetric {ours.shape} vs "
                                 f"reference {ref.shape}")
        diff = float(np.max(np.abs(ours - ref))) if ours.size else 0.0
        ok = bool(np.allclose(ours, ref, rtol=rtol, atol=atol, equal_nan=True))
        self._log_check(what, ok, f"max abs diff {diff:.2e} (rtol={rtol:g}, atol={atol:g})",
                        diff=diff, rtol=rtol, atol=atol)
        return diff

    def check_same(self, what, ours, ref, min_share=1.0):
        """Assert that two integer arrays (neighbour indices, tuples) are equal in at least
        ``min_share`` of their entries (below 1 only where exact ties are expected)."""
        ours, ref = np.asarray(ours), np.asarray(ref)
        if ours.shape != ref.shape:
            raise AgreementError(f"{what}: shapes differ, skmetric {ours.shape} vs "
                                 f"reference {ref.shape}")
        share = float(np.mean(ours == ref)) if ours.size else 1.0
        self._log_check(what, share >= min_share,
                        f"{100 * share:.3f}% equal (required {100 * min_share:.1f}%)",
                        share=share, min_share=min_share)
        return share

    def check(self, what, ok, detail):
        """Record a custom agreement check (e.g. accuracy within a stated number of points)."""
        self._log_check(what, bool(ok), detail)

    def _log_check(self, what, ok, detail, **values):
        self.data["checks"].append({"what": what, "ok": ok, "detail": detail, **values})
        print(f"agreement: {what}: {detail} -> {'ok' if ok else 'FAILED'}", file=sys.stderr,
              flush=True)
        if not ok:
            raise AgreementError(f"{what}: {detail}")

    # -- output ---------------------------------------------------------------------------
    def note(self, text):
        self.data["notes"].append(text)
        print(f"note: {text}", file=sys.stderr, flush=True)

    def table(self, key, title, columns, rows, caption=None):
        """Record a table (rows of cells) and return it as markdown."""
        rows = [[_cell(c) for c in row] for row in rows]
        self.data["tables"].append({"key": key, "title": title, "columns": list(columns),
                                    "rows": rows, "caption": caption})
        return markdown_table(columns, rows)

    def finish(self, modules=VERSIONED):
        """Write the run's JSON file and print where it went and the load it ran under."""
        self.data["load_after"] = load_average()
        self.data["versions"] = versions(modules)
        self.data["condition"] = condition(self.data)
        folder = RESULTS if self.record else SCRATCH
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{self.name}{'-quick' if self.quick else ''}.json"
        path.write_text(json.dumps(self.data, indent=1) + "\n")
        print(f"\n{describe(self.data)}; results in {path.relative_to(ROOT)}", flush=True)
        return path


def _cell(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return value


def markdown_table(columns, rows):
    lines = ["| " + " | ".join(map(str, columns)) + " |",
             "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join("—" if c is None else str(c) for c in row) + " |"
              for row in rows]
    return "\n".join(lines)


def condition(data):
    """"quiet" or "loaded", from the larger 1-minute load average of before and after."""
    loads = [d[0] for d in (data.get("load_before"), data.get("load_after")) if d]
    nproc = data["machine"].get("usable_cpus") or data["machine"].get("nproc") or 1
    if not loads:
        return "load unknown"
    return "loaded" if max(loads) > LOADED_SHARE * nproc else "quiet"


def describe(data):
    """One line saying when, where and under what load a run was measured."""
    m = data["machine"]
    lb, la = data.get("load_before"), data.get("load_after")
    load = (f"load average {lb[0]:.2f} before, {la[0]:.2f} after"
            if lb and la else "load average unknown")
    vers = ", ".join(f"{k} {v}" for k, v in data.get("versions", {}).items())
    return (f"Measured {data['date'][:16].replace('T', ' ')} UTC on "
            f"{m.get('cpu', m['platform'])} ({m.get('usable_cpus', m['nproc'])} usable "
            f"CPUs), {data.get('condition', '?')} ({load}); {vers}")
