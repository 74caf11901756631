"""The skmetric demo: k-NN accuracy in each learned metric against the Euclidean baselines.

Run ``python -m skmetric --help`` for the options.
"""

import argparse
import importlib.util
import os
import re
import sys
import time
import warnings
from collections import Counter

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits, load_iris, load_wine
from sklearn.model_selection import StratifiedKFold, cross_validate
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler
from threadpoolctl import threadpool_limits

from .kernel import KernelPCA, make_kernel_learner
from .supervised import LFDA, LMNN, NCA, Covariance, RCA_Supervised
from .weakly_supervised import (
    ITML_Supervised,
    LSML_Supervised,
    MMC_Supervised,
    SCML_Supervised,
    SDML_Supervised,
)

# -- datasets -------------------------------------------------------------------------------

N_NOISE = 40


def _with_noise(loader, n_noise=N_NOISE, seed=0):
    """``loader``'s data with ``n_noise`` columns of standard Gaussian noise appended."""
    def load(return_X_y=True):
        X, y = loader(return_X_y=True)
        noise = np.random.RandomState(seed).standard_normal((X.shape[0], n_noise))
        return np.hstack([X, noise]), y
    return load


# name -> (loader, what it shows). The default set puts data where the Euclidean metric is
# weak next to data where it is already strong.
DATASETS = {
    "wine": (load_wine, "178 wines, 13 measurements on scales from 0.1 to 1700: Euclidean "
             "on raw features sees little but the largest one; scaling repairs most of it"),
    "wine+noise": (_with_noise(load_wine), f"wine with {N_NOISE} columns of standard "
                   "Gaussian noise appended (made by this demo, seed 0): once scaled they "
                   "weigh as much as the 13 real features, and a learned metric can ignore "
                   "them"),
    "digits": (load_digits, "1797 8x8 images of digits, 64 pixels on one scale: Euclidean "
               "k-NN is already strong, a metric has little to add"),
    "iris": (load_iris, "150 flowers, 4 measurements: Euclidean is already strong"),
    "breast_cancer": (load_breast_cancer, "569 tumours, 30 features on scales from 0.001 to "
                      "4000"),
}
DEFAULT_DATASETS = ["wine", "wine+noise", "digits"]


def load_dataset(name):
    return DATASETS[name][0](return_X_y=True)


# -- learners -------------------------------------------------------------------------------

def _metric_embedder(random_state):
    from .deep import MetricEmbedder  # imports torch: only when asked for

    # verbose=0: the demo prints its own progress; epoch tables would bury it.
    return MetricEmbedder(verbose=0, random_state=random_state)


# name -> (factory(random_state), in the default set, note). Each learner at its defaults
# unless the note says why not; one too slow for a quick run on the default datasets is left
# out of the default set rather than stopped early.
LEARNERS = {
    "Covariance": (lambda rs: Covariance(), True, ""),
    "LFDA": (lambda rs: LFDA(), True, ""),
    "NCA": (lambda rs: NCA(random_state=rs), True, ""),
    "LMNN": (lambda rs: LMNN(random_state=rs), True, ""),
    "SDML_Supervised": (lambda rs: SDML_Supervised(random_state=rs), True, ""),
    "LSML_Supervised": (lambda rs: LSML_Supervised(random_state=rs), True, ""),
    "SCML_Supervised": (lambda rs: SCML_Supervised(random_state=rs), True,
                        "no convergence test: it always runs its max_iter=10000 stochastic "
                        "updates"),
    "ITML_Supervised": (lambda rs: ITML_Supervised(random_state=rs), False,
                        "not in the default set: minutes on digits (2000 constraints)"),
    "MMC_Supervised": (lambda rs: MMC_Supervised(random_state=rs), False,
                       "not in the default set: minutes once features number in the tens"),
    "RCA_Supervised": (lambda rs: RCA_Supervised(n_chunks=60, chunk_size=2, random_state=rs),
                       False, "n_chunks=60: the default 100 chunks of 2 need more samples "
                       "per class than wine's training folds hold; not in the default set: "
                       "120 samples in chunks are too few for digits' 64 features"),
    "KernelPCA": (lambda rs: KernelPCA(n_components=30, kernel="rbf", random_state=rs), False,
                  "not in the default set: unsupervised, 30 components of an rbf kernel "
                  "(gamma = 1 / n_features)"),
    "KernelPCA+NCA": (lambda rs: make_kernel_learner(NCA(random_state=rs), kernel="rbf",
                                                     n_components=30, random_state=rs),
                      False, "NCA on 30 rbf kernel principal components; not in the default "
                      "set: half a minute on digits"),
    "MetricEmbedder": (_metric_embedder, True, "skmetric.deep: an MLP trained by skorch "
                       "with the multi-similarity loss and miner, 20 epochs; in the default "
                       "set when the deep extra (torch, skorch) is installed"),
}


def _has_deep():
    return all(importlib.util.find_spec(name) is not None for name in ("torch", "skorch"))


DEFAULT_LEARNERS = [name for name, (_, default, _) in LEARNERS.items()
                    if default and (name != "MetricEmbedder" or _has_deep())]
# Learners that run a fixed number of iterations: n_iter_ == max_iter is no failure to converge.
_FIXED_BUDGET = {"SCML_Supervised"}

SCALERS = {"minmax": MinMaxScaler, "standard": StandardScaler, "none": None}
# Baseline rows: k-NN on the raw features and on the features scaled as the learners see them.
RAW, SCALED = "Euclidean (raw)", "Euclidean (scaled)"
BASELINES = (RAW, SCALED)


def embedding_steps(name, scale, random_state):
    """The steps before k-NN of the row ``name``: scaler (when scaled) then learner."""
    if name == RAW:
        return []
    steps = [] if SCALERS[scale] is None else [SCALERS[scale]()]
    if name != SCALED:
        steps.append(LEARNERS[name][0](random_state))
    return steps


def check_choices(datasets, learners):
    """Raise a ValueError naming the valid choices for an unknown dataset or learner, or
    for no dataset at all (the learners may be none: the baselines alone are measured)."""
    if not datasets:
        raise ValueError(f"No dataset given; choose at least one from {list(DATASETS)}.")
    unknown = [name for name in learners if name not in LEARNERS]
    if unknown:
        raise ValueError(f"Unknown learner(s) {unknown}; choose from {list(LEARNERS)}.")
    unknown = [name for name in datasets if name not in DATASETS]
    if unknown:
        raise ValueError(f"Unknown dataset(s) {unknown}; choose from {list(DATASETS)}.")
    if "MetricEmbedder" in learners:
        from . import deep  # noqa: F401  (an ImportError names the extra to install)


# -- running --------------------------------------------------------------------------------

# The ETA's prior: CPU seconds of a 5-fold run on (wine, wine+noise, digits), measured on the
# development machine with one thread; other datasets borrow the column of a similar one. As
# jobs finish, the estimate is rescaled by how fast this machine runs them.
_PRIOR_SECONDS = {
    RAW: (0.02, 0.02, 0.1), SCALED: (0.02, 0.02, 0.1), "Covariance": (0.05, 0.05, 0.1),
    "LFDA": (0.08, 0.05, 0.13), "NCA": (0.2, 0.2, 5.5), "LMNN": (2.0, 2.7, 9.2),
    "SDML_Supervised": (0.8, 2.1, 1.2), "LSML_Supervised": (0.06, 0.2, 0.4),
    "SCML_Supervised": (2.7, 4.1, 11.9), "ITML_Supervised": (1.5, 0.2, 200.0),
    "MMC_Supervised": (2.0, 200.0, 600.0), "RCA_Supervised": (0.06, 0.06, 0.13),
    "KernelPCA": (0.07, 0.1, 1.6), "KernelPCA+NCA": (0.2, 0.3, 27.0),
    "MetricEmbedder": (2.0, 0.8, 7.0),
}
_PRIOR_COLUMN = {"wine": 0, "iris": 0, "wine+noise": 1, "digits": 2, "breast_cancer": 2}


def _prior(dataset, name, folds):
    return _PRIOR_SECONDS.get(name, (1.0,) * 3)[_PRIOR_COLUMN.get(dataset, 1)] * folds / 5


def _summarise_warnings(caught, estimators=()):
    """One line: each kind of warning (numbers masked) with its count, and the folds whose
    learner stopped at ``max_iter`` (not every learner warns when it does)."""
    kinds = Counter()
    for w in caught:
        text = re.sub(r"\d+(\.\d+)?(e[-+]?\d+)?", "N", str(w.message).splitlines()[0])
        text = text if len(text) <= 70 else text[:69] + "…"
        kinds[f"{w.category.__name__}: {text}"] += 1
    for pipe in estimators:
        learner = pipe.steps[-2][1] if len(pipe.steps) > 1 else None
        while hasattr(learner, "steps"):  # make_kernel_learner's pipeline
            learner = learner.steps[-1][1]
        max_iter = getattr(learner, "max_iter", None)
        if max_iter is not None and getattr(learner, "n_iter_", 0) >= max_iter:
            kinds[f"stopped at max_iter={max_iter} (not converged)"] += 1
    return "; ".join(f"{count}× {kind}" for kind, count in kinds.items())


def _cross_validate(pipe, X, y, cv, check_max_iter=True):
    """Accuracy, its std, fit time, the warnings summary and the error ('' if none)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            res = cross_validate(pipe, X, y, cv=cv, error_score="raise", return_estimator=True)
        except Exception as exc:  # reported in the table; the demo goes on with the others
            return {"accuracy": np.nan, "std": np.nan, "fit_time": np.nan,
                    "warnings": _summarise_warnings(caught),
                    "error": f"{type(exc).__name__}: {exc}".splitlines()[0]}
    fitted = res["estimator"] if check_max_iter else ()
    return {"accuracy": float(np.mean(res["test_score"])),
            "std": float(np.std(res["test_score"])),
            "fit_time": float(np.mean(res["fit_time"])),
            "warnings": _summarise_warnings(caught, fitted), "error": ""}


def _clock(seconds):
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


def run_demo(datasets, learners, folds=5, n_neighbors=3, scale="minmax", random_state=0,
             stream=None):
    """Cross-validate every learner on every dataset; return a list of result rows.

    Each row: dataset, learner, accuracy, std, fit_time, warnings (a one-line summary of
    the warnings the fits raised) and error (why the fit failed, or ''). Progress goes to
    ``stream`` (stderr), one line per job with an estimate of the time left.
    """
    stream = sys.stderr if stream is None else stream
    check_choices(datasets, learners)
    baselines = [RAW] if SCALERS[scale] is None else [RAW, SCALED]
    jobs = [(d, name) for d in datasets for name in [*baselines, *learners]]
    prior = [_prior(d, name, folds) for d, name in jobs]
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=random_state)
    rows, start, width = [], time.perf_counter(), max(len(name) for _, name in jobs)
    digits = len(str(len(jobs)))
    for step, (dataset, name) in enumerate(jobs, 1):
        X, y = load_dataset(dataset)
        print(f"[{step:>{digits}}/{len(jobs)}] {dataset:<11} {name:<{width}} ", file=stream, end="",
              flush=True)
        pipe = make_pipeline(*embedding_steps(name, scale, random_state),
                             KNeighborsClassifier(n_neighbors=n_neighbors))
        t0 = time.perf_counter()
        row = {"dataset": dataset, "learner": name,
               **_cross_validate(pipe, X, y, cv, check_max_iter=name not in _FIXED_BUDGET)}
        rows.append(row)
        elapsed, total = time.perf_counter() - t0, time.perf_counter() - start
        # This machine's speed against the prior's; trusts the prior over the first seconds.
        rate = (total + 2.0) / (sum(prior[:step]) + 2.0)
        left = rate * sum(prior[step:])
        error = row["error"]
        result = f"failed ({error})" if error else f"{row['accuracy']:.3f}"
        note = f"  [{row['warnings']}]" if row["warnings"] else ""
        print(f"{result}  {elapsed:5.1f}s  (elapsed {_clock(total)}, about {_clock(left)} "
              f"left){note}", file=stream, flush=True)
    return rows


# -- report ---------------------------------------------------------------------------------

def format_header(datasets, learners, folds=5, n_neighbors=3, scale="minmax",
                  random_state=0):
    """What the table measures, on which data, and how each row's pipeline is built."""
    scaler = SCALERS[scale]
    chain = (f"{scaler.__name__} → learner → " if scaler is not None else "learner → ")
    lines = [
        "# skmetric demo: k-NN accuracy in learned metrics against Euclidean",
        "",
        f"Measured: {n_neighbors}-NN classification accuracy, mean ± std over {folds}-fold "
        f"stratified cross-validation (shuffled, seed {random_state}); fit time is per fold.",
        f"Each learner row is the pipeline {chain}KNeighborsClassifier({n_neighbors}), "
        "fitted on the training folds only, with the learner at its default settings "
        "(iterations run to convergence: a fit stopped by max_iter is listed under the table) "
        "unless noted. "
        + (f"'{RAW}' is k-NN on the unscaled features, '{SCALED}' after the same "
           f"{scaler.__name__}; 'vs scaled' is a row's gain over '{SCALED}'."
           if scaler is not None else f"'vs raw' is a row's gain over '{RAW}'."),
        "",
        "Datasets:",
    ]
    lines += [f"- {d}: {DATASETS[d][1]}." for d in datasets]
    notes = [f"- {name}: {LEARNERS[name][2]}." for name in learners if LEARNERS[name][2]]
    if notes:
        lines += ["", "Learner notes:", *notes]
    left_out = [name for name in LEARNERS if name not in learners]
    if left_out:
        lines += ["", f"Not run (add with --learners): {', '.join(left_out)}."]
    return "\n".join(lines)


def format_table(rows, n_neighbors, scaled=True):
    """A markdown table of the rows with the gain over the baseline, then their warnings."""
    ref = SCALED if scaled else RAW
    base = {r["dataset"]: r["accuracy"] for r in rows if r["learner"] == ref}
    lines = [
        f"| dataset | learner | {n_neighbors}-NN accuracy | vs {'scaled' if scaled else 'raw'} "
        "| fit time (s) |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        if r["error"]:
            lines.append(f"| {r['dataset']} | {r['learner']} | failed | — | — |")
            continue
        gain = r["accuracy"] - base.get(r["dataset"], np.nan)
        lines.append(
            f"| {r['dataset']} | {r['learner']} | {r['accuracy']:.3f} ± {r['std']:.3f} | "
            f"{gain:+.3f} | {r['fit_time']:.3f} |"
        )
    issues = [f"- {r['dataset']} / {r['learner']}: " + (r["error"] or r["warnings"])
              for r in rows if r["error"] or r["warnings"]]
    if issues:
        lines += ["", "Warnings and failures (one line per learner and dataset, numbers "
                  "masked as N):", *issues]
    return "\n".join(lines)


# -- command line ---------------------------------------------------------------------------

def _csv_list(text):
    """The names of a comma-separated option, each once (a repeated one would run twice)."""
    return list(dict.fromkeys(item.strip() for item in text.split(",") if item.strip()))


def _learner_list():
    """The epilog of --help: every learner, the default ones starred, with its note."""
    import textwrap

    lines = ["learners (* = in the default set):"]
    for name, (_, _, note) in LEARNERS.items():
        mark = "*" if name in DEFAULT_LEARNERS else " "
        text = f"  {mark} {name:<18}{note}".rstrip()
        lines += textwrap.wrap(text, 88, subsequent_indent=" " * 22) if note else [text]
    return "\n".join(lines)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m skmetric",
        description="Compare k-NN accuracy in each learned metric with the Euclidean "
        "baselines, by stratified cross-validation on scikit-learn's bundled data (and a "
        "noisy variant of wine). Progress goes to stderr, the table to stdout.",
        epilog=_learner_list(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--datasets", type=_csv_list, default=DEFAULT_DATASETS,
                        help=f"comma-separated, from {list(DATASETS)} "
                        f"(default: {','.join(DEFAULT_DATASETS)})")
    parser.add_argument("--learners", type=_csv_list, default=DEFAULT_LEARNERS,
                        help="comma-separated, from the list below (default: the starred "
                        "ones; '' measures the Euclidean baselines alone)")
    parser.add_argument("--folds", type=int, default=5, help="CV folds (default: 5)")
    parser.add_argument("--neighbors", type=int, default=3, help="k of k-NN (default: 3)")
    parser.add_argument("--scale", choices=list(SCALERS), default="minmax",
                        help="feature scaling before the learner, inside the pipeline "
                        "(default: minmax; on digits, standard scaling inflates the "
                        "near-constant border pixels)")
    parser.add_argument("--threads", type=int, default=1,
                        help="BLAS/OpenMP threads (default: 1, the least CPU on data this "
                        "small)")
    parser.add_argument("--random-state", type=int, default=0,
                        help="seed of the folds' shuffle and of the learners (default: 0)")
    parser.add_argument("--output", help="also write the header and table to this file "
                        "(markdown)")
    parser.add_argument("--plots", metavar="DIR",
                        help="also write figures to DIR: the embedding of each dataset by its "
                        "best learner, top-k retrieval on digits, pair-verification ROC "
                        "(needs matplotlib: pip install 'skmetric[plot]')")
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.folds < 2:
        parser.error("--folds must be at least 2")
    if args.neighbors < 1 or args.threads < 1:
        parser.error("--neighbors and --threads must be at least 1")
    if not 0 <= args.random_state < 2**32:
        parser.error(f"--random-state must be in [0, 2**32 - 1] (a NumPy seed); got "
                     f"{args.random_state}")
    try:
        check_choices(args.datasets, args.learners)
        _check_run_options(args)
    except (ValueError, ImportError) as exc:
        parser.error(str(exc))
    with threadpool_limits(args.threads):
        rows = run_demo(args.datasets, args.learners, args.folds, args.neighbors, args.scale,
                        args.random_state)
        report = format_header(args.datasets, args.learners, args.folds, args.neighbors,
                               args.scale, args.random_state)
        report += "\n\n" + format_table(rows, args.neighbors, SCALERS[args.scale] is not None)
        print(report)
        if args.output:
            with open(args.output, "w") as f:
                f.write(report + "\n")
        if args.plots:
            write_plots(rows, args.plots, args.scale, args.random_state)
    return 0


def _check_run_options(args):
    """Raise a ValueError, before minutes of fits, for options that would fail every fold
    of a dataset (too many folds or neighbours for its classes) or the writing at the end
    (an --output folder that is missing, --plots without matplotlib)."""
    for dataset in args.datasets:
        y = load_dataset(dataset)[1]
        smallest = int(np.unique(y, return_counts=True)[1].min())
        if args.folds > smallest:
            raise ValueError(f"--folds {args.folds} is more than the {smallest} samples of "
                             f"{dataset}'s smallest class; stratified folds need at most "
                             "that many")
        cv = StratifiedKFold(n_splits=args.folds, shuffle=True, random_state=args.random_state)
        fitted = min(len(train) for train, _ in cv.split(np.zeros((len(y), 1)), y))
        if args.neighbors > fitted:
            raise ValueError(f"--neighbors {args.neighbors} is more than the {fitted} "
                             f"training samples of {dataset}'s smallest training fold")
    if args.output and os.path.isdir(args.output):
        raise ValueError(f"--output {args.output} is a folder; give a file name")
    if args.output and not os.path.isdir(os.path.dirname(os.path.abspath(args.output))):
        raise ValueError(f"--output {args.output}: its folder does not exist")
    if args.plots:
        if os.path.exists(args.plots) and not os.path.isdir(args.plots):
            raise ValueError(f"--plots {args.plots} is a file; give a folder")
        from . import plotting

        plotting._pyplot()  # an ImportError names the extra to install


def write_plots(rows, directory, scale="minmax", random_state=0, stream=None):
    """Figures of the demo's results, as PNG files in ``directory``; returns their paths.

    Per dataset, the embedding by the learner of best k-NN accuracy (``embedding_<d>.png``),
    its training curves when it records a history (``history_<d>.png``, MetricEmbedder) and
    the ROC of pair verification on held-out pairs, Euclidean against that learner
    (``roc_<d>.png``); for digits, test digits with their nearest training digits
    (``retrieval_digits.png``).
    """
    from sklearn.model_selection import train_test_split

    from . import plotting

    plt = plotting._pyplot()
    stream = sys.stderr if stream is None else stream
    os.makedirs(directory, exist_ok=True)
    paths = []

    def save(fig, name):
        path = os.path.join(directory, name)
        fig.savefig(path, dpi=100)
        plt.close(fig)
        paths.append(path)
        print(f"wrote {path}", file=stream, flush=True)

    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        results = [r for r in rows if r["dataset"] == dataset and not r["error"]]
        learned = [r for r in results if r["learner"] not in BASELINES] or results
        best = max(learned, key=lambda r: r["accuracy"])["learner"]
        baseline = SCALED if SCALERS[scale] is not None else RAW
        X, y = load_dataset(dataset)
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=0.3, stratify=y, random_state=random_state)
        embedders = {}
        for name in dict.fromkeys([baseline, best]):
            steps = embedding_steps(name, scale, random_state)
            embedders[name] = make_pipeline(*steps).fit(X_train, y_train) if steps else None
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
