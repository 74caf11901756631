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


def test_open_set_benchmark_quick_run_on_synthetic_idx_files(tmp_path):
    """deep.py --open-set --quick --data SYNTHETIC: every loss trains, the evaluation agrees
    with scikit-learn, and the run is written as JSON (never under benchmarks/results)."""
    folder = write_synthetic_fashion_mnist(tmp_path / "synthetic-not-fashion-mnist")
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "deep.py"), "--open-set", "--quick",
         "--data", str(folder)], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    data = json.loads((ROOT / "benchmarks" / "_out" / "deep_open_set-quick.json").read_text())
    assert data["quick"] is True and all(c["ok"] for c in data["checks"])
    assert any("scikit-learn" in c["what"] for c in data["checks"])
    (table,) = data["tables"]
    models = [row[0] for row in table["rows"]]
    assert models[0] == "raw pixels, Euclidean" and len(models) == 5
    for want in ("SupCon", "multi-similarity", "ArcFace", "XBM"):
        assert any(m.startswith(want) for m in models), (want, models)
    # 25 training images of each of classes 0-4, the 12 test images of each of 5-9.
    assert "125 training images of classes 0-4" in data["notes"][0]
    assert "60 test images of classes 5-9" in data["notes"][0]
    for row in table["rows"]:
        assert 0 <= row[2] <= 1 and 0 <= row[3] <= 1


def test_open_set_split_keeps_seen_classes_for_training_and_unseen_for_test(tmp_path):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from deep_open_set import SEEN, UNSEEN, open_set_split
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    folder = write_synthetic_fashion_mnist(tmp_path / "fm")
    Xtr, ytr, Xte, yte = open_set_split(folder, n_train_per_class=7, n_test_per_class=5)
    assert set(ytr) == set(SEEN) and set(yte) == set(UNSEEN)
    assert np.array_equal(np.bincount(ytr, minlength=10)[list(SEEN)], np.full(5, 7))
    assert np.array_equal(np.bincount(yte, minlength=10)[list(UNSEEN)], np.full(5, 5))
    assert Xtr.shape == (35, 1, 28, 28) and Xte.shape == (25, 1, 28, 28)


def test_shift_flip_moves_pixels_only_in_training():
    import torch

    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from deep_open_set import ShiftFlip
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    aug = ShiftFlip(torch.nn.Flatten(), pad=2, seed=0)
    x = torch.zeros(64, 1, 6, 6)
    x[:, 0, 2, 1] = 1.0  # one bright pixel, off-centre
    moved = aug(x).reshape(64, 6, 6)
    where = moved.nonzero()[:, 1:]  # (row, col) of each image's pixel (or none: shifted out)
    assert len(where) >= 40  # most images keep the pixel in view
    assert (where[:, 0] - 2).abs().max() <= 2  # vertical shift at most pad
    assert len(set(where[:, 0].tolist())) > 2  # and it does shift vertically
    cols = set(where[:, 1].tolist())
    assert any(c > 3 for c in cols) and any(c < 3 for c in cols)  # flips and shifts occur
    assert len({tuple(p) for p in where.tolist()}) > 5  # per-image randomness
    aug.eval()
    assert torch.equal(aug(x), x.reshape(64, -1))
