"""uint8 image arrays and image files: scaled per batch, in either layout, never whole."""

import tracemalloc

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("skorch")

from torch import nn  # noqa: E402

from skmetric.deep import MetricEmbedder  # noqa: E402

# Non-square images, so that a transposition mixing height and width is caught.
N, C, H, W = 12, 3, 8, 6
Y = np.repeat([0, 1, 2], 4)
PARAMS = dict(embedding_dim=4, batch_size=12, max_epochs=1, random_state=0, verbose=0,
              module__channels=(8, 8))


def _images(channels=C, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(N, channels, H, W),
                                                dtype=np.uint8)


def _fit_transform(X, **params):
    params = {**PARAMS, **params}
    if "module__hidden" in params:  # the MLP
        del params["module__channels"]
    emb = MetricEmbedder(**params).fit(X, Y)
    return emb, emb.transform(X)


def test_uint8_images_in_any_layout_equal_their_float_scaling():
    X = _images()
    _, expected = _fit_transform(X.astype(np.float32) / 255)
    for layout in (X, X.transpose(0, 2, 3, 1)):  # NCHW, NHWC
        emb, Z = _fit_transform(layout)
        assert emb.input_shape_ == (C, H, W) and emb.n_features_in_ == C
        np.testing.assert_allclose(Z, expected, rtol=1e-5, atol=1e-6)
    # Grey images without a channel axis, and with one, first or last.
    grey = _images(channels=1)
    _, expected = _fit_transform(grey.astype(np.float32) / 255)
    for layout in (grey[:, 0], grey, grey.transpose(0, 2, 3, 1)):
        emb, Z = _fit_transform(layout)
        assert emb.input_shape_ == (1, H, W)
        np.testing.assert_allclose(Z, expected, rtol=1e-5, atol=1e-6)
    # Transform takes the other layout of the same images too.
    emb, Z = _fit_transform(X)
    np.testing.assert_allclose(emb.transform(np.ascontiguousarray(X.transpose(0, 2, 3, 1))),
                               Z, rtol=1e-6)
    with pytest.raises(ValueError, match="fitted on samples of shape"):
        emb.transform(_images(channels=1))


def test_tabular_uint8_is_not_taken_for_images():
    X = np.random.default_rng(0).integers(0, 5, size=(N, 10), dtype=np.uint8)
    _, Z = _fit_transform(X, module__hidden=(8,))
    # values kept, not divided by 255
    _, expected = _fit_transform(X.astype(np.float32), module__hidden=(8,))
    np.testing.assert_allclose(Z, expected, rtol=1e-6)


def _write_images(folder, X, mode):
    from PIL import Image

    paths = []
    for i, image in enumerate(X):
        path = folder / f"{i:03d}.png"
        array = image[0] if mode == "L" else image.transpose(1, 2, 0)
        Image.fromarray(array, mode=mode).save(path)
        paths.append(str(path))
    return paths


def test_image_files_equal_the_arrays_they_hold(tmp_path):
    pytest.importorskip("PIL")
    X = _images()
    paths = _write_images(tmp_path, X, "RGB")
    _, expected = _fit_transform(X)
    emb, Z = _fit_transform(np.array(paths))
    assert emb.input_shape_ == (C, H, W)
    np.testing.assert_allclose(Z, expected, rtol=1e-5, atol=1e-6)
    # A list of pathlib paths; grey files read as one channel with dataset__mode='L'.
    from pathlib import Path

    grey = _images(channels=1)
    folder = tmp_path / "grey"
    folder.mkdir()
    grey_paths = [Path(p) for p in _write_images(folder, grey, "L")]
    _, expected = _fit_transform(grey)
    emb, Z = _fit_transform(grey_paths, dataset__mode="L")
    assert emb.input_shape_ == (1, H, W)
    np.testing.assert_allclose(Z, expected, rtol=1e-5, atol=1e-6)


def test_image_files_of_other_sizes_are_resized_on_request(tmp_path):
    from PIL import Image

    X = _images()
    paths = _write_images(tmp_path, X, "RGB")
    Image.fromarray(np.zeros((5, 5, 3), np.uint8)).save(paths[7])
    with pytest.raises(ValueError, match=r"dataset__image_size=\(height, width\)"):
        MetricEmbedder(**PARAMS).fit(paths, Y)
    emb = MetricEmbedder(**PARAMS, dataset__image_size=(4, 4)).fit(paths, Y)
    assert emb.input_shape_ == (C, 4, 4)
    assert emb.transform(paths[:3]).shape == (3, 4)
    with pytest.raises(FileNotFoundError, match="nowhere.png"):
        emb.transform([str(tmp_path / "nowhere.png")])
    with pytest.raises(TypeError, match="single path"):
        emb.transform(paths[0])


class _MeanColour(nn.Module):
    """A trunk that costs nothing: the mean of each channel, then a linear map."""

    def __init__(self, embedding_dim=4):
        super().__init__()
        self.linear = nn.Linear(3, embedding_dim)

    def forward(self, x):
        return self.linear(x.mean(dim=(2, 3)))


def test_large_uint8_array_is_never_converted_whole():
    # 4000 images of 3x64x64: 49 MB as uint8, 197 MB as float32, but a strided view of a
    # 16 kB buffer here (image i starts at byte i). Only batches of 128 images (6 MB as
    # float32) may be converted at a time.
    size = 3 * 64 * 64
    buffer = np.random.default_rng(0).integers(0, 256, size=4000 + size, dtype=np.uint8)
    X = np.lib.stride_tricks.as_strided(buffer, shape=(4000, 3, 64, 64),
                                        strides=(1, 64 * 64, 64, 1), writeable=False)
    y = np.arange(4000) % 10
    tracemalloc.start()
    try:
        emb = MetricEmbedder(_MeanColour, loss="contrastive", batch_size=128,
                             max_epochs=1, random_state=0, verbose=0).fit(X, y)
        Z = emb.transform(X)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert Z.shape == (4000, 4)
    assert peak < 20e6, f"peak traced memory {peak / 1e6:.0f} MB: X was copied whole"
    ends = torch.from_numpy(np.array(X[[0, -1]])).float() / 255
    expected = torch.nn.functional.normalize(emb.module_(ends), dim=1).detach().numpy()
    np.testing.assert_allclose(Z[[0, -1]], expected, rtol=1e-5, atol=1e-6)


def test_probabilistic_embedder_takes_uint8_images_too():
    from skmetric.deep import ProbabilisticEmbedder

    X = _images()
    emb = ProbabilisticEmbedder(**PARAMS).fit(X, Y)
    ref = ProbabilisticEmbedder(**PARAMS).fit(X.astype(np.float32) / 255, Y)
    for a, b in zip(emb.transform(X, return_variance=True),
                    ref.transform(X.astype(np.float32) / 255, return_variance=True),
                    strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
