"""MetricEmbedder: a skorch network trained with a metric loss, used as an sklearn transformer."""

import copy
import functools
import inspect
import math
import re
import sys
from contextlib import contextmanager
from numbers import Integral, Real

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data
from skorch import NeuralNet
from skorch.callbacks import Callback, PrintLog
from skorch.utils import to_tensor
from torch import nn
from torch.utils.data import Subset

from .._keywords import keyword_hint
from .._persistence import VersionedStateMixin, check_saved_versions, saved_versions
from .._sklearn_compat import (
    Interval,
    InvalidParameterError,
    StrOptions,
    validate_parameter_constraints,
)
from .._warn import warn_user
from . import _images, _sync
from ._device_data import on_device
from ._distances import canonical_distance
from ._params import ValidatedParams
from ._precision import PRECISIONS, autocast, full_precision
from ._sampler import ClassBalancedBatchSampler
from .networks import MLP, SmallCNN

_SEED_HIGH = np.iinfo(np.int32).max
#: Key of the fitted state (input shape, classes...) in a saved state dict's ``_metadata``.
_STATE_KEY = "skmetric.deep"
#: The fitted attributes that state holds (when set), as Python numbers or lists ...
_FITTED_NUMBERS = ("input_shape_", "embedding_dim_", "n_features_in_", "n_iter_")
#: ... and as arrays (values and dtype).
_FITTED_ARRAYS = ("classes_", "feature_names_in_")


def _loss_scores_classes(self):
    """Whether the loss (a proxy loss) gives class scores: ``logits(embeddings)``."""
    loss = self.loss
    if isinstance(loss, str):
        try:
            loss = _registered_class("loss", loss)
        except ValueError:
            return False
    return callable(getattr(loss, "logits", None))


class _InitState:
    """An attribute that skorch's ``NeuralNet.__init__`` sets (``history_``,
    ``initialized_``, ``virtual_params_``), stored under a private name.

    scikit-learn's rule is that ``__init__`` sets parameters only (its
    ``check_no_attributes_set_in_init`` looks for public attributes); skorch's constructor
    runs unchanged and its state lives in ``_history_`` etc. Unset, the attribute does not
    exist, which is how skorch's ``__setattr__`` tells that construction is under way.
    """

    def __set_name__(self, owner, name):
        self.name, self.key = name, f"_{name}"

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        try:
            return vars(obj)[self.key]
        except KeyError:
            raise AttributeError(self.name) from None

    def __set__(self, obj, value):
        vars(obj)[self.key] = value


class MetricEmbedder(VersionedStateMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin,
                     NeuralNet):
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
    ``iterator_train__num_workers=2``, ``callbacks__print_log__...``; any other unknown
    name is an error that names the closest valid one.

    ``save_params(f_params=...)`` also stores the fitted state (input shape, ``classes_``),
    so that ``initialize()`` then ``load_params`` on a new embedder with the same parameters
    restores it; :meth:`export_torch` writes a program that serves with torch alone.
    Training that diverges (non-finite loss, embeddings or weights, or embeddings collapsed
    to one point) stops with an error naming the epoch.

    Parameters
    ----------
    module : str, torch.nn.Module class or instance, default=None
        The trunk, mapping a batch to a 2-D tensor of embeddings. None picks
        :class:`~skmetric.deep.networks.MLP` for 2-D X (n_samples, n_features) and
        :class:`~skmetric.deep.networks.SmallCNN` for 4-D image X (n_samples, channels,
        height, width), both with ``embedding_dim`` outputs. A class is instantiated with the
        ``module__*`` parameters; an instance is copied at each fit, so refitting starts from
        its initial weights. A name (``'resnet18'``, ``'efficientnet_b0'``,
        ``'timm:<name>'``..., the ``vision`` extra) builds that image model with an
        ``embedding_dim`` head (:func:`skmetric.deep.trunks.build_trunk`, which takes the
        ``module__*`` parameters: ``module__weights=`` a torchvision weights enum or a state
        dict's path, ``module__freeze_bn=True``); its weights are random unless given.
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
    train_transform : callable or None, default=None
        Augmentation of the training batches only (not ``transform``, ``predict`` nor
        validation), e.g. a ``torchvision.transforms.v2.Compose``. It is applied on the
        device, after the batch is moved there and uint8 images are scaled to [0, 1]. With
        :class:`~skmetric.deep.SelfSupervisedLoss` it makes the two views of each batch.
    train_transform_per_sample : bool, default=True
        Call ``train_transform`` on each sample (channels, height, width) of the batch, so
        that random transforms draw their parameters per sample; False calls it once on the
        whole batch (faster; torchvision's v2 transforms then draw one set of random
        parameters for the batch).
    distance : {'cosine_similarity', 'euclidean'}, default='cosine_similarity'
        The geometry of the embedding space: passed to named losses and miners that take a
        ``distance`` and used by ``score`` (which ranks by the cosine distance 1 - cos for
        'cosine_similarity', the same order). 'cosine', its former name, is deprecated:
        elsewhere in skmetric 'cosine' is the cosine distance.
    samples_per_class : int or None, default=4
        m, the number of samples of each class in a training batch; every class of y needs
        at least m samples. None draws plain shuffled batches.
    batch_size : int, default=128
        Training batches hold ``batch_size // samples_per_class`` classes (all classes when
        y has fewer: the batches are then smaller); also the batch size of ``transform``.
    lr : float, default=1e-3
        Learning rate of the optimizer.
    max_epochs : int, default=20
        Epochs of ``fit``; an epoch draws ``n_samples // batch_size`` batches, so with
        fewer classes than ``batch_size // samples_per_class`` it uses only part of the
        samples (pass ``batch_size=n_classes * samples_per_class`` to use each about once).
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
        Where the network is trained, e.g. 'cuda'. Training arrays that fit in half the
        device's free memory are copied there once (batches are then indexed on the
        device, with no copy per batch).
    precision : {'32', 'bf16'}, default='32'
        'bf16' runs the network under ``torch.autocast`` in bfloat16 (mixed precision:
        weights, gradients and the loss stay float32); faster on GPUs with bfloat16
        units, and supported on the CPU.
    compile : bool, default=False
        Whether to compile the network with ``torch.compile`` (skorch's ``compile``);
        ``compile__*`` parameters go to ``torch.compile`` (e.g. ``compile__mode=
        'max-autotune'``, or ``compile__backend='aot_eager'`` where no C compiler is
        available for the default 'inductor' on the CPU). The loss and the miner stay
        eager: their index tuples change size from batch to batch, which would recompile
        them. ``module_`` is then the compiled wrapper; saved parameters and exported
        programs are those of the network itself, loadable with or without compiling.
    random_state : int, RandomState instance or None, default=None
        Seeds the weight initialisation, the batches, dropout and the draws of a loss or
        miner given by name or class that takes a ``random_state`` (e.g. 'random',
        'distance_weighted'; ``miner__random_state=`` overrides it). The global torch
        generator is left untouched. None uses torch's global random state.
    verbose : int, default=1
        1 prints skorch's table of losses per epoch (colour codes only on a terminal) and,
        on a terminal, a progress bar within epochs longer than a second; 0 is silent.
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
    >>> emb = MetricEmbedder(embedding_dim=16, max_epochs=2, random_state=0,
    ...                      verbose=0).fit(X / 16, y)
    >>> emb.transform(X[:5] / 16).shape
    (5, 16)
    """

    _parameter_constraints = {
        "module": [None, str, callable],
        "loss": [str, callable],
        "miner": [None, str, callable],
        "embedding_dim": [Interval(Integral, 1, None, closed="left")],
        "normalize": ["boolean"],
        "train_transform": [None, callable],
        "train_transform_per_sample": ["boolean"],
        "distance": [StrOptions({"cosine_similarity", "euclidean", "cosine"},
                                deprecated={"cosine"})],
        "samples_per_class": [None, Interval(Integral, 2, None, closed="left")],
        "batch_size": [Interval(Integral, 2, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "max_epochs": [Interval(Integral, 0, None, closed="left")],
        "optimizer": [callable],
        "callbacks": [None, list, StrOptions({"disable"})],
        "train_split": [None, callable],
        "warm_start": ["boolean"],
        "device": [None, str, torch.device],
        "precision": [StrOptions(set(PRECISIONS))],
        "compile": ["boolean"],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    # The components this net adds to skorch's, declared as skorch's own registration
    # (``NeuralNet._register_attribute``) records them: ``loss__*``/``miner__*`` parameters
    # re-initialise the criteria, the loss's weights are trained and moved to the device, and
    # set_params(loss=<module instance>) is allowed before the first fit.
    # (train_transform is listed because skorch refuses to set an nn.Module-valued
    # attribute, such as a torchvision v2 transform, whose name is not a prefix.)
    prefixes_ = [*NeuralNet.prefixes_, "module", "loss", "miner", "optimizer", "train_transform"]
    cuda_dependent_attributes_ = ["module_", "loss_", "miner_", "optimizer_"]
    _modules = ["module"]
    _criteria = ["loss", "miner"]
    _optimizers = ["optimizer"]
    # State that skorch's __init__ sets, stored under private names (see _InitState).
    history_ = _InitState()
    initialized_ = _InitState()
    virtual_params_ = _InitState()
    _data_checked = False
    #: Set while load_params builds the network whose weights it then loads.
    _weights_follow = False
    # Pickles and save_params files record these versions (the network is torch's, its
    # pickled form skorch's).
    _saved_version_packages = ("skmetric", "scikit-learn", "torch", "skorch")

    __repr__ = BaseEstimator.__repr__

    def __init__(
        self,
        module=None,
        *,
        loss="multi_similarity",
        miner="multi_similarity",
        embedding_dim=64,
        normalize=True,
        train_transform=None,
        train_transform_per_sample=True,
        distance="cosine_similarity",
        samples_per_class=4,
        batch_size=128,
        lr=1e-3,
        max_epochs=20,
        optimizer=torch.optim.Adam,
        callbacks=None,
        train_split=None,
        warm_start=False,
        device="cpu",
        precision="32",
        compile=False,
        random_state=None,
        verbose=1,
        **kwargs,
    ):
        # Set before skorch's __init__, whose __setattr__ takes everything set before
        # ``initialized_`` exists as construction (a loss may be an nn.Module instance).
        self.loss = loss
        self.miner = miner
        self.embedding_dim = embedding_dim
        self.normalize = normalize
        self.train_transform = train_transform
        self.train_transform_per_sample = train_transform_per_sample
        self.distance = distance
        self.samples_per_class = samples_per_class
        self.precision = precision
        self.random_state = random_state
        _check_param_names(self, kwargs, "__init__()")
        # skorch stores its own arguments and the ``prefix__name`` sub-parameters, and checks
        # the latter against prefixes_ at initialize. Its ``criterion`` is ``loss`` here.
        super().__init__(
            module, None, optimizer=optimizer, lr=lr, max_epochs=max_epochs,
            batch_size=batch_size, train_split=train_split, callbacks=callbacks,
            warm_start=warm_start, verbose=verbose, device=device, compile=compile, **kwargs,
        )

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
        images = _images.check_image_data(self, X, y, reset=reset, y_required=True)
        if images is None and not reset:
            # Before validate_data's "X has 7 features, but ... is expecting 5".
            self._check_continued_shape(_sample_shape(X))
        X, y = validate_data(
            self, X, y, reset=reset, dtype=np.float32, allow_nd=True, ensure_min_samples=2
        ) if images is None else images
        check_classification_targets(y)
        self._check_input_shape(X, reset=reset)
        classes, codes, counts = np.unique(y, return_inverse=True, return_counts=True)
        if classes.size < 2:
            raise ValueError(
                f"{type(self).__name__} needs at least 2 classes in y to learn what separates "
                f"them; got 1 class ({classes.tolist()[0]!r})."
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
            self._check_same_embedding_size()
            unseen = ~np.isin(classes, self.classes_)
            if unseen.any():
                raise ValueError(
                    f"y holds labels not seen in the first fit: {classes[unseen][:5].tolist()}."
                    " Call fit (not partial_fit, nor fit with warm_start=True) to train on "
                    "new classes."
                )
            codes = np.searchsorted(self.classes_, classes)[codes]
        return X, codes.astype(np.int64)

    def _check_same_embedding_size(self):
        """Continued training (partial_fit, warm_start) keeps the network, so it cannot
        take an embedding_dim set since: it would go on returning the old size silently."""
        if self.module is not None and not isinstance(self.module, str):
            return  # the user's module sets its own size; embedding_dim is not used
        wanted = self.get_params_for("module").get("embedding_dim", self.embedding_dim)
        if getattr(self, "embedding_dim_", wanted) != wanted:
            raise ValueError(
                f"embedding_dim={wanted}, but the network being trained further (partial_fit"
                f", or fit with warm_start=True) returns {self.embedding_dim_} dimensions. "
                f"Call fit with warm_start=False to build a network of {wanted}, or set "
                f"embedding_dim={self.embedding_dim_} back.")

    def _check_params(self):
        validate_parameter_constraints(
            self._parameter_constraints,
            {name: getattr(self, name) for name in self._parameter_constraints},
            caller_name=type(self).__name__,
        )
        canonical_distance(self.distance)  # 'cosine' warns that it is 'cosine_similarity'
        _check_device_usable(self.device)
        for slot in ("loss", "miner"):
            if isinstance(getattr(self, slot), str):
                _registered_class(slot, getattr(self, slot))  # unknown names fail early
        if getattr(self._loss_class(), "self_supervised", False):
            self._check_self_supervised()
        m = self.samples_per_class
        if m is not None and self.batch_size < 2 * m:
            raise ValueError(
                f"batch_size={self.batch_size} cannot hold 2 classes of samples_per_class={m}"
                f"; use batch_size >= {2 * m} so that every batch has negatives."
            )

    def _check_input_shape(self, X, *, reset):
        if reset:
            if isinstance(self.module, str):
                from .trunks import check_trunk_input

                check_trunk_input(self.module, X.shape,
                                  self.get_params_for("module").get("in_channels"))
            if self.module is None and X.ndim not in (2, 4):
                raise ValueError(
                    "The default networks take 2-D X (n_samples, n_features) or 4-D images "
                    f"(n_samples, channels, height, width); got X of shape {X.shape}. Add a "
                    "channel axis to grey-scale images (X[:, None]) or pass your own module."
                )
            if self.module is None and X.ndim == 4:
                self._check_default_cnn_input(X.shape)
            self.input_shape_ = tuple(X.shape[1:])
        else:
            self._check_continued_shape(tuple(X.shape[1:]))

    def _check_continued_shape(self, shape):
        """Continued training (partial_fit, fit with warm_start=True) goes on with the
        fitted network, which takes samples of one ``shape``: say so, and how to start over."""
        fitted, name = getattr(self, "input_shape_", None), type(self).__name__
        if shape is None or fitted is None or tuple(shape) == fitted:
            return
        if len(shape) == len(fitted) == 1:  # scikit-learn's words, which its checks expect
            what = (f"X has {shape[0]} features, but {name} is expecting {fitted[0]} "
                    "features as input")
        else:
            what = (f"X has samples of shape {tuple(shape)}, but {name} was fitted on samples "
                    f"of shape {fitted}")
        raise ValueError(
            f"{what}: partial_fit and fit with warm_start=True continue "
            "training the fitted network. To train a new network on these samples, call fit "
            "with warm_start=False (set_params(warm_start=False)), or fit a clone "
            "(sklearn.base.clone)."
        )

    def _check_default_cnn_input(self, shape):
        """Catch channels-last images and images too small for the poolings up front."""
        channels, height, width = shape[1:]
        if width in (1, 3, 4) and channels > 4:
            raise ValueError(
                f"X has shape {shape}, which looks like channels-last images (n_samples, "
                f"height, width, channels={width}); the default SmallCNN takes channels "
                "first (n_samples, channels, height, width). Transpose them: "
                "X.transpose(0, 3, 1, 2) for NumPy, X.permute(0, 3, 1, 2) for torch. If "
                f"{channels} is the channel count, pass module=SmallCNN, "
                f"module__in_channels={channels}."
            )
        n_pool = self.get_params_for("module").get("n_pool")
        if n_pool is not None and 2 ** n_pool > min(height, width):
            raise ValueError(
                f"Images of {height}x{width} pixels are too small for SmallCNN with "
                f"module__n_pool={n_pool}: each pooling halves the size, so it needs at "
                f"least {2 ** n_pool}x{2 ** n_pool}. Use module__n_pool="
                f"{_max_pools(height, width)} or leave n_pool unset (it then adapts)."
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
                    "data: call fit(X, y), load_params(f_params=...) with a file written "
                    "by save_params, or pass a module."
                )
            if len(shape) == 1:
                module, defaults = MLP, {"in_features": shape[0]}
            else:
                # Fewer poolings on images smaller than 4x4, so any size works.
                module, defaults = SmallCNN, {"in_channels": shape[0],
                                              "n_pool": min(2, _max_pools(*shape[1:]))}
            kwargs = {**defaults, "embedding_dim": self.embedding_dim, **kwargs}
        elif isinstance(module, str):
            from .trunks import build_trunk

            defaults = {"embedding_dim": self.embedding_dim,
                        "in_channels": self.input_shape_[0]}
            module, kwargs = functools.partial(build_trunk, module), {**defaults, **kwargs}
            if self._weights_follow:
                # load_params overwrites every weight: the initial ones (a file that may be
                # gone, an enum torchvision would download) are not needed.
                kwargs["weights"] = None
        elif isinstance(module, nn.Module) and not kwargs:
            module = copy.deepcopy(_uncompiled(module))
        self.module_ = self.initialized_instance(module, kwargs)
        self.embedding_dim_ = self._probe_embedding_dim()
        return self

    def torch_compile(self, module, name):
        """skorch's hook: ``torch.compile`` the network when ``compile=True``; the loss
        (and any other component) stays eager."""
        return super().torch_compile(module, name) if name == "module" else module

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
                try:
                    out = self.module_(torch.zeros((2, *shape), device=device))
                except (RuntimeError, AssertionError, ValueError) as exc:
                    if not isinstance(self.module, str):
                        raise
                    from .trunks import explain_probe_error

                    raise explain_probe_error(self.module, shape, exc) from None
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
        if self.miner_ is not None and getattr(self.loss_, "requires_classes", False):
            warn_user(
                f"miner={self.miner!r} with the proxy loss {type(self.loss_).__name__}: "
                "proxy losses compare samples with class proxies and need no mining; the "
                "miner only re-weights samples by how often it picks them. Pass miner=None "
                "unless you mean that.")
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
            # (the current name of the distance: _check_params warned about a former one)
            shared = {"distance": canonical_distance(self.distance, warn=False),
                      "normalize": self.normalize}
            for name, default in shared.items():
                if name in accepted:
                    params.setdefault(name, default)
            # A loss defined for some distances only (e.g. FastAP: Euclidean on unit
            # vectors) keeps its own default unless loss__distance asks otherwise.
            allowed = getattr(cls, "allowed_distances", None)
            if allowed is not None and "distance" not in self.get_params_for(slot) \
                    and params.get("distance") not in allowed:
                params.pop("distance", None)
            if "random_state" in accepted and self.random_state is not None:
                # A miner or loss that draws at random (RandomMiner, DistanceWeightedMiner...)
                # seeds its own generator: without this, random_state=0 trained differently
                # at every fit.
                params.setdefault("random_state", self._component_seed(slot))
            if getattr(cls, "requires_classes", False):
                if isinstance(cls, ValidatedParams):  # PML's names (loss__K=) count as given
                    params = cls._from_pml_names(params)
                params.setdefault("num_classes", len(self.classes_))
                params.setdefault("embedding_size", self.embedding_dim_)
            return cls(**params)
        if params:
            # Rebuilding the object from these alone would silently drop its own settings.
            raise ValueError(
                f"{slot}__* parameters {sorted(params)} apply to a {slot} given by name "
                f"(e.g. {slot}='contrastive'); set them on the {type(value).__name__} "
                "object itself instead."
            )
        # Copy so that fitting never changes the object the user passed (sklearn's rule).
        return copy.deepcopy(value)

    def _component_seed(self, slot):
        """A seed for the loss or miner, from ``random_state``: distinct from the network's
        and the batches' (see _random_context) and from the other slot's."""
        seed = check_random_state(self.random_state).randint(_SEED_HIGH)
        return int((seed + 1 + self._criteria.index(slot)) % _SEED_HIGH)

    def get_iterator(self, dataset, training=False):
        """Class-balanced batches for training; skorch's plain iterator otherwise."""
        if not training:
            return super().get_iterator(dataset, training=False)
        kwargs = self.get_params_for("iterator_train")
        if not kwargs.get("num_workers"):  # arrays that fit: batches gathered on the device
            dataset, loader_kwargs = on_device(dataset, self.device)
            kwargs = {**loader_kwargs, **kwargs}
        batch_size = kwargs.pop("batch_size", self.batch_size)
        seed = int(torch.randint(_SEED_HIGH, ()).item())
        if self.samples_per_class is None:
            kwargs.setdefault("shuffle", True)
            kwargs.setdefault("drop_last", len(dataset) > batch_size)
            kwargs.setdefault("generator", torch.Generator().manual_seed(seed))
            iterator = self.iterator_train(dataset, batch_size=batch_size, **kwargs)
            self._n_train_batches = len(iterator)
            return iterator
        for key in ("shuffle", "sampler", "drop_last"):
            kwargs.pop(key, None)
        sampler = ClassBalancedBatchSampler(
            self._balanced_labels(dataset), self.samples_per_class, batch_size,
            random_state=seed)
        iterator = self.iterator_train(dataset, batch_sampler=sampler, **kwargs)
        self._n_train_batches = len(iterator)  # for the progress bar
        return iterator

    def _balanced_labels(self, dataset):
        """The labels of the training dataset, checked against ``samples_per_class`` when
        ``train_split`` took part of each class (fit checked the whole of y)."""
        labels = _dataset_labels(dataset)
        if not isinstance(dataset, Subset):
            return labels
        m = self.samples_per_class
        classes, counts = np.unique(labels, return_counts=True)
        if classes.size >= 2 and counts.min() >= m:
            return labels
        # (else the sampler's advice, e.g. "lower samples_per_class to at most 1", ignored
        # the split and the embedder's own bounds)
        rare = self.classes_[classes[counts < m]][:5].tolist()
        raise ValueError(
            f"train_split left {classes.size} class(es) in the training part, "
            + (f"and class(es) {rare} with fewer than samples_per_class={m} samples there"
               if classes.size >= 2 else "but training needs at least 2")
            + ". Use a stratified split with fewer validation samples (e.g. "
            "ValidSplit(5, stratified=True)), fewer samples_per_class, or train_split=None.")

    def get_dataset(self, X, y=None):
        """skorch's dataset; uint8 images and image files are read one sample at a time."""
        if isinstance(X, _images.ImageSource):
            return _images.ImageDataset(X, y)
        return super().get_dataset(X, y)

    def get_params_for(self, prefix):
        params = super().get_params_for(prefix)
        if prefix == "iterator_valid":
            # A DataLoader draws a seed for its workers; take it from a private generator so
            # that transform never advances torch's global one.
            params.setdefault("generator", torch.Generator())
        return params

    def infer(self, x, **fit_params):
        """The trunk's output, L2-normalised when ``normalize``."""
        x = self._prepare_batch(x)
        with autocast(self.precision, self.module_, self.device), \
                self._explain_single_sample_batch(x):
            embeddings = super().infer(x, **fit_params)
        embeddings = full_precision(embeddings)  # the loss computes in float32
        return F.normalize(embeddings, p=2, dim=1) if self.normalize else embeddings

    @contextmanager
    def _explain_single_sample_batch(self, x):
        """Say where a training batch of one sample comes from when BatchNorm refuses it
        (torch: "Expected more than 1 value per channel when training")."""
        try:
            yield
        except ValueError as exc:
            if not (self.module_.training and isinstance(x, torch.Tensor) and len(x) == 1
                    and "more than 1 value per channel" in str(exc)):
                raise
            raise ValueError(
                "A training batch holds a single sample, which the network's BatchNorm "
                "layers cannot normalise (and in which a metric loss finds no pair). It "
                "comes from iterator_train__drop_last=False (the last batch of an epoch) "
                "or iterator_train__batch_size=1: leave them at their defaults, or choose "
                "batch_size so that no batch is left with one sample.") from None

    def _prepare_batch(self, x):
        """The batch on the device, uint8 images scaled to [0, 1], and in training
        augmented by ``train_transform`` (twice, stacked, for a self-supervised loss)."""
        if not isinstance(x, (torch.Tensor, np.ndarray)):
            return x
        x = _images.to_float_batch(to_tensor(x, device=self.device))
        if not self.module_.training or self.train_transform is None:
            return x
        if getattr(self.loss_, "self_supervised", False):
            return torch.cat([self._augment(x), self._augment(x)])
        return self._augment(x)

    def _augment(self, x):
        if not self.train_transform_per_sample:
            return self._transformed(x)
        samples = [self._transformed(sample) for sample in x]
        shapes = sorted({tuple(sample.shape) for sample in samples})
        if len(shapes) > 1:  # else torch.stack's "stack expects each tensor to be equal size"
            raise ValueError(
                f"train_transform returned samples of different shapes ({shapes[0]} and "
                f"{shapes[1]}), which cannot form a batch. End it with a transform of fixed "
                "output size (e.g. v2.RandomResizedCrop(size) or v2.Resize(size)).")
        return torch.stack(samples)

    def _transformed(self, x):
        out = self.train_transform(x)
        if not isinstance(out, torch.Tensor):
            # (e.g. torchvision's v1 transforms ending in a PIL image, or a NumPy array)
            raise TypeError(
                f"train_transform must return a torch.Tensor, as it is given; it returned "
                f"{type(out).__name__}. End it with a tensor (e.g. torchvision.transforms.v2"
                ".ToImage() and ToDtype(torch.float32)) or return torch.as_tensor(...).")
        if out.dtype != x.dtype:
            # (uint8 or float64 failed inside the network's first layer, as "expected
            # scalar type Byte but found Float")
            raise TypeError(
                f"train_transform must return a tensor of the dtype it is given ({x.dtype}); "
                f"it returned {out.dtype}. End it with v2.ToDtype({x.dtype}) (without "
                "scale=True: uint8 images arrive already scaled to [0, 1]).")
        what = "sample" if self.train_transform_per_sample else "batch"
        if out.ndim != x.ndim or (what == "batch" and x.ndim and out.shape[0] != x.shape[0]):
            raise ValueError(
                f"train_transform turned a {what} of shape {tuple(x.shape)} into one of "
                f"shape {tuple(out.shape)}; it must keep the number of dimensions"
                + (" and of samples" if what == "batch" else "") + ". Check the "
                "transform, or train_transform_per_sample (True: it gets one sample "
                "(channels, height, width); False: the batch).")
        return out

    def get_loss(self, y_pred, y_true, X=None, training=False):
        """The metric loss of a batch; the miner picks its tuples during training."""
        if getattr(self.loss_, "self_supervised", False):
            return self._self_supervised_loss(y_pred, training)
        labels = to_tensor(y_true, device=self.device)
        indices_tuple = None
        if training:
            self._check_embeddings_finite(y_pred)
            if self.miner_ is not None:
                indices_tuple = self.miner_(y_pred.detach(), labels)
        loss = _check_scalar(self.loss_(y_pred, labels, indices_tuple=indices_tuple),
                             self.loss_)
        if training:
            self._watch_training_step(y_pred.detach(), loss.detach())
        return loss

    def _self_supervised_loss(self, y_pred, training):
        """The loss of two views (the halves of a training batch); outside training the
        batch is not augmented, so the two views are the same."""
        views = y_pred.chunk(2) if training else (y_pred, y_pred)
        if training:
            self._check_embeddings_finite(y_pred)
        loss = _check_scalar(self.loss_(views[0], ref_emb=views[1]), self.loss_)
        if training:
            self._watch_training_step(y_pred.detach(), loss.detach())
        return loss

    def _check_self_supervised(self):
        name = self._loss_class().__name__
        if self.train_transform is None:
            raise ValueError(
                f"{name} compares two augmented views of each sample; pass "
                "train_transform= (e.g. torchvision.transforms.v2 random crops and flips) "
                "to make them."
            )
        if self.miner is not None:
            raise ValueError(f"{name} takes no miner (it pairs the views of each sample); "
                             "pass miner=None.")
        if self.samples_per_class is not None:
            raise ValueError(
                f"{name} treats every other sample of a batch as a negative, so batches of "
                "several samples per class would push same-class samples apart; pass "
                "samples_per_class=None (y is then not used by the loss)."
            )

    # ------------------------------------------------- divergence and collapse
    # Diverged training stops with an error naming the epoch instead of returning
    # embeddings that are all NaN, all equal or all zero.
    def on_train_begin(self, net, X=None, y=None, **kwargs):
        self._steps_seen = 0
        self._check_proxy_sizes()
        _check_not_all_identical(X)

    def _check_proxy_sizes(self):
        """A proxy loss built by the user (an instance, or ``loss__num_classes=``) must have
        one class per class of y and the network's embedding size: with more classes,
        ``predict`` would return indices past ``classes_`` and ``predict_proba`` extra
        columns; with fewer, training fails at the first batch holding a later class."""
        for part in self.loss_.modules() if isinstance(self.loss_, nn.Module) else ():
            if not getattr(part, "requires_classes", False) or \
                    not hasattr(part, "num_classes"):
                continue  # not a proxy loss (MultipleLosses has requires_classes)
            name, n_classes = type(part).__name__, len(self.classes_)
            for attr, want, source in (
                    ("num_classes", n_classes, f"y has {n_classes} classes"),
                    ("embedding_size", self.embedding_dim_,
                     f"the network's embeddings have {self.embedding_dim_} dimensions")):
                have = getattr(part, attr, want)
                if have != want:
                    raise ValueError(
                        f"{name} was built with {attr}={have}, but {source}. Build it with "
                        f"{attr}={want}, or give the loss by name (e.g. "
                        "loss='arcface'), which sets num_classes and embedding_size from "
                        "the data.")

    def on_epoch_begin(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        super().on_epoch_begin(net, dataset_train, dataset_valid, **kwargs)
        self._steps_checked, self._epoch_spread = 0, False

    def _check_embeddings_finite(self, y_pred):
        if not _sync.all_finite(y_pred):
            self._diverged("the network's embeddings hold NaN or infinity")

    def _watch_training_step(self, y_pred, loss):
        if not bool(torch.isfinite(loss)):
            self._diverged(f"the loss is {loss.item()}")
        self._steps_seen = getattr(self, "_steps_seen", 0) + 1
        # The first step may start from constant outputs (zero init); a batch of one
        # sample (iterator_train__drop_last=False) cannot show a spread.
        if self._steps_seen > 1 and len(y_pred) > 1:
            self._steps_checked += 1
            self._epoch_spread = self._epoch_spread or not _collapsed(y_pred)

    def _check_epoch(self):
        """Called by the last default callback, once the epoch's row is recorded."""
        if getattr(self, "_steps_checked", 0) and not self._epoch_spread:
            self._diverged(
                "the embeddings collapsed: every training batch of the epoch mapped all its "
                "samples to the same point or direction, so nothing can be learned"
            )
        for name in ("module_", "loss_"):
            component = getattr(self, name)
            params = component.parameters() if isinstance(component, nn.Module) else ()
            if any(not bool(torch.isfinite(p).all()) for p in params):
                self._diverged(f"the weights of {name} hold NaN or infinity")

    def _diverged(self, what):
        raise ValueError(
            f"Training diverged at epoch {len(self.history)}: {what}. Lower the learning rate "
            f"(lr={self.lr:g}; try lr={self.lr / 10:g} or less), or check the loss's "
            "parameters and the scale of X."
        )

    def on_train_end(self, net, X=None, y=None, **kwargs):
        self.n_iter_ = len(self.history_)

    @property
    def _default_callbacks(self):
        # skorch's, with a table free of colour codes off a terminal, and a progress bar.
        callbacks = [(name, _PrintLog() if name == "print_log" else cb)
                     for name, cb in super()._default_callbacks]
        return [*callbacks[:-1], ("progress_bar", _EpochProgressBar()), callbacks[-1],
                ("divergence_check", _DivergenceCheck())]

    def initialize_callbacks(self):
        if self.callbacks is not None and not isinstance(self.callbacks, (list, tuple)):
            raise TypeError(
                f"callbacks must be a list of skorch callbacks, 'disable' or None; got "
                f"{self.callbacks!r}."
            )
        return super().initialize_callbacks()

    def set_params(self, **params):
        """Set parameters, including nested ``loss__*``, ``miner__*``, ``module__*`` ones.

        All or nothing: when one is refused (an unknown name; on a fitted embedder, a loss,
        miner or network that cannot be rebuilt with it), the embedder is left as it was,
        so that the next fit, ``get_params`` and ``clone`` do not meet it again.
        """
        _check_param_names(self, [k for k in params if k not in self.get_params(deep=False)],
                           "set_params()")
        # skorch stores every parameter before it rebuilds the components they configure.
        before, to_validate = dict(vars(self)), set(self._params_to_validate)
        try:
            self._set_checked_params(params)
        except Exception:
            vars(self).clear()
            vars(self).update(before)
            self._params_to_validate = to_validate
            raise
        return self

    def _set_checked_params(self, params):
        if "callbacks" in params and not self.initialized_:
            # skorch builds callbacks eagerly here; defer that (and its checks) to fit.
            vars(self)["callbacks"] = params.pop("callbacks")
        for key in [k for k in params if k.split("__", 1)[0] in _READ_AT_FIT]:
            # Read when the next iterator or dataset is built; skorch (1.4) would look for
            # a component to re-initialise on a fitted net and fail.
            setattr(self, key, params.pop(key))
            self._params_to_validate.add(key)
        if "device" in params and self.initialized_:
            # skorch moves the built network there now (torch's AssertionError "Torch not
            # compiled with CUDA enabled" from deep inside it); unfitted, fit checks it.
            _check_device_usable(params["device"])
        new_optimizer = "optimizer" in params and self.initialized_
        for key in [k for k in params if k.startswith("optimizer__") and k.count("__") == 1]:
            if self.initialized_:
                # skorch applies it to the live optimizer only: get_params, clone and the
                # next fit (which rebuilds the optimizer) lost it. Kept as the parameter.
                vars(self)[key] = params[key]
        for key in ("train_transform", "optimizer"):
            if key in params and self.initialized_:
                # skorch (1.4) finds no component to re-initialise for these on a fitted
                # net ("Something went wrong, please open an issue"): set them here.
                setattr(self, key, params.pop(key))
        super().set_params(**params)
        if new_optimizer:  # else warm_start would go on with the former optimizer
            self._initialize_optimizer()

    def _get_param_names(self):
        # skorch's list (every public attribute set at construction), less skorch's
        # arguments that this estimator leaves at their defaults (_SKORCH_FIXED).
        return [k for k in super()._get_param_names()
                if not k.startswith("_") and k not in _SKORCH_FIXED]

    @property
    def criterion_(self):
        """Alias of ``loss_``, for skorch components (e.g. ``Checkpoint``) that expect it."""
        return self.loss_

    # -------------------------------------------------------------- persistence
    def initialize(self):
        """Build the network, loss, miner and optimizer (skorch's ``initialize``).

        Without training data, what depends on it (the default network's input size, a
        proxy loss's classes) is unknown: then only the callbacks are set up and
        ``load_params(f_params=...)`` builds the rest from the state that ``save_params``
        wrote with the parameters.
        """
        if self._awaits_fitted_state():
            self._initialize_callbacks()
            self._initialize_history()
            return self
        return super().initialize()

    def _awaits_fitted_state(self):
        needs_shape = (self.module is None or isinstance(self.module, str)
                       or self._trunk_needs_input_shape)
        needs_classes = getattr(self._loss_class(), "requires_classes", False)
        return ((needs_shape and not hasattr(self, "input_shape_"))
                or (needs_classes and not hasattr(self, "classes_")))

    #: Whether the module is built from the input shape even when the user gives the trunk.
    _trunk_needs_input_shape = False

    def _loss_class(self):
        loss = self.loss
        if isinstance(loss, str):
            return _registered_class("loss", loss)
        return loss if isinstance(loss, type) else type(loss)

    def _fitted_state(self):
        """What ``fit`` learned besides the weights, as plain Python values."""
        state = {"estimator": type(self).__name__}
        for name in _FITTED_NUMBERS:
            value = getattr(self, name, None)
            if value is not None:
                state[name] = list(value) if isinstance(value, tuple) else int(value)
        for name in _FITTED_ARRAYS:
            if hasattr(self, name):
                array = getattr(self, name)
                state[name] = {"values": array.tolist(), "dtype": array.dtype.str}
        return state

    def _network_state(self):
        """The fitted attributes that the sizes of the network and loss depend on."""
        return {k: v for k, v in self._fitted_state().items()
                if k in ("input_shape_", "embedding_dim_", "classes_")}

    def _set_fitted_state(self, state):
        # What the file does not hold, its embedder did not have (e.g. feature names, for
        # one fitted on an array): none is left over from a fit of this one.
        for name in (*_FITTED_NUMBERS, *_FITTED_ARRAYS):
            if name not in state and name in vars(self):
                delattr(self, name)
        for name, value in state.items():
            if name == "input_shape_":
                self.input_shape_ = tuple(value)
            elif name in ("classes_", "feature_names_in_"):
                setattr(self, name, np.asarray(value["values"], dtype=value["dtype"]))
            elif name != "estimator":
                setattr(self, name, value)

    def save_params(self, f_params=None, f_optimizer=None, f_criterion=None, f_history=None,
                    use_safetensors=False, **kwargs):
        """Save the parameters, as skorch does; ``f_params`` also holds the fitted state.

        The module's state dict carries the input shape, ``classes_`` and the other
        fitted attributes in its ``_metadata``, with the versions of skmetric,
        scikit-learn, torch and skorch that wrote it, so that ``load_params`` restores a
        usable embedder in a new process (the file still loads into the module with
        ``module.load_state_dict(torch.load(f_params))``). With ``use_safetensors=True``
        only tensors are saved. A proxy loss's class weights need ``f_criterion``.
        """
        if f_params is None:
            f_params = kwargs.pop("f_module", None)  # skorch's alias (Checkpoint uses it)
        if f_params is not None and not use_safetensors and hasattr(self, "module_"):
            state_dict = _uncompiled(self.module_).state_dict()
            state_dict._metadata[_STATE_KEY] = {**self._fitted_state(),
                                                "versions": saved_versions(self)}
            torch.save(state_dict, f_params)
            f_params = None
            if not (f_optimizer or f_criterion or f_history or kwargs):
                return None
        return super().save_params(f_params=f_params, f_optimizer=f_optimizer,
                                   f_criterion=f_criterion, f_history=f_history,
                                   use_safetensors=use_safetensors, **kwargs)

    def load_params(self, f_params=None, f_optimizer=None, f_criterion=None, f_history=None,
                    checkpoint=None, use_safetensors=False, **kwargs):
        """Load parameters saved by :meth:`save_params` (skorch's ``load_params``).

        ``f_params`` written by ``save_params`` restores the fitted state too, and builds
        the network if ``initialize()`` could not (no training data), so that
        ``MetricEmbedder(...same parameters...).initialize().load_params(f_params=...)``
        transforms (and, with ``f_criterion`` for a proxy loss, predicts) as the saved one.
        A file written under other versions (see ``save_params``) loads with an
        :class:`~skmetric.exceptions.InconsistentVersionWarning`.
        """
        if checkpoint is not None:
            # As skorch does: the history first, since the file names may depend on it.
            if f_history is None and checkpoint.f_history is not None:
                from skorch.history import History

                self.history_ = History.from_file(checkpoint.f_history_)
            files = checkpoint.get_formatted_files(self)
            files.pop("f_history", None)
            f_params = f_params or files.pop("f_params", None)
            f_optimizer = f_optimizer or files.pop("f_optimizer", None)
            f_criterion = f_criterion or files.pop("f_criterion", None)
            kwargs = {**{k: v for k, v in files.items() if v}, **kwargs}
        if f_params is None:
            f_params = kwargs.pop("f_module", None)
        if f_params is not None and not use_safetensors:
            state_dict = self._read_state_dict(f_params)
            state = getattr(state_dict, "_metadata", {}).get(_STATE_KEY)
            if state is not None:
                saved_by = state.get("estimator", type(self).__name__)
                if saved_by != type(self).__name__:
                    raise ValueError(
                        f"{f_params!r} was saved by a {saved_by}; load it into a {saved_by} "
                        f"(with the same parameters), not a {type(self).__name__}."
                    )
                state = dict(state)
                check_saved_versions(self, state.pop("versions", None))
                before = self._network_state()
                self._set_fitted_state(state)
                if not self.initialized_ or self._network_state() != before:
                    history = self.history_
                    self._weights_follow = True
                    try:
                        super().initialize()  # build (or rebuild) for the saved shapes
                    finally:
                        del self._weights_follow  # back to the class's False
                    self.history_ = history or self.history_  # keep a checkpoint's history
            elif not self.initialized_:
                raise ValueError(
                    f"{type(self).__name__} cannot rebuild its network from {f_params!r}: "
                    "the file holds only weights, not the input shape and classes that "
                    "save_params(f_params=...) writes (without use_safetensors). Save with "
                    "save_params, or pickle/joblib the whole embedder."
                )
            try:
                _uncompiled(self.module_).load_state_dict(state_dict)
            except RuntimeError as exc:  # torch's "size mismatch for layers.3.weight: ..."
                raise _unfitting_network(self, f_params, (state or {}).get("embedding_dim_"),
                                         exc) from exc
            self._warn_if_loss_weights_missing(f_criterion)
            f_params = None
        if not (f_optimizer or f_criterion or f_history or kwargs or f_params):
            return None
        return super().load_params(f_params=f_params, f_optimizer=f_optimizer,
                                   f_criterion=f_criterion, f_history=f_history,
                                   use_safetensors=use_safetensors, **kwargs)

    def _read_state_dict(self, f):
        from skorch.utils import get_map_location

        if self.device is not None and not str(self.device).startswith("cuda"):
            # A CUDA device that this machine lacks loads on the CPU, with skorch's
            # DeviceWarning (a model trained on a GPU, served on a CPU); others must exist.
            _check_device_usable(self.device)
        map_location = get_map_location(self.device)
        self.device = self._check_device(self.device, map_location)
        kwargs = {"weights_only": True} if self.torch_load_kwargs is None \
            else self.torch_load_kwargs
        return torch.load(f, map_location=map_location, **kwargs)

    def _warn_if_loss_weights_missing(self, f_criterion):
        loss = getattr(self, "loss_", None)
        if f_criterion is None and isinstance(loss, nn.Module) and any(
                True for _ in loss.parameters()):
            warn_user(
                f"{type(loss).__name__} has learned parameters (e.g. class proxies, used by "
                "predict) that f_params does not hold; they are freshly initialised. Save "
                "and load them with f_criterion=... too.")

    def export_torch(self, f=None):
        """Export the embedding function as a ``torch.export`` program, for serving
        without skmetric or skorch.

        The program maps a float32 batch of samples (shape ``(n, *input_shape_)``, any
        n) to the embeddings ``transform`` returns (L2-normalised when ``normalize``).
        Load it with ``torch.export.load(f).module()``: only torch is needed.

        Parameters
        ----------
        f : str, path or file-like, default=None
            Where to write the program (``torch.export.save``); None only returns it.

        Returns
        -------
        program : torch.export.ExportedProgram
        """
        self._check_fitted()
        model = _Embedding(copy.deepcopy(_uncompiled(self.module_)).cpu().eval(),
                           self._export_normalizes)
        model.requires_grad_(False)  # a serving graph: no autograd
        example = torch.zeros((2, *self.input_shape_))
        program = torch.export.export(
            model, (example,), dynamic_shapes={"x": {0: torch.export.Dim("batch")}}
        )
        if f is not None:
            torch.export.save(program, f)
        return program

    @property
    def _export_normalizes(self):
        return self.normalize

    def __sklearn_is_fitted__(self):
        return hasattr(self, "input_shape_") and hasattr(self, "module_")

    def _check_fitted(self):
        check_is_fitted(self, msg=(
            f"This {type(self).__name__} is not fitted yet: call fit(X, y), or "
            "load_params(f_params=...) with a file written by save_params."
        ))

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
        X = self._check_inference_data(X)
        embeddings = self.forward(X, training=False, device="cpu")
        return embeddings.detach().numpy().astype(np.float32, copy=False)

    def _check_inference_data(self, X):
        """Check fitted, then validate X as in fit (uint8 images and files stay lazy)."""
        self._check_fitted()
        images = _images.check_image_data(self, X, reset=False)
        X = validate_data(self, X, reset=False, dtype=np.float32, allow_nd=True) \
            if images is None else images[0]
        self._check_input_shape(X, reset=False)
        return X

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

        Raises
        ------
        ValueError
            When y holds a single class (every neighbour is then relevant).
        """
        embeddings = self.transform(X)
        y = np.asarray(y)
        if y.shape != (embeddings.shape[0],):
            raise ValueError(
                f"y must be 1-D with one label per sample ({embeddings.shape[0]}); got shape "
                f"{y.shape}."
            )
        from ..metrics import precision_at_k
        from ..metrics._scorers import check_several_classes

        # (a single class scored a perfect 1.0: GridSearchCV's unshuffled KFold on sorted y)
        check_several_classes(y, f"{type(self).__name__}.score got X")
        # skmetric.metrics' 'cosine' is the cosine distance: the similarity's order.
        metric = "euclidean" if self.distance == "euclidean" else "cosine"
        return precision_at_k(embeddings, y, k=1, metric=metric)

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


#: skorch's constructor arguments that are not parameters of the embedders: skorch's
#: ``__init__`` sets them to its defaults (``criterion`` is ``loss`` here; the data loaders,
#: dataset, caching and compilation are skorch's), and get_params leaves them out.
_SKORCH_FIXED = frozenset(inspect.signature(NeuralNet.__init__).parameters) - frozenset(
    inspect.signature(MetricEmbedder.__init__).parameters)

#: Prefixes of the sub-parameters that skorch reads each time it builds the component.
_READ_AT_FIT = ("iterator_train", "iterator_valid", "dataset")


def _unfitting_network(embedder, f_params, saved_dim, exc):
    """The ValueError for a saved network whose shapes differ from the embedder's."""
    name = type(embedder).__name__
    built = getattr(embedder, "embedding_dim_", None)
    if saved_dim is not None and built is not None and saved_dim != built:
        why = (f"it returns {saved_dim} dimensions, this {name} builds a network of {built}: "
               f"construct it with embedding_dim={saved_dim}")
    else:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        first = lines[min(1, len(lines) - 1)].rstrip(".")  # after "Error(s) in loading..."
        why = (f"{first}; construct this {name} with the module parameters (module, "
               "module__*) of the one that saved it")
    return ValueError(f"The network saved in {f_params!r} does not fit this {name}'s: {why}.")


def _sample_shape(X):
    """The shape of one sample of array-like ``X`` (None where it is not known cheaply:
    validate_data then reports what is wrong with X)."""
    shape = getattr(X, "shape", None)
    if shape is None and isinstance(X, (list, tuple)):
        try:
            shape = np.shape(X)
        except ValueError:  # ragged
            return None
    return None if shape is None or len(shape) < 2 else tuple(shape[1:])


def _uncompiled(module):
    """The network inside a ``torch.compile`` wrapper (whose state dict keys carry an
    ``_orig_mod.`` prefix), or the module itself."""
    return getattr(module, "_orig_mod", module)


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
    from ._registry import registered_class

    return registered_class(slot, name)


def _check_not_all_identical(X):
    """Refuse in-memory training samples that are all the same: training would stop after
    an epoch as "collapsed", blaming the learning rate. (max == min per feature: no copy.)"""
    if isinstance(X, _images.ImageSource) and X.layout != "paths":
        X = X.data  # uint8 images, in any layout (files are not read for this)
    if isinstance(X, np.ndarray) and X.size and bool((X.max(axis=0) == X.min(axis=0)).all()):
        raise ValueError(
            f"All {len(X)} samples of X are identical, so no network can map them apart; "
            "check that X holds the data (not e.g. zeros or one repeated row).")


def _check_scalar(loss, module):
    """The loss of a batch, after checking it is a 0-d tensor that training can
    backpropagate (a user's loss may return per-sample terms)."""
    if not isinstance(loss, torch.Tensor) or loss.ndim != 0:
        got = (f"a tensor of shape {tuple(loss.shape)}" if isinstance(loss, torch.Tensor)
               else type(loss).__name__)
        raise ValueError(
            f"The loss must return a scalar (0-d) tensor; {type(module).__name__} returned "
            f"{got}. Reduce its terms in forward (e.g. return terms.mean()).")
    return loss


def _check_device_usable(device):
    """Fail early, with what to do, when ``device`` names no device this torch can use
    (e.g. 'cuda' on a CPU-only build, 'cuda:3' on a one-GPU machine, or a typo like
    'gpu'), instead of torch's assertion deep in skorch's initialisation."""
    if device is None:  # skorch's "leave the data and module where they are"
        return
    try:
        torch.empty(0, device=device)
    except (RuntimeError, AssertionError, ValueError) as exc:
        raise ValueError(
            f"device={device!r} cannot be used: {exc}. Pass device='cpu', or a device "
            "that torch sees here (torch.cuda.is_available(), torch.cuda.device_count())."
        ) from None


def _max_pools(height, width):
    """How many 2x2 poolings images of this size allow (at least 1 pixel left)."""
    return max(0, int(math.log2(max(1, min(height, width)))))


def _collapsed(embeddings):
    """Whether all rows are the same point, or (rescaled to unit norm) the same direction."""
    for z in (embeddings, F.normalize(embeddings, dim=1)):
        spread = (z.amax(dim=0) - z.amin(dim=0)).max()
        if bool(spread <= 1e-6 * z.abs().max()):
            return True
    return False


def _check_param_names(estimator, names, where):
    """Reject constructor or set_params names that are neither parameters nor
    ``prefix__name`` sub-parameters, naming the closest valid one."""
    cls = type(estimator)
    valid = set()
    for klass in cls.__mro__:
        if klass is NeuralNet:
            break
        if "__init__" in vars(klass):
            valid.update(n for n, p in inspect.signature(klass.__init__).parameters.items()
                         if p.kind is p.KEYWORD_ONLY or p.kind is p.POSITIONAL_OR_KEYWORD)
    valid.discard("self")
    # sklearn's check_do_not_raise_errors_in_init_or_set_params passes the name of the
    # **kwargs catch-all itself; it is the only name accepted without a prefix.
    valid.add("kwargs")
    prefixes = estimator.prefixes_
    for name in names:
        prefix = name.split("__", 1)[0]
        if "__" in name and prefix == "train_transform":
            # (listed in prefixes_ only so that skorch accepts a module as its value;
            # nothing would read these: they were silently ignored)
            raise InvalidParameterError(
                f"{cls.__name__}.{where} got {name!r}, but train_transform takes no "
                "sub-parameters: set them on the transform itself (e.g. "
                "v2.RandomHorizontalFlip(p=0.2)).")
        if "__" in name and prefix in prefixes:
            continue
        starts = [p for p in prefixes if name.startswith(p + "_") and name != p]
        if name in valid:
            continue
        if starts:
            hint = f"; did you mean {starts[0]}__{name[len(starts[0]) + 1:]}?"
        elif name == "criterion":  # skorch's name for it
            hint = "; did you mean loss?"
        else:
            hint = keyword_hint(name, valid) or "."
        raise InvalidParameterError(
            f"{cls.__name__}.{where} got an unexpected keyword argument {name!r}{hint} "
            "Parameters of the network, loss, miner, optimizer, data loaders and callbacks "
            "take their prefix and a double underscore: "
            + ", ".join(f"{p}__*" for p in prefixes if p not in ("compile", "train_transform"))
            + "."
        )


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class _PrintLog(PrintLog):
    """skorch's epoch table, with colour codes only when printing to a terminal."""

    def format_row(self, row, key, color):
        text = super().format_row(row, key, color)
        if isinstance(text, str) and not (self.sink is print and _isatty(sys.stdout)):
            text = _ANSI.sub("", text)
        return text


class _EpochProgressBar(Callback):
    """A tqdm bar over the training batches of an epoch, on a terminal only.

    It appears only after a second (short epochs print just the table) and is erased at
    the end of the epoch, before the table's row is printed.
    """

    #: Seconds an epoch must last before its bar appears.
    delay = 1.0

    def on_epoch_begin(self, net, **kwargs):
        self.bar_ = None

    def on_batch_end(self, net, batch=None, training=False, **kwargs):
        if not training or not net.verbose or not _isatty(sys.stderr):
            return
        if self.bar_ is None:
            from tqdm.auto import tqdm

            self.bar_ = tqdm(total=getattr(net, "_n_train_batches", None), leave=False,
                             delay=self.delay, unit="batch", file=sys.stderr)
        self.bar_.update()

    def on_epoch_end(self, net, **kwargs):
        if getattr(self, "bar_", None) is not None:
            self.bar_.close()
            self.bar_ = None

    def __getstate__(self):
        return {k: v for k, v in vars(self).items() if k != "bar_"}


class _DivergenceCheck(Callback):
    """Stops training whose embeddings collapsed or whose weights are no longer finite,
    after the epoch's row is printed (non-finite losses stop at the batch)."""

    def on_epoch_end(self, net, **kwargs):
        net._check_epoch()


def _isatty(stream):
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class _Embedding(nn.Module):
    """A trunk followed by the L2 normalisation of ``transform``: what ``export_torch``
    exports."""

    def __init__(self, trunk, normalize):
        super().__init__()
        self.trunk = trunk
        self.normalize = normalize

    def forward(self, x):
        z = self.trunk(x)
        return F.normalize(z, p=2.0, dim=1) if self.normalize else z
