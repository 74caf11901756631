"""The training script of docs/distributed.md, as written, under the real launchers on CPU:
``torchrun --nproc_per_node 2``, ``accelerate launch --multi_gpu --num_processes 2`` and two
"nodes" on one machine (``torchrun --nnodes 2 --node_rank 0|1``). Both ranks must return
the embeddings of one process. Each launch takes tens of seconds: marked slow.
"""

import os
import re
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("skorch")

from _spawn_ranks import ROOT, free_port, wait_all  # noqa: E402

pytestmark = pytest.mark.slow

_SAVE = """
import numpy as _np
_np.save(os.path.join(os.environ["SKMETRIC_TEST_OUT"], f"rank{rank}.npy"), embedding)
"""


def _docs_script():
    """The first python block of docs/distributed.md: the train.py every launcher runs."""
    text = (ROOT / "docs" / "distributed.md").read_text(encoding="utf-8")
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    assert code.startswith("# train.py"), code[:80]
    return code


@pytest.fixture(scope="module")
def one_process():
    namespace = {}
    exec(compile(_docs_script(), "train.py", "exec"), namespace)  # no RANK: 1 process
    return namespace["embedding"]


def _launch(commands, tmp_path, timeout=400):
    script = tmp_path / "train.py"
    script.write_text(_docs_script() + _SAVE, encoding="utf-8")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SKMETRIC_TEST_OUT": str(tmp_path),
           "PYTHONPATH": str(ROOT)}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    procs = [subprocess.Popen([*command, str(script)], cwd=tmp_path, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for command in commands]
    results = wait_all(procs, timeout)
    assert all(code == 0 for code, _ in results), "\n".join(err[-3000:] for _, err in results)
    return [np.load(tmp_path / f"rank{r}.npy") for r in range(2)]


def _check(ranks, one_process):
    np.testing.assert_array_equal(ranks[0], ranks[1])
    # 56 Adam steps on 2 processes vs 1: equal up to float32 rounding
    np.testing.assert_allclose(ranks[0], one_process, rtol=0, atol=1e-4)


TORCHRUN = [sys.executable, "-m", "torch.distributed.run"]


def test_torchrun_two_processes(tmp_path, one_process):
    port = str(free_port())
    ranks = _launch([[*TORCHRUN, "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
                      "--master_port", port]], tmp_path)
    _check(ranks, one_process)


def test_torchrun_two_nodes_on_localhost(tmp_path, one_process):
    port = str(free_port())
    ranks = _launch([[*TORCHRUN, "--nnodes", "2", "--node_rank", str(node),
                      "--nproc_per_node", "1", "--master_addr", "127.0.0.1",
                      "--master_port", port] for node in range(2)], tmp_path)
    _check(ranks, one_process)


def test_accelerate_launch_two_processes(tmp_path, one_process):
    pytest.importorskip("accelerate")
    # `accelerate launch` is this module's CLI entry point
    ranks = _launch([[sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu",
                      "--num_processes", "2", "--num_machines", "1", "--mixed_precision",
                      "no", "--dynamo_backend", "no", "--main_process_port",
                      str(free_port())]], tmp_path)
    _check(ranks, one_process)
