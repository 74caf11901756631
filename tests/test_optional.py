"""The core imports without the extras; a missing extra names the pip command to run."""

import subprocess
import sys

import pytest

from skmetric._optional import import_optional


def test_missing_optional_dependency_names_the_extra():
    with pytest.raises(ImportError, match=r"pip install 'skmetric\[gpu\]'"):
        import_optional("cupy_not_installed_here", feature="The CuPy path", extra="gpu")


# A fresh interpreter in which importing the optional modules fails, as if not installed.
_BLOCK = (
    "import sys, importlib.abc\n"
    "class _Block(importlib.abc.MetaPathFinder):\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name.split('.')[0] in BLOCKED:\n"
    "            raise ImportError(f'No module named {name!r}')\n"
    "sys.meta_path.insert(0, _Block())\n"
)


def test_import_skmetric_works_without_torch_skorch_faiss_matplotlib():
    code = (
        "BLOCKED = {'torch', 'skorch', 'cupy', 'faiss', 'matplotlib'}\n" + _BLOCK +
        "import skmetric, skmetric.distances, skmetric.neighbors, skmetric.metrics\n"
        "print(len(skmetric.__all__))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert int(res.stdout) > 0


def test_deep_subpackage_without_torch_raises_clear_import_error():
    code = (
        "BLOCKED = {'torch'}\n" + _BLOCK +
        "try:\n"
        "    import skmetric.deep\n"
        "except ImportError as e:\n"
        "    print(e)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "skmetric[deep]" in res.stdout, res.stdout + res.stderr
