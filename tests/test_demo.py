"""The demo (python -m skmetric) runs, reports every learner and rejects bad options."""

import subprocess
import sys

import pytest

from skmetric._demo import _learners, main


def test_demo_prints_table_for_each_learner_and_writes_output(tmp_path, capsys):
    out = tmp_path / "table.md"
    main(["--datasets", "wine", "--learners", "Covariance", "--folds", "2",
          "--output", str(out)])
    captured = capsys.readouterr()
    assert "| wine | euclidean |" in captured.out
    assert "| wine | Covariance |" in captured.out
    assert "[2/2] wine: Covariance" in captured.err  # progress on stderr
    assert out.read_text().strip() == captured.out.strip()


def test_demo_lists_learners_in_help():
    res = subprocess.run([sys.executable, "-m", "skmetric", "--help"], capture_output=True,
                         text=True, check=True)
    for name in _learners():
        assert name in res.stdout
    assert "--datasets" in res.stdout and "--output" in res.stdout


@pytest.mark.parametrize("args, match", [
    (["--learners", "NoSuchLearner"], "Unknown learner"),
    (["--datasets", "mnist"], "Unknown dataset"),
    (["--folds", "1"], "at least 2"),
])
def test_demo_rejects_bad_options(args, match, capsys):
    with pytest.raises(SystemExit):
        main(args)
    assert match in capsys.readouterr().err
