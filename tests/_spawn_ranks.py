"""Start the ranks of a gloo process group on 127.0.0.1 as subprocesses, under a timeout.

Shared by the distributed tests: a bug that deadlocks a collective fails the test (the
ranks are killed at the deadline) instead of hanging the suite.
"""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rank_env(rank, world, port):
    """The environment ``torchrun`` gives rank ``rank`` (one thread, this checkout first)."""
    return {**os.environ, "RANK": str(rank), "WORLD_SIZE": str(world),
            "LOCAL_RANK": str(rank), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
            "OMP_NUM_THREADS": "1",
            "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}


def spawn(worker, mode, out, *, world=2, timeout=240, group_timeout=30):
    """Run ``python worker MODE OUT GROUP_TIMEOUT`` on ``world`` ranks; return each rank's
    (returncode, stderr). Ranks still running at the deadline are killed (code -9)."""
    port = free_port()
    procs = [subprocess.Popen(
        [sys.executable, str(worker), mode, str(out), str(group_timeout)], cwd=ROOT,
        env=rank_env(rank, world, port), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True) for rank in range(world)]
    return wait_all(procs, timeout)


def wait_all(procs, timeout):
    """Each process's (returncode, stderr), killing those alive after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    results = []
    try:
        for proc in procs:
            try:
                _, err = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                _, err = proc.communicate()
                err = f"[killed after {timeout} s: a rank hung]\n{err}"
            results.append((proc.returncode, err))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    return results


def check_ok(results):
    """Assert every rank exited 0, showing the ends of their stderr otherwise."""
    assert all(code == 0 for code, _ in results), "\n".join(
        f"--- rank {r} (exit {code}):\n{err[-3000:]}" for r, (code, err) in enumerate(results))
