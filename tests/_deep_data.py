"""Small labelled data for the deep embedders' tests (shared by tests/test_deep_*.py)."""

import numpy as np


def blobs(n_classes=6, per_class=8, n_features=5, seed=0):
    """``per_class`` float32 samples around each of ``n_classes`` well separated centres."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=3.0, size=(n_classes, n_features))
    X = np.repeat(centers, per_class, axis=0) + rng.normal(size=(n_classes * per_class,
                                                                 n_features))
    return X.astype(np.float32), np.repeat(np.arange(n_classes), per_class)
