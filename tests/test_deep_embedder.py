"""MetricEmbedder (skorch + metric losses), its networks, class-balanced sampler and loaders."""

import gzip
import pickle
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("skorch")

import torch.nn.functional as F  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import GridSearchCV, train_test_split  # noqa: E402
from sklearn.neighbors import KNeighborsClassifier  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import MinMaxScaler  # noqa: E402
from skorch.dataset import ValidSplit  # noqa: E402
from torch import nn  # noqa: E402

from skmetric.deep import MLP, ClassBalancedBatchSampler, MetricEmbedder, SmallCNN  # noqa: E402
from skmetric.deep.datasets import load_fashion_mnist, read_idx  # noqa: E402
from skmetric.metrics import precision_at_k  # noqa: E402


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X / 16).astype(np.float64), y


@pytest.fixture(scope="module")
def small(digits):
    X, y = digits
    return X[:300], y[:300]


def _split(X, y):
    return train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)


# ------------------------------------------------------------------ quality on digits
def test_mlp_on_digit_features_reaches_precision_at_1_of_097_on_held_out_data(digits):
    X_train, X_test, y_train, y_test = _split(*digits)
    emb = MetricEmbedder(module__dropout=0.2, max_epochs=30, random_state=0)
    emb.fit(X_train, y_train)  # float64 input, converted for the user
    assert isinstance(emb.module_, MLP)
    assert emb.score(X_test, y_test) >= 0.97


def test_cnn_on_digit_images_reaches_precision_at_1_of_097_on_held_out_data(digits):
    X, y = digits
    X_train, X_test, y_train, y_test = _split(X.reshape(-1, 1, 8, 8), y)
    emb = MetricEmbedder(max_epochs=20, random_state=0).fit(X_train, y_train)
    assert isinstance(emb.module_, SmallCNN)
    assert emb.input_shape_ == (1, 8, 8)
    assert emb.score(X_test, y_test) >= 0.97


def test_open_set_retrieval_of_classes_unseen_in_training(digits):
    # Digits padded with 64 noise features: Euclidean retrieval on the raw features is poor,
    # and what the embedder learns on digits 0-6 (ignore the noise) transfers to 7-9. A linear
    # trunk (hidden=()) transfers most steadily: 0.66-0.71 over random_state 0-5, raw 0.47.
    X, y = digits
    rng = np.random.RandomState(0)
    X = np.hstack([X, rng.randn(len(X), 64)])
    seen = y < 7
    raw = precision_at_k(X[~seen], y[~seen], k=1)
    params = dict(module__hidden=(), random_state=0)
    emb = MetricEmbedder(max_epochs=20, **params).fit(X[seen], y[seen])
    untrained = MetricEmbedder(max_epochs=0, **params).fit(X[seen], y[seen])
    learned = emb.score(X[~seen], y[~seen])
    assert set(emb.classes_) == set(range(7))
    assert learned >= 0.6
    assert learned >= raw + 0.15
    assert learned >= untrained.score(X[~seen], y[~seen]) + 0.15


# ------------------------------------------------------------- sklearn integration
def test_grid_search_over_nested_loss_margin_in_a_pipeline(small):
    X, y = small
    pipe = Pipeline([
        ("scale", MinMaxScaler()),
        ("emb", MetricEmbedder(loss="triplet", miner="semihard", max_epochs=2,
                               random_state=0)),
    ])
    grid = {"emb__loss__margin": [0.05, 0.3], "emb__miner__margin": [0.2]}
    search = GridSearchCV(pipe, grid, cv=2).fit(X, y)
    assert len(search.cv_results_["params"]) == 2
    best = search.best_estimator_.named_steps["emb"]
    assert best.loss_.margin == search.best_params_["emb__loss__margin"]
    assert best.miner_.margin == 0.2
    assert 0.5 < search.best_score_ <= 1


def test_embeddings_feed_a_knn_classifier_in_a_pipeline(small):
    X, y = small
    pipe = Pipeline([("emb", MetricEmbedder(max_epochs=3, random_state=0)),
                     ("knn", KNeighborsClassifier(n_neighbors=3))])
    X_train, X_test, y_train, y_test = _split(X, y)
    assert pipe.fit(X_train, y_train).score(X_test, y_test) > 0.9


def test_set_params_on_a_fitted_embedder_rebuilds_loss_and_miner(small):
    X, y = small
    emb = MetricEmbedder(loss="triplet", miner="semihard", max_epochs=1, random_state=0)
    emb.fit(X, y)
    module = emb.module_
    emb.set_params(loss__margin=0.07, miner__margin=0.11)
    assert emb.loss_.margin == 0.07 and emb.miner_.margin == 0.11
    assert emb.module_ is module  # the network is kept
    assert emb.get_params()["loss__margin"] == 0.07
    emb.set_params(lr=0.05)
    assert emb.optimizer_.param_groups[0]["lr"] == 0.05


def test_distance_and_normalize_reach_named_losses_and_miners(small):
    X, y = small
    emb = MetricEmbedder(loss="contrastive", miner="batch_hard", distance="euclidean",
                         normalize=False, max_epochs=1, random_state=0).fit(X, y)
    assert emb.loss_.distance == "euclidean" and emb.loss_.normalize is False
    assert emb.miner_.distance == "euclidean"
    assert not np.allclose(np.linalg.norm(emb.transform(X[:5]), axis=1), 1)
    normed = MetricEmbedder(max_epochs=1, random_state=0).fit(X, y)
    assert np.allclose(np.linalg.norm(normed.transform(X[:5]), axis=1), 1, atol=1e-5)


def test_clone_keeps_nested_params_and_drops_the_fit(small):
    X, y = small
    emb = MetricEmbedder(loss="triplet", loss__margin=0.3, max_epochs=1, random_state=0)
    emb.fit(X, y)
    copy = clone(emb)
    assert copy.get_params()["loss__margin"] == 0.3
    assert not hasattr(copy, "module_") and not copy.initialized_
    assert clone(copy).fit(X, y).loss_.margin == 0.3


def test_pickled_embedder_gives_identical_embeddings(small):
    X, y = small
    emb = MetricEmbedder(max_epochs=1, random_state=0).fit(X, y)
    restored = pickle.loads(pickle.dumps(emb))
    np.testing.assert_array_equal(restored.transform(X), emb.transform(X))
    unfitted = pickle.loads(pickle.dumps(MetricEmbedder(loss__alpha=3.0)))
    assert unfitted.get_params()["loss__alpha"] == 3.0


def test_fit_is_reproducible_and_leaves_the_global_torch_generator_alone(small):
    X, y = small
    state = torch.random.get_rng_state()
    a = MetricEmbedder(max_epochs=2, random_state=3).fit(X, y).transform(X)
    assert torch.equal(state, torch.random.get_rng_state())  # fit and transform
    b = MetricEmbedder(max_epochs=2, random_state=3).fit(X, y).transform(X)
    c = MetricEmbedder(max_epochs=2, random_state=4).fit(X, y).transform(X)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert a.dtype == np.float32 and a.shape == (len(X), 64)


def test_fit_transform_partial_fit_and_n_iter(small):
    X, y = small
    emb = MetricEmbedder(embedding_dim=8, max_epochs=2, random_state=0)
    Z = emb.fit_transform(X, y)
    assert Z.shape == (len(X), 8) and emb.n_iter_ == 2
    np.testing.assert_allclose(Z, emb.transform(X), atol=1e-6)
    emb.partial_fit(X, y)
    assert emb.n_iter_ == 4
    assert emb.get_feature_names_out().tolist()[:2] == ["metricembedder0", "metricembedder1"]


def test_stratified_validation_split_and_plain_batches(small):
    X, y = small
    emb = MetricEmbedder(train_split=ValidSplit(4, stratified=True), max_epochs=2,
                         random_state=0).fit(X, y)
    assert len(emb.history[:, "valid_loss"]) == 2
    plain = MetricEmbedder(samples_per_class=None, batch_size=32, max_epochs=1,
                           random_state=0).fit(X, y)
    assert np.isfinite(plain.history[-1, "train_loss"])


def test_custom_module_instance_is_copied_not_trained_in_place(small):
    X, y = small
    net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 5))
    before = net[0].weight.detach().clone()
    emb = MetricEmbedder(module=net, max_epochs=2, random_state=0).fit(X, y)
    assert emb.module_ is not net and emb.embedding_dim_ == 5
    assert torch.equal(net[0].weight, before)
    assert not torch.equal(emb.module_[0].weight, before)
    by_class = MetricEmbedder(module=MLP, module__in_features=64, module__embedding_dim=7,
                              max_epochs=1, random_state=0).fit(X, y)
    assert by_class.transform(X[:3]).shape == (3, 7)


class _ProxyLoss(nn.Module):
    """A proxy loss (softmax over cosine similarities to learnable class proxies)."""

    requires_classes = True

    def __init__(self, num_classes, embedding_size, scale=16.0):
        super().__init__()
        self.scale = scale
        self.proxies = nn.Parameter(torch.randn(num_classes, embedding_size))

    def logits(self, embeddings):
        return self.scale * F.normalize(embeddings) @ F.normalize(self.proxies).T

    def forward(self, embeddings, labels, indices_tuple=None, ref_emb=None, ref_labels=None):
        return F.cross_entropy(self.logits(embeddings), labels)


def test_proxy_losses_get_class_count_and_are_trained_and_saved(small):
    X, y = small
    y = np.array([f"c{v}" for v in y])  # string labels are encoded for the loss
    params = dict(loss=_ProxyLoss, miner=None, loss__scale=8.0, embedding_dim=12, lr=1e-2,
                  random_state=0)
    emb = MetricEmbedder(max_epochs=20, **params).fit(X, y)
    assert emb.loss_.proxies.shape == (10, 12) and emb.loss_.scale == 8.0
    optimised = {id(p) for group in emb.optimizer_.param_groups for p in group["params"]}
    assert id(emb.loss_.proxies) in optimised
    # Training moved the proxies from where this embedder started them (the same seed,
    # no epochs), by a good share of their size.
    initial = MetricEmbedder(max_epochs=0, **params).fit(X, y).loss_.proxies
    moved = torch.linalg.norm(emb.loss_.proxies - initial) / torch.linalg.norm(initial)
    assert moved > 0.05
    restored = pickle.loads(pickle.dumps(emb))
    assert torch.equal(restored.loss_.proxies, emb.loss_.proxies)
    assert emb.score(X, y) > 0.9
    # closed-set prediction from the proxies' class scores
    assert np.mean(emb.predict(X) == y) > 0.9 and emb.predict(X[:1])[0] in emb.classes_
    proba = emb.predict_proba(X[:7])
    assert proba.shape == (7, 10) and np.allclose(proba.sum(axis=1), 1)
    np.testing.assert_array_equal(emb.classes_[proba.argmax(1)], emb.predict(X[:7]))
    assert not hasattr(MetricEmbedder(), "predict")  # pair losses: a transformer only


def test_loss_and_miner_objects_are_accepted(small):
    from skmetric.deep.losses import get_loss
    from skmetric.deep.miners import get_miner

    X, y = small
    loss, miner = get_loss("triplet", margin=0.2), get_miner("semihard", margin=0.2)
    emb = MetricEmbedder(loss=loss, miner=miner, max_epochs=1, random_state=0).fit(X, y)
    assert emb.loss_.margin == 0.2 and emb.loss_ is not loss
    calls = []

    def counting_miner(embeddings, labels):
        calls.append(len(labels))
        return None

    MetricEmbedder(miner=counting_miner, max_epochs=1, batch_size=32,
                   random_state=0).fit(X, y)
    assert calls and all(n == 32 for n in calls)


# ------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "params, match",
    [
        ({"loss": "no_such_loss"}, r"Unknown loss 'no_such_loss'.*multi_similarity"),
        ({"miner": "no_such_miner"}, r"Unknown miner 'no_such_miner'.*semihard"),
        ({"samples_per_class": 40}, r"samples_per_class=40.*at most"),
        ({"samples_per_class": 8, "batch_size": 12}, r"batch_size >= 16"),
        ({"distance": "manhattan"}, r"distance"),
        ({"embedding_dim": 0}, r"embedding_dim"),
        ({"loss_margin": 0.1}, r"did you mean loss__margin"),
    ],
)
def test_bad_parameters_are_rejected_with_a_clear_message(small, params, match):
    X, y = small
    with pytest.raises(ValueError, match=match):
        MetricEmbedder(max_epochs=1, **params).fit(X, y)


def test_bad_data_is_rejected_with_a_clear_message(small):
    X, y = small
    emb = MetricEmbedder(max_epochs=1)
    for value, word in ((np.nan, "NaN"), (np.inf, "infinity")):
        bad = X.reshape(-1, 1, 8, 8).copy()
        bad[0, 0, 1, 1] = value
        with pytest.raises(ValueError, match=word):
            clone(emb).fit(bad, y)
    with pytest.raises(ValueError, match="1 class"):
        clone(emb).fit(X, np.zeros(len(X)))
    with pytest.raises(ValueError, match="single sample"):
        clone(emb).fit(X, np.r_[0, np.ones(len(X) - 1)])
    with pytest.raises(ValueError, match="Unknown label type"):
        clone(emb).fit(X, np.linspace(0, 1, len(X)))
    with pytest.raises(ValueError, match="could not convert|numeric"):
        clone(emb).fit(np.full((20, 3), "a"), np.arange(20) % 2)
    with pytest.raises(ValueError, match="[Cc]omplex"):
        clone(emb).fit(X + 1j, y)
    with pytest.raises(ValueError, match="channel axis"):
        clone(emb).fit(X.reshape(-1, 8, 8), y)
    fitted = MetricEmbedder(max_epochs=1, random_state=0).fit(X.reshape(-1, 1, 8, 8), y)
    with pytest.raises(ValueError, match=r"shape \(1, 4, 16\)"):
        fitted.transform(X.reshape(-1, 1, 4, 16))
    with pytest.raises(ValueError, match="not seen in the first fit"):
        fitted.partial_fit(X.reshape(-1, 1, 8, 8), y + 100)
    with pytest.raises(ValueError, match="2-D tensor of embeddings"):
        MetricEmbedder(module=nn.Identity(), max_epochs=1).fit(X.reshape(-1, 1, 8, 8), y)
    with pytest.raises(TypeError, match="callbacks"):
        MetricEmbedder(max_epochs=1).set_params(callbacks=-1).fit(X, y)


# ------------------------------------------------------------------------ sampler
def test_sampler_batches_hold_c_classes_of_m_distinct_samples():
    labels = np.repeat(np.arange(6), [5, 7, 9, 4, 6, 8])
    sampler = ClassBalancedBatchSampler(labels, samples_per_class=3, batch_size=13,
                                        random_state=0)
    batches = list(sampler)
    assert len(batches) == len(sampler) == len(labels) // 13
    for batch in batches:
        assert len(batch) == 12 and len(set(batch)) == 12  # 4 classes x 3, rounded down
        classes, counts = np.unique(labels[batch], return_counts=True)
        assert len(classes) == 4 and np.all(counts == 3)


def test_sampler_uses_every_sample_before_repeating_one():
    labels = np.repeat([0, 1, 2], 6)
    sampler = ClassBalancedBatchSampler(labels, 2, 6, n_batches=3, random_state=1)
    seen = np.concatenate(list(sampler))
    assert sorted(seen) == list(range(18))


def test_sampler_is_reproducible_with_random_state_and_varies_over_epochs():
    labels = np.repeat(np.arange(8), 10)
    a = ClassBalancedBatchSampler(labels, 4, 16, random_state=7)
    b = ClassBalancedBatchSampler(labels, 4, 16, random_state=7)
    first, again = list(a), list(b)
    assert first == again
    assert list(a) != first  # the next epoch differs
    assert list(ClassBalancedBatchSampler(labels, 4, 16, random_state=8)) != first


def test_sampler_rejects_impossible_settings():
    with pytest.raises(ValueError, match="at least 2 classes"):
        ClassBalancedBatchSampler(np.zeros(10), 2, 8)
    with pytest.raises(ValueError, match="at most 3"):
        ClassBalancedBatchSampler(np.repeat([0, 1], [3, 10]), 4, 16)
    with pytest.raises(ValueError, match="batch_size >= 8"):
        ClassBalancedBatchSampler(np.repeat([0, 1], 10), 4, 6)


# ------------------------------------------------------------ networks and metrics
@pytest.mark.parametrize("channels, size", [(1, 8), (1, 28), (3, 32)])
def test_small_cnn_embeds_images_of_several_sizes(channels, size):
    net = SmallCNN(in_channels=channels, embedding_dim=10)
    assert net(torch.zeros(3, channels, size, size)).shape == (3, 10)
    assert isinstance(net.head, nn.Linear)


def test_mlp_flattens_input_and_ends_in_a_linear_head():
    net = MLP(12, hidden=(16, 8), embedding_dim=4, dropout=0.1)
    assert net(torch.zeros(5, 3, 4)).shape == (5, 4)
    assert isinstance(net.layers[-1], nn.Linear)
    assert MLP(12, hidden=(), embedding_dim=2)(torch.zeros(1, 12)).shape == (1, 2)


def test_score_is_leave_one_out_precision_at_1(small):
    X, y = small
    emb = MetricEmbedder(max_epochs=1, distance="euclidean", normalize=False,
                         random_state=0).fit(X, y)
    Z = emb.transform(X)
    assert emb.score(X, y) == pytest.approx(precision_at_k(Z, y, k=1))
    emb.set_params(distance="cosine_similarity")
    assert emb.score(X, y) == pytest.approx(precision_at_k(Z, y, k=1, metric="cosine"))


def test_precision_at_1_by_hand():
    emb = np.array([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.0, 5.2], [0.2, 0.0]])
    labels = np.array([0, 0, 1, 1, 1])
    # nearest others: 0->1 (0), 1->0 (0), 2->3 (1), 3->2 (1), 4->1 (0): 4 of 5 correct
    assert precision_at_k(emb, labels, k=1) == pytest.approx(0.8)
    assert precision_at_k(emb, labels, k=1, chunk_size=2) == pytest.approx(0.8)
    # cosine ignores norms: [1, 0] is nearest to [2, 0.1], [0, 1] to [0.1, 3]
    cos = np.array([[1.0, 0.0], [2.0, 0.1], [0.0, 1.0], [0.1, 3.0]])
    assert precision_at_k(cos, [0, 0, 1, 1], k=1, metric="cosine") == 1.0


# -------------------------------------------------------------------- data loading
def _write_idx(path, array, type_code, compress):
    header = bytes([0, 0, type_code, array.ndim]) + np.array(array.shape, ">u4").tobytes()
    data = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    opener = gzip.open if compress else open
    with opener(path, "wb") as f:
        f.write(data)


def test_fashion_mnist_loader_reads_idx_files_plain_or_gzipped(tmp_path):
    rng = np.random.RandomState(0)
    train_images = rng.randint(0, 256, size=(6, 28, 28)).astype(np.uint8)
    test_images = rng.randint(0, 256, size=(4, 28, 28)).astype(np.uint8)
    _write_idx(tmp_path / "train-images-idx3-ubyte.gz", train_images, 0x08, True)
    _write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.arange(6, dtype=np.uint8), 0x08,
               True)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte", test_images, 0x08, False)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.arange(4, dtype=np.uint8), 0x08, False)
    X, y = load_fashion_mnist(tmp_path)
    assert X.shape == (6, 1, 28, 28) and X.dtype == np.float32
    np.testing.assert_allclose(X[:, 0] * 255, train_images, atol=1e-4)
    np.testing.assert_array_equal(y, np.arange(6))
    X, y = load_fashion_mnist(tmp_path, subset="all", as_images=False, scale=False)
    assert X.shape == (10, 784)
    np.testing.assert_array_equal(X[6:].reshape(4, 28, 28), test_images)
    np.testing.assert_array_equal(y, [0, 1, 2, 3, 4, 5, 0, 1, 2, 3])
    assert load_fashion_mnist(tmp_path, subset="test", n_samples=2)[0].shape[0] == 2


def test_read_idx_handles_other_types_and_rejects_corrupt_files(tmp_path):
    values = np.arange(12, dtype=np.float64).reshape(3, 4) / 7
    _write_idx(tmp_path / "f.idx", values, 0x0E, False)
    np.testing.assert_array_equal(read_idx(tmp_path / "f.idx"), values)
    (tmp_path / "bad.idx").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="magic"):
        read_idx(tmp_path / "bad.idx")
    raw = (tmp_path / "f.idx").read_bytes()
    (tmp_path / "short.idx").write_bytes(raw[:-8])
    with pytest.raises(ValueError, match="truncated"):
        read_idx(tmp_path / "short.idx")


def test_missing_fashion_mnist_names_the_debian_package(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="subset"):
        load_fashion_mnist(tmp_path, subset="valid")


def test_installed_fashion_mnist_has_the_expected_shape():
    try:
        X, y = load_fashion_mnist(subset="test")
    except FileNotFoundError:
        pytest.skip("dataset-fashion-mnist is not installed")
    assert X.shape == (10000, 1, 28, 28) and 0 <= X.min() and X.max() <= 1
    assert np.array_equal(np.bincount(y), np.full(10, 1000))


def test_deep_subpackage_without_skorch_names_the_extra():
    code = (
        "import sys, importlib.abc\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'skorch':\n"
        "            raise ImportError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import skmetric\n"
        "try:\n"
        "    import skmetric.deep\n"
        "except ImportError as e:\n"
        "    print(e)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "pip install 'skmetric[deep]'" in res.stdout, res.stdout + res.stderr
