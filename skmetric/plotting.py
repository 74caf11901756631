"""Figures for metric learning: embeddings, retrieval results, ROC curves, training curves.

Needs matplotlib (``pip install 'skmetric[plot]'``). Every function returns the matplotlib
``Axes`` or ``Figure`` it drew on, so figures can be adjusted, saved or tested.
"""

import numpy as np

from ._array_api import to_numpy
from ._optional import import_optional
from .metrics import equal_error_rate, verification_roc
from .neighbors import kneighbors

__all__ = ["plot_embedding", "plot_retrieval", "plot_roc", "plot_training_history"]

_METHODS = ("pca", "tsne", None)


def plot_embedding(X_emb, y=None, *, method="pca", ax=None, random_state=None, title=None,
                   marker_size=12, legend=True):
    """Scatter plot of embeddings projected to 2-D, coloured by class.

    Parameters
    ----------
    X_emb : array of shape (n_samples, n_features)
        Embeddings (e.g. ``learner.transform(X)``), of any array namespace.
    y : array-like of shape (n_samples,), default=None
        Classes, one colour (and legend entry) each.
    method : {"pca", "tsne"} or None, default="pca"
        Projection to 2-D: scikit-learn's PCA or t-SNE; None plots the first two columns.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure when None.
    random_state : int or None, default=None
        Seeds t-SNE.
    title : str, default=None
        Axes title; by default the method's name.
    marker_size : float, default=12
        Marker area.
    legend : bool, default=True
        Add a legend of the classes (at most 20).

    Returns
    -------
    ax : matplotlib Axes
        With one scatter collection per class.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from skmetric.plotting import plot_embedding
    >>> ax = plot_embedding(np.random.RandomState(0).randn(30, 5), np.arange(30) % 3)
    >>> len(ax.collections)
    3
    """
    plt = _pyplot()
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}; got {method!r}.")
    X = np.asarray(to_numpy(X_emb), dtype=np.float64)
    if X.ndim != 2 or X.shape[0] < 2 or X.shape[1] < 2:
        raise ValueError(
            f"X_emb must be 2-D with at least 2 samples and 2 features; got shape {X.shape}."
        )
    if not np.all(np.isfinite(X)):
        raise ValueError("X_emb contains NaN or infinity.")
    y = np.zeros(X.shape[0], dtype=int) if y is None else np.asarray(to_numpy(y))
    if y.shape != (X.shape[0],):
        raise ValueError(f"y must have one label per row of X_emb ({X.shape[0]}); got {y.shape}.")
    Z, axis_name = _project(X, method, random_state)
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 5))
    classes = np.unique(y)
    colors = plt.get_cmap("tab10" if classes.size <= 10 else "tab20")
    for i, c in enumerate(classes):
        mask = y == c
        ax.scatter(Z[mask, 0], Z[mask, 1], s=marker_size, color=colors(i % colors.N),
                   label=str(c), alpha=0.8, edgecolors="none")
    ax.set_xlabel(f"{axis_name} 1")
    ax.set_ylabel(f"{axis_name} 2")
    ax.set_title(title if title is not None else f"Embedding ({axis_name})")
    if legend and 1 < classes.size <= 20:
        ax.legend(title="class", fontsize="small", markerscale=1.5, loc="best")
    return ax


def plot_retrieval(query_images, query_labels, reference_images=None, reference_labels=None,
                   *, query_embeddings=None, reference_embeddings=None, k=5, image_shape=None,
                   metric="euclidean", cmap="gray", correct_color="tab:green",
                   wrong_color="tab:red"):
    """Each query image with its k nearest references, framed green (correct) or red.

    Parameters
    ----------
    query_images : array of shape (n_queries, height, width[, channels]) or (n_queries, n_pixels)
        Images of the queries (one row of the figure each); flat rows need ``image_shape``.
    query_labels : array-like of shape (n_queries,)
        Classes of the queries.
    reference_images, reference_labels : arrays, default=None
        The images searched and their classes; None searches the queries themselves,
        each query's own image excluded.
    query_embeddings, reference_embeddings : arrays, default=None
        Embeddings used for the search (e.g. ``learner.transform(X)``); by default the
        flattened images themselves.
    k : int, default=5
        Neighbours shown per query.
    image_shape : tuple, default=None
        Shape of one image, to reshape flat rows (e.g. ``(8, 8)`` for scikit-learn's digits).
    metric : str, default="euclidean"
        Distance of the search (see :func:`skmetric.neighbors.kneighbors`).
    cmap : str, default="gray"
        Colour map of single-channel images.
    correct_color, wrong_color : colours, default="tab:green", "tab:red"
        Frames of neighbours of the query's class and of another class.

    Returns
    -------
    fig : matplotlib Figure
        A grid of ``n_queries`` rows and ``k + 1`` columns of axes: the query, then its
        neighbours nearest first.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn.datasets import load_digits
    >>> from skmetric.plotting import plot_retrieval
    >>> X, y = load_digits(return_X_y=True)
    >>> fig = plot_retrieval(X[:3], y[:3], X[3:], y[3:], k=4, image_shape=(8, 8))
    >>> len(fig.axes)
    15
    """
    plt = _pyplot()
    colors = import_optional("matplotlib.colors", feature="skmetric.plotting", extra="plot")
    q_img = _images(query_images, image_shape, "query_images")
    q_lab = np.asarray(to_numpy(query_labels))
    if q_lab.shape != (q_img.shape[0],):
        raise ValueError(
            f"query_labels must have one label per query image ({q_img.shape[0]}); got shape "
            f"{q_lab.shape}."
        )
    same = reference_images is None
    if same:
        if reference_labels is not None or reference_embeddings is not None:
            raise ValueError("reference_labels/embeddings given without reference_images.")
        r_img, r_lab = q_img, q_lab
    else:
        if reference_labels is None:
            raise ValueError("reference_labels is required with reference_images.")
        r_img = _images(reference_images, image_shape, "reference_images")
        r_lab = np.asarray(to_numpy(reference_labels))
        if r_lab.shape != (r_img.shape[0],):
            raise ValueError(
                "reference_labels must have one label per reference image "
                f"({r_img.shape[0]}); got shape {r_lab.shape}."
            )
    q_emb = q_img.reshape(q_img.shape[0], -1) if query_embeddings is None else query_embeddings
    if same:
        r_emb = None
    else:
        r_emb = (r_img.reshape(r_img.shape[0], -1) if reference_embeddings is None
                 else reference_embeddings)
    _check_rows(q_emb, q_img.shape[0], "query_embeddings", "query_images")
    if not same:
        _check_rows(r_emb, r_img.shape[0], "reference_embeddings", "reference_images")
    dist, ind = kneighbors(q_emb, r_emb, n_neighbors=k, metric=metric)
    dist, ind = np.asarray(to_numpy(dist)), np.asarray(to_numpy(ind))
    n_q = q_img.shape[0]
    fig, axes = plt.subplots(n_q, k + 1, figsize=(1.3 * (k + 1), 1.45 * n_q), squeeze=False)
    for row in range(n_q):
        _show(axes[row, 0], q_img[row], cmap, "black", f"query {q_lab[row]}", colors)
        for j in range(k):
            ref = ind[row, j]
            correct = r_lab[ref] == q_lab[row]
            _show(axes[row, j + 1], r_img[ref], cmap, correct_color if correct else wrong_color,
                  f"{r_lab[ref]} ({dist[row, j]:.2g})", colors)
    fig.suptitle(f"Top-{k} retrieval (green: same class, red: other class)", fontsize="medium")
    fig.tight_layout()
    return fig


def plot_roc(scores, y, *, greater_is_similar=True, ax=None, label=None, log_far=False,
             mark_eer=True):
    """ROC curve of pair verification: true accept rate against false accept rate.

    Parameters
    ----------
    scores : array-like of shape (n_pairs,)
        Similarity scores, or distances with ``greater_is_similar=False``.
    y : array-like of shape (n_pairs,)
        Pair labels in {-1, 1} or {0, 1} (1 = similar).
    greater_is_similar : bool, default=True
        False when ``scores`` are distances.
    ax : matplotlib Axes, default=None
        Where to draw (pass one to overlay several curves); a new figure when None.
    label : str, default=None
        Legend label; the AUC is appended.
    log_far : bool, default=False
        Logarithmic FAR axis, to read TAR at small FAR.
    mark_eer : bool, default=True
        Mark the equal error rate point.

    Returns
    -------
    ax : matplotlib Axes
        Its first line is the ROC curve (x: FAR, y: TAR).

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from skmetric.plotting import plot_roc
    >>> ax = plot_roc([0.9, 0.8, 0.3, 0.1], [1, -1, 1, -1])
    >>> ax.get_legend_handles_labels()[1][0]
    'AUC = 0.750'
    """
    plt = _pyplot()
    roc = verification_roc(scores, y, greater_is_similar=greater_is_similar)
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 5))
    text = f"AUC = {roc.auc:.3f}" if label is None else f"{label} (AUC = {roc.auc:.3f})"
    (line,) = ax.plot(roc.far, roc.tar, drawstyle="default", label=text)
    if mark_eer:
        eer = equal_error_rate(scores, y, greater_is_similar=greater_is_similar)
        ax.plot([eer], [1 - eer], "o", color=line.get_color(), label=f"EER = {eer:.3f}")
    if log_far:
        ax.set_xscale("log")
    else:
        ax.plot([0, 1], [0, 1], linestyle=":", color="gray", linewidth=1)
    ax.set_xlabel("false accept rate (FAR)")
    ax.set_ylabel("true accept rate (TAR)")
    ax.set_title("Pair verification ROC")
    ax.legend(loc="lower right", fontsize="small")
    return ax


def plot_training_history(history, *, keys=None, ax=None):
    """Loss curves per epoch from a training history.

    Parameters
    ----------
    history : list of dict, skorch ``History`` or a fitted estimator
        One dict per epoch with 'epoch' (optional) and the values to plot, such as
        'train_loss' and 'valid_loss'; an estimator's ``history_`` (MetricEmbedder) or
        ``history`` (skorch nets) is used.
    keys : sequence of str, default=None
        Entries to plot; by default 'train_loss' and 'valid_loss' where recorded.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure when None.

    Returns
    -------
    ax : matplotlib Axes
        One line per key, x being the epoch.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from skmetric.plotting import plot_training_history
    >>> ax = plot_training_history([{"epoch": 1, "train_loss": 0.9},
    ...                             {"epoch": 2, "train_loss": 0.5}])
    >>> ax.lines[0].get_ydata().tolist()
    [0.9, 0.5]
    """
    plt = _pyplot()
    epochs = _history_rows(history)
    if keys is None:
        keys = [key for key in ("train_loss", "valid_loss")
                if any(key in row for row in epochs)]
        if not keys:
            raise ValueError(
                "The history records neither 'train_loss' nor 'valid_loss'; pass keys=[...]."
            )
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    for key in keys:
        rows = [(row.get("epoch", i + 1), row[key]) for i, row in enumerate(epochs)
                if row.get(key) is not None]
        if not rows:
            raise ValueError(f"No epoch of the history records {key!r}.")
        x, values = zip(*rows, strict=True)
        ax.plot(x, [float(v) for v in values], marker="o", markersize=3, label=key)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title("Training history")
    ax.legend(fontsize="small")
    return ax


def _pyplot():
    return import_optional("matplotlib.pyplot", feature="skmetric.plotting", extra="plot")


def _project(X, method, random_state):
    if method is None:
        return X[:, :2], "dim"
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2).fit_transform(X), "PC"
    from sklearn.manifold import TSNE

    perplexity = min(30.0, (X.shape[0] - 1) / 3)
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=random_state)
    return tsne.fit_transform(X), "t-SNE"


def _images(images, image_shape, name):
    img = np.asarray(to_numpy(images))
    if image_shape is not None:
        img = img.reshape((img.shape[0], *tuple(image_shape)))
    if img.ndim not in (3, 4):
        raise ValueError(
            f"{name} must be images of shape (n, height, width[, channels]), or flat rows "
            f"with image_shape=(height, width); got shape {img.shape}."
        )
    return img


def _check_rows(embeddings, n_images, name, images_name):
    """Refuse embeddings that are not one row per image: their neighbours' indices would
    pick the wrong images (or none)."""
    n_rows = np.shape(embeddings)[0] if np.ndim(embeddings) else 0
    if n_rows != n_images:
        raise ValueError(
            f"{name} must have one row per image of {images_name} ({n_images}); got "
            f"{n_rows} rows. Pass the embeddings of those same images."
        )


def _show(ax, image, cmap, frame_color, title, colors):
    ax.imshow(image, cmap=cmap if image.ndim == 2 else None, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(True)
        spine.set_color(colors.to_rgba(frame_color))
        spine.set_linewidth(3)
    ax.set_title(title, fontsize="small", color=frame_color)


def _history_rows(history):
    for attr in ("history_", "history"):
        if not isinstance(history, list) and hasattr(history, attr):
            history = getattr(history, attr)
            break
    try:
        rows = [dict(row) for row in history]
    except (TypeError, ValueError) as exc:
        raise TypeError(
            "history must be a list of dicts (one per epoch), a skorch History or an "
            f"estimator with history_; got {type(history).__name__}."
        ) from exc
    if not rows:
        raise ValueError("The history is empty: train for at least one epoch.")
    return rows
