"""The dependency versions declared in pyproject.toml are the ones tested, and scikit-learn's
private APIs are reached through skmetric/_sklearn_compat.py only."""

import ast
import importlib.metadata
from pathlib import Path

import pytest
import tomllib
from packaging.requirements import Requirement
from packaging.version import Version

import skmetric._sklearn_compat as compat

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "skmetric"


def _requirements():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = [*project["dependencies"], *project["optional-dependencies"]["deep"]]
    return {Requirement(r).name: Requirement(r) for r in declared}


@pytest.mark.parametrize("name", ["scikit-learn", "skorch", "torch"])
def test_the_installed_version_is_in_the_declared_range_which_has_an_upper_bound(name):
    requirement = _requirements()[name]
    # An upper bound: a release that moves a private API is taken on purpose, after testing.
    assert any(spec.operator == "<" for spec in requirement.specifier), requirement
    try:
        installed = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        pytest.skip(f"{name} is not installed (an optional extra)")
    assert requirement.specifier.contains(Version(installed), prereleases=True), (
        f"{name} {installed} is outside {requirement}: run the suite on it, then move the "
        "bound in pyproject.toml"
    )


def _sklearn_imports():
    """(module path, sklearn module, name, line) of every import from scikit-learn."""
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sklearn"):
                for alias in node.names:
                    yield path.relative_to(ROOT), node.module, alias.name, node.lineno
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("sklearn"):
                        yield path.relative_to(ROOT), alias.name, "", node.lineno


def test_only_the_compat_module_imports_private_scikit_learn_apis():
    private = [
        f"{path}:{line}: {module} {name}"
        for path, module, name, line in _sklearn_imports()
        if path.name != "_sklearn_compat.py"
        and (any(part.startswith("_") for part in module.split(".")) or name.startswith("_"))
    ]
    assert not private, "import these from skmetric._sklearn_compat:\n" + "\n".join(private)


def test_the_compat_module_provides_every_name_the_package_takes_from_it():
    wanted = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").endswith(
                    "_sklearn_compat"):
                wanted.update(alias.name for alias in node.names)
    assert {"Interval", "StrOptions", "_fit_context"} <= wanted  # the scan sees the imports
    assert wanted <= set(compat.__all__), wanted - set(compat.__all__)
    for name in compat.__all__:
        assert getattr(compat, name) is not None
    # The re-exports are scikit-learn's own objects: its estimator checks and validation
    # recognise the constraints skmetric declares.
    from sklearn.utils import _param_validation

    assert compat.Interval is _param_validation.Interval
    assert compat.validate_params is _param_validation.validate_params
