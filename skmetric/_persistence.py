"""Saved estimators record the versions that wrote them, and warn when loaded under others.

scikit-learn records ``_sklearn_version`` in the pickled state of its own classes only:
``BaseEstimator.__getstate__`` adds it, and ``__setstate__`` checks it, when the class's
module starts with ``sklearn.``; for any other class both pass the state through unchanged.
A skmetric estimator pickled under one skmetric or scikit-learn version would then load
silently under another, although its fitted attributes may be read differently there.
:class:`VersionedStateMixin` adds a record of the versions around those methods (so
scikit-learn's, and skorch's for the deep embedders, still run), and the deep embedders'
``save_params`` files carry the same record (:func:`saved_versions`,
:func:`check_saved_versions`).

A state without the record was written before skmetric kept one: it loads with the warning,
saying that the versions are unknown (as scikit-learn does for its pickles that predate
``_sklearn_version``), since nothing says they match.
"""

import importlib

from ._warn import warn_user
from .exceptions import InconsistentVersionWarning

#: Key of the record (package name -> version) in a pickled state.
VERSIONS_KEY = "_skmetric_versions"
# Package name -> the module whose __version__ gives its version.
_MODULES = {"skmetric": "skmetric", "scikit-learn": "sklearn", "torch": "torch",
            "skorch": "skorch"}


def saved_versions(estimator):
    """The versions to record with ``estimator``: those of its ``_saved_version_packages``."""
    # str(): torch's __version__ is a TorchVersion, which torch.load(weights_only=True)
    # refuses to read back.
    return {name: str(importlib.import_module(_MODULES[name]).__version__)
            for name in estimator._saved_version_packages}


def check_saved_versions(estimator, saved):
    """Warn (:class:`InconsistentVersionWarning`) when ``saved`` is not the running versions.

    ``saved`` is the record read with the estimator, None when it has none.
    """
    current = saved_versions(estimator)
    if saved is None or any(saved.get(name) != version for name, version in current.items()):
        warn_user(InconsistentVersionWarning(estimator_name=type(estimator).__name__,
                                             saved_versions=saved, current_versions=current),
                  InconsistentVersionWarning)


class VersionedStateMixin:
    """Mixin: the pickled state records the versions that wrote it, checked on unpickling.

    Goes before ``BaseEstimator`` (or skorch's ``NeuralNet``) in the bases, whose
    ``__getstate__``/``__setstate__`` it extends.
    """

    #: The packages whose versions the state records (the deep embedders add torch, skorch).
    _saved_version_packages = ("skmetric", "scikit-learn")

    def __getstate__(self):
        return {**super().__getstate__(), VERSIONS_KEY: saved_versions(self)}

    def __setstate__(self, state):
        check_saved_versions(self, state.pop(VERSIONS_KEY, None))
        super().__setstate__(state)
