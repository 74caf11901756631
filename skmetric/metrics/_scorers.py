"""``scoring=`` callables for ``GridSearchCV`` and ``cross_val_score``: retrieval and
clustering metrics of a transformer's embedding, verification metrics of a pair learner."""

import inspect
import numbers

import numpy as np

from .._array_api import to_numpy
from .._compute._engine import check_metric
from .._sklearn_compat import validate_parameter_constraints, validate_params
from ._clustering import ami_kmeans, nmi_kmeans
from ._retrieval import (
    map_at_r,
    mean_average_precision,
    precision_at_k,
    r_precision,
    recall_at_k,
)
from ._verification import (
    best_threshold_accuracy,
    equal_error_rate,
    tar_at_far,
    verification_roc,
)


@validate_params({"name": [str]}, prefer_skip_nested_validation=True)
def make_retrieval_scorer(name, **kwargs):
    """A ``scoring=`` callable that evaluates a transformer's embedding of the fold.

    The scorer embeds ``X`` with ``estimator.transform`` (for a ``Pipeline`` whose last
    step is not a transformer, e.g. a k-NN classifier, with all steps but the last) and
    computes the metric on the fold itself, leave-one-out: each sample queries the other
    samples of the fold. All scorers are greater-is-better.

    Parameters
    ----------
    name : str
        One of "precision_at_1", "precision_at_k", "recall_at_k", "r_precision",
        "map_at_r", "mean_average_precision", "nmi", "ami".
    **kwargs
        Passed to the metric, e.g. ``k=5`` for "precision_at_k" and "recall_at_k",
        ``metric="cosine"``, ``random_state=0`` for "nmi" and "ami".

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y) -> float``.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.model_selection import StratifiedKFold, cross_val_score
    >>> from skmetric import Covariance
    >>> from skmetric.metrics import make_retrieval_scorer
    >>> X, y = load_iris(return_X_y=True)
    >>> cv = StratifiedKFold(3, shuffle=True, random_state=0)  # folds with every class
    >>> scores = cross_val_score(Covariance(), X, y, cv=cv,
    ...                          scoring=make_retrieval_scorer("map_at_r"))
    >>> scores.round(2)  # whitening is a poor metric for iris
    array([0.52, 0.46, 0.52])
    """
    if name not in _RETRIEVAL_SCORERS:
        raise ValueError(
            f"Unknown retrieval scorer {name!r}; choose from {sorted(_RETRIEVAL_SCORERS)}."
        )
    func, defaults = _RETRIEVAL_SCORERS[name]
    params = {**defaults, **kwargs}
    _check_kwargs(func, params, name)
    _check_values(func, params, f"make_retrieval_scorer({name!r})")
    return _EmbeddingScorer(name, func, params)


@validate_params({"name": [str]}, prefer_skip_nested_validation=True)
def make_pair_scorer(name, **kwargs):
    """A ``scoring=`` callable for learners fitted on pairs, from their ``decision_function``.

    Parameters
    ----------
    name : str
        "roc_auc"; "tar_at_far" (``far=1e-3`` by default, one value); "accuracy" (best
        threshold accuracy); "eer" or its alias "neg_eer", which return the *negated*
        equal error rate so that greater is better, as all scikit-learn scorers. A perfect
        EER then scores -0.0 (which equals 0.0), as scikit-learn's ``neg_*`` scorers score
        a perfect prediction.
    **kwargs
        Passed to the metric (e.g. ``far=1e-2``).

    Returns
    -------
    scorer : callable
        ``scorer(estimator, pairs, y) -> float``, using ``estimator.decision_function``
        (higher = more similar).

    Examples
    --------
    >>> from skmetric.metrics import make_pair_scorer
    >>> scorer = make_pair_scorer("tar_at_far", far=0.01)
    >>> scorer
    make_pair_scorer('tar_at_far', far=0.01)
    """
    if name not in _PAIR_SCORERS:
        raise ValueError(f"Unknown pair scorer {name!r}; choose from {sorted(_PAIR_SCORERS)}.")
    func, _ = _PAIR_SCORERS[name]
    _check_kwargs(func, kwargs, name)
    if name == "tar_at_far":
        far = kwargs.get("far", 1e-3)
        if np.ndim(far) != 0:
            raise ValueError("A scorer needs a single far; got a sequence.")
        # Checked here, not at scoring time, where every fold would silently score NaN.
        if (not isinstance(far, numbers.Real) or isinstance(far, bool)
                or not 0 <= far <= 1):
            raise ValueError(f"far must be a number in [0, 1] (a false accept rate); got "
                             f"{far!r}.")
    _check_values(func, kwargs, f"make_pair_scorer({name!r})")
    return _PairScorer(name, kwargs)


def _check_kwargs(func, params, name):
    """Raise a TypeError now, not inside cross-validation, for unknown keyword arguments."""
    sig = inspect.signature(func)
    accepted = list(sig.parameters)[2:]  # after the data: embeddings/scores and labels
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise TypeError(f"Scorer {name!r} got unknown argument(s) {unknown}; it accepts "
                        f"{accepted}.")


def _check_values(func, params, caller):
    """Raise now the ValueError (InvalidParameterError) of values the metric's parameter
    constraints refuse: inside cross-validation each fold's error is caught, and every
    score would be NaN."""
    validate_parameter_constraints(getattr(func, "_parameter_constraints", {}), params,
                                   caller_name=caller)
    if "metric" in params:  # a str passes the constraints; the engine knows the names
        check_metric(params["metric"])


def _embed(estimator, X):
    if hasattr(estimator, "transform"):
        return estimator.transform(X)
    steps = getattr(estimator, "steps", None)
    if steps is not None and len(steps) > 1:  # a Pipeline ending in e.g. a classifier
        return estimator[:-1].transform(X)
    raise TypeError(
        f"A retrieval scorer needs a transformer (or a Pipeline of transformers) to embed X; "
        f"{type(estimator).__name__} has no transform method."
    )


def check_several_classes(y, what):
    """Refuse labels of a single class, where every neighbour is relevant: a retrieval
    score is then a perfect 1 that says nothing about the metric.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
    what : str
        The start of the message, e.g. "The 'map_at_r' scorer got a fold".
    """
    classes = np.unique(to_numpy(y))
    if classes.size == 1:
        raise ValueError(
            f"{what} whose samples all have class {classes[0].item()!r}, where the score "
            "says nothing about the metric. Split so that every fold holds several "
            "classes, e.g. cv=StratifiedKFold(5, shuffle=True, random_state=0): "
            "scikit-learn gives a transformer unshuffled KFold, whose folds are single "
            "classes when y is sorted.")


class _EmbeddingScorer:
    """``scorer(estimator, X, y)``: a metric of ``estimator``'s embedding of the fold."""

    def __init__(self, name, func, params):
        self.name, self.func, self.params = name, func, params

    def __call__(self, estimator, X, y):
        if y is None:
            raise ValueError(f"The {self.name!r} scorer needs class labels y.")
        check_several_classes(y, f"The {self.name!r} scorer got a fold")
        return float(self.func(_embed(estimator, X), y, **self.params))

    def __repr__(self):
        args = "".join(f", {k}={v!r}" for k, v in self.params.items())
        return f"make_retrieval_scorer({self.name!r}{args})"


class _PairScorer:
    """``scorer(estimator, pairs, y)`` from the learner's pair similarities."""

    def __init__(self, name, params):
        self.name, self.params = name, params

    def __call__(self, estimator, pairs, y):
        func, sign = _PAIR_SCORERS[self.name]
        value = func(estimator.decision_function(pairs), y, **self.params)
        return sign * float(value[0] if isinstance(value, tuple) else value)

    def __repr__(self):
        args = "".join(f", {k}={v!r}" for k, v in self.params.items())
        return f"make_pair_scorer({self.name!r}{args})"


def _roc_auc(scores, y):
    return verification_roc(scores, y).auc


_RETRIEVAL_SCORERS = {
    "precision_at_1": (precision_at_k, {"k": 1}),
    "precision_at_k": (precision_at_k, {}),
    "recall_at_k": (recall_at_k, {}),
    "r_precision": (r_precision, {}),
    "map_at_r": (map_at_r, {}),
    "mean_average_precision": (mean_average_precision, {}),
    "nmi": (nmi_kmeans, {}),
    "ami": (ami_kmeans, {}),
}

_PAIR_SCORERS = {
    "roc_auc": (_roc_auc, 1.0),
    "tar_at_far": (tar_at_far, 1.0),
    "accuracy": (best_threshold_accuracy, 1.0),
    "eer": (equal_error_rate, -1.0),
    "neg_eer": (equal_error_rate, -1.0),
}
