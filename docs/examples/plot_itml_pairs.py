"""
ITML from pairs: weak supervision
=================================

Often nobody labels classes, but someone can say whether two samples are alike: two photos
of the same person, two records of the same customer. ITML (information-theoretic metric
learning) learns a Mahalanobis metric from such pairs alone, labelled +1 (similar) or -1
(dissimilar).

The data have three groups that differ only along two low-variance features, hidden among
four features of large noise: Euclidean distance sees mostly the noise. ITML is fitted on
300 labelled pairs (index pairs into ``X``, through ``preprocessor=X``) and judged on pairs
it never saw.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.decomposition import PCA
from sklearn.metrics import roc_auc_score

from skmetric import ITML, Constraints

rng = np.random.RandomState(0)
n_per_group = 100
centres = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, 0.9]])
groups = np.repeat(np.arange(3), n_per_group)
informative = centres[groups] + 0.15 * rng.randn(len(groups), 2)
noise = 1.5 * rng.randn(len(groups), 4)
X = np.hstack([informative, noise])

# %%
# Pairs, not labels
# -----------------
# ``Constraints`` draws distinct similar and dissimilar pairs; the group labels are used only
# to say which pairs are alike, as an annotator would.

train_pairs, train_y = Constraints(groups).pairs(150, random_state=0)
test_pairs, test_y = Constraints(groups).pairs(300, random_state=1)
itml = ITML(preprocessor=X, random_state=0).fit(train_pairs, train_y)


def euclidean(pairs):
    return np.linalg.norm(X[pairs[:, 0]] - X[pairs[:, 1]], axis=1)


before = euclidean(test_pairs)
after = itml.pair_distance(test_pairs)
print(f"ROC AUC of unseen pairs: Euclidean {roc_auc_score(test_y, -before):.3f}, "
      f"ITML {roc_auc_score(test_y, -after):.3f}")
print(f"pair accuracy of ITML's calibrated threshold: {itml.score(test_pairs, test_y):.3f}")

# %%
# Distances of unseen pairs, and the data in each metric
# ------------------------------------------------------
# Top: the distance of each test pair, similar pairs in green, dissimilar in red. Bottom:
# the samples projected on the two main axes of each space (PCA), coloured by group.

fig, axes = plt.subplots(2, 2, figsize=(10, 8))
for column, (name, distances, Z) in enumerate([
        ("Euclidean", before, X), ("ITML", after, itml.transform(X))]):
    ax = axes[0, column]
    bins = np.linspace(0, np.percentile(distances, 99), 30)
    ax.hist(distances[test_y == 1], bins=bins, alpha=0.6, color="tab:green", label="similar")
    ax.hist(distances[test_y == -1], bins=bins, alpha=0.6, color="tab:red",
            label="dissimilar")
    ax.set_title(f"{name}: ROC AUC {roc_auc_score(test_y, -distances):.2f}")
    ax.set_xlabel("distance of a test pair")
    ax.legend()
    P = PCA(n_components=2).fit_transform(Z)
    axes[1, column].scatter(P[:, 0], P[:, 1], c=groups, cmap="viridis", s=12)
    axes[1, column].set_title(f"the samples in the {name} space (PCA)")
    axes[1, column].set_xticks([])
    axes[1, column].set_yticks([])
fig.tight_layout()
plt.show()
