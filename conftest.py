"""Suite-wide set-up, and doctest collection over the package.

scikit-learn runs its ``check_array_api_input`` estimator checks only with
``SCIPY_ARRAY_API=1``, which SciPy reads once, when it is first imported: so it is set here,
before anything imports SciPy.
"""

import os

os.environ.setdefault("SCIPY_ARRAY_API", "1")

import importlib.util  # noqa: E402

# tests/ is on pythonpath; the two hooks turn skips for a missing dev dependency into
# failures where the extras are required.
from _require_extras import (  # noqa: E402, F401
    extras_required,
    pytest_make_collect_report,
    pytest_runtest_makereport,
)

pytest_plugins = ["pytester"]  # tests/test_require_extras.py runs small suites


def _missing(*modules):
    return any(importlib.util.find_spec(m) is None for m in modules)


collect_ignore = ["skmetric/__main__.py"]  # importing it runs the demo
# Without the optional extra its doctests cannot run; where the extras are required
# (CI), they are collected anyway, so the missing import fails the run.
if _missing("torch", "skorch") and not extras_required(os.environ):
    collect_ignore.append("skmetric/deep")
if _missing("matplotlib") and not extras_required(os.environ):
    collect_ignore.append("skmetric/plotting.py")
if _missing("dask", "distributed") and not extras_required(os.environ):
    collect_ignore.append("skmetric/dask.py")
