"""Every example in the documentation runs: each ```python block of docs/*.md and of README.md.
The gallery scripts in docs/examples/ run in the site build (scripts/docs.sh); here they are
only compiled and checked for private names.

The rule (stated for contributors in docs/index.md): each block is self-contained. It runs in
a fresh namespace, so it must define its own data (`X, y`, ...) and imports, and it may use
only public names (no `skmetric._x` or `skmetric.deep._x`). A block that needs an extra
(torch/skorch, matplotlib, faiss) is skipped only when that extra is missing. A block that
cannot run here says why in its first line, `# not run: <reason>`; keep such blocks rare.
Blocks in other languages (bash) are not executed.
"""

import ast
import importlib.util
import re
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
EXAMPLES = sorted((ROOT / "docs" / "examples").glob("*.py"))

_OPEN = re.compile(r"^\s*```python\s*$")
_FENCE = re.compile(r"^\s*```")
_NOT_RUN = re.compile(r"^# not run: (?P<reason>\S.*)$")
# Extras a block needs, from the modules it imports (and, for FAISS, the backend it asks for).
_EXTRAS = {"torch": ("torch",), "skorch": ("skorch",), "skmetric.deep": ("torch", "skorch"),
           "matplotlib": ("matplotlib",), "skmetric.plotting": ("matplotlib",),
           "faiss": ("faiss",), "cupy": ("cupy",)}


def _python_blocks(path):
    """``(first_code_line, code)`` of each ```python block of a markdown file, in order."""
    blocks, start, lines = [], None, path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, start=1):
        if start is None:
            if _OPEN.match(line):
                start = number + 1
            elif line.lstrip().startswith("```py"):
                raise ValueError(f"{path.name}:{number}: write a python block's fence as "
                                 f"plain ```python (got {line!r}); see tests/test_docs.py.")
        elif _FENCE.match(line):
            code = textwrap.dedent("\n".join(lines[start - 1:number - 1]) + "\n")
            blocks.append((start, code))
            start = None
    if start is not None:
        raise ValueError(f"{path.name}:{start - 1}: unterminated ```python block.")
    return blocks


def _block_params():
    params = []
    for page in PAGES:
        for index, (line, code) in enumerate(_python_blocks(page)):
            name = page.relative_to(ROOT).as_posix()
            params.append(pytest.param(page, line, code, id=f"{name}-block{index}"))
    return params


BLOCKS = _block_params()


def _imported_modules(code):
    """Every module an import statement names, with ``from a import b`` also giving ``a.b``."""
    modules = []
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            modules += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.append(node.module)
            modules += [f"{node.module}.{alias.name}" for alias in node.names]
    return modules


def _needed_extras(code):
    needed = set()
    for module in _imported_modules(code):
        for prefix, extras in _EXTRAS.items():
            if module == prefix or module.startswith(prefix + "."):
                needed.update(extras)
    if re.search(r"""backend\s*=\s*["']faiss["']""", code):
        needed.add("faiss")
    return sorted(needed)


def _private_skmetric_names(code):
    """``skmetric`` modules or names with a private (``_``) component that the code uses."""
    found = {m for m in _imported_modules(code)
             if m.split(".")[0] == "skmetric" and any(p.startswith("_") for p in m.split("."))}
    found.update(re.findall(r"\bskmetric(?:\.\w+)*\._\w+", code))
    return sorted(found)


def _run_block(path, line, code):
    # Pad with blank lines so that a traceback names the page and its line number.
    compiled = compile("\n" * (line - 1) + code, str(path), "exec")
    exec(compiled, {"__name__": "__docs__"})


@pytest.mark.parametrize("path, line, code", BLOCKS)
def test_docs_block_runs(path, line, code):
    not_run = _NOT_RUN.match(code.splitlines()[0]) if code.strip() else None
    if not_run:
        pytest.skip(f"marked in the docs: {not_run['reason']}")
    for extra in _needed_extras(code):
        if importlib.util.find_spec(extra) is None:
            pytest.skip(f"needs {extra}, which is not installed")
    if "matplotlib" in _needed_extras(code):
        import matplotlib

        matplotlib.use("Agg")
    try:
        _run_block(path, line, code)
    finally:
        if "matplotlib" in _needed_extras(code):
            import matplotlib.pyplot as plt

            plt.close("all")


@pytest.mark.parametrize("path, line, code", BLOCKS)
def test_docs_block_uses_only_public_names(path, line, code):
    assert not _private_skmetric_names(code), (
        f"{path.name}:{line}: the example uses private names {_private_skmetric_names(code)}; "
        "documentation must show the public API (make the name public or change the example)."
    )


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_docs_example_script_compiles_and_uses_only_public_names(path):
    # The gallery scripts run in the site build (scripts/docs.sh), not here: each takes up
    # to a minute. Here: they compile and show only the public API.
    code = path.read_text(encoding="utf-8")
    compile(code, str(path), "exec")
    assert not _private_skmetric_names(code), f"{path.name} uses private names"


def test_every_page_with_python_blocks_is_collected():
    # A fence the parser misses would silently drop its block from the tests above.
    for page in PAGES:
        fences = re.findall(r"^\s*```py", page.read_text(encoding="utf-8"), flags=re.M)
        assert len(_python_blocks(page)) == len(fences), page.name
    assert len(BLOCKS) >= len(PAGES) and EXAMPLES


@pytest.mark.parametrize("code, expected", [
    ("from skmetric.deep._tuples import to_pairs\n", ["skmetric.deep._tuples",
                                                      "skmetric.deep._tuples.to_pairs"]),
    ("import skmetric._constraints as c\n", ["skmetric._constraints"]),
    ("from skmetric.deep import _tuples\n", ["skmetric.deep._tuples"]),
    ("import skmetric\nskmetric._supervised.SupervisedTuplesMixin\n", ["skmetric._supervised"]),
    ("from skmetric.deep.losses import BaseLoss\nfrom sklearn.utils._param_validation import "
     "Interval\n", []),
])
def test_private_name_detector(code, expected):
    assert _private_skmetric_names(code) == expected


def test_block_parser_and_extras_detection(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("text\n```python\nimport torch\nx = 1\n```\n```bash\nls\n```\n"
                    "```python\nfrom skmetric.neighbors import kneighbors\n"
                    "kneighbors(X, backend='faiss')\n```\n", encoding="utf-8")
    (first, code1), (second, code2) = _python_blocks(page)
    assert (first, code1, second) == (3, "import torch\nx = 1\n", 10)
    assert _needed_extras(code1) == ["torch"] and _needed_extras(code2) == ["faiss"]
    assert _needed_extras("from skmetric.deep import MetricEmbedder\n") == ["skorch", "torch"]
    page.write_text("```python\nx = 1\n", encoding="utf-8")
    with pytest.raises(ValueError, match="unterminated"):
        _python_blocks(page)
