"""Loaders of image data sets stored on disk (no downloads).

Fashion-MNIST is read from the files the Debian/Ubuntu package ``dataset-fashion-mnist``
installs (``sudo apt-get install dataset-fashion-mnist``), or from any directory holding the
four idx files of the original distribution, compressed or not: passed as ``path`` or named by
the environment variable ``SKMETRIC_FASHION_MNIST``.
"""

import gzip
import os

import numpy as np

DEFAULT_FASHION_MNIST_PATH = "/usr/share/datasets/fashion-mnist"
#: Environment variable naming the directory of the idx files (read when ``path`` is None).
FASHION_MNIST_ENV = "SKMETRIC_FASHION_MNIST"

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)

_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

# idx type codes (third byte of the magic number) -> big-endian NumPy dtype
_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def load_fashion_mnist(path=None, subset="train", *, as_images=True,
                       scale=True, dtype=np.float32, n_samples=None):
    """Load Fashion-MNIST (Xiao et al., 2017) from its idx files.

    Parameters
    ----------
    path : str or os.PathLike, default=None
        Directory holding ``train-images-idx3-ubyte[.gz]``, ``train-labels-idx1-ubyte[.gz]``,
        ``t10k-images-idx3-ubyte[.gz]`` and ``t10k-labels-idx1-ubyte[.gz]``. None reads the
        environment variable ``SKMETRIC_FASHION_MNIST``, and without it
        ``/usr/share/datasets/fashion-mnist``, where ``apt-get install
        dataset-fashion-mnist`` puts them.
    subset : {'train', 'test', 'all'}, default='train'
        The 60 000 training images, the 10 000 test images, or both (train first).
    as_images : bool, default=True
        Return X of shape (n, 1, 28, 28), ready for a CNN; else (n, 784).
    scale : bool, default=True
        Divide the pixel values by 255, to [0, 1].
    dtype : dtype, default=np.float32
        dtype of X.
    n_samples : int, default=None
        Keep only the first ``n_samples`` samples (quick experiments).

    Returns
    -------
    X : ndarray of shape (n, 1, 28, 28) or (n, 784)
    y : ndarray of shape (n,) of int64
        Class indices; their names are ``FASHION_MNIST_CLASSES``.

    Raises
    ------
    FileNotFoundError
        When the files are missing, with the command that installs them.

    References
    ----------
    Xiao, Rasul and Vollgraf, "Fashion-MNIST: a Novel Image Dataset for Benchmarking
    Machine Learning Algorithms", arXiv:1708.07747, 2017.

    Examples
    --------
    >>> from skmetric.deep.datasets import load_fashion_mnist
    >>> X, y = load_fashion_mnist(subset="test", n_samples=100)  # doctest: +SKIP
    >>> X.shape, y.shape  # doctest: +SKIP
    ((100, 1, 28, 28), (100,))
    """
    subsets = {"train": ["train"], "test": ["test"], "all": ["train", "test"]}
    if path is None:
        path = os.environ.get(FASHION_MNIST_ENV) or DEFAULT_FASHION_MNIST_PATH
    if subset not in subsets:
        raise ValueError(f"subset must be one of {sorted(subsets)}; got {subset!r}.")
    if n_samples is not None and int(n_samples) < 1:
        raise ValueError(f"n_samples must be a positive integer or None; got {n_samples!r}.")
    Xs, ys = [], []
    for part in subsets[subset]:
        images_name, labels_name = _FILES[part]
        images = read_idx(_find_file(path, images_name))
        labels = read_idx(_find_file(path, labels_name))
        if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
            raise ValueError(
                f"Inconsistent Fashion-MNIST files in {os.fspath(path)!r}: images of shape "
                f"{images.shape} and labels of shape {labels.shape}."
            )
        Xs.append(images)
        ys.append(labels)
    X, y = np.concatenate(Xs), np.concatenate(ys).astype(np.int64)
    if n_samples is not None:
        X, y = X[: int(n_samples)], y[: int(n_samples)]
    X = X.astype(dtype)
    if scale:
        X /= 255
    X = X[:, None] if as_images else X.reshape(X.shape[0], -1)
    return X, y


def read_idx(filename):
    """Read an idx file (the MNIST format), gzip-compressed when its name ends in ``.gz``.

    The format is a magic number ``0x0000TTDD`` (T the type code, D the number of
    dimensions), then D big-endian uint32 sizes, then the data in C order.

    Parameters
    ----------
    filename : str or os.PathLike

    Returns
    -------
    data : ndarray
        Of the dtype and shape stored in the file (native byte order).
    """
    opener = gzip.open if os.fspath(filename).endswith(".gz") else open
    with opener(filename, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{os.fspath(filename)!r} is not an idx file (bad magic number).")
    dtype, ndim = _IDX_DTYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int(s) for s in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(
            f"{os.fspath(filename)!r} is truncated or corrupt: the header announces shape "
            f"{shape} ({expected} bytes of data) but the file holds {len(raw) - header}."
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def _find_file(path, name):
    for candidate in (name, name + ".gz"):
        full = os.path.join(path, candidate)
        if os.path.isfile(full):
            return full
    raise FileNotFoundError(
        f"Fashion-MNIST file {name}[.gz] not found in {os.fspath(path)!r}. On Debian or "
        "Ubuntu install the data with: sudo apt-get install dataset-fashion-mnist "
        f"(it puts the files in {DEFAULT_FASHION_MNIST_PATH}); otherwise download the four "
        "idx files from https://github.com/zalandoresearch/fashion-mnist and pass their "
        f"directory as path (or set the environment variable {FASHION_MNIST_ENV})."
    )
