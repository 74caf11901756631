"""Constructor keywords that name no parameter: metric-learn's old names and typos.

For ``NCA(n_component=2)`` or ``ITML_Supervised(num_constraints=200)`` Python only says
"unexpected keyword argument". The estimators name the parameter meant instead: one that
metric-learn renamed (metric-learn 0.7 still accepts ``num_constraints``,
``convergence_threshold`` and ``num_chunks`` with a warning) by its current name, a misspelt
one by its closest match, and otherwise they list the valid parameters.
"""

import difflib
import functools
import inspect

# metric-learn's old name -> the current names it stood for (a class has at most one).
METRIC_LEARN_NAMES = {
    "num_constraints": ("n_constraints",),  # renamed in metric-learn 0.7.0
    "convergence_threshold": ("tol",),  # 0.7.0 (ITML, MMC)
    "num_chunks": ("n_chunks",),  # 0.7.0 (RCA_Supervised)
    "num_dims": ("n_components",),  # 0.5.0
    "A0": ("prior", "init"),  # 0.5.0 (prior: ITML, SDML, LSML; init: NCA, MLKR, MMC)
}


def keyword_hint(name, valid):
    """What an unknown keyword ``name`` probably meant among ``valid``: '' if nothing close.

    The text follows the error's "unexpected keyword argument 'name'".
    """
    for new in METRIC_LEARN_NAMES.get(name, ()):
        if new in valid:
            return f" (metric-learn's old name for {new}); pass {new}= instead."
    close = difflib.get_close_matches(name, sorted(valid), n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""


@functools.lru_cache(maxsize=256)
def _keyword_names(cls):
    """The keyword parameters of ``cls.__init__`` in order, or None if it takes **kwargs."""
    params = inspect.signature(cls.__init__).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return None
    return tuple(n for n, p in params.items() if n != "self" and p.kind in
                 (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))


def check_keywords(cls, kwargs):
    """Raise a TypeError naming the parameter meant by the first keyword ``cls`` lacks.

    Classes whose ``__init__`` takes ``**kwargs`` check their keywords themselves.
    """
    valid = _keyword_names(cls)
    if valid is None:
        return
    for name in kwargs:
        if name not in valid:
            hint = keyword_hint(name, valid) or f". Its parameters: {', '.join(valid)}."
            raise TypeError(
                f"{cls.__name__}.__init__() got an unexpected keyword argument {name!r}{hint}")


class KeywordCheckMixin:
    """Mixin: an unknown constructor keyword gets :func:`check_keywords`'s error.

    The check runs in ``__new__``, before ``__init__`` (which stays scikit-learn's plain
    assignment of parameters) would raise Python's bare TypeError.
    """

    def __new__(cls, *args, **kwargs):
        if kwargs:
            check_keywords(cls, kwargs)
        return super().__new__(cls)
