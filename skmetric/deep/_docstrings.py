"""The runnable example that most losses' docstrings end with, written once.

Most losses show the same thing: a random batch of embeddings in 4 classes, and the loss of
it, a scalar (a proxy loss is built for those classes first). :func:`loss_example` appends
that ``Examples`` section to the class's docstring when the class is defined, so
``help(ContrastiveLoss)``, the API pages and the doctests (pytest's ``--doctest-modules``
reads ``__doc__``) all have it; a loss whose example shows something else writes its own
section instead.
"""

import inspect

_LOSS_EXAMPLE = """\
Examples
--------
>>> import torch
>>> from skmetric.deep.losses import {name}
>>> emb = torch.randn(8, 4, requires_grad=True)
>>> {name}({params})(emb, torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])).ndim
0
"""

_PROXY_LOSS_EXAMPLE = """\
Examples
--------
>>> import torch
>>> from skmetric.deep.losses import {name}
>>> loss = {name}(num_classes=4, embedding_size=8{params})
>>> emb = torch.randn(12, 8, requires_grad=True)
>>> loss(emb, torch.arange(12) % 4).ndim
0
"""


def loss_example(**params):
    """Class decorator: end the loss's docstring with the standard runnable example.

    ``params`` are the constructor arguments the example shows (e.g. ``margin=0.1``);
    a proxy loss (``requires_classes``) also gets ``num_classes`` and ``embedding_size``.
    """
    def decorate(cls):
        if "\nExamples\n" in inspect.cleandoc(cls.__doc__ or ""):
            raise ValueError(f"{cls.__name__} writes its own Examples section; remove it or "
                             "the @loss_example decorator.")
        shown = ", ".join(f"{name}={_literal(value)}" for name, value in params.items())
        if getattr(cls, "requires_classes", False):
            example = _PROXY_LOSS_EXAMPLE.format(name=cls.__name__,
                                                 params=shown and f", {shown}")
        else:
            example = _LOSS_EXAMPLE.format(name=cls.__name__, params=shown)
        cls.__doc__ = append_section(cls.__doc__, example)
        return cls

    return decorate


def _literal(value):
    """``repr(value)``, with double quotes for a string (the house style)."""
    return f'"{value}"' if isinstance(value, str) else repr(value)


def append_section(doc, section):
    """``doc`` (a raw, indented docstring) ending with ``section``, indented as its body."""
    lines = doc.expandtabs().splitlines()
    indent = min((len(line) - len(line.lstrip()) for line in lines[1:] if line.strip()),
                 default=0)
    pad = " " * indent
    body = "".join(f"{pad}{line}\n" if line else "\n" for line in section.splitlines())
    return f"{doc.rstrip()}\n\n{body}{pad}"
