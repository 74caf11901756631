"""pytest hooks (the root conftest imports them): in CI a missing dev dependency fails.

Test modules ``pytest.importorskip`` torch, skorch, pytorch-metric-learning, faiss, ...
so that a plain ``pip install skmetric`` can run the suite. In CI that same skip would
hide a broken dev install behind a green run: with ``CI`` set (``.ci/run``) or
``SKMETRIC_REQUIRE_EXTRAS=1``, every skip for a module that could not be imported becomes
a failure (a collection error for module-level skips), except for modules that need
hardware the CI machine may lack (``HARDWARE_MODULES``). ``SKMETRIC_REQUIRE_EXTRAS=0``
turns the requirement off even under ``CI``.
"""

import os
import re

import pytest

# Importable only where the hardware exists: their skips stay skips everywhere.
HARDWARE_MODULES = frozenset({"cupy"})

_COULD_NOT_IMPORT = re.compile(r"could not import '([^']+)'")
_FALSE = {"", "0", "false", "no", "off"}


def extras_required(environ):
    """Whether a missing dev dependency must fail: ``SKMETRIC_REQUIRE_EXTRAS``, else ``CI``."""
    value = environ.get("SKMETRIC_REQUIRE_EXTRAS", environ.get("CI", ""))
    return value.strip().lower() not in _FALSE


def required_missing_module(skip_message):
    """The required module whose failed import caused a skip, or None.

    ``skip_message`` is the text of a skip report; ``pytest.importorskip`` words it
    ``could not import 'name': <ImportError>``.
    """
    match = _COULD_NOT_IMPORT.search(skip_message)
    if match is None or match.group(1).split(".")[0] in HARDWARE_MODULES:
        return None
    return match.group(1)


def _fail_missing_extra(report):
    if not report.skipped:
        return
    longrepr = report.longrepr
    message = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    module = required_missing_module(message)
    if module is None:
        return
    report.outcome = "failed"
    report.longrepr = (
        f"{message}\nThe dev dependency {module!r} is missing, and this run requires every "
        f"dev dependency (CI or SKMETRIC_REQUIRE_EXTRAS is set): install the project with "
        f"`pip install -e .[dev]` (scripts/setup.sh), or set SKMETRIC_REQUIRE_EXTRAS=0 to "
        f"skip these tests."
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if extras_required(os.environ):
        _fail_missing_extra(report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector):
    report = yield
    if extras_required(os.environ):
        _fail_missing_extra(report)
    return report
