"""The metric-learn side of classical.py, run inside benchmarks/.ml-venv (metric-learn 0.7.0).

Reads a JSON job from stdin: ``{"datasets": {name: {"X", "y", "folds": [[train, test],
...]}}, "learners": {name: [class_name, kwargs]}, "n_neighbors": k, "threads": t}`` (the
data comes with the job, so this side fits the rows classical.py fits, whatever loaded
them: scikit-learn's bundled sets or KEEL's) and prints one JSON object
``{dataset: {learner: {"accuracy", "std", "fit_time"} or {"error"}}}`` on stdout. A job
``{"fit": {"class", "kwargs", "X", "y"}, "threads": t}`` instead fits once and prints the
learned ``components``, ``fit_time`` and ``n_iter`` (used by lmnn_equal_work.py). Each fit
is a Pipeline(MinMaxScaler, learner, KNeighborsClassifier) on the given folds, like the
skmetric side. Uses only numpy, scipy, scikit-learn and metric-learn (no skmetric, no torch).
"""

import json
import sys
import time
import traceback

import numpy as np
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler
from threadpoolctl import threadpool_limits


def main():
    job = json.load(sys.stdin)
    import metric_learn

    if "fit" in job:  # one fit on the given data (lmnn_equal_work.py)
        json.dump(_fit_once(metric_learn, job["fit"], job["threads"]), sys.stdout)
        return

    results = {"metric_learn_version": metric_learn.__version__}
    with threadpool_limits(job["threads"]):
        for dataset, given in job["datasets"].items():
            X, y, folds = _dataset(given)
            results[dataset] = {}
            for name, (cls_name, kwargs) in job["learners"].items():
                results[dataset][name] = _cross_validate(
                    lambda cls_name=cls_name, kwargs=kwargs: getattr(metric_learn, cls_name)(
                        **kwargs),
                    X, y, folds, job["n_neighbors"])
                print(f"metric-learn {dataset} {name}: {results[dataset][name]}",
                      file=sys.stderr, flush=True)
    json.dump(results, sys.stdout)


def _dataset(given):
    """``(X, y, folds)`` of one dataset of the job: arrays, and index arrays per fold."""
    folds = [(np.asarray(train), np.asarray(test)) for train, test in given["folds"]]
    return np.asarray(given["X"], dtype=float), np.asarray(given["y"]), folds


def _cross_validate(factory, X, y, folds, n_neighbors):
    scores, times = [], []
    try:
        for train, test in folds:
            pipe = make_pipeline(MinMaxScaler(), factory(),
                                 KNeighborsClassifier(n_neighbors=n_neighbors))
            start = time.perf_counter()
            pipe.fit(X[train], y[train])
            times.append(time.perf_counter() - start)
            scores.append(pipe.score(X[test], y[test]))
    except Exception as exc:  # report, do not abort the other learners
        return {"error": f"{type(exc).__name__}: {exc}",
                "trace": traceback.format_exc(limit=3)}
    return {"accuracy": float(np.mean(scores)), "std": float(np.std(scores)),
            "fit_time": float(np.mean(times))}


def _fit_once(metric_learn, fit, threads):
    """Fit one learner on ``fit["X"], fit["y"]``; its components_, time and iterations."""
    X, y = np.asarray(fit["X"], dtype=float), np.asarray(fit["y"])
    learner = getattr(metric_learn, fit["class"])(**fit["kwargs"])
    with threadpool_limits(threads):
        start = time.perf_counter()
        learner.fit(X, y)
        elapsed = time.perf_counter() - start
    return {"components": learner.components_.tolist(), "fit_time": elapsed,
            "n_iter": int(getattr(learner, "n_iter_", -1)),
            "metric_learn_version": metric_learn.__version__}


if __name__ == "__main__":
    main()
