"""Write numpy.inv, torch.inv and skorch.inv: small intersphinx inventories of the objects
these docs refer to, for an offline build.

python.inv, scipy.inv and sklearn.inv are the inventories shipped by Debian 12's documentation
packages (python3.11-doc, python-scipy-doc, python-sklearn-doc: usr/share/doc/*/html/objects.inv).
Debian ships none for NumPy, PyTorch or skorch, so these three are listed here by hand: each
entry is an object and its page in that project's documentation (stable URL layouts). To link
a new object, add it below and run ``python docs/_inv/make_small_inventories.py``.
"""

import zlib
from pathlib import Path

INVENTORIES = {
    "numpy": {
        "py:class": {
            "numpy.ndarray": "reference/generated/numpy.ndarray.html#numpy.ndarray",
            "numpy.dtype": "reference/generated/numpy.dtype.html#numpy.dtype",
            "numpy.random.RandomState":
                "reference/random/legacy.html#numpy.random.RandomState",
            "numpy.random.Generator": "reference/random/generator.html#numpy.random.Generator",
        },
        "std:term": {
            "array_like": "glossary.html#term-array_like",
        },
        "std:label": {
            "arrays.scalars": "reference/arrays.scalars.html#arrays-scalars",
        },
    },
    "torch": {
        "py:class": {
            "torch.Tensor": "tensors.html#torch.Tensor",
            "torch.nn.Module": "generated/torch.nn.Module.html#torch.nn.Module",
            "torch.device": "tensor_attributes.html#torch.device",
            "torch.dtype": "tensor_attributes.html#torch.dtype",
            "torch.utils.data.Sampler": "data.html#torch.utils.data.Sampler",
            "torch.utils.data.Dataset": "data.html#torch.utils.data.Dataset",
            "torch.optim.Optimizer": "optim.html#torch.optim.Optimizer",
        },
    },
    "skorch": {
        "py:class": {
            "skorch.net.NeuralNet": "net.html#skorch.net.NeuralNet",
            "skorch.NeuralNet": "net.html#skorch.net.NeuralNet",
            "skorch.dataset.ValidSplit": "dataset.html#skorch.dataset.ValidSplit",
            "skorch.callbacks.Callback": "callbacks.html#skorch.callbacks.Callback",
        },
    },
}


def write(project, entries, path):
    # std:label entries need a display name (their section title); "-" means the name itself.
    lines = [f"{name} {role} 1 {uri} {'Scalars' if role == 'std:label' else '-'}"
             for role, names in entries.items() for name, uri in sorted(names.items())]
    header = (f"# Sphinx inventory version 2\n# Project: {project}\n# Version: \n"
              "# The remainder of this file is compressed using zlib.\n")
    path.write_bytes(header.encode() + zlib.compress(("\n".join(lines) + "\n").encode()))


if __name__ == "__main__":
    for project, entries in INVENTORIES.items():
        write(project, entries, Path(__file__).with_name(f"{project}.inv"))
