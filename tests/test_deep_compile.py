"""``compile=True``: the embedder's network runs through ``torch.compile`` (skorch's
``compile``), the loss and miner stay eager, and the results are those of the eager net."""

import io
import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("skorch")

from _deep_data import blobs as _blobs  # noqa: E402
from numpy.testing import assert_allclose  # noqa: E402
from sklearn.base import clone  # noqa: E402

from skmetric.deep import MetricEmbedder  # noqa: E402

FAST = dict(max_epochs=2, batch_size=24, samples_per_class=4, embedding_dim=8,
            random_state=0, verbose=0)


class _RecordingBackend:
    """A ``torch.compile`` backend that runs the captured graphs as they are and keeps
    them, so a test sees what was compiled (no C compiler needed)."""

    def __init__(self):
        self.graphs = []

    def __call__(self, graph_module, example_inputs):
        self.graphs.append(graph_module)
        return graph_module.forward


def test_compile_true_traces_the_network_and_leaves_the_loss_eager():
    X, y = _blobs()
    eager = MetricEmbedder(**FAST).fit(X, y)
    backend = _RecordingBackend()
    compiled = MetricEmbedder(compile=True, compile__backend=backend, **FAST).fit(X, y)
    assert compiled.get_params()["compile"] is True
    assert isinstance(compiled.module_, torch._dynamo.eval_frame.OptimizedModule)
    assert not isinstance(compiled.loss_, torch._dynamo.eval_frame.OptimizedModule)
    # The network's forward was captured, and only the network's: no loss op in a graph.
    assert backend.graphs
    traced = "\n".join(str(g.graph) for g in backend.graphs)
    assert "linear" in traced and "softplus" not in traced and "logsumexp" not in traced
    assert_allclose(compiled.transform(X), eager.transform(X), rtol=1e-6, atol=1e-6)
    assert_allclose(compiled.history_[:, "train_loss"], eager.history_[:, "train_loss"],
                    rtol=1e-6)
    assert isinstance(clone(compiled).get_params()["compile__backend"], _RecordingBackend)


def test_a_compiled_embedder_saves_pickles_and_exports_its_plain_network(tmp_path):
    X, y = _blobs()
    compiled = MetricEmbedder(compile=True, compile__backend="eager", **FAST).fit(X, y)
    expected = compiled.transform(X)
    path = tmp_path / "params.pt"
    compiled.save_params(f_params=path)
    state = torch.load(path, weights_only=True)
    assert not any(key.startswith("_orig_mod.") for key in state)
    for loader in (MetricEmbedder(**FAST),
                   MetricEmbedder(compile=True, compile__backend="eager", **FAST)):
        loader.initialize().load_params(f_params=path)
        assert_allclose(loader.transform(X), expected, rtol=1e-6, atol=1e-7)
    # Its network handed to another embedder is the plain network, compiled only on request.
    reused = MetricEmbedder(module=compiled.module_, **FAST).initialize()
    assert not isinstance(reused.module_, torch._dynamo.eval_frame.OptimizedModule)
    reused_state = reused.module_.state_dict()
    assert reused_state.keys() == state.keys()
    assert all(torch.equal(reused_state[key], state[key]) for key in state)
    restored = pickle.loads(pickle.dumps(compiled))
    assert_allclose(restored.transform(X), expected, rtol=1e-6, atol=1e-7)
    buffer = io.BytesIO()
    torch.export.save(compiled.export_torch(), buffer)
    buffer.seek(0)
    served = torch.export.load(buffer).module()
    assert_allclose(served(torch.as_tensor(X)).detach().numpy(), expected, rtol=1e-5,
                    atol=1e-6)


def test_compile_must_be_a_boolean():
    X, y = _blobs()
    with pytest.raises(ValueError, match="'compile' parameter of MetricEmbedder must be"):
        MetricEmbedder(compile="yes", **FAST).fit(X, y)


@pytest.mark.slow
def test_compile_with_torchs_default_backend_trains_as_the_eager_net():
    # 'inductor' generates and compiles C++ on the CPU (a C compiler is needed): slow.
    X, y = _blobs()
    eager = MetricEmbedder(**FAST).fit(X, y)
    compiled = MetricEmbedder(compile=True, **FAST).fit(X, y)
    assert_allclose(compiled.transform(X), eager.transform(X), rtol=1e-5, atol=1e-5)
    assert np.isfinite(compiled.history_[:, "train_loss"]).all()


@pytest.mark.gpu
def test_compile_on_cuda_trains_as_the_eager_net():
    X, y = _blobs()
    kwargs = {**FAST, "device": "cuda"}
    eager = MetricEmbedder(**kwargs).fit(X, y)
    compiled = MetricEmbedder(compile=True, **kwargs).fit(X, y)
    assert_allclose(compiled.transform(X), eager.transform(X), rtol=1e-4, atol=1e-4)
