"""Mutation-test one module of skmetric's numerical core with mutmut 3.

Usage (from the repository root, with the dev extra installed)::

    python scripts/mutation.py skmetric/deep/miners/batch_hard.py
    python scripts/mutation.py skmetric/deep/losses/contrastive.py --timeout 900
    python scripts/mutation.py skmetric/metrics/_ranking.py --max-children 2 --show-survivors

mutmut reads one configuration per directory (``[tool.mutmut]`` in pyproject.toml), so a run
on one module works in a scratch copy of the repository (``--workdir``, default
``/tmp/skmetric-mutation/<module>``) whose pyproject.toml mutates only MODULE and runs only
the test files that cover it (``TESTS`` below). The copy is
kept between runs so that mutmut's cache makes a re-run cheap; ``--fresh`` starts over (do
that after adding tests: mutmut does not re-run mutants it already marked killed or
survived). The summary (mutants, killed, survived, timeouts, score, date) is printed and
written to ``<workdir>/summary.json``; ``tests/README.md`` records the scores.

``--functions NAME ...`` restricts the run to the mutants of those functions (module-level
names, or ``Class.method``), for large modules whose numerical core is a few functions::

    python scripts/mutation.py skmetric/supervised/_lmnn.py \
        --functions _lmnn_loss_grad _find_impostors
"""

import argparse
import ast
import datetime
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# The numerical core and the test files that exercise each part of it: a module's own
# entry wins, else the longest folder prefix that matches it. tests/test_mutation_kills*.py
# hold the tests written to kill the mutants that survived the module's own tests (see
# tests/README.md).
_PAIR = "tests/test_deep_losses.py"
_PROXY = "tests/test_deep_proxy_losses.py"
_REDUCERS = "tests/test_deep_reducers_all.py"  # every loss's reducer= path against PML
_LOSS_KILLS = "tests/test_mutation_kills_losses.py"
_LOSS_KILLS2 = "tests/test_mutation_kills_losses2.py"
_CORE_KILLS = "tests/test_mutation_kills_core.py"  # neighbors.py and the engine
_ENGINE_KILLS2 = "tests/test_mutation_kills_engine2.py"  # _engine.py (sixth session)
_LOSS_KILLS4 = "tests/test_mutation_kills_losses4.py"  # the #17 losses (fourth session)
_LOSS_KILLS3 = "tests/test_mutation_kills_losses3.py"
_LOSS_KILLS5 = "tests/test_mutation_kills_losses5.py"  # _proxy_base, _margin_softmax (fifth)
_LOSS_KILLS6 = "tests/test_mutation_kills_losses6.py"  # proxy anchor, wrappers (sixth)
_KNN_KILLS2 = "tests/test_mutation_kills_knn2.py"  # _knn.py, neighbors.py, metrics (sixth)
# The margin-softmax, proxy and lifted losses and the shared machinery (fourth session).
_BATCH_0 = ["lifted_structure", "arcface", "_margin_softmax", "l2_softmax", "normface",
            "large_margin_softmax", "soft_triple", "circle_class", "_proxy_base", "_terms",
            "_base"]
_BATCH_5 = ("_proxy_base", "_margin_softmax")  # also mapped to _LOSS_KILLS5
_BATCH_A = ["angular", "dynamic_soft_margin", "fast_ap", "histogram", "instance",
            "intra_pair_variance", "manifold", "nca", "ntxent"]
_BATCH_B = ["pnp", "ranked_list", "p2sgrad", "snr_contrastive", "smooth_ap", "supcon",
            "threshold_consistent_margin", "tuplet_margin", "vicreg"]
TESTS = {
    **{f"skmetric/deep/losses/{m}.py": [_PAIR, _PROXY, _REDUCERS, "tests/test_mutation_kills.py",
                                          _LOSS_KILLS, _LOSS_KILLS2, _LOSS_KILLS3,
                                          "tests/test_solver_references.py",
                                          "tests/test_deep_regularizers.py"]
                                         + ([_LOSS_KILLS5] if m in _BATCH_5 else [])
       for m in _BATCH_0},
    **{f"skmetric/deep/losses/{m}.py": ["tests/test_deep_losses_batch_a.py", _REDUCERS, _LOSS_KILLS,
                                          _LOSS_KILLS2, _LOSS_KILLS4, _LOSS_KILLS6]
       for m in _BATCH_A},
    **{f"skmetric/deep/losses/{m}.py": ["tests/test_deep_losses_batch_b.py", _REDUCERS, _LOSS_KILLS,
                                          _LOSS_KILLS2, _LOSS_KILLS4, _LOSS_KILLS6]
       for m in _BATCH_B},
    # The wrappers: their own tests compare them with PML's wrappers.
    **{f"skmetric/deep/losses/{m}.py": ["tests/test_deep_wrappers.py", _LOSS_KILLS6]
       for m in ("cross_batch_memory", "multiple_losses", "self_supervised")},
    "skmetric/deep/miners/": ["tests/test_deep_miners.py", "tests/test_deep_miners_batch_b.py",
                              "tests/test_mutation_kills.py",
                              "tests/test_mutation_kills_miners.py",
                              "tests/test_mutation_kills_miners2.py",
                              "tests/test_mutation_kills_miners3.py"],
    "skmetric/deep/losses/": [_PAIR, _PROXY, _REDUCERS, "tests/test_mutation_kills.py",
                              _LOSS_KILLS,
                              _LOSS_KILLS2, _LOSS_KILLS6],
    "skmetric/metrics/": ["tests/test_metrics.py", "tests/test_metrics_package.py",
                          "tests/test_mutation_kills_metrics.py",
                          "tests/test_mutation_kills_metrics2.py", _KNN_KILLS2],
    # The engine and its helpers: every search and distance test calls them.
    **{f"skmetric/_compute/{m}.py": ["tests/test_neighbors.py", "tests/test_distances.py",
                                     "tests/test_compute_engine.py",
                                     "tests/test_robustness_engine.py", "tests/test_knn_topk.py",
                                     "tests/test_mutation_kills_engine.py", _CORE_KILLS]
                                    + ([_ENGINE_KILLS2] if m == "_engine" else [])
       for m in ("_engine", "_blocks", "_numerics", "_arrays")},
    "skmetric/_compute/_knn.py": ["tests/test_neighbors.py", "tests/test_distances.py",
                                  "tests/test_compute_engine.py",
                                  "tests/test_robustness_engine.py",
                                  "tests/test_mutation_kills_engine.py",
                                  "tests/test_mutation_kills_knn.py", _KNN_KILLS2],
    "skmetric/_compute/": ["tests/test_neighbors.py", "tests/test_distances.py",
                           "tests/test_compute_engine.py", "tests/test_robustness_engine.py",
                           "tests/test_mutation_kills_engine.py"],
    "skmetric/neighbors.py": ["tests/test_neighbors.py", "tests/test_robustness_engine.py",
                              "tests/test_mutation_kills_engine.py", _CORE_KILLS, _KNN_KILLS2],
    "skmetric/supervised/_nca.py": ["tests/test_nca.py", "tests/test_mutation_kills.py",
                                    "tests/test_mutation_kills_nca.py",
                                    "tests/test_mutation_kills_lmnn3.py"],  # its stopping test
    "skmetric/supervised/_lmnn.py": ["tests/test_lmnn.py", "tests/test_mutation_kills_lmnn.py",
                                     "tests/test_mutation_kills_lmnn2.py",
                                     "tests/test_mutation_kills_lmnn3.py"],
}
# The sixth session's kill tests of the engine's helpers (_arrays, _blocks, _numerics).
for _m in ("_arrays", "_blocks", "_numerics"):
    TESTS[f"skmetric/_compute/{_m}.py"] = [*TESTS[f"skmetric/_compute/{_m}.py"],
                                           "tests/test_mutation_kills_arrays.py"]
# reducers.py and _options.py (seventh session): the reducers against PML's alone and in the
# losses, every loss's reducer= path, the terms a reducer receives, the options' checks.
_REDUCER_KILLS = "tests/test_mutation_kills_reducers.py"
TESTS["skmetric/deep/losses/reducers.py"] = ["tests/test_deep_regularizers.py", _REDUCERS,
                                             _LOSS_KILLS2, _REDUCER_KILLS]
TESTS["skmetric/deep/losses/_options.py"] = ["tests/test_deep_regularizers.py", _REDUCERS,
                                             _LOSS_KILLS2, _LOSS_KILLS5, _REDUCER_KILLS]
# deep/losses/regularizers.py and metrics/_common.py (seventh session): the regularizers'
# tests against PML, and the retrieval/clustering metrics' tests of k and labels checks.
TESTS["skmetric/deep/losses/regularizers.py"] = [
    "tests/test_deep_regularizers.py", "tests/test_mutation_kills_regularizers.py"]
TESTS["skmetric/metrics/_common.py"] = [
    "tests/test_metrics.py", "tests/test_mutation_kills_metrics.py",
    "tests/test_mutation_kills_metrics2.py", _KNN_KILLS2,
    "tests/test_mutation_kills_regularizers.py"]
# The learners' compute layer (seventh session): the L-BFGS driver (_lbfgs.py) and the backend
# resolver (_backend.py) are called by test_compute_backend.py directly and by every MLKR fit;
# the parameter constraints (_params.py) by every public distance, search and metric.
_COMPUTE3_KILLS = "tests/test_mutation_kills_compute3.py"
for _m in ("_lbfgs", "_backend"):
    TESTS[f"skmetric/_compute/{_m}.py"] = ["tests/test_compute_backend.py",
                                           "tests/test_mlkr.py", _COMPUTE3_KILLS]
TESTS["skmetric/_compute/_params.py"] = ["tests/test_distances.py",
                                         "tests/test_mutation_kills_engine.py",
                                         "tests/test_mutation_kills_metrics.py", _COMPUTE3_KILLS]
# _compute/_inner_cv.py and _compute/_toward_prior.py (seventh session): the inner CV of
# prior_strength='auto' and the paths toward the prior, covered by the 'auto' tests of
# NCA, MLKR, LMNN, LFDA and ITML (all fast: wine-size fits), not by the engine's tests.
_AUTO_TESTS = ["tests/test_auto_cost.py", "tests/test_lfda_auto_rule.py",
               "tests/test_regularization_others.py",
               "tests/test_mutation_kills_inner_cv.py"]
TESTS["skmetric/_compute/_inner_cv.py"] = [*_AUTO_TESTS, "tests/test_regularization_nca.py",
                                           "tests/test_nca_auto_rule.py"]
TESTS["skmetric/_compute/_toward_prior.py"] = _AUTO_TESTS
# _knn_topk.py (the accelerators' exact k-NN, forced on the CPU by its tests) and _faiss.py
# (backend='faiss'): the files that call them (seventh session).
_TOPK_KILLS = "tests/test_mutation_kills_topk.py"
TESTS["skmetric/_compute/_knn_topk.py"] = ["tests/test_knn_topk.py",
                                           "tests/test_mutation_kills_engine2.py", _TOPK_KILLS]
TESTS["skmetric/_compute/_faiss.py"] = ["tests/test_neighbors.py",
                                        "tests/test_robustness_engine.py",
                                        "tests/test_mutation_kills_engine2.py", _KNN_KILLS2,
                                        _TOPK_KILLS]
# The miner base class (deep/miners/_base.py) and the two registries (get_loss in
# deep/losses/__init__.py, get_miner in deep/miners/__init__.py), seventh session: the miners'
# tests call BaseMiner's __init__/__call__/matrix_and_masks; the constructor tests and the
# loss/miner tests look names up.
_REGISTRY_KILLS = "tests/test_mutation_kills_registry.py"
TESTS["skmetric/deep/miners/_base.py"] = ["tests/test_deep_miners.py",
                                          "tests/test_deep_miners_batch_b.py", _REGISTRY_KILLS]
TESTS["skmetric/deep/losses/__init__.py"] = ["tests/test_deep_constructor.py",
                                             "tests/test_deep_losses.py", _REGISTRY_KILLS]
TESTS["skmetric/deep/miners/__init__.py"] = ["tests/test_deep_constructor.py",
                                             "tests/test_deep_miners.py", _REGISTRY_KILLS]
# NCA's prior_strength code (_strength, _fit_samples, _fit_lbfgs; seventh session): the
# penalised fits and the 'auto' rule are exercised by the regularisation and auto-rule tests.
TESTS["skmetric/supervised/_nca.py"] = [*TESTS["skmetric/supervised/_nca.py"],
                                        "tests/test_regularization_nca.py",
                                        "tests/test_nca_auto_rule.py",
                                        "tests/test_mutation_kills_nca_prior.py"]
PYTEST_ARGS = ["-x", "-q", "-p", "no:randomly", "-p", "no:cacheprovider", "-o", "addopts="]


def tests_for(module):
    """Test files that cover ``module`` (a path relative to the repository root)."""
    # The module's own entry, else the longest folder prefix (an entry added after a
    # folder's must not lose to it).
    matches = [p for p in TESTS if module == p or (p.endswith("/") and module.startswith(p))]
    if matches:
        best = module if module in TESTS else max(matches, key=len)
        return [t for t in TESTS[best] if (ROOT / t).exists()]
    raise SystemExit(
        f"{module} is not in the mutation-tested core; choose a file under one of "
        f"{', '.join(sorted({p.rsplit('/', 1)[0] + '/' for p in TESTS}))} (or add its "
        "tests to TESTS in scripts/mutation.py)."
    )


def prepare(workdir, modules, tests, fresh):
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
        f"only_mutate = {json.dumps(modules)}\n"
        f"pytest_add_cli_args_test_selection = {json.dumps(tests)}\n"
        f"pytest_add_cli_args = {json.dumps(PYTEST_ARGS)}\n"
        "mutate_only_covered_lines = false\n"
        'process_isolation = "fork"\n'
    )
    (workdir / "pyproject.toml").write_text(text)
    for module in modules:
        path = workdir / module
        path.write_text(undecorate(path.read_text()))


def undecorate(source):
    """``source`` with each decorated module-level function written as a plain ``def``
    followed by ``name = dec1(dec2(name))``: the same module, but mutmut 3 skips decorated
    functions (it cannot put its trampoline under their decorators), and the public
    functions of ``skmetric.metrics`` (``validate_params``, docstring filling) would
    otherwise never be mutated."""
    lines = source.splitlines(keepends=True)
    tree = ast.parse(source)
    funcs = [n for n in tree.body
             if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.decorator_list]
    for node in reversed(funcs):  # bottom-up: earlier line numbers stay valid
        applied = node.name
        for dec in reversed(node.decorator_list):
            applied = f"{ast.get_source_segment(source, dec)}({applied})"
        first = min(d.lineno for d in node.decorator_list) - 1
        lines[node.end_lineno:node.end_lineno] = [f"{node.name} = {applied}\n"]
        del lines[first:node.lineno - 1]
    return "".join(lines)


def mutant_globs(module, functions):
    """mutmut's names for the mutants of ``functions`` in ``module`` (fnmatch patterns)."""
    dotted = module.removesuffix(".py").replace("/", ".")
    globs = []
    for name in functions:
        cls, _, meth = name.rpartition(".")
        mangled = f"x\u01c1{cls}\u01c1{meth}" if cls else f"x_{name}"
        globs.append(f"{dotted}.{mangled}__mutmut_*")
    return globs


def unchecked(workdir, module, globs):
    """Names of the mutants of ``module`` (matching ``globs``) with no result yet."""
    meta = json.loads((workdir / "mutants" / (module + ".meta")).read_text())
    return [k for k, v in meta["exit_code_by_key"].items() if v is None
            and (not globs or any(fnmatch.fnmatch(k, g) for g in globs))]


def summarise(workdir, module, elapsed, globs=None):
    """Counts of the mutants of ``module`` (those matching ``globs`` when given) by status.

    ``survived`` counts every survivor, those no test covers (mutmut's "no tests") among
    them: they survive too, and count against the score. ``survived_no_tests`` says how many
    of the survivors no test covers.
    """
    meta = json.loads((workdir / "mutants" / (module + ".meta")).read_text())
    codes = {k: v for k, v in meta["exit_code_by_key"].items()
             if not globs or any(fnmatch.fnmatch(k, g) for g in globs)}
    status = {1: "killed", 3: "killed", 0: "survived", 5: "no_tests", 33: "no_tests",
              None: "not_checked", 34: "skipped", 36: "timeout", -24: "timeout",
              24: "timeout", 152: "timeout", 255: "timeout", -9: "timeout"}
    counts = dict.fromkeys(["killed", "timeout", "survived", "no_tests", "not_checked",
                            "skipped", "suspicious"], 0)
    for code in codes.values():
        counts[status.get(code, "suspicious")] += 1
    no_tests = counts.pop("no_tests")
    counts["survived"] += no_tests
    summary = {
        "module": module,
        "functions": globs or "all",
        "date": datetime.date.today().isoformat(),
        "mutants": len(codes),
        **counts,
        "survived_no_tests": no_tests,
        "score": _score(counts),
        "seconds": round(elapsed, 1),
        "survivors": sorted(k for k, v in codes.items()
                            if status.get(v) in ("survived", "no_tests")),
    }
    return summary


def _score(counts):
    """killed / (killed + survived), timeouts counting as killed (None when nothing ran)."""
    killed = counts["killed"] + counts["timeout"]
    tested = killed + counts["survived"] + counts["suspicious"]
    return round(killed / tested, 4) if tested else None


def upgrade(d):
    """``d`` in today's meaning if an older script wrote it (today's: returned as it is).

    Older summaries kept mutmut's "no tests" mutants out of ``survived``, in ``no_tests``: a
    first run's survivors are ``survived + no_tests``. A merged re-check's ``survived`` is
    kept: it holds the re-check's uncovered survivors (seventh session), or, earlier, the
    uncovered mutants were left out of its score as tests/README.md recorded it; how many
    of its survivors no test covers is then unknown (None).
    """
    if "survived_no_tests" in d:
        return d
    d = dict(d)
    no_tests = d.pop("no_tests", 0)
    if "rechecked" in d:
        return dict(d, survived_no_tests=None)
    return dict(d, survived=d["survived"] + no_tests, survived_no_tests=no_tests)


def merge(before, recheck):
    """The module's summary after a re-check of ``before``'s survivors (``recheck``).

    Tests are only ever added, so ``before``'s kills stay; its survivors are replaced by
    what the re-check made of them.
    """
    before = upgrade(before)
    out = dict(before, date=recheck["date"], seconds=recheck["seconds"],
               survivors=recheck["survivors"], rechecked=len(before["survivors"]),
               survived=recheck["survived"], survived_no_tests=recheck["survived_no_tests"])
    for key in ("killed", "timeout", "suspicious", "not_checked"):
        out[key] = before[key] + recheck[key]
    out["score"] = _score(out)
    return out


def row(d):
    """The markdown row of one module's summary (written today or by an older script)."""
    d = upgrade(d)
    return (f"| `{d['module']}` | {d['date']} | {d['mutants']} | {d['killed'] + d['timeout']} "
            f"| {d['survived']} | {d['not_checked']} | {100 * (d['score'] or 0):.1f} % |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="+", metavar="MODULE",
                        help="e.g. skmetric/deep/miners/batch_hard.py; several modules share "
                             "one run (one test-mapping step) and are scored separately")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--functions", nargs="+", default=None, metavar="NAME",
                        help="mutate only these functions (e.g. _lmnn_loss_grad, "
                             "NCA._fit_lbfgs)")
    parser.add_argument("--max-children", type=int, default=1,
                        help="parallel mutant runs (default 1: the machine is shared)")
    parser.add_argument("--timeout", type=int, default=1800,
                        help="seconds for the whole run; unfinished mutants stay 'not checked'")
    parser.add_argument("--fresh", action="store_true", help="discard cached results first")
    parser.add_argument("--show-survivors", action="store_true",
                        help="print the diff of every surviving mutant")
    parser.add_argument("--own-tests-only", action="store_true",
                        help="leave out tests/test_mutation_kills*.py (the 'before' score)")
    parser.add_argument("--resume", action="store_true",
                        help="run only the mutants (of --functions, if given) that the last "
                             "run left unchecked, e.g. when it hit --timeout")
    parser.add_argument("--recheck-survivors", action="store_true",
                        help="after adding tests: re-run only the last run's survivors, in a "
                             "fresh copy <workdir>-recheck with today's tests, and score the "
                             "module with the earlier kills kept (tests only get added)")
    parser.add_argument("--report", action="store_true",
                        help="print the markdown rows of the last run's summary.json and exit")
    args = parser.parse_args(argv)
    modules = [Path(m).as_posix() for m in args.modules]
    slug = modules[0].replace("/", "_").removesuffix(".py")
    if len(modules) > 1:
        slug += f"_and_{len(modules) - 1}_more"
    workdir = args.workdir or Path("/tmp/skmetric-mutation") / slug
    if args.report:
        for d in json.loads((workdir / "summary.json").read_text()):
            print(row(d))
        return
    before = None
    if args.recheck_survivors:
        before = {d["module"]: d for d in json.loads((workdir / "summary.json").read_text())}
        workdir = workdir.with_name(workdir.name + "-recheck")
        args.fresh = True

    for module in modules:
        if not (ROOT / module).is_file():
            raise SystemExit(f"{module} is not a file under {ROOT}; pass a path like "
                             "skmetric/deep/miners/batch_hard.py")
    # A re-check runs the survivors against the kill tests only: the module's own tests
    # already let them pass.
    tests = sorted({t for module in modules for t in tests_for(module)
                    if not (args.own_tests_only and "test_mutation_kills" in t)
                    and (not before or "test_mutation_kills" in t)},
                   key=lambda t: ("kills" in t, t))
    if not args.resume:  # resume with the copy (and tests) of the interrupted run
        prepare(workdir, modules, tests, args.fresh)

    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               OPENBLAS_NUM_THREADS="1")
    globs = {m: mutant_globs(m, args.functions) if args.functions else [] for m in modules}
    if args.resume:
        globs = {m: unchecked(workdir, m, globs[m]) for m in modules}
        if not any(globs.values()):
            raise SystemExit("the last run left no unchecked mutant")
    if before:
        globs = {m: before[m]["survivors"] for m in modules}
        if not any(globs.values()):
            raise SystemExit("the last run left no survivor to re-check")
    start = datetime.datetime.now()
    try:
        subprocess.run([sys.executable, "-m", "mutmut", "run",
                        "--max-children", str(args.max_children),
                        *(g for gs in globs.values() for g in gs)],
                       cwd=workdir, env=env, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        print(f"mutmut stopped after {args.timeout} s; the summary counts what finished")
    elapsed = (datetime.datetime.now() - start).total_seconds()
    summaries = [summarise(workdir, m, elapsed, globs[m]) for m in modules]
    if before:
        summaries = [merge(before[d["module"]], d) for d in summaries]
    if not any(d["mutants"] - d["not_checked"] for d in summaries):
        raise SystemExit("mutmut checked no mutant: the clean test run probably failed "
                         f"(see the output above, or run `mutmut run` in {workdir})")
    (workdir / "summary.json").write_text(json.dumps(summaries, indent=2))
    for d in summaries:
        print(json.dumps({k: v for k, v in d.items() if k != "survivors"}), flush=True)
        print(row(d), flush=True)
    if args.show_survivors:
        for name in (n for d in summaries for n in d["survivors"]):
            subprocess.run([sys.executable, "-m", "mutmut", "show", name], cwd=workdir,
                           env=env)

if __name__ == "__main__":
    main()
