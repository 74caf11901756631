"""Open-set retrieval: embed classes that the network never saw in training.

A metric learner is judged on new classes: a face recogniser meets new people, a product
search new products. Here a MetricEmbedder is trained on some classes and used to retrieve
samples of the other classes by their nearest neighbour in the embedding.

The data are scikit-learn's digits with 64 extra noise features (so that plain Euclidean
retrieval is poor): the network trained on digits 0-6 learns to ignore the noise, and that
transfers to the unseen digits 7-9.

Run: ``python docs/examples/open_set_retrieval.py`` (about 10 s on a CPU)
"""

import time

import numpy as np
from sklearn.datasets import load_digits

from skmetric.deep import MetricEmbedder
from skmetric.metrics import precision_at_k


def digits_with_noise(random_state=0):
    X, y = load_digits(return_X_y=True)
    rng = np.random.RandomState(random_state)
    return np.hstack([X / 16, rng.randn(len(X), 64)]), y, 7


def main():
    X, y, first_unseen = digits_with_noise()
    seen = y < first_unseen
    print(f"training on classes {np.unique(y[seen]).tolist()}, {seen.sum()} samples; "
          f"retrieving classes {np.unique(y[~seen]).tolist()}, {(~seen).sum()} samples")

    embedder = MetricEmbedder(max_epochs=20, random_state=0)
    start = time.perf_counter()
    embedder.fit(X[seen], y[seen])
    print(f"trained in {time.perf_counter() - start:.1f}s")

    untrained = MetricEmbedder(max_epochs=0, random_state=0).fit(X[seen], y[seen])
    print("precision@1 on the unseen classes:")
    print(f"  Euclidean on the raw features: {precision_at_k(X[~seen], y[~seen], k=1):.3f}")
    print(f"  untrained network:             {untrained.score(X[~seen], y[~seen]):.3f}")
    print(f"  trained MetricEmbedder:        {embedder.score(X[~seen], y[~seen]):.3f}")


if __name__ == "__main__":
    main()
