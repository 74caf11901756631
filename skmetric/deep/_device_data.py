"""In-memory training data kept on the training device: one copy, batches indexed there.

skorch's default path builds every batch on the host (a sample at a time, then stacked)
and copies it to the device in ``infer``: on a GPU, a host-to-device copy per batch
that waits for the device. When the training arrays fit in the device's free memory
they are moved there once instead; a batch is then one indexing of the device tensors
(``__getitems__``, which ``DataLoader`` calls with the batch's indices), and only the
batch's indices travel (a few hundred integers, copied without waiting).
"""

import numpy as np
import torch
from skorch.dataset import Dataset as SkorchDataset
from torch.utils.data import Dataset, Subset

from ._sync import to_device

#: The share of the device's free memory the training data may take.
MEMORY_SHARE = 0.5


class DeviceTensorDataset(Dataset):
    """Training samples ``X`` and labels ``y`` as tensors on one device.

    Parameters
    ----------
    X, y : torch.Tensor
        Samples and labels, on the same device, with as many rows.
    """

    def __init__(self, X, y):
        self.X = X
        self.y = y

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        return self.X[i], self.y[i]

    def __getitems__(self, indices):
        """The whole batch at once: one gather on the device."""
        idx = to_device(torch.as_tensor(indices, dtype=torch.long), self.X.device)
        return self.X[idx], self.y[idx]


def keep_batch(batch):
    """The ``collate_fn`` of a :class:`DeviceTensorDataset`: its batches are already built."""
    return batch


def device_dataset(X, y, device, share=MEMORY_SHARE):
    """A :class:`DeviceTensorDataset` of ``X`` and ``y`` on ``device``, or None.

    None when ``X`` is not a NumPy array of numbers (a dataset, file paths...) or when
    the arrays would take more than ``share`` of the device's free memory.
    """
    if not isinstance(X, np.ndarray) or X.dtype.kind not in "fiub" or y is None \
            or device is None:  # device=None: skorch leaves the data where it is
        return None
    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        if X.nbytes + np.asarray(y).nbytes > share * free:
            return None
    return DeviceTensorDataset(torch.as_tensor(X).to(device), torch.as_tensor(y).to(device))


def on_device(dataset, device, share=MEMORY_SHARE):
    """A training dataset moved to ``device``, and the DataLoader arguments it needs.

    ``dataset`` qualifies when it is skorch's ``Dataset`` of arrays (or a ``Subset`` of
    one, from ``train_split``) that fit: then its arrays are copied once per fit (the copy
    is kept on skorch's dataset, which lives for one fit) and the batches, gathered by
    ``__getitems__``, need no collation. Otherwise ``(dataset, {})``: skorch's path.
    """
    base = dataset.dataset if isinstance(dataset, Subset) else dataset
    if type(base) is not SkorchDataset:
        return dataset, {}
    moved = getattr(base, "_skmetric_on_device", None)
    if moved is None:
        moved = device_dataset(base.X, base.y, device, share)
        if moved is None:
            return dataset, {}
        base._skmetric_on_device = moved  # the next epochs reuse the copy
    if isinstance(dataset, Subset):
        moved = Subset(moved, dataset.indices)
    return moved, {"collate_fn": keep_batch}
