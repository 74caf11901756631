"""``.. registry-table:: skmetric.deep.losses.LOSSES``: a table of a registry's entries.

One row per class of the registry (the class and the string option that selects it, and the
paper it implements, read from the first entry of the class's References section), so the
API reference lists every loss and miner with its paper straight from the docstrings. A
class with no References of its own inherits its parent's (a miner preset of a general
miner); a class with none at all is listed as "no paper" only if the directive names it in
``:no-paper:``, and otherwise fails the build, so that a new loss cannot lose its citation.
"""

import importlib
import inspect
import re

from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from numpydoc.docscrape import NumpyDocString
from sphinx.util.docutils import SphinxDirective


def _first_reference(cls):
    """The first citation of the References section of ``cls`` or of its nearest ancestor."""
    for klass in inspect.getmro(cls):
        doc = inspect.getdoc(klass) if "__doc__" in vars(klass) else None
        if not doc:
            continue
        lines = NumpyDocString(doc)["References"]
        text = " ".join(line.strip() for line in lines if line.strip())
        if text:
            first = re.split(r"\s*\.\. \[\d+\]\s*", text)
            first = [part for part in first if part]
            return first[0], klass
    return None, None


def _resolve(path):
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name), module


class RegistryTable(SphinxDirective):
    required_arguments = 1
    option_spec = {"no-paper": directives.unchanged}

    def run(self):
        registry, module = _resolve(self.arguments[0])
        no_paper = set(self.options.get("no-paper", "").split())
        names_by_class = {}
        for key, cls in registry.items():
            names_by_class.setdefault(cls, []).append(key)
        rows = []
        for cls, keys in names_by_class.items():
            reference, owner = _first_reference(cls)
            if reference is None:
                if cls.__name__ not in no_paper:
                    raise self.error(
                        f"{cls.__name__} (in {self.arguments[0]}) has no References section; "
                        "add its paper to the docstring, or list it in :no-paper:.")
                reference = "— (no paper: a baseline)"
            elif owner is not cls:
                parent = f":class:`~{module}.{owner.__name__}`"
                reference = f"{reference} (the paper of its parent {parent})"
            names = ", ".join(f"``'{key}'``" for key in keys)
            rows.append((f":class:`~{module}.{cls.__name__}` ({names})", reference))
        lines = [".. list-table::", "   :header-rows: 1", "   :widths: 35 65", "",
                 "   * - Class and name", "     - Paper"]
        for row in rows:
            lines += [f"   * - {row[0]}", f"     - {row[1]}"]
        container = nodes.container()
        self.state.nested_parse(StringList(lines, source=self.arguments[0]), 0, container)
        return container.children


def setup(app):
    app.add_directive("registry-table", RegistryTable)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
