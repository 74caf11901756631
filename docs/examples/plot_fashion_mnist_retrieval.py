"""
Open-set retrieval on Fashion-MNIST
===================================

Train an embedder on six kinds of clothing and search a catalogue of four other kinds with
it: the open-set setting of product search. The unseen kinds (pullovers, coats, shirts and
ankle boots) are the hard ones: three of them differ only in details. Fashion-MNIST is read
from disk, where Debian's package puts it (``apt-get install dataset-fashion-mnist``);
without it this example only says so and draws nothing.
"""

import matplotlib.pyplot as plt
import numpy as np

from skmetric.deep import MetricEmbedder
from skmetric.deep.datasets import FASHION_MNIST_CLASSES, load_fashion_mnist
from skmetric.metrics import map_at_r, precision_at_k
from skmetric.plotting import plot_retrieval

try:
    X_train, y_train = load_fashion_mnist(subset="train", as_images=False, n_samples=6000)
    X_test, y_test = load_fashion_mnist(subset="test", as_images=False, n_samples=2000)
except FileNotFoundError as error:
    X_train = None
    print(f"Skipped: Fashion-MNIST is not installed here ({error})")

# %%
# Train on six classes, retrieve the four others
# ----------------------------------------------
# A multi-layer perceptron on the 784 pixels, trained for ten epochs on about 3 600 images
# of T-shirts, trousers, dresses, sandals, sneakers and bags. The queries and the catalogue
# are test images of the four other classes.
#
# Two numbers judge the retrieval: precision@1 (is the nearest image of the query's class?)
# and MAP@R (are the R images of the query's class ranked first, R being their number?).
# After this short training the embedding ranks whole classes better than the pixels do
# (MAP@R), while the single nearest image is about as often right as with pixels: read both
# before deciding that an embedding helps.

if X_train is not None:
    unseen_classes = [2, 4, 6, 9]
    seen = ~np.isin(y_train, unseen_classes)
    unseen = np.isin(y_test, unseen_classes)
    embedder = MetricEmbedder(max_epochs=10, random_state=0).fit(X_train[seen], y_train[seen])
    X_new, y_new = X_test[unseen], y_test[unseen]
    Z_new = embedder.transform(X_new)
    print("unseen classes: " + ", ".join(FASHION_MNIST_CLASSES[c] for c in unseen_classes))
    print("                     precision@1  MAP@R")
    for name, Z in [("Euclidean on pixels", X_new), ("MetricEmbedder", Z_new)]:
        print(f"  {name:19s}  {precision_at_k(Z, y_new, k=1):11.3f}  "
              f"{map_at_r(Z, y_new):5.3f}")

# %%
# The nearest neighbours of a few queries
# ---------------------------------------
# One query of each unseen class per row (twice), then its six nearest catalogue images in
# the embedding; red frames are images of another class.

if X_train is not None:
    rng = np.random.RandomState(0)
    queries = np.concatenate([rng.choice(np.flatnonzero(y_new == c), 2, replace=False)
                              for c in unseen_classes])
    catalogue = np.setdiff1d(np.arange(len(y_new)), queries)
    fig = plot_retrieval(X_new[queries], y_new[queries], X_new[catalogue], y_new[catalogue],
                         query_embeddings=Z_new[queries],
                         reference_embeddings=Z_new[catalogue],
                         k=6, image_shape=(28, 28))
    fig.suptitle("Queries of unseen classes and their nearest catalogue images")
    plt.show()
