"""Name lookup shared by the loss and miner registries."""

from torch import nn


def _key(name, suffix):
    key = name.lower().replace("-", "").replace("_", "").replace(" ", "")
    if key.endswith(suffix) and key != suffix:
        key = key[: -len(suffix)]
    return key


def lookup(obj, params, registry, kind, suffix, aliases=None):
    """Build ``registry[obj](**params)`` from a tolerant name, or return an object as is."""
    if isinstance(obj, str):
        by_key = {_key(name, suffix): cls for name, cls in registry.items()}
        for alias, name in (aliases or {}).items():
            by_key.setdefault(_key(alias, suffix), registry[name])
        cls = by_key.get(_key(obj, suffix))
        if cls is None:
            raise ValueError(
                f"Unknown {kind} {obj!r}. Valid names: {sorted(registry)} (aliases: "
                f"{sorted(aliases or {})}); or pass an instance of your own {kind}."
            )
        return cls(**params)
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
