"""Bugs found off the happy path of skmetric.deep (ninth session's hunt: images, trunks,
train_transform, splits, PFE, scoring, persistence, several ranks), one test each.

Each test failed before its fix: a deep torch or Pillow traceback where a clear error is
defined, a false error, or silently wrong output.
"""

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("skorch")

import _distributed_worker as worker  # noqa: E402
from _deep_data import blobs  # noqa: E402
from _spawn_ranks import check_ok, free_port, spawn  # noqa: E402
from skorch.dataset import ValidSplit  # noqa: E402

from skmetric.deep import MetricEmbedder, ProbabilisticEmbedder  # noqa: E402
from skmetric.deep.pfe import mutual_likelihood_score  # noqa: E402

FAST = dict(embedding_dim=4, max_epochs=1, batch_size=8, random_state=0, verbose=0)
TRUNK = "shufflenet_v2_x0_5"  # the smallest torchvision family member


def _uint8_images(n_classes=4, per_class=4, shape=(3, 8, 8), seed=0):
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 256, size=(n_classes * per_class, *shape), dtype=np.uint8)
    return X, np.repeat(np.arange(n_classes), per_class)


# ------------------------------------------------------------ torch uint8 images
def test_torch_uint8_images_are_scaled_as_the_same_numpy_images():
    # A torch uint8 tensor went through validate_data: trained on 0..255 floats, while
    # transform of the NumPy images (or the docs) scales to [0, 1].
    X, y = _uint8_images()
    from_numpy = MetricEmbedder(**FAST).fit(X, y)
    from_torch = MetricEmbedder(**FAST).fit(torch.from_numpy(X), y)
    assert from_torch.input_shape_ == (3, 8, 8)
    np.testing.assert_allclose(from_torch.transform(X), from_numpy.transform(X), atol=1e-6)
    np.testing.assert_allclose(from_numpy.transform(torch.from_numpy(X)),
                               from_numpy.transform(X), atol=1e-6)
    channels_last = torch.from_numpy(np.ascontiguousarray(X.transpose(0, 2, 3, 1)))
    np.testing.assert_allclose(from_numpy.transform(channels_last),
                               from_numpy.transform(X), atol=1e-6)


def test_identical_uint8_images_are_named_not_blamed_on_the_learning_rate():
    # The eighth hunt's check covered float arrays only: identical uint8 images trained an
    # epoch and stopped as "collapsed ... lower the learning rate".
    _, y = _uint8_images()
    for shape in [(16, 3, 8, 8), (16, 8, 8, 3), (16, 8, 8)]:
        with pytest.raises(ValueError, match=r"^All 16 samples of X are identical"):
            MetricEmbedder(**FAST).fit(np.full(shape, 7, dtype=np.uint8), y)


# --------------------------------------------------------- batches of one sample
def test_a_last_batch_of_one_sample_is_not_taken_for_collapse():
    # iterator_train__drop_last=False left a last batch of 1 sample, whose "spread" is 0:
    # training stopped with "the embeddings collapsed ... lower the learning rate".
    X, y = _uint8_images()  # 16 samples, batches of 15 and 1
    emb = MetricEmbedder(samples_per_class=None, iterator_train__drop_last=False,
                         **{**FAST, "batch_size": 15}).fit(X, y)
    assert emb.history[-1, "batches", :, "train_batch_size"] == [15, 1]


def test_a_batch_of_one_sample_into_batchnorm_says_where_it_comes_from():
    # torch's "Expected more than 1 value per channel when training" named neither the
    # batch nor its cause (the uncertainty head of PFE has BatchNorm1d).
    X, y = blobs()  # 48 samples: batches of 47 and 1
    pfe = ProbabilisticEmbedder(module__hidden=(8,), samples_per_class=None,
                                iterator_train__drop_last=False,
                                **{**FAST, "batch_size": 47})
    with pytest.raises(ValueError, match=r"^A training batch holds a single sample, which "
                                         r"the network's BatchNorm .*drop_last=False"):
        pfe.fit(X, y)


# ------------------------------------------------------------- train_transform
@pytest.mark.parametrize("transform, per_sample, error, match", [
    (lambda x: (x * 255).to(torch.uint8), True, TypeError,
     r"tensor of the dtype it is given \(torch\.float32\); it returned torch\.uint8"),
    (lambda x: x.double(), False, TypeError, r"it returned torch\.float64"),
    (lambda x: x[::2], False, ValueError, r"batch of shape \(8, 3, 8, 8\) into one of "
                                          r"shape \(4, 3, 8, 8\).*number of dimensions and"),
    (lambda x: x[0], False, ValueError, r"batch of shape \(8, 3, 8, 8\) into one of "
                                        r"shape \(3, 8, 8\)"),
    (lambda x: x[None], True, ValueError, r"sample of shape \(3, 8, 8\) into one of "
                                          r"shape \(1, 3, 8, 8\)"),
    (lambda x: x[:, :int(torch.randint(4, 8, ())), :4], True, ValueError,
     r"samples of different shapes .* v2\.RandomResizedCrop"),
], ids=["uint8", "float64", "fewer-samples", "no-batch-axis", "extra-axis", "ragged"])
def test_a_train_transform_output_the_network_cannot_take_is_named(transform, per_sample,
                                                                    error, match):
    # Were "expected scalar type Byte but found Float", a conv's "expected 4D input",
    # torch.stack's "stack expects each tensor to be equal size", or an error in the loss.
    X, y = _uint8_images()
    emb = MetricEmbedder(train_transform=transform, train_transform_per_sample=per_sample,
                         **FAST)
    with pytest.raises(error, match=r"^train_transform .*" + match):
        emb.fit(X, y)


def test_a_fitted_embedder_takes_a_new_train_transform_optimizer_and_its_parameters():
    # skorch (1.4) looked for a component to re-initialise and raised "Something went
    # wrong, please open an issue"; train_transform__* sub-parameters were silently
    # ignored (nothing reads them).
    from sklearn.base import clone

    from skmetric._sklearn_compat import InvalidParameterError

    X, y = _uint8_images()
    seen = []

    def record(x):
        seen.append(tuple(x.shape))
        return x

    emb = MetricEmbedder(warm_start=True, **FAST).fit(X, y)
    emb.set_params(train_transform=record, optimizer=torch.optim.SGD,
                   optimizer__momentum=0.5)
    assert isinstance(emb.optimizer_, torch.optim.SGD)  # warm_start trains on with it
    assert emb.optimizer_.param_groups[0]["momentum"] == 0.5
    emb.fit(X, y)
    assert seen and seen[0] == (3, 8, 8) and emb.n_iter_ == 2
    # An optimizer__* parameter set on a fitted embedder was applied to the live
    # optimizer only: not in get_params, and lost by the next fit or a clone.
    emb.set_params(optimizer__weight_decay=0.1, warm_start=False)
    assert emb.optimizer_.param_groups[0]["weight_decay"] == 0.1
    assert emb.get_params()["optimizer__weight_decay"] == 0.1
    assert emb.fit(X, y).optimizer_.param_groups[0]["weight_decay"] == 0.1
    assert clone(emb).get_params()["optimizer__weight_decay"] == 0.1
    for make in (lambda: MetricEmbedder(train_transform=record, train_transform__p=0.2),
                 lambda: emb.set_params(train_transform__p=0.2)):
        with pytest.raises(InvalidParameterError, match=r"got 'train_transform__p', but "
                                                        r"train_transform takes no sub-"):
            make()


# ------------------------------------------------------------------ train_split
@pytest.mark.parametrize("split, y, m", [
    (ValidSplit(4, stratified=True), np.repeat(np.arange(4), 4), 4),  # 3 left per class
    (ValidSplit(0.5, random_state=3), np.repeat(np.arange(8), 2), 2),
], ids=["stratified", "shuffled"])
def test_a_train_split_leaving_classes_short_of_samples_per_class_is_named(split, y, m):
    # fit checked samples_per_class on the whole of y; the sampler then failed on the
    # training part with "Lower samples_per_class to at most 1" (the embedder takes >= 2).
    X, _ = _uint8_images(n_classes=len(y) // 4)
    emb = MetricEmbedder(train_split=split, samples_per_class=m, **FAST)
    with pytest.raises(ValueError, match=rf"^train_split left \d class\(es\) in the training "
                                         rf"part, and class\(es\) \[.*\] with fewer than "
                                         rf"samples_per_class={m} .*stratified=True"):
        emb.fit(X, y)
    ok = MetricEmbedder(train_split=ValidSplit(4, stratified=True), samples_per_class=2,
                        **FAST).fit(X, np.repeat(np.arange(4), 4))
    assert np.isfinite(ok.history[-1, "valid_loss"])


# ----------------------------------------------------------------------- trunks
@pytest.mark.slow  # builds shufflenet four times
def test_the_weights_of_a_grey_trunk_built_here_load_as_module_weights(tmp_path):
    # The docs accept a state dict "from a trunk built here"; one built for 1-channel
    # images failed with "size mismatch for conv1.0.weight" (the stem was adapted after
    # loading): a fitted grey embedder's module_ could not seed another.
    X, y = _uint8_images(shape=(1, 32, 32))
    first = MetricEmbedder(TRUNK, **FAST).fit(X, y)
    path = tmp_path / "grey.pth"
    torch.save(first.module_.state_dict(), path)
    again = MetricEmbedder(TRUNK, module__weights=path, **{**FAST, "max_epochs": 0})
    np.testing.assert_allclose(again.fit(X, y).transform(X), first.transform(X), atol=1e-5)
    # Into an RGB trunk: the grey filters are shared by R, G and B, so a grey image
    # repeated on three channels gives the grey trunk's features.
    from skmetric.deep.trunks import build_trunk

    rgb = build_trunk(TRUNK, embedding_dim=4, in_channels=3, weights=path).eval()
    grey = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(rgb(grey.expand(-1, 3, -1, -1)),
                                   first.module_.eval()(grey), rtol=1e-4, atol=1e-5)


def test_weights_that_are_neither_a_state_dict_nor_a_weights_name_are_named(tmp_path,
                                                                          monkeypatch):
    # Were torchvision's bare "KeyError: 'imagenet'" and torch.load's UnpicklingError.
    from skmetric.deep.trunks import build_trunk

    with pytest.raises(ValueError, match=r"^weights='imagenet' is neither a file nor a "
                                         r"weights name of 'resnet18' \(valid names: "
                                         r"\['DEFAULT', 'IMAGENET1K_V1'\]"):
        build_trunk("resnet18", weights="imagenet")
    # The names torchvision takes still reach it (served here without a download).
    import torchvision

    asked = []
    monkeypatch.setattr("torchvision.models._api.load_state_dict_from_url",
                        lambda url, *args, **kwargs: asked.append(url) or
                        torchvision.models.resnet18().state_dict())
    for name in ("DEFAULT", "IMAGENET1K_V1", "ResNet18_Weights.IMAGENET1K_V1"):
        build_trunk("resnet18", weights=name)
    assert len(asked) == 3
    damaged = tmp_path / "damaged.pth"
    damaged.write_bytes(b"not a checkpoint")
    pickled = tmp_path / "model.pth"
    torch.save(torch.nn.Linear(2, 2), pickled)  # the model, not its state_dict()
    for path in (damaged, pickled):
        with pytest.raises(ValueError, match=r"cannot be read as a state dict .*damaged, or "
                                             r"holds a whole pickled model"):
            build_trunk("resnet18", weights=path)


@pytest.mark.slow  # builds shufflenet four times
def test_load_params_rebuilds_a_named_trunk_without_its_initial_weights(tmp_path,
                                                                         monkeypatch):
    # load_params built the trunk with module__weights first: a file deleted since was a
    # FileNotFoundError, a weights enum a download, though the saved weights replace them.
    import torchvision

    X, y = _uint8_images(shape=(3, 32, 32))
    start = tmp_path / "start.pth"
    torch.save(torchvision.models.get_model(TRUNK).state_dict(), start)
    fitted = MetricEmbedder(TRUNK, module__weights=start, **FAST).fit(X, y)
    fitted.save_params(f_params=tmp_path / "params.pt")
    start.unlink()
    enum = torchvision.models.ShuffleNet_V2_X0_5_Weights.IMAGENET1K_V1

    def no_download(*args, **kwargs):
        raise AssertionError("downloaded")

    monkeypatch.setattr("torchvision.models._api.load_state_dict_from_url", no_download)
    for weights in (enum, start):
        new = MetricEmbedder(TRUNK, module__weights=weights, **FAST).initialize()
        new.load_params(f_params=tmp_path / "params.pt")
        np.testing.assert_array_equal(new.transform(X), fitted.transform(X))
        assert "_weights_follow" not in vars(new)
    with pytest.raises(FileNotFoundError):  # fit still needs them
        MetricEmbedder(TRUNK, module__weights=start, **FAST).fit(X, y)


# ------------------------------------------------------------------ image files
def test_image_files_errors_say_which_parameter_to_set_and_palettes_decode(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    colour = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
    Image.fromarray(colour).save(tmp_path / "rgb.png")
    Image.fromarray(colour[..., 0]).save(tmp_path / "grey.png")
    Image.fromarray(colour).convert("P").save(tmp_path / "palette.png")
    paths = [str(tmp_path / f"{name}.png") for name in ("rgb", "grey")] * 4
    y = np.repeat([0, 1], 4)
    # Pillow's "image has wrong mode" named no parameter.
    with pytest.raises(ValueError, match=r"^Cannot convert .* to dataset__mode='XYZ' "
                                         r"\(image has wrong mode\); use a Pillow mode"):
        MetricEmbedder(dataset__mode="XYZ", samples_per_class=2, **FAST).fit(paths, y)
    # Images of other channel counts were told to resize (dataset__image_size).
    with pytest.raises(ValueError, match=r"has shape \(\d, 8, 8\) .* where the others have "
                                         r"\(\d, 8, 8\)\. Convert them all on loading: "
                                         r"dataset__mode='RGB'"):
        MetricEmbedder(dataset__mode=None, samples_per_class=2, **FAST).fit(paths, y)
    # Without a mode, palette images gave their palette indices as grey pixels.
    from skmetric.deep._images import _read_image

    palette = _read_image(tmp_path / "palette.png", None, None)
    np.testing.assert_array_equal(palette,
                                  _read_image(tmp_path / "palette.png", "RGB", None))


@pytest.mark.parametrize("param", [{"dataset__image_size": (4, 4)}, {"dataset__mode": "L"}])
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_file_loading_parameters_are_refused_for_arrays(param, dtype):
    # uint8 arrays kept their size and channels without a word (input_shape_ (3, 8, 8));
    # float arrays failed in skorch's Dataset with "unexpected keyword argument".
    X, y = _uint8_images()
    name = next(iter(param))
    with pytest.raises(ValueError, match=rf"^{name} applies to image files .*X holds no "
                                         r"paths\. Resize or convert arrays"):
        MetricEmbedder(**param, **FAST).fit(X.astype(dtype), y)


# ------------------------------------------------------------------------- PFE
def test_mutual_likelihood_score_refuses_a_negative_variance_and_nan_means():
    # A negative variance beside a larger positive one passed (only their sum was
    # checked) and gave a score; NaN means gave NaN scores.
    mu, one = np.zeros((2, 3)), np.ones((2, 3))
    with pytest.raises(ValueError, match=r"^Variances must be positive .*negative, NaN"):
        mutual_likelihood_score(mu, -0.5 * one, mu, one)
    with pytest.raises(ValueError, match=r"^Variances must be positive"):
        mutual_likelihood_score(mu, np.full((2, 3), np.nan), mu, one)
    bad = mu.copy()
    bad[1, 0] = np.nan
    with pytest.raises(ValueError, match=r"^mu1 and mu2 must be finite"):
        mutual_likelihood_score(bad, one, mu, one)
    # A zero variance on one side is a point mass: defined, and as before.
    got = mutual_likelihood_score(mu, 0 * one, mu, one)
    np.testing.assert_allclose(got, -1.5 * np.log(2 * np.pi))
    t = torch.zeros(2, 3, requires_grad=True)
    mutual_likelihood_score(t, torch.ones(2, 3), torch.zeros(2, 3), torch.ones(2, 3)).sum() \
        .backward()
    assert t.grad is not None


def test_pair_score_of_unequal_sets_names_x1_and_x2():
    X, y = blobs()
    pfe = ProbabilisticEmbedder(module__hidden=(8,), **FAST).fit(X, y)
    with pytest.raises(ValueError, match=r"^X1 and X2 must hold as many samples .*got 3 "
                                         r"and 2"):
        pfe.pair_score(X[:3], X[3:5])


# --------------------------------------------------------------------- scoring
def test_score_of_a_single_class_is_refused_not_a_perfect_one():
    # score returned 1.0 for samples of one class (every neighbour relevant): under
    # GridSearchCV's unshuffled KFold on sorted y every fold "scored" 1.0.
    from sklearn.model_selection import GridSearchCV, KFold

    X, y = blobs()  # sorted: six folds of one class each
    emb = MetricEmbedder(module__hidden=(8,), **FAST).fit(X, y)
    with pytest.raises(ValueError, match=r"^MetricEmbedder\.score got X whose samples all "
                                         r"have class 0, .*StratifiedKFold"):
        emb.score(X[y == 0], y[y == 0])
    assert 0 < emb.score(X, y) <= 1
    with pytest.warns(UserWarning):
        search = GridSearchCV(MetricEmbedder(module__hidden=(8,), **FAST),
                              {"lr": [1e-3, 1e-2]}, cv=KFold(6)).fit(X, y)
    assert np.isnan(search.cv_results_["mean_test_score"]).all()


# ------------------------------------------------------------------------ Dask
def test_dask_transform_takes_the_images_of_an_image_embedder():
    # skmetric.dask.transform, documented for "a deep embedder", refused any input but
    # 2-D ("X must be 2-D (n_samples, n_features); got 4-D").
    da = pytest.importorskip("dask.array")
    import skmetric.dask as skd

    X, y = _uint8_images()
    emb = MetricEmbedder(**FAST).fit(X, y)
    Z = skd.transform(emb, da.from_array(X, chunks=(5, 2, 8, 4)))  # rows and more
    assert Z.shape == (16, 4) and Z.chunks == ((5, 5, 5, 1), (4,))
    np.testing.assert_allclose(Z.compute(), emb.transform(X), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"must be 2-D .*got 1-D"):
        skd.transform(emb, da.from_array(np.zeros(4), chunks=2))


# ----------------------------------------------------------------- several ranks
@pytest.mark.slow  # two processes with gloo
def test_ranks_fitting_different_data_are_refused_together(tmp_path):
    # Ranks given shards of the data drew their own batches: with different numbers of
    # batches one rank waited for the other until the group's timeout ("another rank
    # failed or stopped"); with other labels they silently trained on unbalanced batches.
    check_ok(spawn(Path(worker.__file__), "different_data", tmp_path, timeout=180,
                   group_timeout=60))
    for rank in range(2):
        result = torch.load(tmp_path / f"different_data_rank{rank}.pt", weights_only=False)
        assert result["sizes"].startswith(
            "The ranks fit different training data (training samples per rank: [160, 152])")
        assert "the labels of rank(s) [1] differ from rank 0's" in result["labels"]
        assert "same X and y" in result["labels"]


@pytest.fixture
def looks_like_two_ranks(monkeypatch):
    """A one-process gloo group that the embedders take for rank 0 of 2 (enough to build
    the first epoch's batches; no collective of two ranks is reached)."""
    import torch.distributed as dist

    from skmetric.deep import distributed

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{free_port()}", rank=0,
                            world_size=1)
    monkeypatch.setattr(distributed, "_world", lambda: (0, 2))
    monkeypatch.setattr(distributed, "_check_same_data", lambda dataset: None)  # a gather
    try:
        yield
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("params, why", [
    ({"batch_size": 64, "samples_per_class": 3},
     r"15 samples \(5 classes x samples_per_class=3, as y has 5 classes only\)"),
    ({"batch_size": 10, "samples_per_class": 3},
     r"9 samples \(3 classes x samples_per_class=3: batch_size=10 rounded down to a "
     r"multiple of 3\)"),
    ({"batch_size": 64, "samples_per_class": None},
     r"35 samples \(the whole training set, smaller than batch_size=64\)"),
    ({"batch_size": 9, "samples_per_class": None}, r"9 samples \(batch_size=9\)"),
], ids=["few-classes", "rounded", "small-set", "odd"])
def test_a_global_batch_that_does_not_split_over_the_ranks_says_why(looks_like_two_ranks,
                                                                     params, why):
    # ShardedBatchSampler's error at the first batch asked for "batch_size ... a multiple
    # of the world size" even when batch_size=64 was one (the batch was smaller).
    from skmetric.deep import DistributedMetricEmbedder

    X, y = blobs(n_classes=5, per_class=7)
    emb = DistributedMetricEmbedder(**{**FAST, **params}, module__hidden=(8,))
    with pytest.raises(ValueError, match=rf"^The global batch holds {why}, which do not "
                                         r"split evenly over 2 processes"):
        emb.fit(X, y)
