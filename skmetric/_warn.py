"""Warnings that point at the user's line, however deep inside the library they arise.

A fixed ``stacklevel`` is right for one call path only: a loss warns from its constructor,
which the user calls directly, through ``get_loss``, or through ``MetricEmbedder.fit`` and
skorch, and the metaclasses add frames of their own; a retrieval metric warns from a helper
reached through scikit-learn's ``validate_params`` wrapper, ``retrieval_report`` or
``skmetric.dask``, and a learner's from ``fit`` called directly or through a ``Pipeline``
(whose ``joblib.Memory`` adds frames). :func:`warn_user` instead attributes the warning to
the first frame outside skmetric and the libraries it runs inside (skorch, scikit-learn,
torch, joblib, scipy, numpy), i.e. to the user's code (Python 3.12's ``skip_file_prefixes``
does this; 3.11 does not have it), so ``warnings.catch_warnings(record=True)``,
``-W error::UserWarning:module`` filters and "once per location" all see the user's file.
"""

import os
import sys
import warnings

# joblib: a Pipeline fits its steps through joblib.Memory; scipy and numpy call back into
# skmetric (an optimiser's objective, a vectorised function).
_LIBRARIES = ("skmetric", "skorch", "sklearn", "torch", "joblib", "scipy", "numpy")


def _library_dirs():
    dirs = []
    for name in _LIBRARIES:
        module = sys.modules.get(name)
        if module is not None and getattr(module, "__file__", None):
            dirs.append(os.path.dirname(os.path.abspath(module.__file__)) + os.sep)
    return tuple(dirs)


def warn_user(message, category=UserWarning):
    """``warnings.warn(message, category)`` at the first caller outside the libraries."""
    dirs = _library_dirs()
    frame, level = sys._getframe(1), 2  # level 2: warn_user's caller
    while frame.f_back is not None and os.path.abspath(frame.f_code.co_filename).startswith(
            dirs):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)


def verbose_name(estimator):
    """The prefix of ``estimator``'s progress lines if it is verbose, else None.

    The name of the class the user constructed (``ITML_Supervised``, not the ``ITML`` whose
    solver it runs; a subclass's own name), so that the lines of two learners fitted in
    one script tell them apart, and every learner follows the same rule.
    """
    return type(estimator).__name__ if estimator.verbose else None


def progress(name, message):
    """Print ``[name] message`` (flushed, for logs of long fits) if ``name`` is set.

    ``name`` is :func:`verbose_name`'s: the private solvers take it as their ``verbose``.
    """
    if name:
        print(f"[{name}] {message}", flush=True)
