"""Fast checks of the documentation site's sources (the full build is ``scripts/docs.sh``).

- Every public name of skmetric and of its public modules is in the API reference
  (``docs/api/*.rst``), so a new estimator, loss or metric cannot be left out of it.
- Every loss and miner of the registries has a paper (the References its API table reads).
- Every guide page is in the site's table of contents.
- Every gallery example has sphinx-gallery's form (``plot_*.py``, a titled docstring), so
  the build runs it and shows it; the build itself executes them (not the test suite: they
  take up to a minute each). The guides' code blocks run in ``tests/test_docs.py``.
"""

import ast
import importlib
import importlib.util
import inspect
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
API = DOCS / "api"

PUBLIC_MODULES = ["skmetric", "skmetric.supervised", "skmetric.weakly_supervised",
                  "skmetric.exceptions", "skmetric.kernel", "skmetric.metrics",
                  "skmetric.neighbors", "skmetric.distances",
                  "skmetric.plotting", "skmetric.deep", "skmetric.deep.losses",
                  "skmetric.deep.miners", "skmetric.deep.datasets", "skmetric.deep.networks",
                  "skmetric.dask"]
_NEEDS = {"skmetric.plotting": "matplotlib", "skmetric.deep": "torch", "skmetric.dask": "dask"}


def _public_names(module):
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n, obj in vars(module).items() if not n.startswith("_")
                 and getattr(obj, "__module__", module.__name__) == module.__name__
                 and not inspect.ismodule(obj)]
    return sorted(names)


def documented_names(paths):
    """Fully qualified names that the API sources document, and the modules they cover.

    Reads ``.. currentmodule::``, ``.. automodule::``, the entries of ``.. autosummary::``
    and ``.. data::`` directives.
    """
    names, modules = set(), set()
    for path in paths:
        current, in_summary = None, False
        for line in path.read_text(encoding="utf-8").splitlines():
            directive = re.match(r"^\.\. ([\w-]+)::\s*(\S*)", line)
            if directive:
                kind, argument = directive.groups()
                in_summary = kind == "autosummary"
                if kind in ("currentmodule", "automodule"):
                    current = argument
                    modules.add(argument)
                elif kind == "data":
                    names.add(f"{current}.{argument}")
                continue
            if in_summary:
                entry = re.match(r"^ {3}(\w+)\s*$", line)
                if entry:
                    names.add(f"{current}.{entry.group(1)}")
                elif line.strip() and not line.startswith(" "):
                    in_summary = False
    return names, modules


def _resolve(fqn):
    module, _, name = fqn.rpartition(".")
    return getattr(importlib.import_module(module), name, None)


def missing_from_reference(module_names, paths):
    """``module.name`` of each public name that no API page documents (by any path)."""
    names, modules = documented_names(paths)
    objects = {id(obj) for obj in map(_resolve, names) if obj is not None}
    missing = []
    for module_name in module_names:
        module = importlib.import_module(module_name)
        for name in _public_names(module):
            obj = getattr(module, name)
            if inspect.ismodule(obj):
                ok = obj.__name__ in modules
            else:
                ok = f"{module_name}.{name}" in names or id(obj) in objects
            if not ok:
                missing.append(f"{module_name}.{name}")
    return missing


def _available(module_name):
    need = next((v for k, v in _NEEDS.items() if module_name.startswith(k)), None)
    return need is None or importlib.util.find_spec(need) is not None


def test_every_public_name_is_in_the_api_reference():
    modules = [m for m in PUBLIC_MODULES if _available(m)]
    if "skmetric.deep" not in modules:
        pytest.skip("needs torch for skmetric.deep")
    missing = missing_from_reference(modules, sorted(API.glob("*.rst")))
    assert not missing, (
        f"public names missing from the API reference: {missing}; add each to the "
        "autosummary list of its page in docs/api/ (see docs/architecture.md).")


def test_reference_check_catches_a_missing_name(tmp_path):
    # The checker must see an entry dropped from a page, a module without a section, and
    # accept a name documented under the module that re-exports it.
    page = tmp_path / "p.rst"
    page.write_text(".. currentmodule:: skmetric.metrics\n\n.. autosummary::\n   :toctree: g/\n"
                    "\n   precision_at_k\n\nText\n\n   recall_at_k\n", encoding="utf-8")
    missing = missing_from_reference(["skmetric.metrics"], [page])
    assert "skmetric.metrics.recall_at_k" in missing  # after the list ended
    assert "skmetric.metrics.precision_at_k" not in missing
    assert "skmetric.metrics.make_pair_scorer" in missing
    root = tmp_path / "root.rst"
    root.write_text(".. currentmodule:: skmetric.metrics\n\n.. autosummary::\n\n"
                    "   make_pair_scorer\n", encoding="utf-8")
    missing_root = missing_from_reference(["skmetric"], [root])
    assert "skmetric.make_pair_scorer" not in missing_root  # the same object
    assert "skmetric.NCA" in missing_root and "skmetric.metrics" not in missing_root
    assert "skmetric.distances" in missing_root  # a module needs its own section


@pytest.mark.parametrize("registry", ["skmetric.deep.losses.LOSSES",
                                      "skmetric.deep.miners.MINERS"])
def test_every_loss_and_miner_has_a_paper(registry):
    pytest.importorskip("torch")
    sys.path.insert(0, str(DOCS / "_ext"))
    try:
        from registry_tables import _first_reference
        from registry_tables import _resolve as resolve_registry
    finally:
        sys.path.remove(str(DOCS / "_ext"))
    no_paper = set()
    for line in (API / "deep_miners.rst").read_text(encoding="utf-8").splitlines():
        if ":no-paper:" in line:
            no_paper.update(line.split(":no-paper:")[1].split())
    assert no_paper <= {"AllTuplesMiner", "RandomMiner"}  # baselines only
    registry_dict, _ = resolve_registry(registry)
    without = [cls.__name__ for cls in registry_dict.values()
               if _first_reference(cls)[0] is None and cls.__name__ not in no_paper]
    assert not without, f"{without} have no References section (their paper)"


def _toctree_entries(path):
    text = path.read_text(encoding="utf-8")
    entries = []
    for block in re.findall(r"```\{toctree\}\n(.*?)```", text, flags=re.S):
        entries += [ln.strip() for ln in block.splitlines()
                    if ln.strip() and not ln.strip().startswith(":")]
    return entries


def test_every_guide_page_is_in_the_site_toc():
    in_toc = set(_toctree_entries(DOCS / "index.md")) | set(_toctree_entries(DOCS /
                                                                             "user_guide.md"))
    pages = {p.stem for p in DOCS.glob("*.md")} - {"index", "README"}
    assert pages - in_toc == set(), f"pages in no toctree: {sorted(pages - in_toc)}"
    assert {"user_guide", "api/index", "auto_examples/index", "architecture",
            "choosing"} <= in_toc


def test_api_pages_are_in_the_api_toc():
    index = (API / "index.rst").read_text(encoding="utf-8")
    for page in API.glob("*.rst"):
        if page.stem != "index":
            assert re.search(rf"^\s+{page.stem}\s*$", index, flags=re.M), page.name


EXAMPLES = sorted((DOCS / "examples").glob("*.py"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_gallery_example_has_sphinx_gallery_form(path):
    assert path.name.startswith("plot_"), (
        f"{path.name}: name gallery examples plot_*.py, else the build does not run them")
    docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")), clean=False)
    assert docstring, f"{path.name} needs a module docstring: a title, then what it shows"
    lines = docstring.strip("\n").splitlines()
    assert len(lines) >= 3 and set(lines[1]) == {"="} and len(lines[1]) >= len(lines[0]), (
        f"{path.name}: the docstring starts with a title underlined with '=' "
        "(sphinx-gallery's page title)")


def test_issue_gallery_is_complete():
    # The examples the site promises (docs/choosing.md links to them).
    names = {p.stem for p in EXAMPLES}
    assert {"plot_nca_lmnn_wine", "plot_itml_pairs", "plot_kernel_nca_circles",
            "plot_open_set_digits", "plot_fashion_mnist_retrieval", "plot_verification_roc",
            "plot_pfe_uncertainty"} <= names
    choosing = (DOCS / "choosing.md").read_text(encoding="utf-8")
    for link in re.findall(r"\(auto_examples/(\w+)\.rst\)", choosing):
        assert link in names, f"docs/choosing.md links to a missing example {link}"


def test_api_templates_exist_and_document_inherited_methods():
    # autosummary silently falls back to its bare base.rst when a `:template:` is not found
    # in templates_path, and a class page then lists none of the methods it inherits (fit,
    # transform of every learner written once in a mixin). Each named template must exist.
    templates = DOCS / "_templates"
    named = {m for page in API.glob("*.rst")
             for m in re.findall(r":template:\s*(\S+)", page.read_text())}
    assert named, "no :template: in docs/api: the check below would check nothing"
    assert not [t for t in named if not (templates / t).is_file()]
    conf = (DOCS / "conf.py").read_text()
    # An "inherited-members": False default overrides the class template's own option.
    assert '"inherited-members": False' not in conf
    assert ":inherited-members:" in (templates / "autosummary" / "class.rst").read_text()
