"""Mutation-test one module of skmetric's numerical core with mutmut 3.

Usage (from the repository root, with the dev extra installed)::

    python scripts/mutation.py skmetric/deep/miners/batch_hard.py
    python scripts/mutation.py skmetric/deep/losses/contrastive.py --timeout 900
    python scripts/mutation.py skmetric/metrics/_ranking.py --max-children 2 --show-survivors

mutmut reads one configuration per directory (``[tool.mutmut]`` in pyproject.toml), so a run
on one module works in a scratch copy of the repository (``--workdir``, default
``/tmp/skmetric-mutation/<module>``) whose pyproject.toml mutates only MODULE and runs only
the test files that cover it (``TESTS`` below, plus tests/test_mutation_kills.py). The copy is
kept between runs so that mutmut's cache makes a re-run cheap; ``--fresh`` starts over (do
that after adding tests: mutmut does not re-run mutants it already marked killed or
survived). The summary (mutants, killed, survived, timeouts, score, date) is printed and
written to ``<workdir>/summary.json``; ``tests/README.md`` records the scores.
"""

import argparse
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# The numerical core and the test files that exercise each part of it.
TESTS = {
    "skmetric/deep/miners/": ["tests/test_deep_miners.py"],
    "skmetric/deep/losses/": ["tests/test_deep_losses.py", "tests/test_deep_proxy_losses.py"],
    "skmetric/metrics/": ["tests/test_metrics.py", "tests/test_metrics_package.py"],
    "skmetric/neighbors.py": ["tests/test_neighbors.py"],
    "skmetric/_compute/": ["tests/test_neighbors.py", "tests/test_distances.py",
                           "tests/test_compute_engine.py"],
    "skmetric/supervised/_nca.py": ["tests/test_nca.py"],
    "skmetric/supervised/_lmnn.py": ["tests/test_lmnn.py"],
}
KILL_TESTS = "tests/test_mutation_kills.py"
PYTEST_ARGS = ["-x", "-q", "-p", "no:randomly", "-p", "no:cacheprovider", "-o", "addopts="]


def tests_for(module):
    """Test files that cover ``module`` (a path relative to the repository root)."""
    for prefix, tests in TESTS.items():
        if module == prefix or (prefix.endswith("/") and module.startswith(prefix)):
            extra = [KILL_TESTS] if (ROOT / KILL_TESTS).exists() else []
            return tests + extra
    raise SystemExit(
        f"{module} is not in the mutation-tested core; choose a file under one of "
        f"{', '.join(TESTS)} (or add its tests to TESTS in scripts/mutation.py)."
    )


def prepare(workdir, module, tests, fresh):
    if fresh and workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    for name in ("skmetric", "tests"):
        shutil.rmtree(workdir / name, ignore_errors=True)
        shutil.copytree(ROOT / name, workdir / name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    text = (ROOT / "pyproject.toml").read_text()
    text = re.sub(r"\n\[tool\.mutmut\].*?(?=\n\[|\Z)", "", text, flags=re.S)
    text += (
        "\n[tool.mutmut]\n"
        'source_paths = ["skmetric"]\n'
        f"only_mutate = [{json.dumps(module)}]\n"
        f"pytest_add_cli_args_test_selection = {json.dumps(tests)}\n"
        f"pytest_add_cli_args = {json.dumps(PYTEST_ARGS)}\n"
        "mutate_only_covered_lines = false\n"
        'process_isolation = "fork"\n'
    )
    (workdir / "pyproject.toml").write_text(text)


def summarise(workdir, module, elapsed):
    env = dict(os.environ)
    subprocess.run([sys.executable, "-m", "mutmut", "export-cicd-stats"], cwd=workdir,
                   env=env, check=True, capture_output=True)
    stats = json.loads((workdir / "mutants" / "mutmut-cicd-stats.json").read_text())
    killed = stats["killed"] + stats.get("timeout", 0)
    tested = killed + stats["survived"] + stats.get("suspicious", 0)
    if tested + stats.get("no_tests", 0) == 0:
        raise SystemExit("mutmut checked no mutant: the clean test run probably failed "
                         f"(see the output above, or run `mutmut run` in {workdir})")
    summary = {
        "module": module,
        "date": datetime.date.today().isoformat(),
        "mutants": stats["total"],
        "killed": stats["killed"],
        "timeout": stats.get("timeout", 0),
        "survived": stats["survived"],
        "no_tests": stats.get("no_tests", 0),
        "not_checked": stats.get("not_checked", 0),
        "suspicious": stats.get("suspicious", 0),
        "score": round(killed / tested, 4) if tested else None,
        "seconds": round(elapsed, 1),
        "raw": stats,
    }
    (workdir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("module", help="e.g. skmetric/deep/miners/batch_hard.py")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--max-children", type=int, default=1,
                        help="parallel mutant runs (default 1: the machine is shared)")
    parser.add_argument("--timeout", type=int, default=1800,
                        help="seconds for the whole run; unfinished mutants stay 'not checked'")
    parser.add_argument("--fresh", action="store_true", help="discard cached results first")
    parser.add_argument("--show-survivors", action="store_true",
                        help="print the diff of every surviving mutant")
    parser.add_argument("--report", action="store_true",
                        help="print the markdown row of the last run's summary.json and exit")
    args = parser.parse_args(argv)
    if args.report:
        slug = Path(args.module).as_posix().replace("/", "_").removesuffix(".py")
        path = (args.workdir or Path("/tmp/skmetric-mutation") / slug) / "summary.json"
        d = json.loads(path.read_text())
        print(f"| `{d['module']}` | {d['date']} | {d['mutants']} | {d['killed'] + d['timeout']} "
              f"| {d['survived']} | {d['not_checked']} | {100 * d['score']:.1f} % |")
        return

    module = Path(args.module).as_posix()
    if not (ROOT / module).is_file():
        raise SystemExit(f"{module} is not a file under {ROOT}; pass a path like "
                         "skmetric/deep/miners/batch_hard.py")
    tests = tests_for(module)
    slug = module.replace("/", "_").removesuffix(".py")
    workdir = args.workdir or Path("/tmp/skmetric-mutation") / slug
    prepare(workdir, module, tests, args.fresh)

    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               OPENBLAS_NUM_THREADS="1")
    start = datetime.datetime.now()
    try:
        subprocess.run([sys.executable, "-m", "mutmut", "run",
                        "--max-children", str(args.max_children)],
                       cwd=workdir, env=env, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        print(f"mutmut stopped after {args.timeout} s; the summary counts what finished")
    elapsed = (datetime.datetime.now() - start).total_seconds()
    summary = summarise(workdir, module, elapsed)
    print(json.dumps({k: v for k, v in summary.items() if k != "raw"}, indent=2), flush=True)
    if args.show_survivors:
        listing = subprocess.run([sys.executable, "-m", "mutmut", "results"], cwd=workdir,
                                 env=env, capture_output=True, text=True).stdout
        for line in listing.splitlines():
            name = line.strip().split(":")[0]
            if name and "survived" in line:
                subprocess.run([sys.executable, "-m", "mutmut", "show", name], cwd=workdir,
                               env=env)


if __name__ == "__main__":
    main()
