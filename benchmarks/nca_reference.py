"""NCA against pyDML's own algorithm on the folds of accuracy.py: accuracy and what each fit is.

Issue 21's NCA target compares our gain over Euclidean with the one pyDML-Stats publishes
(``_pydml.py``), but pyDML (jlsuarezdiaz/pyDML, the library behind pyDML-Stats) does not
install here (its Cython build fails). This script re-implements pyDML's NCA fit from its
source and runs it, skmetric's NCA ('auto', the default, and plain) and Euclidean distance on
exactly the folds of accuracy.py (10-fold stratified CV, DOB-SCV with ``--cv dobscv``, per
split seed, or KEEL's published partition with ``--cv keel``; MinMaxScaler fitted on each
training fold, 3-NN), so the published gain can be told apart from our folds.

pyDML's NCA, as read in ``dml/nca.pyx`` (commits 1d7cd68 and f0adc9c, the same algorithm)
and called by pyDML-Stats' ``scripts/test_framework.py`` (``basic_knn_algs``: ``NCA()``, all
defaults; ``test_basic_knn``: ``np.random.seed(28)`` before each fold's fit):

- the objective is the expected leave-one-out success ``sum_i p_i``, maximised; ``p_ij``
  the softmax of ``-||L x_i - L x_j||^2`` over ``j != i``, computed shifted by the largest
  logit, the nearest neighbour's term set to exactly 1;
- start: the identity (``initial_transform=None``), full dimension (``num_dims=None``);
- ``descent_method='SGD'``: each epoch visits the samples in the order of
  ``np.random.permutation(n)`` (the global NumPy generator, seeded 28 before the fit) and
  after each sample ``i`` adds ``eta * dp_i/dL`` to ``L`` (no division by ``n``), where
  ``dp_i/dL = 2 L (p_i sum_k p_ik x_ik x_ik^T - sum_{k in class(i)} p_ik x_ik x_ik^T)``,
  ``x_ik = x_i - x_k``, at the current ``L``;
- ``learning_rate='adaptive'``, ``eta0=0.3``: after each epoch the expected success is
  recomputed; ``eta *= learn_inc`` (1.01) if it rose above the previous epoch's (0 before
  the first), else ``eta *= learn_dec`` (0.5);
- stops after ``max_iter=100`` epochs, or when ``eta < eta_thres`` (1e-14), or when the last
  sample's gradient has ``max |g| < prec`` (1e-8) or ``eta * max |g| < tol`` (1e-8);
- pyDML declares its scalars C ``float``: the shift, the exponents, ``p_i``, ``eta``, the
  epoch's success (accumulated in float32) and the stop tests are rounded to float32 here
  as there; the arrays are float64 on both.

Agreement, asserted before the tables: on the first fold of each dataset and seed, at the
map pyDML's algorithm reached, the re-implementation's per-sample gradient (its float64
variant) equals skmetric's NCA gradient of ``-p_i`` with the sign changed, and the central
finite difference of its own ``p_i`` along a random direction; its float32 variant (the
fit's) is within float32 rounding of it; on every fold, the expected success it tracks
equals skmetric's NCA objective at its map (one shared function for every side), and
skmetric's plain ``objective_`` equals that function at its map.

``--quick`` (iris, 3 folds, one seed) runs every side.

``--shuffle-seed S`` seeds the pyDML side's sample order with ``S`` instead of 28 (how
much its figures owe to one order).

    python benchmarks/nca_reference.py [--datasets iris,wine] [--seeds 0,1] [--record]
"""

import argparse
import sys
import time

import numpy as np
from _common import Run, add_common_args
from _pydml import (
    CV_SCHEMES,
    PUBLISHED,
    PYDML_DATASETS,
    add_protocol_args,
    knn_accuracy,
    load,
    protocol_folds,
    protocol_runs,
    record_name,
)
from accuracy import LEARNERS, _delta
from scipy.spatial.distance import cdist
from threadpoolctl import threadpool_limits

from skmetric.supervised._nca import _nca_loss_grad

# pyDML's NCA() defaults (dml/nca.pyx) and pyDML-Stats' seed (scripts/test_framework.py).
PYDML_NCA = {"eta0": 0.3, "learn_inc": 1.01, "learn_dec": 0.5, "max_iter": 100,
             "prec": 1e-8, "tol": 1e-8, "eta_thres": 1e-14, "shuffle_seed": 28}
SIDES = ("euclidean", "auto", "plain", "pyDML SGD")
F32 = np.float32


# -- pyDML's NCA, re-implemented --------------------------------------------------------------
def softmax_rows(Z, rows, scalar=F32):
    """``p_ij`` of the queries ``rows`` against all samples of the mapped data ``Z``, the
    way pyDML computes them (shift and exponents rounded to ``scalar``)."""
    neg = -cdist(Z[rows], Z, "sqeuclidean")
    neg[np.arange(len(rows)), rows] = -np.inf
    nearest = np.argmax(neg, axis=1)
    shift = neg[np.arange(len(rows)), nearest].astype(scalar).astype(float)
    power = np.minimum(0.0, neg - shift[:, None]).astype(scalar).astype(float)
    P = np.exp(power)
    P[np.arange(len(rows)), nearest] = 1.0
    return P / P.sum(axis=1, keepdims=True)


def sample_gradient(L, X, y, i, scalar=F32):
    """``(p_i, dp_i/dL)`` at ``L``: pyDML's SGD step direction for sample ``i``."""
    diff = X[i] - X
    p = softmax_rows(X @ L.T, np.array([i]), scalar)[0]
    same = y == y[i]
    p_i = float(scalar(p[same].sum()))
    weights = p * (p_i - same)
    return p_i, 2.0 * L @ ((diff * weights[:, None]).T @ diff)


def expected_success(L, X, y):
    """pyDML's ``_compute_expected_success``: ``sum_i p_i``, each ``p_i`` rounded to and
    accumulated in float32."""
    P = softmax_rows(X @ L.T, np.arange(len(y)))
    p = (P * (y[:, None] == y[None, :])).sum(axis=1).astype(F32)
    return F32(np.add.accumulate(p, dtype=F32)[-1])


def fit_pydml_nca(X, y, params=PYDML_NCA):
    """pyDML's ``NCA().fit`` (SGD, adaptive learning rate) from the identity:
    ``(L, epochs, final eta)``."""
    L = np.eye(X.shape[1])
    rng = np.random.RandomState(params["shuffle_seed"])  # np.random.seed(28) in pyDML-Stats
    eta, succ_prev = F32(params["eta0"]), F32(0.0)
    inc, dec = F32(params["learn_inc"]), F32(params["learn_dec"])
    epochs = 0
    while True:
        for i in rng.permutation(len(y)):
            grad = sample_gradient(L, X, y, i)[1]
            L += float(eta) * grad
        succ = expected_success(L, X, y)
        stop = False
        if succ > succ_prev:
            eta = F32(eta * inc)
        else:
            eta = F32(eta * dec)
            stop = eta < F32(params["eta_thres"])
        succ_prev = succ
        grad_norm = F32(np.max(np.abs(grad)))
        stop |= bool(grad_norm < F32(params["prec"]) or eta * grad_norm < F32(params["tol"]))
        epochs += 1
        if stop or epochs == params["max_iter"]:
            return L, epochs, float(eta)


# -- agreement --------------------------------------------------------------------------------
def check_gradients(run, L, X, y, codes, label, rng):
    """At ``L``, for the samples of least, median and most ``p_i``: the re-implementation's
    gradient against skmetric's and against a central finite difference of its own
    ``p_i``; its float32 scalars against float64."""
    p = softmax_rows(X @ L.T, np.arange(len(y)), np.float64)
    order = np.argsort((p * (codes[:, None] == codes[None, :])).sum(axis=1), kind="stable")
    # The gradient is a difference of terms up to 2 ||L|| max_k ||x_i - x_k||^2 that cancel
    # where p_i is near 1: rounding is relative to them, not to the gradient.
    terms = 2 * np.linalg.norm(L) * np.max(cdist(X, X, "sqeuclidean"))
    for i in order[[0, len(y) // 2, -1]]:
        p64, g64 = sample_gradient(L, X, y, i, scalar=np.float64)
        loss, g_sk = _nca_loss_grad(L, X, codes, rows=np.array([i]))
        run.check_close(f"{label} sample {i}: p_i vs skmetric's -objective", p64, -loss,
                        rtol=1e-9, atol=1e-12)
        run.check_close(f"{label} sample {i}: dp_i/dL vs skmetric's -gradient", g64, -g_sk,
                        rtol=1e-7, atol=1e-12 * terms)
        V = rng.standard_normal(L.shape)
        h = 1e-6 * max(1.0, float(np.linalg.norm(L)))
        fd = (sample_gradient(L + h * V, X, y, i, scalar=np.float64)[0]
              - sample_gradient(L - h * V, X, y, i, scalar=np.float64)[0]) / (2 * h)
        run.check_close(f"{label} sample {i}: <dp_i/dL, V> vs central difference",
                        float(np.sum(g64 * V)), fd, rtol=1e-4, atol=1e-9 * terms)
        g32 = sample_gradient(L, X, y, i)[1]
        run.check_close(f"{label} sample {i}: float32 scalars vs float64", g32, g64,
                        rtol=1e-4, atol=1e-6 * terms)


def shared_objective(L, X, codes):
    """The expected leave-one-out success ``mean_i p_i`` (skmetric's NCA objective / -n)."""
    return -float(_nca_loss_grad(np.asarray(L, dtype=float), X, codes)[0]) / len(codes)


# -- one fold ---------------------------------------------------------------------------------
def run_fold(run, fold, seed, label, args, check_rng=None):
    """``{side: (accuracy, mean p_i, ||L - I||_F, iterations, CPU seconds)}`` of one fold of
    split ``seed`` (also the learners' ``random_state``)."""
    Xtr, ytr, Xte, yte = fold
    codes = np.unique(ytr, return_inverse=True)[1]
    eye = np.eye(Xtr.shape[1])
    out = {"euclidean": (knn_accuracy(Xtr, ytr, Xte, yte), shared_objective(eye, Xtr, codes),
                         0.0, 0, 0.0)}
    with threadpool_limits(args.threads):
        for variant in ("auto", "plain"):
            learner = LEARNERS["NCA"][variant](seed)
            start = time.process_time()
            learner.fit(Xtr, ytr)
            seconds = time.process_time() - start
            L = learner.components_
            f = shared_objective(L, Xtr, codes)
            if variant == "plain":
                run.check_close(f"{label}: plain objective_ vs the shared function",
                                -learner.objective_ / len(codes), f, rtol=1e-9)
            out[variant] = (_accuracy(L, fold), f, float(np.linalg.norm(L - eye)),
                            learner.n_iter_, seconds)
        start = time.process_time()
        L, epochs, _ = fit_pydml_nca(Xtr, codes, {**PYDML_NCA,
                                                  "shuffle_seed": args.shuffle_seed})
        seconds = time.process_time() - start
    f = shared_objective(L, Xtr, codes)
    run.check_close(f"{label}: pyDML's expected success vs the shared function",
                    float(expected_success(L, Xtr, codes)) / len(codes), f, rtol=1e-4)
    if check_rng is not None:
        check_gradients(run, L, Xtr, ytr, codes, label, check_rng)
    out["pyDML SGD"] = (_accuracy(L, fold), f, float(np.linalg.norm(L - eye)), epochs, seconds)
    return out


def _accuracy(L, fold):
    Xtr, ytr, Xte, yte = fold
    return knn_accuracy(Xtr @ L.T, ytr, Xte @ L.T, yte)


# -- tables -----------------------------------------------------------------------------------
def fold_rows(results):
    """Per dataset, seed and side: the fold means."""
    rows = []
    for (dataset, seed), folds in results.items():
        euclid = 100 * np.mean([fold["euclidean"][0] for fold in folds])
        for side in SIDES:
            acc, f, moved, n_iter, seconds = np.mean([fold[side] for fold in folds], axis=0)
            delta = _delta(dataset, "NCA", 100 * acc, euclid)
            rows.append([dataset, seed, side, f"{100 * acc:.1f}", f"{100 * acc - euclid:+.1f}",
                         None if side == "euclidean" or delta is None else f"{delta:+.1f}",
                         f"{f:.4f}", f"{moved:.2f}", f"{n_iter:.0f}", f"{seconds:.3f}"])
    return rows


def summary_rows(results):
    """Per side: the gain per dataset (mean over seeds), mean Δ, worst gain, CPU / plain."""
    datasets = list(dict.fromkeys(dataset for dataset, _ in results))
    rows = []
    for side in SIDES[1:]:
        gains, deltas, ratios = {}, [], []
        for dataset in datasets:
            per_seed = [v for (d, _), v in results.items() if d == dataset]
            folds = [fold for seed_folds in per_seed for fold in seed_folds]
            gains[dataset] = 100 * np.mean([f[side][0] - f["euclidean"][0] for f in folds])
            euclid = 100 * np.mean([f["euclidean"][0] for f in folds])
            delta = _delta(dataset, "NCA", euclid + gains[dataset], euclid)
            if delta is not None:
                deltas.append(delta)
            plain = np.mean([f["plain"][4] for f in folds])
            ratios.append(np.mean([f[side][4] for f in folds]) / plain if plain > 0 else np.nan)
        worst = min(gains, key=gains.get)
        rows.append([side] + [f"{gains[d]:+.1f}" for d in datasets]
                    + [f"{np.mean(deltas):+.2f} ({len(deltas)})" if deltas else None,
                       f"{gains[worst]:+.1f} ({worst})",
                       f"{np.nanmin(ratios):.2f}–{np.nanmax(ratios):.2f}"])
    published = ["published"] + [
        f"{PUBLISHED[d]['NCA'] - PUBLISHED[d]['euclidean']:+.1f}" if d in PUBLISHED else None
        for d in datasets] + [None, None, None]
    return [*rows, published], datasets


# -- main -------------------------------------------------------------------------------------
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # The split seeds are also skmetric's random_state, as in accuracy.py.
    add_protocol_args(parser, datasets=",".join(PYDML_DATASETS), seeds="0,1")
    parser.add_argument("--shuffle-seed", type=int, default=PYDML_NCA["shuffle_seed"],
                        help="seed of the pyDML side's sample order (default: 28, "
                             "pyDML-Stats')")
    add_common_args(parser)
    args = parser.parse_args(argv)
    run = Run(record_name("nca_reference", args), args)
    datasets, seeds = protocol_runs(args, parser)
    results = {}
    for dataset in datasets:
        X, y = load(dataset)
        for seed in seeds:
            folds = list(protocol_folds(X, y, args.folds, seed, args.cv, dataset))
            results[dataset, seed] = [
                run_fold(run, fold, seed, f"{dataset} fold {k} seed {seed}", args,
                         np.random.default_rng(seed) if k == 0 else None)
                for k, fold in enumerate(folds)]
            print(f"{dataset} seed {seed}: " + ", ".join(
                f"{side} {100 * np.mean([f[side][0] for f in results[dataset, seed]]):.1f}"
                for side in SIDES), file=sys.stderr, flush=True)
    report(run, results, args)
    run.finish()


def report(run, results, args):
    seeds = ",".join(str(seed) for seed in dict.fromkeys(s for _, s in results))
    caption = (f"{args.folds}-fold {CV_SCHEMES[args.cv]} (split seeds {seeds}), MinMaxScaler per "
               "training fold, 3-NN; means over folds. Sides: auto = skmetric.NCA() (the "
               "default, prior_strength='auto'), plain = NCA(prior_strength=0), pyDML SGD = "
               "pyDML's NCA() re-implemented (SGD over samples from the identity, eta0=0.3, "
               "adaptive rate ×1.01/×0.5, at most 100 epochs, shuffles seeded "
               f"{args.shuffle_seed}). Gain = side − "
               "Euclidean; Δ = gain − published gain; mean p_i = expected leave-one-out "
               "success on the training fold (one function for every side); iterations: "
               "L-BFGS iterations (auto: the final fit's) or SGD epochs; CPU = process time "
               "per fit")
    columns = ["dataset", "seed", "side", "3-NN accuracy (%)", "gain", "Δ", "mean p_i",
               "‖L − I‖_F", "iterations", "CPU (s)"]
    print(caption + "\n")
    print(run.table("nca_reference", "NCA vs pyDML's algorithm on accuracy.py's folds",
                    columns, fold_rows(results), caption))
    rows, datasets = summary_rows(results)
    caption = (f"Gain over Euclidean (points, mean over split seeds {seeds}) per side; mean Δ "
               "over the datasets with a published figure; CPU / plain: range over datasets "
               "of the side's mean CPU per fit over skmetric's plain fit's")
    print("\n" + caption + "\n")
    print(run.table("nca_reference_summary", "Gain per side and mean Δ", ["side", *datasets,
                    "mean Δ", "worst gain", "CPU / plain"], rows, caption))


if __name__ == "__main__":
    main()
