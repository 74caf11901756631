"""Name lookup shared by the loss and miner registries."""

import difflib

from torch import nn


def _key(name, suffix):
    key = name.lower().replace("-", "").replace("_", "").replace(" ", "")
    if key.endswith(suffix) and key != suffix:
        key = key[: -len(suffix)]
    return key


def _registry(kind):
    """The registry and the aliases of ``kind``, 'loss' or 'miner'."""
    if kind == "loss":
        from .losses import ALIASES, LOSSES

        return LOSSES, ALIASES
    from .miners import ALIASES, MINERS

    return MINERS, ALIASES


def registered_class(kind, name):
    """The class registered as a ``kind`` ('loss' or 'miner') under a tolerant ``name``
    (case, '-', '_', spaces and a trailing ``kind`` ignored), directly or by an alias."""
    registry, aliases = _registry(kind)
    by_key = {_key(key, kind): cls for key, cls in registry.items()}
    for alias, target in aliases.items():
        by_key.setdefault(_key(alias, kind), registry[target])
    cls = by_key.get(_key(name, kind))
    if cls is None:
        raise ValueError(
            f"Unknown {kind} {name!r}{_closest(name, kind, [*registry, *aliases])} Valid "
            f"names: {sorted(registry)} (aliases: {sorted(aliases)}); or pass an instance "
            f"of your own {kind}."
        )
    return cls


def _closest(name, kind, names):
    """'; did you mean ...?' naming the registered name closest to a misspelt one, or '.'."""
    by_key = {_key(n, kind): n for n in names}
    close = difflib.get_close_matches(_key(str(name), kind), list(by_key), n=1, cutoff=0.6)
    return f"; did you mean {by_key[close[0]]!r}?" if close else "."


def lookup(kind, obj, params, optional=False):
    """Build the ``kind`` registered under the name ``obj`` with ``params``, or return an
    object as is (also None when ``optional``: no object of that kind)."""
    if isinstance(obj, str):
        return registered_class(kind, obj)(**params)
    if obj is None and optional:
        if params:
            raise ValueError(f"Parameters {sorted(params)} were given but {kind} is None.")
        return None
    valid_object = isinstance(obj, nn.Module) if kind == "loss" else callable(obj)
    if not valid_object:
        what = "an nn.Module" if kind == "loss" else "a callable"
        raise TypeError(
            f"{kind} must be a name in {sorted(_registry(kind)[0])} or {what}; got "
            f"{type(obj).__name__}."
        )
    if params:
        raise ValueError(
            f"Parameters {sorted(params)} can only be given with a {kind} name; set them on "
            f"the {kind} object itself."
        )
    return obj
