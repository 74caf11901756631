"""
Verification: ROC, TAR@FAR and EER
==================================

Verification answers "are these two samples of the same class?" by thresholding a distance.
Its standard report is the ROC curve of true accept rate (TAR, similar pairs accepted)
against false accept rate (FAR, dissimilar pairs accepted), read at a small FAR
(TAR@FAR=1%), and the equal error rate (EER), where false accepts and false rejects are
equally frequent.

Here the pairs are digits that the learners never saw: Euclidean distance on the pixels,
against the distances learned by NCA and LMNN on the training digits.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skmetric import LMNN, NCA, Constraints
from skmetric.metrics import equal_error_rate, tar_at_far
from skmetric.plotting import plot_roc

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, train_size=600, stratify=y,
                                                    random_state=0)
pairs, same = Constraints(y_test).pairs(3000, random_state=0)  # index pairs, labels ±1

spaces = {
    "Euclidean on pixels": X_test,
    "NCA": make_pipeline(StandardScaler(), NCA(n_components=16, random_state=0))
    .fit(X_train, y_train).transform(X_test),
    "LMNN": make_pipeline(StandardScaler(), LMNN(n_components=16, max_iter=50,
                                                 random_state=0))
    .fit(X_train, y_train).transform(X_test),
}

# %%
# The curves
# ----------
# The FAR axis is logarithmic, to show the small false accept rates that matter in
# practice; each curve marks its EER.

fig, ax = plt.subplots(figsize=(7, 5.5))
for name, Z in spaces.items():
    distance = np.linalg.norm(Z[pairs[:, 0]] - Z[pairs[:, 1]], axis=1)
    tar = tar_at_far(distance, same, far=0.01, greater_is_similar=False)
    eer = equal_error_rate(distance, same, greater_is_similar=False)
    print(f"{name:20s} TAR@FAR=1%: {tar:.3f}   EER: {eer:.3f}")
    plot_roc(distance, same, greater_is_similar=False, ax=ax, log_far=True,
             label=f"{name} (TAR@1% {tar:.2f}, EER {eer:.2f})")
ax.set_title("Verification of unseen digit pairs")
fig.tight_layout()
plt.show()

# %%
# LMNN, whose loss asks for a margin between each sample's same-class neighbours and the
# other classes, improves verification at every FAR. NCA optimises the expected leave-one-out
# k-NN accuracy on the training digits, which does not ask for one threshold that works for
# all pairs: it does not beat Euclidean distance here. Choose the learner for the task it is
# judged on (see :doc:`/choosing`).
