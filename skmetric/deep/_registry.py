"""Name lookup shared by the loss and miner registries."""

from torch import nn


def _key(name, suffix):
    key = name.lower().replace("-", "").replace("_", "").replace(" ", "")
    if key.endswith(suffix) and key != suffix:
        key = key[: -len(suffix)]
    return key


def registered_class(name, registry, kind, suffix, aliases=None):
    """The class registered under a tolerant ``name`` (case, '-', '_', spaces and the
    ``suffix`` ignored), directly or through ``aliases``."""
    by_key = {_key(key, suffix): cls for key, cls in registry.items()}
    for alias, target in (aliases or {}).items():
        by_key.setdefault(_key(alias, suffix), registry[target])
    cls = by_key.get(_key(name, suffix))
    if cls is None:
        raise ValueError(
            f"Unknown {kind} {name!r}. Valid names: {sorted(registry)} (aliases: "
            f"{sorted(aliases or {})}); or pass an instance of your own {kind}."
        )
    return cls


def lookup(obj, params, registry, kind, suffix, aliases=None):
    """Build ``registry[obj](**params)`` from a tolerant name, or return an object as is."""
    if isinstance(obj, str):
        return registered_class(obj, registry, kind, suffix, aliases)(**params)
    valid_object = isinstance(obj, nn.Module) if kind == "loss" else callable(obj)
    if not valid_object:
        what = "an nn.Module" if kind == "loss" else "a callable"
        raise TypeError(
            f"{kind} must be a name in {sorted(registry)} or {what}; got {type(obj).__name__}."
        )
    if params:
        raise ValueError(
            f"Parameters {sorted(params)} can only be given with a {kind} name; set them on "
            f"the {kind} object itself."
        )
    return obj
