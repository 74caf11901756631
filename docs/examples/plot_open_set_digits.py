"""
A deep embedder on digits: embedding and retrieval of unseen classes
====================================================================

A metric learner is judged on new classes: a face recogniser meets new people, a product
search new products. Here a :class:`~skmetric.deep.MetricEmbedder` (a small MLP trained with
a triplet loss on class-balanced batches) learns from digits 0-6 and is used to retrieve
digits 7-9, which it never saw, by their nearest neighbours in the embedding.

The digits get 64 extra noise features, so that plain Euclidean retrieval is poor: the
network learns to ignore the noise, and that transfers to the unseen digits.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits

from skmetric.deep import MetricEmbedder
from skmetric.metrics import precision_at_k
from skmetric.plotting import plot_embedding, plot_retrieval

X_digits, y = load_digits(return_X_y=True)
rng = np.random.RandomState(0)
X = np.hstack([X_digits / 16, rng.randn(len(X_digits), 64)]).astype(np.float32)
seen = y < 7

embedder = MetricEmbedder(max_epochs=20, random_state=0).fit(X[seen], y[seen])
untrained = MetricEmbedder(max_epochs=0, random_state=0).fit(X[seen], y[seen])

print("precision@1 on the unseen digits 7-9:")
print(f"  Euclidean on the raw features: {precision_at_k(X[~seen], y[~seen], k=1):.3f}")
print(f"  untrained network:             {untrained.score(X[~seen], y[~seen]):.3f}")
print(f"  trained MetricEmbedder:        {embedder.score(X[~seen], y[~seen]):.3f}")

# %%
# The embedding
# -------------
# All digits, seen and unseen, embedded by the trained network and projected with PCA.
# The unseen digits 7, 8 and 9 form their own groups although no loss ever pulled them
# together.

fig, axes = plt.subplots(1, 2, figsize=(12, 5))
plot_embedding(X, y, ax=axes[0], title="raw features (PCA)", marker_size=6)
plot_embedding(embedder.transform(X), y, ax=axes[1], title="MetricEmbedder (PCA)",
               marker_size=6)
fig.tight_layout()

# %%
# Retrieval of unseen digits
# --------------------------
# Each row is a query digit from the unseen classes, then its five nearest neighbours among
# the other unseen digits, searched in the embedding but shown as images: green frames are
# neighbours of the query's class, red ones mistakes.

queries = np.flatnonzero(~seen)[::40][:6]
references = np.setdiff1d(np.flatnonzero(~seen), queries)
plot_retrieval(X_digits[queries] / 16, y[queries], X_digits[references] / 16, y[references],
               query_embeddings=embedder.transform(X[queries]),
               reference_embeddings=embedder.transform(X[references]),
               k=5, image_shape=(8, 8))
plt.show()
