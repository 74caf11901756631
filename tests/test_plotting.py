"""Tests of skmetric.plotting: the figures' contents, not only that they are drawn."""

import sys

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.colors as mcolors  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

from skmetric import plotting  # noqa: E402
from skmetric.metrics import verification_roc  # noqa: E402
from skmetric.neighbors import kneighbors  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_plot_embedding_draws_one_collection_per_class_at_the_pca_projection(rng):
    X = rng.randn(60, 5)
    y = np.repeat(["a", "b", "c"], 20)
    ax = plotting.plot_embedding(X, y)
    assert len(ax.collections) == 3
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b", "c"]
    from sklearn.decomposition import PCA

    Z = PCA(n_components=2).fit_transform(X)
    np.testing.assert_allclose(ax.collections[1].get_offsets(), Z[y == "b"])
    colors = {mcolors.to_hex(c.get_facecolor()[0]) for c in ax.collections}
    assert len(colors) == 3
    assert ax.get_xlabel() == "PC 1"


def test_plot_embedding_tsne_and_given_axes(rng):
    X = rng.randn(40, 4)
    fig, ax = plt.subplots()
    out = plotting.plot_embedding(X, np.arange(40) % 2, method="tsne", ax=ax, random_state=0)
    assert out is ax and ax.get_xlabel() == "t-SNE 1"
    assert sum(len(c.get_offsets()) for c in ax.collections) == 40
    raw = plotting.plot_embedding(X, method=None)
    np.testing.assert_allclose(raw.collections[0].get_offsets(), X[:, :2])


def test_plot_embedding_bad_input(rng):
    with pytest.raises(ValueError, match="method"):
        plotting.plot_embedding(rng.randn(5, 3), method="umap")
    with pytest.raises(ValueError, match="2 features"):
        plotting.plot_embedding(rng.randn(5, 1))
    with pytest.raises(ValueError, match="one label per row"):
        plotting.plot_embedding(rng.randn(5, 3), [0, 1])


def test_plot_retrieval_frames_correct_neighbours_green_and_wrong_red():
    X, y = load_digits(return_X_y=True)
    Q, qy, R, ry = X[:4], y[:4], X[4:300], y[4:300]
    emb_q, emb_r = Q[:, :20], R[:, :20]  # a deliberately poor embedding: some errors
    k = 5
    fig = plotting.plot_retrieval(Q, qy, R, ry, query_embeddings=emb_q,
                                  reference_embeddings=emb_r, k=k, image_shape=(8, 8))
    axes = np.array(fig.axes).reshape(4, k + 1)
    _, ind = kneighbors(emb_q, emb_r, n_neighbors=k)
    green, red = mcolors.to_rgba("tab:green"), mcolors.to_rgba("tab:red")
    n_red = 0
    for row in range(4):
        np.testing.assert_array_equal(axes[row, 0].images[0].get_array(), Q[row].reshape(8, 8))
        for j in range(k):
            ax = axes[row, j + 1]
            ref = ind[row, j]
            np.testing.assert_array_equal(ax.images[0].get_array(), R[ref].reshape(8, 8))
            expected = green if ry[ref] == qy[row] else red
            n_red += expected == red
            assert ax.spines["top"].get_edgecolor() == expected
    assert 0 < n_red < 4 * k  # both colours were exercised


def test_plot_retrieval_within_the_query_set_excludes_the_query_itself():
    X, y = load_digits(return_X_y=True)
    images = X[:12].reshape(-1, 8, 8)
    fig = plotting.plot_retrieval(images, y[:12], k=3)
    axes = np.array(fig.axes).reshape(12, 4)
    for row in range(12):
        for j in range(1, 4):
            assert not np.array_equal(axes[row, j].images[0].get_array(), images[row])
    with pytest.raises(ValueError, match="image_shape"):
        plotting.plot_retrieval(X[:5], y[:5], k=2)
    with pytest.raises(ValueError, match="reference_labels is required"):
        plotting.plot_retrieval(images, y[:12], images, k=2)


def test_plot_roc_line_is_the_verification_roc(rng):
    scores = rng.randn(100)
    y = np.where(scores + rng.randn(100) > 0, 1, -1)
    ax = plotting.plot_roc(scores, y, label="model")
    roc = verification_roc(scores, y)
    np.testing.assert_allclose(ax.lines[0].get_xdata(), roc.far)
    np.testing.assert_allclose(ax.lines[0].get_ydata(), roc.tar)
    labels = ax.get_legend_handles_labels()[1]
    assert labels[0] == f"model (AUC = {roc.auc:.3f})" and labels[1].startswith("EER")
    # Distances draw the same curve; overlays go on the given axes.
    plotting.plot_roc(-scores, y, greater_is_similar=False, ax=ax, mark_eer=False)
    np.testing.assert_allclose(ax.lines[-2].get_ydata(), roc.tar)
    log_ax = plotting.plot_roc(scores, y, log_far=True)
    assert log_ax.get_xscale() == "log"


def test_plot_training_history_from_dicts_and_estimators():
    history = [{"epoch": 1, "train_loss": 1.0, "valid_loss": 1.2},
               {"epoch": 2, "train_loss": 0.6, "valid_loss": 0.9},
               {"epoch": 3, "train_loss": 0.4, "valid_loss": 0.95}]
    ax = plotting.plot_training_history(history)
    assert [line.get_label() for line in ax.lines] == ["train_loss", "valid_loss"]
    np.testing.assert_allclose(ax.lines[0].get_xdata(), [1, 2, 3])
    np.testing.assert_allclose(ax.lines[1].get_ydata(), [1.2, 0.9, 0.95])

    class Fitted:
        history_ = history[:2]

    assert len(plotting.plot_training_history(Fitted(), keys=["train_loss"]).lines) == 1
    with pytest.raises(ValueError, match="empty"):
        plotting.plot_training_history([])
    with pytest.raises(ValueError, match="neither"):
        plotting.plot_training_history([{"epoch": 1, "acc": 0.5}])
    with pytest.raises(TypeError, match="list of dicts"):
        plotting.plot_training_history(3)


def test_plot_training_history_of_a_skorch_history():
    skorch = pytest.importorskip("skorch")
    hist = skorch.history.History()
    for epoch, loss in enumerate([0.8, 0.5], start=1):
        hist.new_epoch()
        hist.record("epoch", epoch)
        hist.record("train_loss", loss)
    ax = plotting.plot_training_history(hist)
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [0.8, 0.5])


def test_saved_png_is_a_real_image(tmp_path, rng):
    ax = plotting.plot_embedding(rng.randn(30, 3), np.arange(30) % 3)
    path = tmp_path / "emb.png"
    ax.figure.savefig(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_missing_matplotlib_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"pip install 'skmetric\[plot\]'"):
        plotting.plot_roc([0.1, 0.9], [0, 1])


def test_demo_writes_embedding_retrieval_and_roc_figures(tmp_path, capsys):
    from matplotlib.image import imread

    from skmetric._demo import main

    main(["--datasets", "wine,digits", "--learners", "Covariance", "--folds", "2",
          "--plots", str(tmp_path)])
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == ["embedding_digits.png", "embedding_wine.png", "retrieval_digits.png",
                       "roc_digits.png", "roc_wine.png"]
    for name in written:
        image = imread(tmp_path / name)
        assert image.ndim == 3 and image.shape[0] > 100 and image.std() > 0.01, name
    assert "wrote" in capsys.readouterr().err
