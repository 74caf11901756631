"""The options every loss shares: regularizers of embeddings and class weights, a reducer.

They are keyword arguments of every loss class (``ContrastiveLoss(reducer=...)``,
``ArcFaceLoss(..., weight_regularizer=...)``) without each subclass listing them: the
metaclass takes them out of the constructor's arguments, builds the loss, then sets them.
So a loss written by a user (or added later) gets them too, and ``MetricEmbedder``'s
``loss__embedding_regularizer=...`` reaches every named loss.
"""

import inspect

from ..._sklearn_compat import StrOptions, validate_parameter_constraints
from .._params import FINITE, ValidatedParams
from .reducers import REDUCERS, get_reducer

#: name -> (default, constraints); ``weight_*`` only for losses with class weights.
SHARED_OPTIONS = {
    "embedding_regularizer": (None, [None, callable]),
    "embedding_reg_weight": (1.0, [FINITE]),
    "weight_regularizer": (None, [None, callable]),
    "weight_reg_weight": (1.0, [FINITE]),
    "reducer": (None, [None, StrOptions(set(REDUCERS)), callable]),
}


class LossOptions(ValidatedParams):
    """Metaclass of the losses: :data:`SHARED_OPTIONS` as extra keyword arguments."""

    def __call__(cls, *args, **kwargs):
        names = cls._shared_option_names()
        options = {name: kwargs.pop(name) for name in names if name in kwargs}
        validate_parameter_constraints({k: SHARED_OPTIONS[k][1] for k in options}, options,
                                       caller_name=cls.__name__)
        if options.get("reducer") is not None and not getattr(cls, "supports_reducer", False):
            raise ValueError(
                f"{cls.__name__} reduces its terms itself and does not take reducer= yet. "
                "Use the default reduction, or a loss whose supports_reducer is True."
            )
        if "reducer" in options:
            options["reducer"] = get_reducer(options["reducer"])
            check_class_weighted(cls, options["reducer"])
        loss = super().__call__(*args, **kwargs)
        for name in names:
            setattr(loss, name, options.get(name, SHARED_OPTIONS[name][0]))
        return loss

    def _all_constraints(cls):
        shared = {name: SHARED_OPTIONS[name][1] for name in cls._shared_option_names()}
        return {**shared, **super()._all_constraints()}

    def _extra_names(cls):
        return cls._shared_option_names()

    def _shared_option_names(cls):
        own = inspect.signature(cls.__init__).parameters
        names = [n for n in SHARED_OPTIONS if n not in own]  # a subclass may own one
        if not cls.requires_classes:
            names = [n for n in names if not n.startswith("weight_")]
        return names

    @property
    def __signature__(cls):
        sig = super().__signature__
        if any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values()):
            return sig  # a subclass's **kwargs already carries them
        extra = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY,
                                   default=SHARED_OPTIONS[name][0])
                 for name in cls._shared_option_names()]
        return sig.replace(parameters=[*sig.parameters.values(), *extra])


#: The ``refuses_class_weights`` of the losses whose terms pytorch-metric-learning hands to
#: its reducer as an (n, 1) column: its ClassWeightedReducer broadcasts them to
#: mean(terms) * mean(weights[labels]), which weighs no class.
COLUMN_TERMS = ("pytorch-metric-learning's value for it is mean(terms) * "
                "mean(class weights of the batch), which weighs no class.")


def check_class_weighted(cls, reducer):
    """Refuse a ClassWeightedReducer (also inside a PerAnchorReducer) for a loss whose
    ``refuses_class_weights`` says why. E.g. pytorch-metric-learning hands some losses'
    per-sample terms to the reducer as a column (n, 1), so its class weights broadcast to an
    (n, n) product, ``mean(terms) * mean(weights[labels])``, which weighs no class; copying
    that would be silently wrong, and a different value would not be PML's."""
    from .reducers import ClassWeightedReducer

    reason = getattr(cls, "refuses_class_weights", None)
    while reason and reducer is not None:
        if isinstance(reducer, ClassWeightedReducer):
            raise ValueError(
                f"{cls.__name__} does not take a ClassWeightedReducer: {reason} Use "
                "another reducer, or weight the classes by sampling (e.g. MPerClassSampler)."
            )
        reducer = getattr(reducer, "reducer", None)


def add_regularization(loss_module, loss, embeddings):
    """``loss`` plus the weighted penalties of the loss's regularizers (those that are set)."""
    if loss_module.embedding_regularizer is not None:
        loss = loss + loss_module.embedding_reg_weight * loss_module.embedding_regularizer(
            embeddings)
    if getattr(loss_module, "weight_regularizer", None) is not None:
        loss = loss + loss_module.weight_reg_weight * loss_module.weight_regularizer(
            loss_module.class_weights())
    return loss


def reduce_terms(loss_module, losses, indices, kind, embeddings, labels, default):
    """Reduce a loss's terms with its ``reducer``, else ``default(losses, embeddings)``.

    ``kind`` is the terms' kind (see ``reducers``), the same as pytorch-metric-learning's
    ``reduction_type`` for that loss, so a reducer gives PML's value.
    """
    reducer = getattr(loss_module, "reducer", None)
    if reducer is None:
        return default(losses, embeddings)
    return reducer(losses, indices, kind, embeddings, labels)
