"""Sphinx configuration of skmetric's documentation site (built by ``bash scripts/docs.sh``).

Sphinx + MyST (the Markdown guides as they are) + numpydoc (the docstrings) + sphinx-gallery
(the executed examples in ``examples/``) + pydata-sphinx-theme; see ``README.md`` here for
why. The build needs no network: intersphinx uses the inventories in ``_inv/`` when present.
"""

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # document this checkout, not an installed copy
sys.path.insert(0, str(HERE / "_ext"))

import skmetric  # noqa: E402

project = "skmetric"
author = "the skmetric developers"
copyright = "the skmetric developers"  # noqa: A001
version = release = skmetric.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
    "registry_tables",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
templates_path = ["_templates"]
# README.md describes the docs folder for contributors; it is not a page of the site.
exclude_patterns = ["_build", "_inv", "README.md", "examples",
                    "auto_examples/*.ipynb", "auto_examples/*.py", "auto_examples/*.zip"]

# Markdown guides: GitHub-flavoured tables and ``$...$`` math already render; headings get
# anchors so that ``page.md#section`` links resolve.
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3

# API reference: one page per public object, generated from the docstrings.
autosummary_generate = True
autosummary_imported_members = False
autodoc_typehints = "none"
autodoc_default_options = {"members": True}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_ignore = {"of", "or", "shape", "default", "optional", "array-like", "the",
                        "and", "n_samples", "n_features", "n_components", "n", "callable"}
numpydoc_xref_aliases = {
    "ndarray": "numpy.ndarray",
    "Pipeline": "sklearn.pipeline.Pipeline",
    "Module": "torch.nn.Module",
    "Tensor": "torch.Tensor",
}

# Cross-links to Python, NumPy, SciPy, scikit-learn, PyTorch and skorch. The build runs
# offline: each inventory is read from _inv/<name>.inv when that file exists, and the
# project is skipped otherwise (its names then print as plain code, without a link).
_INVENTORIES = {
    "python": "https://docs.python.org/3/",
    "numpy": "https://numpy.org/doc/stable/",
    "scipy": "https://docs.scipy.org/doc/scipy/",
    "sklearn": "https://scikit-learn.org/stable/",
    "torch": "https://docs.pytorch.org/docs/stable/",
    "skorch": "https://skorch.readthedocs.io/en/stable/",
    "matplotlib": "https://matplotlib.org/stable/",
}
intersphinx_mapping = {
    name: (url, str(HERE / "_inv" / f"{name}.inv"))
    for name, url in _INVENTORIES.items()
    if (HERE / "_inv" / f"{name}.inv").is_file()
}

# Type names in Parameters link through intersphinx, so only with the inventories they need.
numpydoc_xref_param_type = {"python", "numpy"} <= set(intersphinx_mapping)

# Gallery: every examples/plot_*.py runs during the build; an error fails the build.
sphinx_gallery_conf = {
    "examples_dirs": "examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"__init__\.py",
    "abort_on_example_error": True,
    "only_warn_on_example_error": False,
    "download_all_examples": False,
    "remove_config_comments": True,
    "image_scrapers": ("matplotlib",),
    "matplotlib_animations": False,
    "within_subsection_order": "FileNameSortKey",
    "reference_url": {"skmetric": None},
    "doc_module": ("skmetric",),
    "backreferences_dir": "api/generated/backreferences",
    "show_memory": False,
}

html_theme = "pydata_sphinx_theme"
html_title = f"skmetric {release}"
html_static_path = []
html_theme_options = {
    "navbar_align": "left",
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version", "theme-version"],
}
html_sidebars = {"index": [], "choosing": []}
html_show_sourcelink = False


def _skip_member(app, what, name, obj, skip, options):
    # scikit-learn's generated set_{fit,score,...}_request methods (metadata routing) are
    # documented by scikit-learn; listing them on every estimator only adds noise.
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return skip


def setup(app):
    app.connect("autodoc-skip-member", _skip_member)
