"""
Uncertainty from probabilistic embeddings on occluded digits
============================================================

A probabilistic embedding (PFE, Shi and Jain, 2019) maps each sample to a mean μ and a
variance σ²: the variance says how much to trust μ. Here a trunk is trained on clean digits,
then an uncertainty head on clean digits mixed with copies whose 4×4 patch is blanked out.
The head learns, without ever being told which digits are occluded, to give those a larger
σ².
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from skmetric.deep import MetricEmbedder, ProbabilisticEmbedder

X, y = load_digits(return_X_y=True)
X = (X / 16).astype(np.float32)
X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y, random_state=0)


def occlude(X, random_state):
    """Copies of the 8×8 digits with a random 4×4 patch set to zero."""
    rng = np.random.RandomState(random_state)
    images = X.reshape(-1, 8, 8).copy()
    for image, (r, c) in zip(images, rng.randint(0, 5, size=(len(images), 2)), strict=True):
        image[r:r + 4, c:c + 4] = 0.0
    return images.reshape(len(X), 64)


trunk = MetricEmbedder(max_epochs=20, random_state=0).fit(X_train, y_train)
pfe = ProbabilisticEmbedder(module=trunk.module_, freeze_trunk=True, max_epochs=10, lr=1e-2,
                            random_state=0)
pfe.fit(np.vstack([X_train, occlude(X_train, 0)]), np.r_[y_train, y_train])

# %%
# Occluded digits get larger variances
# ------------------------------------
# The uncertainty of a sample is its mean σ² over the embedding's dimensions. On the test
# digits and their occluded copies, it tells one from the other (ROC AUC), though the
# head never saw which training digits were occluded.

X_occluded = occlude(X_test, 1)
clean = pfe.transform_uncertainty(X_test).mean(axis=1)
occluded = pfe.transform_uncertainty(X_occluded).mean(axis=1)
auc = roc_auc_score(np.r_[np.zeros_like(clean), np.ones_like(occluded)], np.r_[clean, occluded])
print(f"mean σ²: clean {clean.mean():.3f}, occluded {occluded.mean():.3f}; "
      f"ROC AUC of σ² for 'is occluded': {auc:.3f}")

fig, ax = plt.subplots(figsize=(7, 4.5))
bins = np.linspace(min(clean.min(), occluded.min()), max(clean.max(), occluded.max()), 30)
ax.hist(clean, bins=bins, alpha=0.6, label="clean test digits")
ax.hist(occluded, bins=bins, alpha=0.6, label="the same, occluded")
ax.set_xlabel("predicted uncertainty (mean σ²)")
ax.set_ylabel("digits")
ax.set_title(f"ROC AUC of σ² for 'is occluded': {auc:.2f}")
ax.legend()
plt.show()

# %%
# The most and least certain digits
# ---------------------------------
# The eight test digits (clean and occluded together) with the smallest σ², top row, and
# the eight with the largest, bottom row, each titled with its σ².

images = np.vstack([X_test, X_occluded])
uncertainty = np.r_[clean, occluded]
order = np.argsort(uncertainty)
fig, axes = plt.subplots(2, 8, figsize=(10, 3.2))
for row, picks in enumerate([order[:8], order[-8:]]):
    for ax, i in zip(axes[row], picks, strict=True):
        ax.imshow(images[i].reshape(8, 8), cmap="gray_r")
        ax.set_title(f"{uncertainty[i]:.3f}", fontsize=9)
        ax.axis("off")
fig.suptitle("least (top) and most (bottom) uncertain test digits")
fig.tight_layout()
plt.show()
