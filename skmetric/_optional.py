"""Import helpers for optional dependencies (the ``deep``, ``gpu``, ``faiss``, ``plot`` extras)."""

import importlib

_EXTRA_OF = {
    "torch": "deep",
    "skorch": "deep",
    "cupy": "gpu",
    "faiss": "faiss",
    "matplotlib": "plot",
    "array_api_compat": "core",
    "dask": "dask",
    "distributed": "dask",
}


def import_optional(module, *, feature=None, extra=None):
    """Import ``module`` or raise an ImportError that names the extra to install.

    Parameters
    ----------
    module : str
        Importable module name, e.g. ``"torch"``.
    feature : str, default=None
        What needs the module, used in the error message.
    extra : str, default=None
        The ``skmetric[extra]`` that provides it; looked up when omitted.

    Returns
    -------
    module : module
        The imported module.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        extra = extra or _EXTRA_OF.get(top, top)
        what = feature or "This feature of skmetric"
        raise ImportError(
            f"{what} requires the optional dependency '{top}', which is not "
            f"installed. Install it with: pip install 'skmetric[{extra}]'"
        ) from exc
