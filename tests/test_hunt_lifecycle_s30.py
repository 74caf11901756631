"""Estimator lifecycle and first hour: the demo's options, verbose progress, reloading.

Each test pins a bug found in the thirtieth session's hunt (the docstring or a comment says
what the old behaviour was).
"""

import re

import pytest

from skmetric import _demo

# -- the demo's options ------------------------------------------------------------------


@pytest.mark.parametrize("args, match", [
    # Was "ValueError: max() arg is an empty sequence", a traceback.
    (["--datasets", ","], r"No dataset given; choose at least one from \['wine'"),
    # Each of these ran every fit and failed every row of the table, for minutes on digits.
    (["--datasets", "iris", "--folds", "51"],
     r"--folds 51 is more than the 50 samples of iris's smallest class"),
    (["--datasets", "iris", "--folds", "2", "--neighbors", "76"],
     r"--neighbors 76 is more than the 75 training samples of iris's smallest training fold"),
    (["--datasets", "iris", "--random-state", "-1"],
     r"--random-state must be in \[0, 2\*\*32 - 1\] \(a NumPy seed\); got -1"),
    (["--datasets", "iris", "--random-state", str(2**32)], r"--random-state must be in"),
    # Was a FileNotFoundError traceback, after the whole run.
    (["--datasets", "iris", "--output", "/no/such/folder/table.md"],
     r"--output /no/such/folder/table.md: its folder does not exist"),
])
def test_demo_refuses_options_that_would_fail_before_running_anything(args, match, capsys,
                                                                       monkeypatch):
    def run_demo(*args, **kwargs):
        raise AssertionError("the demo ran its fits on options it should have refused")

    monkeypatch.setattr(_demo, "run_demo", run_demo)
    with pytest.raises(SystemExit) as info:
        _demo.main(args)
    assert info.value.code == 2  # argparse's usage error
    err = capsys.readouterr().err
    assert re.search(r"python -m skmetric: error: " + match, err), err
    assert "Traceback" not in err


def test_demo_output_and_plots_paths_are_checked_first(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(_demo, "run_demo", lambda *a, **k: pytest.fail("ran"))
    a_file = tmp_path / "figs"
    a_file.write_text("")
    for args, match in [(["--output", str(tmp_path)], "is a folder; give a file name"),
                        (["--plots", str(a_file)], "is a file; give a folder")]:
        with pytest.raises(SystemExit):
            _demo.main(["--datasets", "iris", *args])
        assert match in capsys.readouterr().err


def test_demo_runs_a_repeated_name_once(monkeypatch, capsys):
    calls = []

    def run_demo(datasets, learners, *args):
        calls.append((datasets, learners))
        return []

    monkeypatch.setattr(_demo, "run_demo", run_demo)
    monkeypatch.setattr(_demo, "format_table", lambda *a: "")
    # Each repeat was fitted again and printed as a second row of the table.
    assert _demo.main(["--datasets", "iris,wine,iris", "--learners", "LFDA,NCA,LFDA",
                       "--folds", "2"]) == 0
    assert calls == [(["iris", "wine"], ["LFDA", "NCA"])]
    # No learner at all still measures the Euclidean baselines, as before.
    assert _demo.main(["--datasets", "iris", "--learners", ""]) == 0
    assert calls[-1] == (["iris"], [])
    capsys.readouterr()
