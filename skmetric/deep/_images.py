"""Images kept as uint8 arrays or as files, converted one batch at a time.

``MetricEmbedder`` accepts uint8 image arrays (NumPy, or torch tensors), (n, height, width),
(n, channels, height, width) or (n, height, width, channels), and 1-D arrays (or pandas
Series) of image file paths. Neither is
converted whole to float32: the data loader hands the network uint8 batches in channels-first
order (a file is decoded with Pillow when its sample is drawn), and each batch is scaled to
[0, 1] float32 on the device (:func:`to_float_batch`). A folder of 100k images, or a uint8
array four times smaller than its float32 copy, then trains in bounded memory.
"""

import os

import numpy as np
import torch
from sklearn.utils.validation import check_consistent_length, column_or_1d
from torch.utils.data import Dataset

_CHANNELS = (1, 3, 4)


class ImageSource:
    """A lazy image collection with the shape (n, channels, height, width) it presents.

    Parameters
    ----------
    data : ndarray of uint8 or ndarray of str
        uint8 images, or the paths of image files.
    layout : {'nchw', 'nhwc', 'nhw', 'paths'}
    shape : tuple of int
        (n, channels, height, width) of the samples handed to the network.
    mode : str or None
        Pillow mode the files are converted to ('RGB', 'L'...).
    size : tuple of int or None
        (height, width) the files are resized to.
    """

    ndim = 4

    def __init__(self, data, layout, shape, mode=None, size=None):
        self.data = data
        self.layout = layout
        self.shape = tuple(int(s) for s in shape)
        self.mode = mode
        self.size = size

    def __len__(self):
        return self.shape[0]

    def sample(self, i):
        """Sample ``i`` as a uint8 array (channels, height, width)."""
        if self.layout == "paths":
            image = _read_image(self.data[i], self.mode, self.size)
            if image.shape != self.shape[1:]:
                fix = ("Resize them all on loading: dataset__image_size=(height, width)."
                       if image.shape[0] == self.shape[1] else
                       "Convert them all on loading: dataset__mode='RGB' (or 'L' for grey).")
                raise ValueError(
                    f"Image {os.fspath(self.data[i])!r} has shape {image.shape} (channels, "
                    f"height, width) where the others have {self.shape[1:]}. {fix}"
                )
            return image
        x = self.data[i]
        if self.layout == "nhwc":
            return x.transpose(2, 0, 1)
        if self.layout == "nhw":
            return x[None]
        return x


def as_image_source(X, mode="RGB", size=None):
    """An :class:`ImageSource` for uint8 images or file paths; None for any other X.

    Parameters
    ----------
    X : object
        What the user passed.
    mode : str, default='RGB'
        Pillow mode for files: 'RGB' (3 channels) or 'L' (grey, 1 channel)...
    size : tuple of int or None
        (height, width) to resize files to; None keeps their size (all must agree).
    """
    if isinstance(X, ImageSource):
        return X
    if isinstance(X, torch.Tensor) and X.dtype == torch.uint8 and X.ndim in (3, 4):
        # As the same images in NumPy (they were trained on unscaled, as 0..255 floats).
        X = X.detach().cpu().numpy()
    if isinstance(X, np.ndarray) and X.dtype == np.uint8 and X.ndim in (3, 4):
        return _array_source(X)
    paths = _as_paths(X)
    if paths is None:
        return None
    if len(paths) == 0:
        raise ValueError("X holds no image paths; pass at least one.")
    if size is not None:
        size = _check_size(size)
    first = _read_image(paths[0], mode, size)
    return ImageSource(paths, "paths", (len(paths), *first.shape), mode=mode, size=size)


def _array_source(X):
    n = X.shape[0]
    if X.ndim == 3:
        return ImageSource(X, "nhw", (n, 1, *X.shape[1:]))
    if X.shape[3] in _CHANNELS and X.shape[1] not in _CHANNELS:
        h, w, c = X.shape[1:]
        return ImageSource(X, "nhwc", (n, c, h, w))
    return ImageSource(X, "nchw", X.shape)


def _as_paths(X):
    """X as a 1-D object array of paths, or None when X is not a sequence of paths."""
    if isinstance(X, (str, os.PathLike)):
        raise TypeError(
            f"X is a single path {os.fspath(X)!r}; pass a list or 1-D array of image paths "
            "(e.g. sorted(pathlib.Path(folder).glob('*/*.png')))."
        )
    if not isinstance(X, np.ndarray) and getattr(X, "ndim", None) == 1 and \
            getattr(getattr(X, "dtype", None), "kind", None) in ("O", "U", "S"):
        X = np.asarray(X)  # a pandas Series or Index of paths (e.g. a DataFrame's column)
    if isinstance(X, np.ndarray):
        if X.ndim != 1 or X.dtype.kind not in "OUS":
            return None
    elif not isinstance(X, (list, tuple)):
        return None
    if len(X) == 0 or not all(isinstance(p, (str, os.PathLike)) for p in X):
        return None
    paths = np.empty(len(X), dtype=object)
    paths[:] = [os.fspath(p) for p in X]
    return paths


def _check_size(size):
    if isinstance(size, int):
        size = (size, size)
    size = tuple(size)
    if len(size) != 2 or not all(isinstance(s, (int, np.integer)) and s > 0 for s in size):
        raise ValueError(f"dataset__image_size must be (height, width) of positive ints or "
                         f"one int; got {size!r}.")
    return tuple(int(s) for s in size)


def _read_image(path, mode, size):
    from PIL import Image

    try:
        with Image.open(path) as image:
            if not mode and image.mode in ("P", "PA"):
                # Palette images as their colours, not their palette indices.
                mode = "RGBA" if image.mode == "PA" or "transparency" in image.info \
                    else "RGB"
            image = image.convert(mode) if mode else image.copy()
    except FileNotFoundError:
        raise FileNotFoundError(f"Image file {os.fspath(path)!r} not found.") from None
    except OSError as exc:
        raise ValueError(f"Cannot read {os.fspath(path)!r} as an image: {exc}") from None
    except ValueError as exc:  # Pillow's "conversion not supported", "image has wrong mode"
        raise ValueError(
            f"Cannot convert {os.fspath(path)!r} to dataset__mode={mode!r} ({exc}); use a "
            "Pillow mode such as 'RGB', 'L' or 'RGBA'.") from None
    if size is not None:
        image = image.resize((size[1], size[0]), Image.BILINEAR)
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise ValueError(
            f"{os.fspath(path)!r} decodes to {array.dtype} pixels (Pillow mode "
            f"{image.mode!r}); pass dataset__mode='RGB' or 'L' to convert to 8 bits."
        )
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def check_image_data(estimator, X, y=None, *, reset, y_required=False):
    """Validate lazy image input as ``validate_data`` does arrays; None if X is not one.

    Returns ``(source, y)`` (``y`` as a 1-D array, or None), and sets ``n_features_in_``
    (the channels) when ``reset``.
    """
    params = estimator.get_params_for("dataset")
    source = as_image_source(X, mode=params.get("mode", "RGB"), size=params.get("image_size"))
    for_files = sorted({"image_size", "mode"} & set(params))
    if y_required and for_files and getattr(source, "layout", None) != "paths":
        # (uint8 arrays kept their size and channels silently; float arrays reached
        # skorch's Dataset, "got an unexpected keyword argument 'image_size'")
        raise ValueError(
            f"dataset__{for_files[0]} applies to image files (X a list of paths), which "
            "are converted as they are read; X holds no paths. Resize or convert arrays "
            "before fit and transform, or drop the parameter.")
    if source is None:
        return None
    if y is None and y_required:
        raise ValueError(f"{type(estimator).__name__} requires y to be passed, but the "
                         "target y is None.")
    if y is not None:
        y = column_or_1d(np.asarray(y), warn=True)
        check_consistent_length(np.empty(len(source)), y)
    if len(source) < (2 if reset else 1):
        raise ValueError(f"Found {len(source)} image(s) while a minimum of "
                         f"{2 if reset else 1} is required.")
    if reset:
        estimator.n_features_in_ = source.shape[1]
        if hasattr(estimator, "feature_names_in_"):
            del estimator.feature_names_in_
    return source, y


class ImageDataset(Dataset):
    """A torch Dataset over an :class:`ImageSource` (uint8 samples) and its labels.

    Parameters
    ----------
    source : ImageSource
    y : ndarray or None
    """

    def __init__(self, source, y=None):
        self.source = source
        self.X = source
        self.y = y

    def __len__(self):
        return len(self.source)

    def __getitem__(self, i):
        x = torch.from_numpy(np.array(self.source.sample(i)))  # a copy: X may be read-only
        y = torch.tensor(float("nan")) if self.y is None else self.y[i]
        return x, y


def to_float_batch(x):
    """A uint8 image batch as float32 in [0, 1] (other batches are returned as they are)."""
    if isinstance(x, torch.Tensor) and x.dtype == torch.uint8:
        return x.to(torch.float32).div_(255)
    return x
