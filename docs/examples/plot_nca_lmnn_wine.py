"""
NCA and LMNN on wine, tuned in a Pipeline
=========================================

A metric learner is a transformer: put it between the scaler and the k-NN classifier of a
scikit-learn ``Pipeline`` and tune its parameters with ``GridSearchCV`` like any other step.

Here NCA and LMNN learn a 2-D projection of the 13 wine features. The figure shows the
test samples in that plane, with the decision regions of the k-NN classifier fitted there,
next to the best 2-D projection that ignores the labels (PCA).
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_wine
from sklearn.decomposition import PCA
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from skmetric import LMNN, NCA

X, y = load_wine(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y, test_size=0.4,
                                                    random_state=0)

# %%
# Tune each learner with the classifier
# -------------------------------------
# The grid searches over the learner's own parameters and the number of neighbours;
# ``n_components=2`` keeps the learned space plottable.

learners = {
    "PCA (unsupervised)": (PCA(n_components=2), {}),
    "NCA": (NCA(n_components=2, random_state=0), {"metric__max_iter": [20, 100]}),
    "LMNN": (LMNN(n_components=2, random_state=0), {"metric__n_neighbors": [3, 5]}),
}
searches = {}
for name, (learner, grid) in learners.items():
    pipe = Pipeline([("scale", StandardScaler()), ("metric", learner),
                     ("knn", KNeighborsClassifier())])
    search = GridSearchCV(pipe, {**grid, "knn__n_neighbors": [1, 5]}, cv=3)
    searches[name] = search.fit(X_train, y_train)
    print(f"{name:20s} best {search.best_params_}, test accuracy "
          f"{search.score(X_test, y_test):.3f}")

# %%
# The learned planes
# ------------------
# Each panel is the test set mapped by the tuned pipeline's scaler and learner; the
# background is the prediction of its k-NN classifier at each point of the plane.

fig, axes = plt.subplots(1, 3, figsize=(13, 4.2))
for ax, (name, search) in zip(axes, searches.items(), strict=True):
    pipe = search.best_estimator_
    Z_train = pipe[:-1].transform(X_train)
    Z_test = pipe[:-1].transform(X_test)
    Z_all = np.vstack([Z_train, Z_test])
    lo, hi = Z_all.min(axis=0) - 1, Z_all.max(axis=0) + 1
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], 200), np.linspace(lo[1], hi[1], 200))
    regions = pipe[-1].predict(np.c_[gx.ravel(), gy.ravel()]).reshape(gx.shape)
    ax.contourf(gx, gy, regions, alpha=0.25, cmap="viridis", levels=[-0.5, 0.5, 1.5, 2.5])
    ax.scatter(Z_test[:, 0], Z_test[:, 1], c=y_test, cmap="viridis", edgecolors="k", s=25)
    ax.set_title(f"{name}: test accuracy {search.score(X_test, y_test):.2f}")
    ax.set_xticks([])
    ax.set_yticks([])
fig.suptitle("Wine in 2-D: k-NN decision regions in each learned plane")
fig.tight_layout()
plt.show()
