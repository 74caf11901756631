"""Image trunks from torchvision and timm, with an embedding head (the ``vision`` extra).

``MetricEmbedder(module='resnet18')`` builds torchvision's ResNet-18 through
:func:`build_trunk`: the classifier is removed and a linear head of ``embedding_dim`` outputs
replaces it, in an :class:`ImageTrunk` whose two parts are named ``backbone`` and ``head`` (so
that skorch's ``Freezer('backbone.*')`` and ``optimizer__param_groups=[('head.*', {...})]``
address them). ``module='timm:<name>'`` does the same with a timm model.

Nothing is downloaded unless asked for: the weights are random by default; a torchvision
weights enum (``ResNet18_Weights.IMAGENET1K_V1``, or its name ``'DEFAULT'``) lets torchvision
fetch them (or read its cache), and a path loads a state dict from disk.
"""

import glob
import importlib.util
import os
import pickle
import sys
from collections.abc import Mapping
from numbers import Integral

import torch
from torch import nn

from .._optional import import_optional

#: Prefixes of the torchvision model names that build_trunk supports, one per family. Each
#: family's classifier ends in a Linear layer (replaced by the head) and its first Conv2d is
#: the stem (adapted to the number of input channels).
FAMILIES = (
    "alexnet", "convnext", "densenet", "efficientnet", "maxvit", "mnasnet", "mobilenet",
    "regnet", "resnet", "resnext", "shufflenet", "swin", "vgg", "vit", "wide_resnet",
)
#: Prefix of the timm model names.
TIMM_PREFIX = "timm:"

_tv_ops_shim = None  # the torch.library fragment of the shim below, kept alive


def declare_missing_torchvision_ops():
    """Let torchvision import when its C++ operators cannot load next to this torch.

    A torchvision built for CUDA next to a CPU build of torch (pytorch/vision#9085) cannot
    load its operator library, and its import then fails while registering meta kernels
    for ``nms`` and ``qnms``. The models and transforms do not use these operators: the
    two schemas are declared here (without kernels, so detection operators still fail
    when called, as they would anyway) and torchvision imports. Nothing is done when
    torch is a CUDA build, when torchvision is absent or already imported, or when its
    library loads. ``import skmetric.deep`` calls this.
    """
    global _tv_ops_shim
    if _tv_ops_shim is not None or torch.version.cuda is not None \
            or "torchvision" in sys.modules:
        return
    try:
        spec = importlib.util.find_spec("torchvision")
    except (ImportError, ValueError):
        return
    if spec is None or not spec.submodule_search_locations:
        return
    libraries = glob.glob(os.path.join(spec.submodule_search_locations[0], "_C.*"))
    if not libraries:
        return
    try:
        torch.ops.load_library(libraries[0])
        return
    except (OSError, RuntimeError):
        pass
    _tv_ops_shim = torch.library.Library("torchvision", "FRAGMENT")
    for op in ("nms", "qnms"):
        _tv_ops_shim.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")


def _import_torchvision():
    """Import torchvision, or raise an ImportError naming the ``vision`` extra."""
    declare_missing_torchvision_ops()
    return import_optional("torchvision", feature="Image trunks", extra="vision")


def _import_timm():
    _import_torchvision()  # timm imports torchvision: same shim
    return import_optional("timm", feature="timm trunks (module='timm:<name>')", extra="timm")


def trunk_names():
    """The torchvision model names that ``module=`` accepts (besides ``'timm:<name>'``).

    Returns
    -------
    names : list of str

    Examples
    --------
    >>> from skmetric.deep.trunks import trunk_names
    >>> 'resnet18' in trunk_names()
    True
    """
    models = _import_torchvision().models
    return sorted(n for n in models.list_models(module=models) if n.startswith(FAMILIES))


class ImageTrunk(nn.Module):
    """A backbone without its classifier, followed by a linear embedding head.

    Parameters
    ----------
    backbone : nn.Module
        Maps images (n, channels, height, width) to features (n, in_features).
    head : nn.Linear
        Maps the features to the embedding.
    freeze_bn : bool, default=False
        Keep the backbone's batch normalisation layers in eval mode (their running
        statistics are not updated) and their affine parameters fixed, also in training
        (every ``train()`` call freezes them again, e.g. after skorch's ``Unfreezer``): the
        usual setting when fine-tuning with small batches.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from skmetric.deep.trunks import ImageTrunk
    >>> trunk = ImageTrunk(nn.Sequential(nn.Flatten(), nn.Linear(12, 5)), nn.Linear(5, 2))
    >>> trunk(torch.zeros(4, 3, 2, 2)).shape
    torch.Size([4, 2])
    """

    def __init__(self, backbone, head, freeze_bn=False):
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.freeze_bn = freeze_bn
        self.train()

    def forward(self, x):
        return self.head(self.backbone(x))

    def train(self, mode=True):
        super().train(mode)
        if self.freeze_bn:
            # Also at every training step, after an Unfreezer('backbone.*') has run.
            for module in self._batch_norms():
                module.eval()
                module.requires_grad_(False)
        return self

    def _batch_norms(self):
        return [m for m in self.backbone.modules() if isinstance(m, nn.modules.batchnorm._NormBase)]


def build_trunk(name, embedding_dim=64, in_channels=3, weights=None, freeze_bn=False,
                **kwargs):
    """Build a torchvision or timm model as an embedding trunk.

    The model's classifier is removed and a linear head of ``embedding_dim`` outputs put in
    its place; the first convolution is adapted to ``in_channels`` (its weights summed over
    the RGB channels and shared equally by the new channels, so that a grey image gives
    the features of the same image repeated on three channels).

    Parameters
    ----------
    name : str
        A torchvision classification model (see :func:`trunk_names`: ``'resnet18'``,
        ``'efficientnet_b0'``, ``'mobilenet_v3_small'``, ``'convnext_tiny'``,
        ``'vit_b_16'``...) or ``'timm:<name>'`` for a timm model (the ``timm`` extra).
    embedding_dim : int, default=64
        Size of the embedding.
    in_channels : int, default=3
        Channels of the input images.
    weights : None, weights enum, str, path or dict, default=None
        None: random weights (nothing is downloaded). For torchvision, a weights enum
        (``torchvision.models.ResNet18_Weights.IMAGENET1K_V1``) or its name (``'DEFAULT'``)
        asks torchvision for them: it downloads them unless they are in its cache. For timm,
        True asks timm for its pretrained weights. A path to a file saved with
        ``torch.save(model.state_dict(), path)`` (of the torchvision/timm model or of a
        trunk built here), or the state dict itself, is loaded without any download; the
        original classifier's weights in it are ignored.
    freeze_bn : bool, default=False
        See :class:`ImageTrunk`.
    **kwargs
        Passed to the torchvision builder (e.g. ``image_size=32`` for ``vit_*`` on random
        weights) or to ``timm.create_model``.

    Returns
    -------
    trunk : ImageTrunk

    Examples
    --------
    >>> import torch
    >>> from skmetric.deep.trunks import build_trunk
    >>> trunk = build_trunk("resnet18", embedding_dim=16, in_channels=1)
    >>> trunk.eval()(torch.zeros(2, 1, 32, 32)).shape
    torch.Size([2, 16])
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a model name (str); got {type(name).__name__}.")
    for what, value in (("embedding_dim", embedding_dim), ("in_channels", in_channels)):
        # Checked before the backbone is built: embedding_dim=0 made an empty head (every
        # embedding of size 0) without a word.
        if not isinstance(value, Integral) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{what} must be a positive integer; got {value!r}.")
    if name.startswith(TIMM_PREFIX):
        backbone, features = _timm_backbone(name[len(TIMM_PREFIX):], in_channels, weights,
                                            kwargs)
    else:
        backbone, features = _torchvision_backbone(name, in_channels, weights, kwargs)
    head = nn.Linear(features, embedding_dim)
    state = _state_dict(weights)
    if state is not None and _is_trunk_state(state):
        _load_head(head, state, name)
    return ImageTrunk(backbone, head, freeze_bn=freeze_bn)


# ---------------------------------------------------------------------- torchvision
def _torchvision_backbone(name, in_channels, weights, kwargs):
    models = _import_torchvision().models
    if not name.startswith(FAMILIES) or name not in models.list_models(module=models):
        raise ValueError(
            f"Unknown trunk {name!r}. Valid torchvision names: {trunk_names()}; or "
            "'timm:<name>' for a timm model; or pass a torch.nn.Module (class or instance)."
        )
    state = _state_dict(weights)
    if state is None and isinstance(weights, str):
        _check_weights_name(models, name, weights)
    model = models.get_model(name, weights=None if state is not None else weights, **kwargs)
    classifier_name, classifier = _last_linear(model)
    if state is not None:
        _load_backbone(model, state, classifier_name, name)
    _set_submodule(model, classifier_name, nn.Identity())
    _adapt_stem(model, in_channels, name)
    return model, classifier.in_features


def _check_weights_name(models, name, weights):
    """Refuse a string that is neither a file nor a weights name of ``name``: torchvision
    raised a bare ``KeyError: 'imagenet'``."""
    enum = models.get_model_weights(name)
    try:
        enum.verify(weights)  # torchvision's own parsing ('IMAGENET1K_V1', 'DEFAULT', ...)
    except KeyError:
        valid = list(dict.fromkeys(["DEFAULT", *enum.__members__]))
        raise ValueError(
            f"weights={weights!r} is neither a file nor a weights name of {name!r} (valid "
            f"names: {valid}, which torchvision downloads unless cached). Pass the path "
            "of a state dict file, a torchvision weights enum, or None for random weights."
        ) from None


def _last_linear(model):
    linears = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    return linears[-1]


def _set_submodule(model, path, new):
    parent, _, child = path.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, new)


def _adapt_stem(model, in_channels, name):
    """Replace the first convolution by one taking ``in_channels`` channels."""
    path, conv = _stem(model)
    if in_channels == conv.in_channels:
        return
    new = nn.Conv2d(in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride,
                    padding=conv.padding, dilation=conv.dilation, groups=conv.groups,
                    bias=conv.bias is not None, padding_mode=conv.padding_mode)
    with torch.no_grad():
        new.weight.copy_(_adapt_weight(conv.weight, in_channels))
        if conv.bias is not None:
            new.bias.copy_(conv.bias)
    _set_submodule(model, path, new)


def _stem(model):
    """The name and module of the model's first convolution."""
    return next((n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d))


def _adapt_weight(weight, in_channels):
    """RGB filters for ``in_channels`` channels: their sum over RGB, shared equally by the
    channels, so that an image repeated on every channel gives the response of the RGB
    filters to that image repeated on R, G and B (the first layer's output is unchanged)."""
    summed = weight.sum(dim=1, keepdim=True)
    return summed.expand(-1, in_channels, -1, -1) / in_channels


# ----------------------------------------------------------------------------- timm
def _timm_backbone(name, in_channels, weights, kwargs):
    timm = _import_timm()
    if not timm.list_models(name):
        raise ValueError(
            f"Unknown timm model {name!r}; timm.list_models('pattern*') lists the names."
        )
    state = _state_dict(weights)
    pretrained = weights is True
    if weights is not None and weights is not True and state is None:
        raise ValueError(
            f"weights for a timm trunk must be None, True (timm's pretrained weights) or a "
            f"state dict or its path; got {weights!r}."
        )
    model = timm.create_model(name, pretrained=pretrained, num_classes=0, in_chans=3,
                              **kwargs)
    if state is not None:
        classifier = model.default_cfg.get("classifier", "head")
        if not isinstance(classifier, str):
            classifier = classifier[0]
        _load_backbone(model, state, classifier, TIMM_PREFIX + name, removed_head=True)
    _adapt_stem(model, in_channels, name)
    return model, model.num_features


# -------------------------------------------------------------------------- weights
def _state_dict(weights):
    """The state dict that ``weights`` names (a path or a dict), or None."""
    if isinstance(weights, Mapping):
        return weights
    if isinstance(weights, (str, os.PathLike)) and _looks_like_path(weights):
        if not os.path.isfile(weights):
            raise FileNotFoundError(
                f"weights={os.fspath(weights)!r} is not a file. Pass the path of a state "
                "dict saved with torch.save(model.state_dict(), path), a torchvision "
                "weights enum, or None for random weights."
            )
        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError) as exc:
            # A corrupt file, or a whole pickled model (which weights_only refuses).
            raise ValueError(
                f"weights={os.fspath(weights)!r} cannot be read as a state dict "
                f"({type(exc).__name__}): the file is damaged, or holds a whole pickled "
                "model rather than its weights. Save them with "
                "torch.save(model.state_dict(), path).") from None
        if not isinstance(state, Mapping):
            raise ValueError(f"{os.fspath(weights)!r} holds a {type(state).__name__}, not a "
                             "state dict; save model.state_dict() instead of the model.")
        return state
    return None


def _looks_like_path(weights):
    text = os.fspath(weights)
    return (isinstance(weights, os.PathLike) or os.sep in text
            or text.endswith((".pt", ".pth", ".bin", ".ckpt")) or os.path.exists(text))


def _is_trunk_state(state):
    return any(k.startswith("backbone.") for k in state)


def _load_backbone(model, state, classifier, name, removed_head=False):
    """Load ``state`` into ``model``, ignoring the classifier's weights."""
    if _is_trunk_state(state):  # saved from an ImageTrunk built here
        state = {k[len("backbone."):]: v for k, v in state.items() if k.startswith("backbone.")}
    # A trunk built here for grey (or other non-RGB) images saved its adapted stem: take
    # its channels first (the caller adapts the stem to the images' channels after).
    stem, _ = _stem(model)
    channels = getattr(state.get(stem + ".weight"), "shape", (0, 3))[1]
    if channels != 3:
        _adapt_stem(model, channels, name)
    ours = {k: v for k, v in state.items() if not k.startswith(classifier + ".")}
    try:
        missing, unexpected = model.load_state_dict(ours, strict=False)
    except RuntimeError as exc:
        raise ValueError(f"The weights do not fit {name!r}: {exc}") from None
    if not removed_head:
        missing = [k for k in missing if not k.startswith(classifier + ".")]
    if missing or unexpected:
        raise ValueError(
            f"The weights are not a state dict of {name!r}: "
            f"{len(missing)} missing keys (e.g. {missing[:3]}), {len(unexpected)} unexpected "
            f"(e.g. {unexpected[:3]}). Save them from the same model: "
            "torch.save(model.state_dict(), path)."
        )


def _load_head(head, state, name):
    head_state = {k[len("head."):]: v for k, v in state.items() if k.startswith("head.")}
    if head_state and all(head_state[k].shape == v.shape
                          for k, v in head.state_dict().items() if k in head_state):
        head.load_state_dict(head_state)


# ------------------------------------------------------------------ input checks
def check_trunk_input(name, shape, in_channels=None):
    """Reject inputs that no image trunk takes, before building it.

    Parameters
    ----------
    name : str
        The trunk's name (for the message).
    shape : tuple of int
        Shape of X, (n_samples, channels, height, width).
    in_channels : int or None, default=None
        The ``module__in_channels`` the user set, if any.
    """
    if len(shape) != 4:
        raise ValueError(
            f"module={name!r} takes images (n_samples, channels, height, width); got X of "
            f"shape {tuple(shape)}. Add a channel axis to grey-scale images (X[:, None])."
        )
    channels, height, width = shape[1:]
    if channels > 4 and width in (1, 3, 4):
        raise ValueError(
            f"X has shape {tuple(shape)}, which looks like channels-last images (n_samples, "
            f"height, width, channels={width}); module={name!r} takes channels first. "
            "Transpose float images (X.transpose(0, 3, 1, 2)), or pass uint8 images, which "
            "are accepted in either layout."
        )
    if in_channels is not None and in_channels != channels:
        # Else the probe failed with torch's message and a hint about image sizes.
        raise ValueError(
            f"module__in_channels={in_channels!r}, but the images have {channels} "
            f"channel(s) (X of shape {tuple(shape)}). Leave module__in_channels unset: the "
            "trunk's first convolution then takes the images' channels."
        )


def explain_probe_error(name, shape, exc):
    """A ValueError saying why trunk ``name`` failed on samples of ``shape``."""
    hint = ("vit_* models on random weights need module__image_size=<height> (square "
            "images); with pretrained weights they take 224x224 images only. "
            if name.startswith("vit") else "")
    return ValueError(
        f"module={name!r} cannot embed images of shape {tuple(shape)} (channels, height, "
        f"width): {type(exc).__name__}: {exc}. {hint}torchvision's models are made for "
        "224x224 images; most work from 32x32 (pooling and strided layers need room). "
        "Resize the images before fit and transform (dataset__image_size=(height, "
        "width) for image files), or choose another model."
    )
