"""Every public estimator of skmetric, with the instances the conformance checks run on.

A new public estimator joins by being added here; ``test_every_public_estimator_is_registered``
fails for any that is forgotten. Weakly supervised learners fitted on tuples are checked
through their ``*_Supervised`` variants and listed in ``TUPLE_LEARNERS`` for tuple tests.
"""

import skmetric

# class name -> list of instances for parametrize_with_checks (small, fast settings)
ESTIMATORS = {
    "Covariance": [skmetric.Covariance(), skmetric.Covariance(device="cpu")],
    "MetricKNeighborsClassifier": [
        skmetric.MetricKNeighborsClassifier(n_neighbors=3),
        skmetric.MetricKNeighborsClassifier(
            n_neighbors=3, metric_learner=skmetric.Covariance(), weights="distance"
        ),
    ],
    "ITML_Supervised": [skmetric.ITML_Supervised(max_iter=20, random_state=0)],
    "SDML_Supervised": [skmetric.SDML_Supervised(balance_param=1e-3, random_state=0)],
    "MMC_Supervised": [
        skmetric.MMC_Supervised(max_iter=20, random_state=0),
        skmetric.MMC_Supervised(max_iter=20, diagonal=True, random_state=0),
    ],
    "KernelPCA": [
        skmetric.KernelPCA(n_components=2, kernel="rbf"),
        skmetric.KernelPCA(n_components=2, kernel="rbf", n_landmarks=5, random_state=0),
    ],
    "LFDA": [skmetric.LFDA(k=3)],
    "NCA": [skmetric.NCA(max_iter=10), skmetric.NCA(max_iter=3, batch_size=8, random_state=0)],
    "LMNN": [skmetric.LMNN(n_neighbors=1, max_iter=10, min_iter=0, random_state=0)],
    "MLKR": [skmetric.MLKR(max_iter=20)],
    "RCA": [skmetric.RCA()],
    "RCA_Supervised": [skmetric.RCA_Supervised(n_chunks=2, chunk_size=2)],
    "LSML_Supervised": [skmetric.LSML_Supervised(max_iter=50, random_state=0)],
    "SCML_Supervised": [
        skmetric.SCML_Supervised(k_genuine=1, k_impostor=2, max_iter=200, output_iter=50,
                                 random_state=0),
    ],
}

try:  # the deep extra (torch, skorch) is optional
    from skmetric.deep import (
        DistributedMetricEmbedder,
        DistributedProbabilisticEmbedder,
        MetricEmbedder,
        ProbabilisticEmbedder,
    )
except ImportError:
    pass
else:
    ESTIMATORS["MetricEmbedder"] = [
        MetricEmbedder(embedding_dim=4, samples_per_class=2, batch_size=8, max_epochs=2,
                       random_state=0),
    ]
    ESTIMATORS["ProbabilisticEmbedder"] = [
        ProbabilisticEmbedder(embedding_dim=4, samples_per_class=2, batch_size=8, max_epochs=2,
                              uncertainty_hidden=8, random_state=0),
    ]
    # One process (no process group): they must behave as the plain embedders.
    ESTIMATORS["DistributedMetricEmbedder"] = [
        DistributedMetricEmbedder(embedding_dim=4, samples_per_class=2, batch_size=8,
                                  max_epochs=2, random_state=0),
    ]
    ESTIMATORS["DistributedProbabilisticEmbedder"] = [
        DistributedProbabilisticEmbedder(embedding_dim=4, samples_per_class=2, batch_size=8,
                                         max_epochs=2, uncertainty_hidden=8, random_state=0),
    ]

# Tuple-input learners: class name -> (tuple_size, factory of a fast instance)
TUPLE_LEARNERS = {
    "ITML": (2, lambda: skmetric.ITML(max_iter=20)),
    "SDML": (2, lambda: skmetric.SDML(balance_param=1e-3)),
    "MMC": (2, lambda: skmetric.MMC(max_iter=20)),
    "LSML": (4, lambda: skmetric.LSML(max_iter=50)),
    "SCML": (3, lambda: skmetric.SCML(n_basis=20, max_iter=200, output_iter=50, random_state=0)),
}

# (class name, check name) -> reason, for checks an estimator is expected to fail.
EXPECTED_FAILED_CHECKS = {
    ("RCA", "check_fit_score_takes_y"): "metric-learn's signature fit(X, chunks): y holds "
    "chunk ids",
    ("NCA", "check_transformer_n_iter"): "prior_strength='auto' keeps the initial map, with "
    "n_iter_ = 0 (no L-BFGS step), when no learned map beats it on the inner folds: on the "
    "check's two far-apart blobs Euclidean distance is already perfect",
}

# Estimators that need y but accept a single class, with the reason (regression targets, ...).
SINGLE_CLASS_EXEMPT = {
    "MetricKNeighborsClassifier": "as scikit-learn's KNeighborsClassifier, one class is "
    "accepted and predicted",
    "MLKR": "regression targets: a constant y is a valid (if trivial) problem",
    "RCA": "y holds chunk ids, not classes: one chunk is a valid input",
    "RCA_Supervised": "its chunks group samples of one class: a single class gives them",
}

# Public classes that are not estimators to check (mixins, helpers).
NOT_ESTIMATORS = {
    "Constraints",
    "MahalanobisMixin",
    "PairsClassifierMixin",
    "TripletsClassifierMixin",
    "QuadrupletsClassifierMixin",
}


def all_instances():
    return [est for instances in ESTIMATORS.values() for est in instances]


def expected_failed_checks(estimator):
    name = type(estimator).__name__
    return {check: why for (cls, check), why in EXPECTED_FAILED_CHECKS.items() if cls == name}
