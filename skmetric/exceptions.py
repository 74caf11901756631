"""Warnings of skmetric that users may want to filter by class."""

import functools

from sklearn.exceptions import InconsistentVersionWarning as _SkInconsistentVersionWarning


# A subclass of scikit-learn's warning, not a new one: a filter users already set for
# scikit-learn's models (``warnings.filterwarnings("ignore",
# category=sklearn.exceptions.InconsistentVersionWarning)``, ``-W error::...``) covers
# skmetric's too. Its own message is needed: scikit-learn's names one "version", which for a
# skmetric model would not say of which package.
class InconsistentVersionWarning(_SkInconsistentVersionWarning):
    """A saved skmetric model is loaded under other versions than those that saved it.

    Pickled skmetric estimators (and a deep embedder's ``save_params`` files) record the
    versions of skmetric and scikit-learn (and, for the deep embedders, of torch and skorch)
    that wrote them. Loading one under other versions warns: the fitted state may be read
    differently there, so results may differ from the saved model's. A subclass of
    :class:`sklearn.exceptions.InconsistentVersionWarning`, so that filters on
    scikit-learn's warning apply to it as well.

    Parameters
    ----------
    estimator_name : str
        The class of the loaded estimator.
    saved_versions : dict or None
        Package name -> version that saved it; None for a model saved before skmetric
        recorded them.
    current_versions : dict
        Package name -> version loading it.

    Attributes
    ----------
    original_sklearn_version, current_sklearn_version : str
        scikit-learn's versions, as in scikit-learn's warning ('unknown' when not recorded).
    """

    def __init__(self, *, estimator_name, saved_versions, current_versions):
        super().__init__(
            estimator_name=estimator_name,
            current_sklearn_version=current_versions.get("scikit-learn", "unknown"),
            original_sklearn_version=(saved_versions or {}).get("scikit-learn", "unknown"),
        )
        self.saved_versions = saved_versions
        self.current_versions = current_versions

    def __str__(self):
        current = self.current_versions
        if self.saved_versions is None:
            saved = "was saved by a skmetric version that did not record its versions,"
            loaded = _versions(current, current)
        else:
            differ = [name for name in current if self.saved_versions.get(name) != current[name]]
            saved = f"was saved with {_versions(self.saved_versions, differ)}"
            loaded = _versions(current, differ)
        return (
            f"{self.estimator_name} {saved} and is loaded with {loaded}: its fitted state "
            "may be read differently, so its results may differ from the saved model's. "
            "Refit it under these versions, or save it again (after checking its results) to "
            "record them."
        )

    def __reduce__(self):
        # Picklable (a warning turned into an error in a joblib worker travels back).
        return functools.partial(type(self), estimator_name=self.estimator_name,
                                 saved_versions=self.saved_versions,
                                 current_versions=self.current_versions), ()


def _versions(versions, names):
    """'skmetric 0.1.0, scikit-learn 1.9.1' for the packages ``names``."""
    return ", ".join(f"{name} {versions.get(name, 'unknown')}" for name in names)
