"""Fashion-MNIST loading from an environment variable, and the open-set retrieval benchmark
(benchmarks/deep.py --open-set) run end to end on SYNTHETIC idx files written here.

The synthetic files have the Fashion-MNIST layout (28x28 uint8 images, labels 0-9) but are
random blobs, clearly not the real data: they check the code path, never a figure.
"""

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from skmetric.deep import datasets  # noqa: E402
from skmetric.deep.datasets import FASHION_MNIST_ENV, load_fashion_mnist  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def write_idx(path, array):
    """An idx file of uint8 data (magic 0x00000800 + ndim, big-endian sizes), gzipped."""
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    with gzip.open(path, "wb") as f:
        f.write(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def write_synthetic_fashion_mnist(folder, n_train_per_class=30, n_test_per_class=12, seed=0):
    """Four idx files in Fashion-MNIST's layout: class c is a bright square at a place of
    its own plus noise, so that a model can learn something (SYNTHETIC, not Fashion-MNIST)."""
    rng = np.random.RandomState(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, per_class in (("train", n_train_per_class), ("t10k", n_test_per_class)):
        labels = np.repeat(np.arange(10), per_class)
        rng.shuffle(labels)
        images = rng.randint(0, 60, size=(len(labels), 28, 28))
        for i, c in enumerate(labels):
            r, col = 2 + 8 * (c // 4), 2 + 6 * (c % 4)
            images[i, r:r + 8, col:col + 8] += 150
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images.clip(0, 255))
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return folder


def test_path_comes_from_the_environment_variable(tmp_path, monkeypatch):
    folder = write_synthetic_fashion_mnist(tmp_path / "fm")
    monkeypatch.setenv(FASHION_MNIST_ENV, str(folder))
    X, y = load_fashion_mnist(subset="test")
    assert X.shape == (120, 1, 28, 28) and np.array_equal(np.bincount(y), np.full(10, 12))
    # An explicit path wins over the variable.
    monkeypatch.setenv(FASHION_MNIST_ENV, str(tmp_path / "elsewhere"))
    assert load_fashion_mnist(folder, subset="test")[0].shape[0] == 120
    with pytest.raises(FileNotFoundError, match=FASHION_MNIST_ENV):
        load_fashion_mnist(subset="test")


def test_without_the_variable_the_debian_path_is_read(monkeypatch, tmp_path):
    monkeypatch.delenv(FASHION_MNIST_ENV, raising=False)
    monkeypatch.setattr(datasets, "DEFAULT_FASHION_MNIST_PATH", str(tmp_path / "debian"))
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "debian")):
        load_fashion_mnist()
