"""Doctest collection over the package: skip modules whose optional extra is missing."""

import importlib.util


def _missing(*modules):
    return any(importlib.util.find_spec(m) is None for m in modules)


collect_ignore = ["skmetric/__main__.py"]  # importing it runs the demo
if _missing("torch", "skorch"):
    collect_ignore.append("skmetric/deep")
if _missing("matplotlib"):
    collect_ignore.append("skmetric/plotting.py")
