"""Declarative validation of the hyper-parameters of losses and miners.

A loss or miner class lists its parameters' valid values in ``_parameter_constraints``
(scikit-learn's vocabulary: ``Interval``, ``StrOptions``, ``"boolean"``...). The metaclass
checks the constructor's arguments against the constraints of the class and of its bases
before ``__init__`` runs, so every loss and miner, and every subclass a user writes, rejects
``margin=nan`` or ``scale=-1`` at construction with an error naming the class, the parameter
and the valid range, instead of training on it silently.
"""

import inspect
import math
from collections.abc import Callable
from numbers import Real
from typing import NamedTuple

from .._keywords import keyword_hint
from .._sklearn_compat import Interval, validate_parameter_constraints

#: Any finite real number (NaN and infinities are rejected).
FINITE = Interval(Real, float("-inf"), float("inf"), closed="neither")
#: A finite real number >= 0.
NON_NEGATIVE = Interval(Real, 0, float("inf"), closed="left")
#: A finite real number > 0.
POSITIVE = Interval(Real, 0, float("inf"), closed="neither")


def changed_params(obj, skip=()):
    """``"name=value"`` for each constructor parameter of ``obj`` (numbers, strings, None,
    tuples) that differs from its default, for ``extra_repr``: a loss built with
    ``margin=0.3`` (e.g. by ``loss__margin=0.3`` or a grid search) shows it."""
    shown = []
    for name, param in inspect.signature(type(obj)).parameters.items():
        if name in skip or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        value = getattr(obj, name, param.default)
        plain = value is None or isinstance(value, (Real, str, tuple))
        if plain and (param.default is param.empty or value != param.default):
            shown.append(f"{name}={value!r}")
    return shown


class ValidatedParams(type):
    """Metaclass that checks constructor arguments against ``_parameter_constraints``.

    A class may also accept pytorch-metric-learning's names for some of its parameters:
    ``pml_names = {"temperature": PMLName("scale", reciprocal, [POSITIVE])}`` turns
    ``temperature=t`` into ``scale=1 / t`` (after checking ``t`` against the constraints,
    by default those of the parameter it stands for).
    """

    def __call__(cls, *args, **kwargs):
        kwargs = cls._from_pml_names(kwargs)
        cls._check_names(kwargs)
        constraints = cls._all_constraints()
        if constraints:
            try:
                bound = inspect.signature(cls).bind(*args, **kwargs)
            except TypeError:
                bound = None  # wrong arguments: let __init__ raise Python's own TypeError
            if bound is not None:
                bound.apply_defaults()
                arguments = dict(bound.arguments)
                for name, param in bound.signature.parameters.items():
                    if param.kind is param.VAR_KEYWORD:  # passed on to a base's __init__
                        arguments.update(arguments.pop(name, {}))
                params = {k: v for k, v in arguments.items() if k in constraints}
                validate_parameter_constraints(
                    {k: constraints[k] for k in params}, params, caller_name=cls.__name__
                )
        return super().__call__(*args, **kwargs)

    @property
    def __signature__(cls):
        # The constructor's signature, not this metaclass's ``__call__(*args, **kwargs)``.
        sig = inspect.signature(cls.__init__)
        return sig.replace(parameters=list(sig.parameters.values())[1:])

    def _check_names(cls, kwargs):
        """Refuse an unknown keyword argument naming the closest accepted one (Python's
        own TypeError names neither), e.g. for ``loss__marginn=`` in an embedder."""
        params = inspect.signature(cls).parameters
        if any(p.kind is p.VAR_KEYWORD for p in params.values()):
            return
        accepted = sorted({*params, *getattr(cls, "pml_names", {}), *cls._extra_names()})
        for name in kwargs:
            if name not in params:
                hint = keyword_hint(name, accepted) or "."
                raise TypeError(
                    f"{cls.__name__} got an unexpected keyword argument {name!r}{hint} Its "
                    f"parameters are {', '.join(accepted)}.")

    def _extra_names(cls):
        """Keyword arguments a metaclass takes besides the constructor's (none here)."""
        return ()

    def _from_pml_names(cls, kwargs):
        """``kwargs`` with pytorch-metric-learning's parameter names replaced by ours."""
        aliases = getattr(cls, "pml_names", {})
        if not aliases.keys() & kwargs.keys():
            return kwargs
        kwargs = dict(kwargs)
        for pml_name, alias in aliases.items():
            if pml_name not in kwargs:
                continue
            if alias.name in kwargs:
                raise TypeError(
                    f"{cls.__name__} got both {alias.name}= and {pml_name}= "
                    f"(pytorch-metric-learning's name for {alias.name}); pass only one.")
            value = kwargs.pop(pml_name)
            constraints = alias.constraints or cls._all_constraints().get(alias.name)
            if constraints:
                validate_parameter_constraints({pml_name: constraints}, {pml_name: value},
                                               caller_name=cls.__name__)
            kwargs[alias.name] = alias.convert(value)
        return kwargs

    def _all_constraints(cls):
        merged = {}
        for klass in reversed(cls.__mro__):
            merged.update(vars(klass).get("_parameter_constraints", {}))
        return merged


def same(value):
    """The value as it is (a parameter that only has another name)."""
    return value


class PMLName(NamedTuple):
    """pytorch-metric-learning's name for a parameter: ours, and how its value converts."""

    name: str
    convert: Callable = same
    constraints: list | None = None


def reciprocal(value):
    """``1 / value`` (a temperature as a scale)."""
    return 1.0 / value


class _Radians(Interval):
    """An angle in radians in [0, π), with a hint for values given in degrees."""

    def __init__(self):
        super().__init__(Real, 0, math.pi, closed="left")

    def __str__(self):
        return ("an angle in radians in [0, pi) (if you meant degrees, pass "
                "math.radians(degrees))")


#: An angular margin in radians, in [0, π).
RADIANS = _Radians()
