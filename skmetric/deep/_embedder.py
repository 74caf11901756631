"""MetricEmbedder: a skorch network trained with a metric loss, used as an sklearn transformer."""

import copy
import inspect
from contextlib import contextmanager
from numbers import Integral, Real
from types import MappingProxyType

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions, validate_parameter_constraints
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data
from skorch import NeuralNet
from skorch.dataset import Dataset
from skorch.utils import to_tensor
from torch import nn
from torch.utils.data import DataLoader, Subset

from ._sampler import ClassBalancedBatchSampler
from .networks import MLP, SmallCNN

_SEED_HIGH = np.iinfo(np.int32).max


def _loss_scores_classes(self):
    """Whether the loss (a proxy loss) gives class scores: ``logits(embeddings)``."""
    loss = self.loss
    if isinstance(loss, str):
        try:
            loss = _registered_class("loss", loss)
        except ValueError:
            return False
    return callable(getattr(loss, "logits", None))


class MetricEmbedder(ClassNamePrefixFeaturesOutMixin, TransformerMixin, NeuralNet):
    """A neural network trained with a metric-learning loss, used as an sklearn transformer.

    A trunk network maps each sample to an embedding; training draws class-balanced
    mini-batches (C classes x ``samples_per_class`` samples), an optional miner picks the
    informative pairs or triplets of each batch and a metric loss is computed on them.
    ``transform`` returns the embeddings as a NumPy array, so the learned space feeds
    ``KNeighborsClassifier``, clustering or retrieval like any other transformer, inside a
    ``Pipeline`` or ``GridSearchCV``.

    It is a skorch ``NeuralNet``: callbacks, ``warm_start``, ``partial_fit``, ``history``,
    ``save_params``/``load_params`` and device handling work as in skorch. Sub-parameters are
    set with double underscores: ``module__hidden=(128,)``, ``loss__margin=0.1``,
    ``miner__epsilon=0.1``, ``optimizer__weight_decay=1e-4``,
    ``iterator_train__num_workers=2``, ``callbacks__print_log__...``.

    Parameters
    ----------
    module : torch.nn.Module class or instance, default=None
        The trunk, mapping a batch to a 2-D tensor of embeddings. None picks
        :class:`~skmetric.deep.networks.MLP` for 2-D X (n_samples, n_features) and
        :class:`~skmetric.deep.networks.SmallCNN` for 4-D image X (n_samples, channels,
        height, width), both with ``embedding_dim`` outputs. A class is instantiated with the
        ``module__*`` parameters; an instance is copied at each fit, so refitting starts from
        its initial weights.
    loss : str, torch.nn.Module class or instance, default='multi_similarity'
        The metric loss, by name from ``skmetric.deep.losses.LOSSES`` or any module with
        ``forward(embeddings, labels, indices_tuple=None, ref_emb=None, ref_labels=None)``.
        Named losses and loss classes receive the ``loss__*`` parameters, and
        ``distance``/``normalize`` when they take them; losses with
        ``requires_classes = True`` (proxy losses) also receive ``num_classes`` and
        ``embedding_size``, and their learnable parameters are trained with the network.
    miner : str, object or None, default='multi_similarity'
        Picks the pairs or triplets of each training batch, by name from
        ``skmetric.deep.miners.MINERS`` or any callable ``miner(embeddings, labels)``
        returning an indices tuple. None lets the loss use all valid tuples.
    embedding_dim : int, default=64
        Size of the embedding of the default networks (custom modules set their own).
    normalize : bool, default=True
        L2-normalise the embeddings, in training and in ``transform``.
    distance : {'cosine', 'euclidean'}, default='cosine'
        The distance of the embedding space: passed to named losses and miners that take a
        ``distance`` and used by ``score``.
    samples_per_class : int or None, default=4
        m, the number of samples of each class in a training batch; every class of y needs
        at least m samples. None draws plain shuffled batches.
    batch_size : int, default=128
        Training batches hold ``batch_size // samples_per_class`` classes; also the batch
        size of ``transform``.
    lr : float, default=1e-3
        Learning rate of the optimizer.
    max_epochs : int, default=20
        Epochs of ``fit``; an epoch draws ``n_samples // batch_size`` batches.
    optimizer : torch.optim.Optimizer class, default=torch.optim.Adam
        Optimizer of the network's and the loss's parameters (``optimizer__*`` parameters).
    callbacks : list of skorch callbacks, 'disable' or None, default=None
        Extra skorch callbacks, e.g. ``EarlyStopping``.
    train_split : callable or None, default=None
        skorch's internal validation split, e.g. ``skorch.dataset.ValidSplit(5,
        stratified=True)``, which records ``valid_loss`` in ``history``; None trains on all
        of X.
    warm_start : bool, default=False
        Continue training from the current weights when ``fit`` is called again.
    device : str or torch.device, default='cpu'
        Where the network is trained, e.g. 'cuda'.
    random_state : int, RandomState instance or None, default=None
        Seeds the weight initialisation, the batches and dropout (the global torch
        generator is left untouched). None uses torch's global random state.
    verbose : int, default=0
        1 prints skorch's table of losses per epoch.
    **kwargs
        Sub-parameters of skorch components, with double underscores (see above).

    Attributes
    ----------
    module_ : torch.nn.Module
        The trained trunk.
    loss_ : torch.nn.Module
        The loss, with its learned parameters if it has any.
    miner_ : object or None
        The miner.
    optimizer_ : torch.optim.Optimizer
        The optimizer.
    history_ : skorch.history.History
        Losses and timings per epoch and batch.
    classes_ : ndarray of shape (n_classes,)
        Class labels seen in fit.
    input_shape_ : tuple of int
        Shape of one sample, ``X.shape[1:]``.
    embedding_dim_ : int
        Size of the embeddings ``transform`` returns.
    n_features_in_ : int
        Number of features (2-D X) or channels (image X) seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when X has string feature names.
    n_iter_ : int
        Epochs trained in total.

    See Also
    --------
    skmetric.deep.networks.MLP, skmetric.deep.networks.SmallCNN : the default trunks.

    References
    ----------
    Musgrave, Belongie and Lim, "A Metric Learning Reality Check", ECCV 2020.

    Wang, Han, Huang, Dong and Scott, "Multi-Similarity Loss with General Pair Weighting
    for Deep Metric Learning", CVPR 2019.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skmetric.deep import MetricEmbedder
    >>> X, y = load_digits(return_X_y=True)
    >>> emb = MetricEmbedder(embedding_dim=16, max_epochs=2, random_state=0).fit(X / 16, y)
    >>> emb.transform(X[:5] / 16).shape
    (5, 16)
    """

    _parameter_constraints = {
        "module": [None, callable],
        "loss": [str, callable],
        "miner": [None, str, callable],
        "embedding_dim": [Interval(Integral, 1, None, closed="left")],
        "normalize": ["boolean"],
        "distance": [StrOptions({"cosine", "euclidean"})],
        "samples_per_class": [None, Interval(Integral, 2, None, closed="left")],
        "batch_size": [Interval(Integral, 2, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "max_epochs": [Interval(Integral, 0, None, closed="left")],
        "optimizer": [callable],
        "callbacks": [None, list, StrOptions({"disable"})],
        "train_split": [None, callable],
        "warm_start": ["boolean"],
        "device": [None, str, torch.device],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    # skorch bookkeeping, preset so that __init__ stores parameters only (sklearn's rule)
    # and so that nested ``loss__*``/``miner__*`` parameters re-initialise the criterion.
    prefixes_ = [*NeuralNet.prefixes_, "module", "loss", "miner", "optimizer"]
    cuda_dependent_attributes_ = ["module_", "loss_", "miner_", "optimizer_"]
    _modules = ["module"]
    _criteria = ["loss", "miner"]
    _optimizers = ["optimizer"]
    initialized_ = False
    history_ = None
    virtual_params_ = MappingProxyType({})
    # skorch components that are fixed here (their ``iterator_train__*`` etc. still work)
    iterator_train = DataLoader
    iterator_valid = DataLoader
    dataset = Dataset
    predict_nonlinearity = None
    compile = False
    use_caching = "auto"
    torch_load_kwargs = None
    _data_checked = False

    __repr__ = BaseEstimator.__repr__

    def __init__(
        self,
        module=None,
        *,
        loss="multi_similarity",
        miner="multi_similarity",
        embedding_dim=64,
        normalize=True,
        distance="cosine",
        samples_per_class=4,
        batch_size=128,
        lr=1e-3,
        max_epochs=20,
        optimizer=torch.optim.Adam,
        callbacks=None,
        train_split=None,
        warm_start=False,
        device="cpu",
        random_state=None,
        verbose=0,
        **kwargs,
    ):
        self.module = module
        self.loss = loss
        self.miner = miner
        self.embedding_dim = embedding_dim
        self.normalize = normalize
        self.distance = distance
        self.samples_per_class = samples_per_class
        self.batch_size = batch_size
        self.lr = lr
        self.max_epochs = max_epochs
        self.optimizer = optimizer
        self.callbacks = callbacks
        self.train_split = train_split
        self.warm_start = warm_start
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        # skorch checks these names against prefixes_ at initialize (typos are reported).
        self._params_to_validate = set(kwargs)
        vars(self).update(kwargs)

    # ----------------------------------------------------------------- training
    def fit(self, X, y, **fit_params):
        """Train the network on samples ``X`` with class labels ``y``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, channels, height, width)
            Training samples; converted to float32.
        y : array-like of shape (n_samples,)
            Class labels; each class needs at least ``samples_per_class`` samples.
        **fit_params : dict
            Passed to skorch (the module's ``forward`` and ``train_split``).

        Returns
        -------
        self : object
        """
        warm = self.warm_start and self.initialized_
        X, y = self._check_training_data(X, y, reset=not warm)
        with self._random_context(getattr(self, "n_iter_", 0) if warm else 0):
            self._data_checked = True
            try:
                super().fit(X, y, **fit_params)
            finally:
                self._data_checked = False
        return self

    def partial_fit(self, X, y, classes=None, **fit_params):
        """Train for ``max_epochs`` more epochs without re-initialising the network.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Training samples.
        y : array-like of shape (n_samples,)
            Class labels, among those seen in the first fit (all new on the first call).
        classes : None
            Ignored; present for scikit-learn compatibility.
        **fit_params : dict
            Passed to skorch.

        Returns
        -------
        self : object
        """
        if self._data_checked:
            return super().partial_fit(X, y, classes, **fit_params)
        X, y = self._check_training_data(X, y, reset=not self.initialized_)
        with self._random_context(getattr(self, "n_iter_", 0) if self.initialized_ else 0):
            self._data_checked = True
            try:
                super().partial_fit(X, y, classes, **fit_params)
            finally:
                self._data_checked = False
        return self

    def _check_training_data(self, X, y, *, reset):
        """Validate parameters and data; return float32 X and integer class codes."""
        self._check_params()
        X, y = validate_data(
            self, X, y, reset=reset, dtype=np.float32, allow_nd=True, ensure_min_samples=2
        )
        check_classification_targets(y)
        self._check_input_shape(X, reset=reset)
        classes, codes, counts = np.unique(y, return_inverse=True, return_counts=True)
        if classes.size < 2:
            raise ValueError(
                f"{type(self).__name__} needs at least 2 classes in y to learn what separates "
                f"them; got 1 class ({classes[0]!r})."
            )
        m = self.samples_per_class
        if m is not None and counts.min() < m:
            rare = classes[counts < m][:5].tolist()
            fix = (
                f"Set samples_per_class to at most {counts.min()} or remove the rare classes."
                if counts.min() >= 2 else
                "Remove the classes with a single sample (they have no positive pair), or "
                "set samples_per_class=None."
            )
            raise ValueError(
                f"samples_per_class={m}, but class(es) {rare} have fewer samples (the "
                f"smallest class has {counts.min()}). {fix}"
            )
        if reset:
            self.classes_ = classes
        else:
            unseen = ~np.isin(classes, self.classes_)
            if unseen.any():
                raise ValueError(
                    f"y holds labels not seen in the first fit: {classes[unseen][:5].tolist()}."
                    " Call fit (not partial_fit, nor fit with warm_start=True) to train on "
                    "new classes."
                )
            codes = np.searchsorted(self.classes_, classes)[codes]
        return X, codes.astype(np.int64)

    def _check_params(self):
        validate_parameter_constraints(
            self._parameter_constraints,
            {name: getattr(self, name) for name in self._parameter_constraints},
            caller_name=type(self).__name__,
        )
        for slot in ("loss", "miner"):
            if isinstance(getattr(self, slot), str):
                _registered_class(slot, getattr(self, slot))  # unknown names fail early
        m = self.samples_per_class
        if m is not None and self.batch_size < 2 * m:
            raise ValueError(
                f"batch_size={self.batch_size} cannot hold 2 classes of samples_per_class={m}"
                f"; use batch_size >= {2 * m} so that every batch has negatives."
            )

    def _check_input_shape(self, X, *, reset):
        if reset:
            if self.module is None and X.ndim not in (2, 4):
                raise ValueError(
                    "The default networks take 2-D X (n_samples, n_features) or 4-D images "
                    f"(n_samples, channels, height, width); got X of shape {X.shape}. Add a "
                    "channel axis to grey-scale images (X[:, None]) or pass your own module."
                )
            self.input_shape_ = tuple(X.shape[1:])
        elif tuple(X.shape[1:]) != self.input_shape_:
            raise ValueError(
                f"X has samples of shape {tuple(X.shape[1:])}, but {type(self).__name__} was "
                f"fitted on samples of shape {self.input_shape_}."
            )

    @contextmanager
    def _random_context(self, offset=0):
        """Seed torch from ``random_state`` inside, restoring the global generator after.

        ``offset`` (the epochs already trained) makes successive ``partial_fit`` calls draw
        different batches while staying reproducible.
        """
        if self.random_state is None:
            yield
            return
        seed = (check_random_state(self.random_state).randint(_SEED_HIGH) + offset) % _SEED_HIGH
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            yield

    # ------------------------------------------------------------ skorch hooks
    def initialize_module(self):
        """Build the trunk (the default MLP or SmallCNN from the data's shape)."""
        kwargs = self.get_params_for("module")
        module = self.module
        if module is None:
            shape = getattr(self, "input_shape_", None)
            if shape is None:
                raise ValueError(
                    f"{type(self).__name__} picks its default network from the training "
                    "data: call fit(X, y), or pass a module."
                )
            if len(shape) == 1:
                module, defaults = MLP, {"in_features": shape[0]}
            else:
                module, defaults = SmallCNN, {"in_channels": shape[0]}
            kwargs = {**defaults, "embedding_dim": self.embedding_dim, **kwargs}
        elif isinstance(module, nn.Module) and not kwargs:
            module = copy.deepcopy(module)
        self.module_ = self.initialized_instance(module, kwargs)
        self.embedding_dim_ = self._probe_embedding_dim()
        return self

    def _probe_embedding_dim(self):
        """Run the trunk on two zero samples to learn its output size."""
        shape = getattr(self, "input_shape_", None)
        if shape is None:
            return None
        param = next(self.module_.parameters(), None)
        device = param.device if param is not None else "cpu"
        was_training = self.module_.training
        self.module_.eval()
        try:
            with torch.no_grad():
                out = self.module_(torch.zeros((2, *shape), device=device))
        finally:
            self.module_.train(was_training)
        if not isinstance(out, torch.Tensor) or out.ndim != 2:
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(
                "The module must return a 2-D tensor of embeddings (batch_size, dim) on "
                f"samples of shape {shape}; it returned {got}."
            )
        return int(out.shape[1])

    def initialize_criterion(self):
        """Build the loss (with its class-dependent parameters) and the miner."""
        self.loss_ = self._build_component("loss", self.loss)
        self.miner_ = self._build_component("miner", self.miner)
        return self

    def _build_component(self, slot, value):
        params = self.get_params_for(slot)
        if value is None:
            if params:
                raise ValueError(f"{slot}__* parameters {sorted(params)} given but {slot}=None.")
            return None
        if isinstance(value, str) or isinstance(value, type):
            cls = _registered_class(slot, value) if isinstance(value, str) else value
            accepted = _init_params(cls)
            for name in ("distance", "normalize"):
                if name in accepted:
                    params.setdefault(name, getattr(self, name))
            if getattr(cls, "requires_classes", False):
                params.setdefault("num_classes", len(self.classes_))
                params.setdefault("embedding_size", self.embedding_dim_)
            return cls(**params)
        if params:
            return type(value)(**params)
        # Copy so that fitting never changes the object the user passed (sklearn's rule).
        return copy.deepcopy(value)

    def get_iterator(self, dataset, training=False):
        """Class-balanced batches for training; skorch's plain iterator otherwise."""
        if not training:
            kwargs = self.get_params_for("iterator_valid")
            kwargs.setdefault("batch_size", self.batch_size)
            if kwargs["batch_size"] == -1:
                kwargs["batch_size"] = len(dataset)
            # A DataLoader draws a seed for its workers; take it from a private generator so
            # that transform never advances torch's global one.
            kwargs.setdefault("generator", torch.Generator())
            return self.iterator_valid(dataset, **kwargs)
        kwargs = self.get_params_for("iterator_train")
        batch_size = kwargs.pop("batch_size", self.batch_size)
        seed = int(torch.randint(_SEED_HIGH, ()).item())
        if self.samples_per_class is None:
            kwargs.setdefault("shuffle", True)
            kwargs.setdefault("drop_last", len(dataset) > batch_size)
            kwargs.setdefault("generator", torch.Generator().manual_seed(seed))
            return self.iterator_train(dataset, batch_size=batch_size, **kwargs)
        for key in ("shuffle", "sampler", "drop_last"):
            kwargs.pop(key, None)
        sampler = ClassBalancedBatchSampler(
            _dataset_labels(dataset), self.samples_per_class, batch_size, random_state=seed
        )
        return self.iterator_train(dataset, batch_sampler=sampler, **kwargs)

    def infer(self, x, **fit_params):
        """The trunk's output, L2-normalised when ``normalize``."""
        embeddings = super().infer(x, **fit_params)
        return F.normalize(embeddings, p=2, dim=1) if self.normalize else embeddings

    def get_loss(self, y_pred, y_true, X=None, training=False):
        """The metric loss of a batch; the miner picks its tuples during training."""
        labels = to_tensor(y_true, device=self.device)
        indices_tuple = None
        if training and self.miner_ is not None:
            indices_tuple = self.miner_(y_pred.detach(), labels)
        return self.loss_(y_pred, labels, indices_tuple=indices_tuple)

    def on_train_end(self, net, X=None, y=None, **kwargs):
        self.n_iter_ = len(self.history_)

    def initialize_callbacks(self):
        if self.callbacks is not None and not isinstance(self.callbacks, (list, tuple)):
            raise TypeError(
                f"callbacks must be a list of skorch callbacks, 'disable' or None; got "
                f"{self.callbacks!r}."
            )
        return super().initialize_callbacks()

    def set_params(self, **params):
        """Set parameters, including nested ``loss__*``, ``miner__*``, ``module__*`` ones."""
        if "callbacks" in params and not self.initialized_:
            # skorch builds callbacks eagerly here; defer that (and its checks) to fit.
            vars(self)["callbacks"] = params.pop("callbacks")
        return super().set_params(**params)

    def _get_param_names(self):
        return [k for k in vars(self) if not k.startswith("_") and not k.endswith("_")]

    @property
    def criterion_(self):
        """Alias of ``loss_``, for skorch components (e.g. ``Checkpoint``) that expect it."""
        return self.loss_

    # ---------------------------------------------------------------- inference
    def transform(self, X):
        """Embed samples with the trained network.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Samples of the shape seen in fit.

        Returns
        -------
        embeddings : ndarray of shape (n_samples, embedding_dim_), float32
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float32, allow_nd=True)
        self._check_input_shape(X, reset=False)
        embeddings = self.forward(X, training=False, device="cpu")
        return embeddings.detach().numpy().astype(np.float32, copy=False)

    def score(self, X, y):
        """Precision@1 of retrieval: the fraction of samples whose nearest other sample has
        the same label, in the learned space with ``distance`` (leave-one-out 1-NN accuracy).

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Samples, e.g. held-out data (their classes need not have been seen in fit).
        y : array-like of shape (n_samples,)
            Their class labels.

        Returns
        -------
        score : float in [0, 1]
        """
        embeddings = self.transform(X)
        y = np.asarray(y)
        if y.shape != (embeddings.shape[0],):
            raise ValueError(
                f"y must be 1-D with one label per sample ({embeddings.shape[0]}); got shape "
                f"{y.shape}."
            )
        from ..metrics import precision_at_k

        return precision_at_k(embeddings, y, k=1, metric=self.distance)

    @available_if(_loss_scores_classes)
    def predict(self, X):
        """Closed-set prediction among ``classes_``, with a proxy loss only.

        Available when the loss has ``logits(embeddings)`` (class scores without margins,
        e.g. the proxy losses); otherwise use ``transform`` and a k-NN classifier.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        return self.classes_[self._class_scores(X).argmax(dim=1).numpy()]

    @available_if(_loss_scores_classes)
    def predict_proba(self, X):
        """Softmax of the proxy loss's class scores, columns in the order of ``classes_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        return torch.softmax(self._class_scores(X).double(), dim=1).numpy()

    def _class_scores(self, X):
        embeddings = torch.as_tensor(self.transform(X))
        param = next(self.loss_.parameters(), None)
        if param is not None:
            embeddings = embeddings.to(param.device)
        with torch.no_grad():
            return self.loss_.logits(embeddings).float().cpu()

    @property
    def _n_features_out(self):
        return self.embedding_dim_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags


def _dataset_labels(dataset):
    """The labels of a skorch Dataset, or of a Subset of one (skorch's ValidSplit)."""
    if isinstance(dataset, Subset):
        return _dataset_labels(dataset.dataset)[np.asarray(dataset.indices)]
    y = getattr(dataset, "y", None)
    if y is None:
        raise TypeError(
            "Class-balanced batches need the labels of the training dataset; pass X and y "
            "as arrays, or set samples_per_class=None."
        )
    return np.asarray(y.cpu() if isinstance(y, torch.Tensor) else y)


def _init_params(cls):
    try:
        return inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return {}


def _registered_class(slot, name):
    """The class registered under ``name`` in skmetric.deep.losses (or .miners)."""
    from . import losses, miners
    from ._registry import _key

    package = losses if slot == "loss" else miners
    registry = getattr(package, "LOSSES" if slot == "loss" else "MINERS")
    aliases = getattr(package, "ALIASES", {})
    by_key = {_key(k, slot): cls for k, cls in registry.items()}
    for alias, target in aliases.items():
        by_key.setdefault(_key(alias, slot), registry[target])
    cls = by_key.get(_key(name, slot))
    if cls is None:
        raise ValueError(
            f"Unknown {slot} {name!r}. Valid names: {sorted(registry)} (aliases: "
            f"{sorted(aliases)}); or pass an object (see skmetric.deep.{package.__name__[14:]})."
        )
    return cls
