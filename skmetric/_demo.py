"""The skmetric demo: k-NN accuracy of each learner against the Euclidean baseline.

Run ``python -m skmetric --help`` for the options.
"""

import argparse
import sys
import time

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits, load_iris, load_wine
from sklearn.model_selection import StratifiedKFold, cross_validate
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from ._covariance import Covariance
from ._itml import ITML_Supervised
from ._kernel_learning import make_kernel_learner
from ._kernel_pca import KernelPCA
from ._lfda import LFDA
from ._lmnn import LMNN
from ._lsml import LSML_Supervised
from ._mmc import MMC_Supervised
from ._nca import NCA
from ._rca import RCA_Supervised
from ._scml import SCML_Supervised
from ._sdml import SDML_Supervised

DATASETS = {
    "digits": load_digits,
    "wine": load_wine,
    "iris": load_iris,
    "breast_cancer": load_breast_cancer,
}


def _learners():
    """Demo learners: name -> factory(random_state). Fast settings keep the demo < 2 min."""
    learners = {"Covariance": lambda rs: Covariance()}
    learners["ITML_Supervised"] = lambda rs: ITML_Supervised(max_iter=30, random_state=rs)
    learners["SDML_Supervised"] = lambda rs: SDML_Supervised(
        prior="covariance", balance_param=1e-5, random_state=rs)
    learners["MMC_Supervised"] = lambda rs: MMC_Supervised(diagonal=True, random_state=rs)
    learners["LFDA"] = lambda rs: LFDA(k=7)
    learners["NCA"] = lambda rs: NCA(max_iter=30, random_state=rs)
    learners["LMNN"] = lambda rs: LMNN(n_neighbors=3, max_iter=100, random_state=rs)
    learners["RCA_Supervised"] = lambda rs: RCA_Supervised(n_chunks=30, chunk_size=3,
                                                           random_state=rs)
    learners["LSML_Supervised"] = lambda rs: LSML_Supervised(max_iter=200, random_state=rs)
    learners["SCML_Supervised"] = lambda rs: SCML_Supervised(
        n_basis=200, max_iter=2000, output_iter=200, random_state=rs)
    # Kernel PCA (Nyström landmarks) and kernel NCA on it; the rbf kernel needs
    # standardised features.
    learners["KernelPCA"] = lambda rs: make_pipeline(StandardScaler(), KernelPCA(
        n_components=30, kernel="rbf", gamma=0.02, n_landmarks=100, random_state=rs))
    learners["KernelNCA"] = lambda rs: make_pipeline(StandardScaler(), make_kernel_learner(
        NCA(max_iter=30, random_state=rs), kernel="rbf", gamma=0.02, n_components=30,
        n_landmarks=100, random_state=rs))
    learners.update(_deep_learners())
    return learners


def _deep_learners():
    """MetricEmbedder (an MLP trunk), only where the ``deep`` extra is installed."""
    try:
        from .deep import MetricEmbedder
    except ImportError:
        return {}
    # Standardised inputs: the network cannot undo features on scales of 1 to 1000 (wine).
    return {"MetricEmbedder": lambda rs: make_pipeline(
        StandardScaler(), MetricEmbedder(embedding_dim=32, max_epochs=10, random_state=rs,
                                         verbose=0))}


SCALERS = {"none": None, "standard": StandardScaler, "minmax": MinMaxScaler}


def _pipeline(learner, scale, n_neighbors):
    steps = [] if SCALERS[scale] is None else [SCALERS[scale]()]
    if learner is not None:
        steps.append(learner)
    steps.append(KNeighborsClassifier(n_neighbors=n_neighbors))
    return make_pipeline(*steps)


def run_demo(datasets, learners, folds=5, n_neighbors=3, scale="none", random_state=0,
             stream=None):
    """Cross-validate every learner on every dataset; return a list of result rows."""
    stream = sys.stderr if stream is None else stream
    factories = _learners()
    unknown = [name for name in learners if name not in factories]
    if unknown:
        raise ValueError(f"Unknown learner(s) {unknown}; choose from {sorted(factories)}.")
    unknown = [name for name in datasets if name not in DATASETS]
    if unknown:
        raise ValueError(f"Unknown dataset(s) {unknown}; choose from {sorted(DATASETS)}.")
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=random_state)
    rows = []
    jobs = [(d, name) for d in datasets for name in ["euclidean", *learners]]
    for step, (dataset, name) in enumerate(jobs, 1):
        X, y = DATASETS[dataset](return_X_y=True)
        learner = None if name == "euclidean" else factories[name](random_state)
        print(f"[{step}/{len(jobs)}] {dataset}: {name} ...", file=stream, end=" ", flush=True)
        start = time.perf_counter()
        res = cross_validate(_pipeline(learner, scale, n_neighbors), X, y, cv=cv)
        elapsed = time.perf_counter() - start
        print(f"{elapsed:.1f}s", file=stream, flush=True)
        rows.append({
            "dataset": dataset,
            "learner": name,
            "accuracy": float(np.mean(res["test_score"])),
            "std": float(np.std(res["test_score"])),
            "fit_time": float(np.mean(res["fit_time"])),
        })
    return rows


def format_table(rows, n_neighbors):
    """A markdown table of the rows, with the gain over the Euclidean baseline."""
    base = {r["dataset"]: r["accuracy"] for r in rows if r["learner"] == "euclidean"}
    lines = [
        f"| dataset | learner | {n_neighbors}-NN accuracy | vs euclidean | fit time (s) |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        gain = r["accuracy"] - base[r["dataset"]]
        lines.append(
            f"| {r['dataset']} | {r['learner']} | {r['accuracy']:.3f} ± {r['std']:.3f} | "
            f"{gain:+.3f} | {r['fit_time']:.3f} |"
        )
    return "\n".join(lines)


def _csv_list(text):
    return [item.strip() for item in text.split(",") if item.strip()]


def build_parser():
    learners = sorted(_learners())
    parser = argparse.ArgumentParser(
        prog="python -m skmetric",
        description="Compare k-NN accuracy in each learned metric with the Euclidean "
        "baseline, by stratified cross-validation on scikit-learn's bundled data.",
    )
    parser.add_argument("--datasets", type=_csv_list, default=["digits", "wine"],
                        help=f"comma-separated, from {sorted(DATASETS)} (default: digits,wine)")
    parser.add_argument("--learners", type=_csv_list, default=learners,
                        help=f"comma-separated, from {learners} (default: all)")
    parser.add_argument("--folds", type=int, default=5, help="CV folds (default: 5)")
    parser.add_argument("--neighbors", type=int, default=3, help="k of k-NN (default: 3)")
    parser.add_argument("--scale", choices=sorted(SCALERS), default="none",
                        help="feature scaling before the learner (default: none)")
    parser.add_argument("--random-state", type=int, default=0)
    parser.add_argument("--output", help="also write the table to this file (markdown)")
    parser.add_argument("--plots", metavar="DIR",
                        help="also write figures to DIR: the embedding of each dataset by its "
                        "best learner, top-k retrieval on digits, pair-verification ROC "
                        "(needs matplotlib: pip install 'skmetric[plot]')")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.folds < 2:
        build_parser().error("--folds must be at least 2")
    try:
        rows = run_demo(args.datasets, args.learners, args.folds, args.neighbors, args.scale,
                        args.random_state)
    except ValueError as exc:
        build_parser().error(str(exc))
    table = format_table(rows, args.neighbors)
    print(table)
    if args.output:
        with open(args.output, "w") as f:
            f.write(table + "\n")
    if args.plots:
        write_plots(rows, args.plots, args.scale, args.random_state)
    return 0


def write_plots(rows, directory, scale="none", random_state=0, stream=None):
    """Figures of the demo's results, as PNG files in ``directory``; returns their paths.

    Per dataset, the embedding by the learner of best k-NN accuracy (``embedding_<d>.png``),
    its training curves when it records a history (``history_<d>.png``, MetricEmbedder) and
    the ROC of pair verification on held-out pairs, Euclidean against that learner
    (``roc_<d>.png``); for digits, test digits with their nearest training digits
    (``retrieval_digits.png``).
    """
    import os

    from sklearn.model_selection import train_test_split

    from . import plotting

    plt = plotting._pyplot()
    stream = sys.stderr if stream is None else stream
    os.makedirs(directory, exist_ok=True)
    factories = _learners()
    paths = []

    def save(fig, name):
        path = os.path.join(directory, name)
        fig.savefig(path, dpi=100)
        plt.close(fig)
        paths.append(path)
        print(f"wrote {path}", file=stream, flush=True)

    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        results = [r for r in rows if r["dataset"] == dataset]
        learned = [r for r in results if r["learner"] != "euclidean"] or results
        best = max(learned, key=lambda r: r["accuracy"])["learner"]
        X, y = DATASETS[dataset](return_X_y=True)
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=0.3, stratify=y, random_state=random_state)
        embedders = {}
        for name in dict.fromkeys(["euclidean", best]):
            steps = [] if SCALERS[scale] is None else [SCALERS[scale]()]
            if name != "euclidean":
                steps.append(factories[name](random_state))
            embedders[name] = (make_pipeline(*steps).fit(X_train, y_train) if steps
                               else None)
        embed = embedders[best]
        Z_train = X_train if embed is None else embed.transform(X_train)
        Z_test = X_test if embed is None else embed.transform(X_test)
        ax = plotting.plot_embedding(np.vstack([Z_train, Z_test]), np.r_[y_train, y_test],
                                     title=f"{dataset}: {best} (PCA of the embedding)")
        save(ax.figure, f"embedding_{dataset}.png")
        final = embed
        while hasattr(final, "steps"):  # the last step of (nested) pipelines
            final = final.steps[-1][1]
        if getattr(final, "history_", None):  # a MetricEmbedder's training curves
            ax = plotting.plot_training_history(final)
            ax.set_title(f"{dataset}: {best} training")
            save(ax.figure, f"history_{dataset}.png")
        if dataset == "digits":
            fig = plotting.plot_retrieval(X_test[:6], y_test[:6], X_train, y_train,
                                          query_embeddings=Z_test[:6],
                                          reference_embeddings=Z_train, k=6,
                                          image_shape=(8, 8))
            save(fig, "retrieval_digits.png")
        # Pairs of held-out samples: label 1 when both have the same class.
        rng = np.random.RandomState(random_state)
        first, second = rng.randint(len(y_test), size=(2, 4000))
        keep = first != second
        first, second = first[keep], second[keep]
        same = np.where(y_test[first] == y_test[second], 1, -1)
        _, ax = plt.subplots(figsize=(5, 5))
        for name, model in embedders.items():
            Z = X_test if model is None else model.transform(X_test)
            dist = np.linalg.norm(Z[first] - Z[second], axis=1)
            plotting.plot_roc(dist, same, greater_is_similar=False, ax=ax, label=name,
                              mark_eer=False)
        ax.set_title(f"{dataset}: same-class pair verification")
        save(ax.figure, f"roc_{dataset}.png")
    return paths
