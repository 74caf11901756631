"""Image trunks by name (torchvision families, timm): head, stem, weights, input checks.

Random weights only: nothing is downloaded (the weights-enum test serves the file from a
patched loader).
"""

import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("skorch")

from torch import nn  # noqa: E402

from skmetric.deep import MetricEmbedder  # noqa: E402  (lets a CUDA torchvision import)
from skmetric.deep.trunks import FAMILIES, ImageTrunk, build_trunk, trunk_names  # noqa: E402

tv_models = pytest.importorskip("torchvision.models")

# One (small) model per family, with the smallest square input it takes and its kwargs.
FAST = [
    ("resnet18", 32, {}),
    ("regnet_x_400mf", 32, {}),
    ("efficientnet_b0", 32, {}),
    ("mobilenet_v3_small", 32, {}),  # two Linear layers in its classifier: the last goes
    ("mnasnet0_5", 32, {}),
    ("shufflenet_v2_x0_5", 32, {}),
    ("densenet121", 32, {}),
]
SLOW = [  # larger models (several seconds to build twice and run on a CPU)
    ("resnext50_32x4d", 32, {}),
    ("convnext_tiny", 32, {}),
    ("swin_t", 32, {}),
    ("vit_b_16", 32, {"image_size": 32}),
    ("wide_resnet50_2", 32, {}),
    ("vgg11", 32, {}),
    ("alexnet", 64, {}),
    ("maxvit_t", 224, {}),
]
FAMILY_CASES = FAST + [pytest.param(*case, marks=pytest.mark.slow) for case in SLOW]


def test_every_family_has_a_case():
    covered = {next(f for f in sorted(FAMILIES, key=len, reverse=True) if name.startswith(f))
               for name, _, _ in FAST + SLOW}
    assert covered == set(FAMILIES)
    assert {"resnet18", "vit_b_16", "convnext_tiny"} <= set(trunk_names())
    assert "googlenet" not in trunk_names()  # auxiliary outputs: not a supported family


@pytest.mark.parametrize("name, size, kwargs", FAMILY_CASES)
def test_family_builds_on_random_weights_and_embeds(name, size, kwargs):
    torch.manual_seed(0)
    reference = tv_models.get_model(name, weights=None, **kwargs)
    trunk = build_trunk(name, embedding_dim=7, in_channels=1, **kwargs).eval()
    x = torch.rand(2, 1, size, size)
    with torch.no_grad():
        out = trunk(x)
    assert out.shape == (2, 7) and bool(torch.isfinite(out).all())
    # The classifier is gone (its 1000 outputs nowhere) and the head takes the features
    # that fed it: the *last* Linear of the model was replaced, not another one.
    linears = [m for m in trunk.backbone.modules() if isinstance(m, nn.Linear)]
    assert all(m.out_features != 1000 for m in linears)
    last = [m for m in reference.modules() if isinstance(m, nn.Linear)][-1]
    assert isinstance(trunk.head, nn.Linear) and trunk.head.in_features == last.in_features
    n_ref = sum(p.numel() for p in reference.parameters()) - sum(
        p.numel() for p in last.parameters())
    stem = next(m for m in reference.modules() if isinstance(m, nn.Conv2d))
    n_ref -= stem.weight.numel() * 2 // 3  # the stem now reads 1 channel instead of 3
    assert sum(p.numel() for p in trunk.backbone.parameters()) == n_ref


def _resnet18_state(seed=0):
    torch.manual_seed(seed)
    return tv_models.resnet18(weights=None).state_dict()


@pytest.mark.parametrize("channels", [1, 2, 4])
def test_stem_adapted_to_channels_answers_as_rgb_on_a_repeated_image(channels):
    state = _resnet18_state()
    rgb = build_trunk("resnet18", in_channels=3, weights=state).eval()
    other = build_trunk("resnet18", in_channels=channels, weights=state).eval()
    grey = torch.rand(3, 1, 32, 32)
    with torch.no_grad():
        expected = rgb.backbone(grey.expand(-1, 3, -1, -1))
        got = other.backbone(grey.expand(-1, channels, -1, -1))
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_state_dict_path_loads_the_backbone_without_download(tmp_path):
    state = _resnet18_state(seed=1)
    path = tmp_path / "resnet18.pth"
    torch.save(state, path)
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(8, 3, 32, 32), dtype=np.uint8)
    y = np.repeat([0, 1], 4)
    emb = MetricEmbedder("resnet18", module__weights=str(path), embedding_dim=4,
                         max_epochs=0, verbose=0).fit(X, y)
    assert isinstance(emb.module_, ImageTrunk)
    backbone = emb.module_.backbone.state_dict()
    for key, value in state.items():
        if not key.startswith("fc."):
            torch.testing.assert_close(backbone[key], value, msg=key)
    assert emb.transform(X).shape == (8, 4)

    # A trunk's own state dict (backbone. and head.) restores the head too.
    path2 = tmp_path / "trunk.pth"
    torch.save(emb.module_.state_dict(), path2)
    again = build_trunk("resnet18", embedding_dim=4, weights=path2)
    torch.testing.assert_close(again.head.weight, emb.module_.head.weight)

    wrong = tmp_path / "resnet34.pth"
    torch.save(tv_models.resnet34(weights=None).state_dict(), wrong)
    with pytest.raises(ValueError, match="not a state dict of 'resnet18'"):
        build_trunk("resnet18", weights=wrong)
    with pytest.raises(FileNotFoundError, match="not a file"):
        build_trunk("resnet18", weights=tmp_path / "missing.pth")


def test_weights_enum_is_passed_to_torchvision(monkeypatch):
    # Served from memory: the enum's URL is never fetched.
    state = _resnet18_state(seed=2)
    urls = []

    def fake_load(url, *args, **kwargs):
        urls.append(url)
        return state

    monkeypatch.setattr("torchvision.models._api.load_state_dict_from_url", fake_load)
    weights = tv_models.ResNet18_Weights.IMAGENET1K_V1
    trunk = build_trunk("resnet18", embedding_dim=5, weights=weights)
    assert urls == [weights.url]
    torch.testing.assert_close(trunk.backbone.conv1.weight, state["conv1.weight"])
    assert not isinstance(trunk.backbone.fc, nn.Linear)
    urls.clear()
    build_trunk("resnet18", weights=None)
    assert urls == []


def test_embedder_with_a_named_trunk_clones_saves_and_reloads(tmp_path):
    from sklearn.base import clone

    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(12, 32, 32, 3), dtype=np.uint8)  # channels last
    y = np.repeat([0, 1, 2], 4)
    params = dict(embedding_dim=6, batch_size=12, max_epochs=1, random_state=0, verbose=0)
    emb = MetricEmbedder("resnet18", **params)
    assert clone(emb).get_params()["module"] == "resnet18"
    emb.fit(X, y)
    assert emb.input_shape_ == (3, 32, 32) and emb.n_features_in_ == 3
    Z = emb.transform(X)
    assert Z.shape == (12, 6)
    f = tmp_path / "params.pt"
    emb.save_params(f_params=f)
    new = MetricEmbedder("resnet18", **params).initialize()
    new.load_params(f_params=f)
    np.testing.assert_allclose(new.transform(X), Z, rtol=1e-5, atol=1e-6)


def test_input_errors_say_what_to_do():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 4)
    est = MetricEmbedder("resnet18", max_epochs=1, verbose=0)
    with pytest.raises(ValueError, match="channels-last"):
        est.fit(rng.random((8, 32, 32, 3), dtype=np.float32), y)  # float NHWC
    with pytest.raises(ValueError, match="takes images"):
        est.fit(rng.random((8, 10), dtype=np.float32), y)
    with pytest.raises(ValueError, match="Unknown trunk 'resnet19'.*timm:"):
        MetricEmbedder("resnet19", max_epochs=1, verbose=0).fit(
            rng.random((8, 3, 32, 32), dtype=np.float32), y)
    # The network is told 3 channels but the images have 1: a clear error, not torch's.
    with pytest.raises(ValueError, match=r"module__in_channels=3, but the images have 1 "):
        MetricEmbedder("resnet18", module__in_channels=3, max_epochs=1, verbose=0).fit(
            rng.random((8, 1, 32, 32), dtype=np.float32), y)
    with pytest.raises(ValueError, match="module__image_size"):
        MetricEmbedder("vit_b_16", max_epochs=1, verbose=0).fit(
            rng.random((8, 3, 32, 32), dtype=np.float32), y)


@pytest.mark.slow  # a fresh interpreter importing torch and skorch
def test_missing_torchvision_names_the_vision_extra():
    code = (
        "import sys, importlib.abc\n"
        "class _Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'torchvision':\n"
        "            raise ImportError(f'No module named {name!r}')\n"
        "sys.meta_path.insert(0, _Block())\n"
        "import numpy as np\n"
        "import skmetric, skmetric.deep\n"
        "from skmetric.deep import MetricEmbedder\n"
        "X = np.zeros((4, 3, 8, 8), np.float32)\n"
        "try:\n"
        "    MetricEmbedder('resnet18', samples_per_class=2, batch_size=4,\n"
        "                   verbose=0).fit(X, [0, 0, 1, 1])\n"
        "except ImportError as e:\n"
        "    print(e)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "pip install 'skmetric[vision]'" in res.stdout, res.stdout + res.stderr


# ----------------------------------------------------------------------------- timm
def test_timm_trunks_on_random_weights_and_a_state_dict_path(tmp_path):
    timm = pytest.importorskip("timm")
    trunk = build_trunk("timm:resnet18", embedding_dim=5, in_channels=1).eval()
    with torch.no_grad():
        assert trunk(torch.rand(2, 1, 32, 32)).shape == (2, 5)
    vit = build_trunk("timm:vit_tiny_patch16_224", embedding_dim=5, img_size=32).eval()
    with torch.no_grad():
        assert vit(torch.rand(2, 3, 32, 32)).shape == (2, 5)
    assert vit.head.in_features == 192

    torch.manual_seed(3)
    model = timm.create_model("resnet18", pretrained=False)
    path = tmp_path / "timm_resnet18.pth"
    torch.save(model.state_dict(), path)
    loaded = build_trunk("timm:resnet18", embedding_dim=5, weights=path)
    torch.testing.assert_close(loaded.backbone.conv1.weight, model.conv1.weight)
    with pytest.raises(ValueError, match="Unknown timm model"):
        build_trunk("timm:not_a_model_name")
