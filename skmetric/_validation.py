"""Input validation shared by all learners: tuples, preprocessors, pair labels."""

import functools
import numbers

import numpy as np

from ._sklearn_compat import _fit_context

_TUPLE_NAMES = {2: "pairs", 3: "triplets", 4: "quadruplets"}


def format_labels(labels):
    """Class labels as users wrote them, for messages: ``1`` or ``[1, 2]``, not ``np.int64(1)``."""
    if isinstance(labels, np.ndarray):
        return repr(labels.tolist())
    return repr(labels.item() if isinstance(labels, np.generic) else labels)


def unique_labels(labels, name="y", **kwargs):
    """``np.unique(labels, **kwargs)`` for class labels, naming labels of mixed types.

    Labels that cannot be ordered (e.g. ints and strings in one object array) would fail
    deep inside NumPy's sort; this raises a TypeError naming ``name`` and the types found.
    """
    try:
        return np.unique(labels, **kwargs)
    except TypeError as exc:
        types = sorted({type(v).__name__ for v in np.asarray(labels, dtype=object).ravel()})
        raise TypeError(
            f"The labels in {name} are of different types ({', '.join(types)}), which "
            "cannot be compared with each other. Give every label the same type, e.g. "
            "labels.astype(str)."
        ) from exc


def label_kind(labels):
    """``'strings'`` or ``'numbers'``: what an array of labels holds (None for object
    arrays and other dtypes). Strings and numbers never name the same class: compared or
    concatenated, 1 would meet '1' but 1.0 would not."""
    kind = np.asarray(labels).dtype.kind
    return "strings" if kind in "US" else "numbers" if kind in "biuf" else None


def real_array(value, what):
    """A parameter array (an init map, a prior matrix, a basis, bounds) as float64.

    ``np.asarray(value, dtype=float64)`` would drop the imaginary part of complex values
    with only NumPy's ComplexWarning; they and non-numbers raise here, naming ``what``.
    """
    arr = np.asarray(value)
    if arr.dtype.kind == "c":
        raise ValueError(f"{what} is complex (dtype {arr.dtype}); pass real numbers.")
    try:
        return arr.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{what} must hold numbers; got dtype {arr.dtype}.") from exc


def check_finite(X, what="X"):
    """Raise a ValueError naming ``what`` if ``X`` holds NaN or infinity."""
    if not np.all(np.isfinite(X)):
        raise ValueError(
            f"{what} contains NaN or infinity. Remove or impute those values "
            "(e.g. with sklearn.impute.SimpleImputer) first."
        )


def check_variance(X, learner, what="X"):
    """Raise a ValueError naming ``learner`` when every feature of ``X`` is constant.

    Judged on the values (their range), not on a covariance: the computed variance of a
    constant feature such as 0.1 is round-off (about 1e-33), which an inverse-covariance
    learner would invert into a map of 1e16 that measures nothing but that round-off.
    """
    if X.shape[0] and not np.any(np.ptp(X, axis=0)):
        raise ValueError(
            f"{learner} found no variance in {what}: every feature is constant, so there is "
            "no direction to learn. Check the data (e.g. remove constant features with "
            "sklearn.feature_selection.VarianceThreshold)."
        )


# Learners form squared distances, covariances and products of them in float64: samples
# whose largest magnitude lies outside [2**-200, 2**200] (about 6e-61 .. 1.6e60) would
# overflow or underflow there.
_SAFE_LOG2_MAGNITUDE = 200


def fit_scale(X, learner, *, rescalable):
    """The power of two to divide the training samples ``X`` by (1.0 when not needed).

    Samples whose largest magnitude lies in [2**-200, 2**200] are used as they are. Beyond,
    a ``rescalable`` learner (e.g. a scale-equivariant one: its map on ``s * X`` is its map
    on ``X`` divided by ``s``) is fitted on ``X / c`` with ``c`` a power of two, which is
    exact, and divides its map by ``c``; any other learner raises a ValueError naming
    ``learner``, since its answer depends on the units of the features.
    """
    # X is validated finite; max and -min avoid a copy of X.
    magnitude = max(float(X.max()), -float(X.min())) if X.size else 0.0
    if magnitude == 0 or abs(np.frexp(magnitude)[1]) <= _SAFE_LOG2_MAGNITUDE:
        return 1.0
    if not rescalable:
        raise ValueError(
            f"{learner} cannot be fitted on samples of magnitude {magnitude:.3g}: beyond "
            f"{2.0**-_SAFE_LOG2_MAGNITUDE:.1e} .. {2.0**_SAFE_LOG2_MAGNITUDE:.1e} its "
            "squared distances overflow or underflow float64, and its result depends on the "
            "units of the features, so it cannot rescale them itself. Standardise the features "
            "first, e.g. with sklearn.preprocessing.StandardScaler."
        )
    return float(np.ldexp(1.0, int(np.frexp(magnitude)[1])))


def apply_preprocessor(preprocessor, indices, what="X"):
    """Gather the rows ``indices`` (any shape of ints) through ``preprocessor``.

    ``preprocessor`` is an array of shape (n_samples, n_features) or a callable that maps a
    1-D array of indices to a 2-D array of features. Returns an array of shape
    ``indices.shape + (n_features,)``.
    """
    indices = np.asarray(indices)
    if indices.dtype.kind not in "iu":
        raise TypeError(
            f"With a preprocessor, {what} must hold integer indices into it; got dtype "
            f"{indices.dtype}. Pass feature arrays instead, or set preprocessor=None."
        )
    flat = indices.ravel()
    if callable(preprocessor):
        rows = np.asarray(preprocessor(flat))
        if rows.ndim != 2 or rows.shape[0] != flat.shape[0]:
            raise ValueError(
                "The preprocessor callable must map a 1-D array of k indices to a 2-D "
                f"array of shape (k, n_features); it returned shape {rows.shape}."
            )
    else:
        data = np.asarray(preprocessor)
        if data.ndim != 2:
            raise ValueError(
                "An array preprocessor must be 2-D, of shape (n_samples, n_features); "
                f"got shape {data.shape}."
            )
        if flat.size and (flat.min() < 0 or flat.max() >= data.shape[0]):
            raise ValueError(
                f"{what} holds indices outside [0, {data.shape[0]}) of the preprocessor."
            )
        rows = data[flat]
    if rows.dtype.kind not in "biuf":
        raise TypeError(f"The preprocessor returned non-numeric data of dtype {rows.dtype}.")
    rows = rows.astype(np.float64, copy=False)
    check_finite(rows, "The preprocessor's output")
    return rows.reshape(indices.shape + (rows.shape[1],))


def check_tuples(tuples, tuple_size, preprocessor=None, *, n_features=None, dtype=np.float64):
    """Validate tuples of samples and return them as an array (n_tuples, tuple_size, n_features).

    Tuples are a 3-D array of features, or (with ``preprocessor``) a 2-D integer array of
    indices of shape (n_tuples, tuple_size).
    """
    name = _TUPLE_NAMES.get(tuple_size, f"{tuple_size}-tuples")
    arr = np.asarray(tuples)
    expected = f"of shape (n_{name}, {tuple_size}, n_features)"
    if preprocessor is not None and arr.ndim == 2:
        if arr.shape[1] != tuple_size:
            raise ValueError(
                f"Expected {name} as indices of shape (n_{name}, {tuple_size}); got shape "
                f"{arr.shape}."
            )
        arr = apply_preprocessor(preprocessor, arr, what=name)
    elif arr.ndim != 3:
        hint = (
            " If these are indices into a dataset, pass preprocessor=X."
            if arr.ndim == 2 and preprocessor is None
            else ""
        )
        raise ValueError(
            f"Expected {name} as a 3-D array {expected}; got an array with "
            f"{arr.ndim} dimension(s), shape {arr.shape}.{hint}"
        )
    if arr.shape[1] != tuple_size:
        raise ValueError(
            f"Expected {name} {expected}, i.e. {tuple_size} samples per tuple; got shape "
            f"{arr.shape}."
        )
    if arr.shape[0] == 0:
        raise ValueError(f"Found 0 {name}; at least 1 is required.")
    if arr.shape[2] == 0:
        raise ValueError(f"The {name} have 0 features; at least 1 is required.")
    if arr.dtype.kind == "c":
        raise ValueError("Complex data not supported; pass real-valued tuples.")
    if arr.dtype.kind not in "biuf":
        try:
            arr = arr.astype(dtype)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"The {name} must be numeric; got dtype {arr.dtype}."
            ) from exc
    arr = arr.astype(dtype, copy=False)
    check_finite(arr, f"The {name}")
    if n_features is not None and arr.shape[2] != n_features:
        raise ValueError(
            f"The {name} have {arr.shape[2]} features, but the learner was fitted with "
            f"{n_features} features."
        )
    return arr


def check_pair_labels(y, n_pairs, return_classes=False):
    """Validate pair labels; return them as -1 (dissimilar) and +1 (similar).

    Labels in {-1, +1} (metric-learn's convention) and in {0, 1} or booleans (the
    convention of :mod:`skmetric.metrics`, 0 meaning dissimilar) are accepted. With
    ``return_classes``, also return the (dissimilar, similar) labels of that convention:
    ``[-1, 1]``, ``[0, 1]`` or ``[False, True]`` (``[-1, 1]`` when only 1 is present).
    """
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != n_pairs:
        raise ValueError(
            f"y must be a 1-D array with one label per pair ({n_pairs}); got shape {y.shape}."
        )
    if y.dtype.kind == "O" and all(isinstance(v, numbers.Real) for v in y):
        y = y.astype(np.float64)  # numbers in an object array (e.g. a pandas column)
    if y.dtype.kind in "biuf":
        values = np.unique(y)
        if np.all(np.isin(values, (-1, 1))) and y.dtype.kind != "b":
            return _with_classes(y.astype(np.int64), [-1, 1], return_classes)
        if np.all(np.isin(values, (0, 1))):
            classes = [False, True] if y.dtype.kind == "b" else [0, 1]
            return _with_classes(np.where(y == 1, 1, -1).astype(np.int64), classes,
                                 return_classes)
        bad = values[~np.isin(values, (-1, 0, 1))][:5]
        found = format_labels(bad) if bad.size else "both 0 and -1"
    else:  # name the type: the first labels alone ('1', '-1') would look right
        kind = "strings" if label_kind(y) == "strings" else "labels that are not all numbers"
        found = f"{kind} (dtype {y.dtype}, e.g. {format_labels(y[:3])})"
    raise ValueError(
        "Pair labels must be +1 (similar) or -1 (dissimilar), or 1 and 0 (0 meaning "
        f"dissimilar); found "
        f"{found}. Map your labels, e.g. y = np.where(same, 1, -1)."
    )


def _with_classes(y, classes, return_classes):
    return (y, np.array(classes)) if return_classes else y


def check_scalar_or_none(value, name, *, min_val=None, include_min=True):
    """Return ``value`` if None or a number above ``min_val``, else a ValueError."""
    if value is None:
        return value
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise TypeError(f"{name} must be a number or None; got {value!r}.")
    if min_val is not None and (value < min_val or (not include_min and value == min_val)):
        raise ValueError(f"{name} must be {'>=' if include_min else '>'} {min_val}; got {value}.")
    return value


def fit_context(*, prefer_skip_nested_validation):
    """scikit-learn's ``_fit_context`` for a ``fit`` that starts from a clean slate.

    After the parameters are validated, the fitted attributes (ending in ``_``) that the
    previous fit set are deleted, so that a refit with other parameters keeps none that it
    does not set again: ``prior_scores_`` of an earlier ``prior_strength='auto'``, an exact
    KernelPCA's training samples (``X_fit_``) in a landmark model, which would also be
    pickled. A fit that fails on its data leaves the estimator unfitted rather than a mix of
    two fits. Only what a fit set is deleted: a user's subclass may set attributes of its
    own (e.g. a trace of the objective) before calling ``super().fit``.
    """
    def decorator(fit):
        @functools.wraps(fit)
        def fresh_fit(estimator, *args, **kwargs):
            state = vars(estimator)
            for name in state.pop(_FIT_SET, ()):
                state.pop(name, None)
            before = set(state)
            try:
                return fit(estimator, *args, **kwargs)
            finally:
                state[_FIT_SET] = tuple(name for name in state
                                        if name not in before and name.endswith("_"))

        return _fit_context(prefer_skip_nested_validation=prefer_skip_nested_validation)(
            fresh_fit)

    return decorator


#: The instance attribute that lists the fitted attributes the last fit set.
_FIT_SET = "_fit_attributes"
