"""The CI rule of tests/_require_extras.py: a missing dev dependency fails instead of skipping."""

import _require_extras
import pytest
from _require_extras import extras_required, required_missing_module

_SUITE = """
import pytest

{module_level}

def test_optional():
    pytest.importorskip("skmetric_absent_extra.sub")

def test_hardware():
    pytest.importorskip("skmetric_absent_hardware")

def test_plain_skip():
    pytest.skip("not an import problem")
"""


@pytest.mark.parametrize("environ, required", [
    ({}, False),
    ({"CI": "true"}, True),
    ({"CI": "1"}, True),
    ({"CI": "false"}, False),
    ({"SKMETRIC_REQUIRE_EXTRAS": "1"}, True),
    ({"CI": "true", "SKMETRIC_REQUIRE_EXTRAS": "0"}, False),
    ({"SKMETRIC_REQUIRE_EXTRAS": ""}, False),
])
def test_extras_are_required_under_ci_unless_turned_off(environ, required):
    assert extras_required(environ) is required


def test_only_import_skips_of_non_hardware_modules_count():
    assert required_missing_module(
        "Skipped: could not import 'pytorch_metric_learning.losses': No module named 'x'"
    ) == "pytorch_metric_learning.losses"
    assert required_missing_module("could not import 'cupy': No module named 'cupy'") is None
    assert required_missing_module("could not import 'cupy.cuda': no GPU") is None
    assert required_missing_module("needs a CUDA device") is None


def _run(pytester, monkeypatch, environ, module_level=""):
    for name in ("CI", "SKMETRIC_REQUIRE_EXTRAS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    # A module needing absent hardware (as cupy without a GPU) still skips.
    monkeypatch.setattr(_require_extras, "HARDWARE_MODULES",
                        _require_extras.HARDWARE_MODULES | {"skmetric_absent_hardware"})
    pytester.makeconftest("from _require_extras import pytest_make_collect_report, "
                          "pytest_runtest_makereport")
    pytester.makepyfile(test_suite=_SUITE.format(module_level=module_level))
    return pytester.runpytest_inprocess("-p", "no:randomly", "-p", "no:cacheprovider")


def test_locally_a_missing_extra_skips(pytester, monkeypatch):
    _run(pytester, monkeypatch, {}).assert_outcomes(skipped=3)


def test_in_ci_a_missing_extra_fails_and_says_how_to_install(pytester, monkeypatch):
    result = _run(pytester, monkeypatch, {"CI": "true"})
    result.assert_outcomes(failed=1, skipped=2)  # hardware and plain skips stay skips
    result.stdout.fnmatch_lines(["*dev dependency 'skmetric_absent_extra.sub' is missing*",
                                 "*pip install -e .?dev?*"])


def test_in_ci_a_module_level_import_skip_is_a_collection_error(pytester, monkeypatch):
    module_level = 'pytest.importorskip("skmetric_absent_extra")'
    _run(pytester, monkeypatch, {}, module_level).assert_outcomes(skipped=1)
    result = _run(pytester, monkeypatch, {"SKMETRIC_REQUIRE_EXTRAS": "1"}, module_level)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*dev dependency 'skmetric_absent_extra' is missing*"])
