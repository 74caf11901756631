"""
Open-set retrieval on Fashion-MNIST
===================================

Train an embedder on six kinds of clothing and search a catalogue of four other kinds with
it: the open-set setting of product search. Fashion-MNIST is read from disk, where Debian's
package puts it (``apt-get install dataset-fashion-mnist``); without it this example only
says so and draws nothing.
"""

import matplotlib.pyplot as plt
import numpy as np

from skmetric.deep import MetricEmbedder
from skmetric.deep.datasets import FASHION_MNIST_CLASSES, load_fashion_mnist
from skmetric.metrics import precision_at_k
from skmetric.plotting import plot_retrieval

try:
    X_train, y_train = load_fashion_mnist(subset="train", as_images=False, n_samples=6000)
    X_test, y_test = load_fashion_mnist(subset="test", as_images=False, n_samples=2000)
except FileNotFoundError as error:
    X_train = None
    print(f"Skipped: Fashion-MNIST is not installed here ({error})")

# %%
# Train on classes 0-5, retrieve classes 6-9
# ------------------------------------------
# A multi-layer perceptron on the 784 pixels, trained for a few epochs on 3 600 images of
# T-shirts, trousers, pullovers, dresses, coats and sandals. The queries and the catalogue
# are test images of shirts, sneakers, bags and ankle boots.

if X_train is not None:
    seen = y_train < 6
    unseen = y_test >= 6
    embedder = MetricEmbedder(max_epochs=8, random_state=0).fit(X_train[seen], y_train[seen])
    X_new, y_new = X_test[unseen], y_test[unseen]
    print("precision@1 among the unseen classes "
          f"({', '.join(FASHION_MNIST_CLASSES[c] for c in range(6, 10))}):")
    print(f"  Euclidean on pixels: {precision_at_k(X_new, y_new, k=1):.3f}")
    print(f"  MetricEmbedder:      {embedder.score(X_new, y_new):.3f}")

# %%
# The nearest neighbours of a few queries
# ---------------------------------------
# One query of each unseen class per row (twice), then its six nearest catalogue images in
# the embedding; red frames are images of another class.

if X_train is not None:
    rng = np.random.RandomState(0)
    queries = np.concatenate([rng.choice(np.flatnonzero(y_new == c), 2, replace=False)
                              for c in range(6, 10)])
    catalogue = np.setdiff1d(np.arange(len(y_new)), queries)
    fig = plot_retrieval(X_new[queries], y_new[queries], X_new[catalogue], y_new[catalogue],
                         query_embeddings=embedder.transform(X_new[queries]),
                         reference_embeddings=embedder.transform(X_new[catalogue]),
                         k=6, image_shape=(28, 28))
    fig.suptitle("Queries of unseen classes and their nearest catalogue images")
    plt.show()
