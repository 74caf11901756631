"""Saving and reloading deep embedders: every documented way round-trips in a fresh process."""

import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import joblib
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("skorch")

from _deep_data import blobs as _blobs  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402

from skmetric.deep import MetricEmbedder, ProbabilisticEmbedder  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _images():
    X, y = _blobs(n_features=16, seed=1)
    labels = np.array(["ant", "bee", "cat", "dog", "eel", "fox"])[y]  # not 0..C-1
    return X.reshape(-1, 1, 4, 4), labels


FAST = dict(max_epochs=2, batch_size=16, samples_per_class=4, embedding_dim=8,
            random_state=0, verbose=0)


def _run(script, cwd):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script)], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_every_documented_reload_restores_a_usable_embedder_in_a_fresh_process(tmp_path):
    X, y = _blobs()
    Xi, yi = _images()
    mlp = MetricEmbedder(module__hidden=(16,), **FAST).fit(X, y)
    arc = MetricEmbedder(loss="arcface", miner=None, **FAST).fit(Xi, yi)
    pfe = ProbabilisticEmbedder(module=mlp.module_, uncertainty_hidden=8, **FAST).fit(X, y)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "Xi.npy", Xi)
    np.save(tmp_path / "mlp.npy", mlp.transform(X))
    np.save(tmp_path / "arc.npy", arc.transform(Xi))
    np.save(tmp_path / "arc_pred.npy", arc.predict(Xi))
    np.save(tmp_path / "arc_proba.npy", arc.predict_proba(Xi))
    np.save(tmp_path / "pfe_var.npy", pfe.transform_uncertainty(X))
    with open(tmp_path / "mlp.pkl", "wb") as f:
        pickle.dump(mlp, f)
    joblib.dump(arc, tmp_path / "arc.joblib")
    mlp.save_params(f_params=tmp_path / "mlp_params.pt")
    arc.save_params(f_params=tmp_path / "arc_params.pt", f_criterion=tmp_path / "arc_loss.pt")
    pfe.save_params(f_params=tmp_path / "pfe_params.pt")
    torch.save(mlp.module_, tmp_path / "mlp_module.pt")
    torch.save(mlp.module_, tmp_path / "trunk.pt")

    result = _run(f"""
        import pickle, joblib, numpy as np, torch
        from numpy.testing import assert_array_equal, assert_allclose
        from skmetric.deep import MetricEmbedder, ProbabilisticEmbedder
        d = {str(tmp_path)!r} + "/"
        X, Xi = np.load(d + "X.npy"), np.load(d + "Xi.npy")
        fast = dict(batch_size=16, samples_per_class=4, embedding_dim=8, verbose=0)

        with open(d + "mlp.pkl", "rb") as f:
            assert_array_equal(pickle.load(f).transform(X), np.load(d + "mlp.npy"))
        print("OK pickle")
        arc = joblib.load(d + "arc.joblib")
        assert_array_equal(arc.predict(Xi), np.load(d + "arc_pred.npy", allow_pickle=True))
        print("OK joblib")

        # skorch's documented reload: same parameters, initialize(), load_params
        new = MetricEmbedder(module__hidden=(16,), **fast).initialize()
        new.load_params(f_params=d + "mlp_params.pt")
        assert_array_equal(new.transform(X), np.load(d + "mlp.npy"))
        assert new.input_shape_ == (5,) and new.n_features_in_ == 5
        print("OK params default network")
        new = MetricEmbedder(loss="arcface", miner=None, **fast).initialize()
        new.load_params(f_params=d + "arc_params.pt", f_criterion=d + "arc_loss.pt")
        assert_array_equal(new.transform(Xi), np.load(d + "arc.npy"))
        assert_array_equal(new.predict(Xi), np.load(d + "arc_pred.npy"))
        assert_allclose(new.predict_proba(Xi), np.load(d + "arc_proba.npy"), rtol=1e-6)
        print("OK params proxy loss")
        trunk = torch.load(d + "trunk.pt", weights_only=False)
        new = ProbabilisticEmbedder(module=trunk, uncertainty_hidden=8, **fast).initialize()
        new.load_params(f_params=d + "pfe_params.pt")
        assert_allclose(new.transform_uncertainty(X), np.load(d + "pfe_var.npy"), rtol=1e-6)
        print("OK params probabilistic")

        # the trunk alone, as torch saves it; transform also L2-normalises
        module = torch.load(d + "mlp_module.pt", weights_only=False).eval()
        with torch.no_grad():
            z = torch.nn.functional.normalize(module(torch.as_tensor(X)), dim=1)
        assert_allclose(z.numpy(), np.load(d + "mlp.npy"), rtol=1e-5, atol=1e-6)
        print("OK torch.save module")
    """, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    for what in ("pickle", "joblib", "params default network", "params proxy loss",
                 "params probabilistic", "torch.save module"):
        assert f"OK {what}" in result.stdout


def test_exported_program_serves_without_skmetric_or_skorch(tmp_path):
    Xi, yi = _images()
    emb = MetricEmbedder(**FAST).fit(Xi, yi)
    emb.export_torch(tmp_path / "emb.pt2")
    np.save(tmp_path / "Xi.npy", Xi)
    np.save(tmp_path / "Z.npy", emb.transform(Xi))
    result = _run(f"""
        import sys
        sys.modules["skmetric"] = sys.modules["skorch"] = None   # importing them fails
        import numpy as np, torch
        d = {str(tmp_path)!r} + "/"
        model = torch.export.load(d + "emb.pt2").module()
        X, Z = np.load(d + "Xi.npy"), np.load(d + "Z.npy")
        for batch in (X, X[:1]):
            out = model(torch.as_tensor(batch)).numpy()
            np.testing.assert_allclose(out, Z[:len(batch)], rtol=1e-5, atol=1e-6)
        print("OK served")
    """, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK served" in result.stdout


def test_saved_params_stay_a_plain_state_dict_and_weights_only_files_fail_clearly(tmp_path):
    X, y = _blobs()
    emb = MetricEmbedder(**FAST).fit(X, y)
    emb.save_params(f_params=tmp_path / "p.pt")
    trunk = type(emb.module_)(5, embedding_dim=8)
    trunk.load_state_dict(torch.load(tmp_path / "p.pt"))  # a plain torch reload works
    np.testing.assert_allclose(
        torch.nn.functional.normalize(trunk(torch.as_tensor(X)), dim=1).detach().numpy(),
        emb.transform(X), rtol=1e-5, atol=1e-6)

    torch.save(emb.module_.state_dict(), tmp_path / "weights.pt")  # no fitted state
    new = MetricEmbedder(**FAST).initialize()
    with pytest.raises(ValueError, match="holds only weights.*save_params"):
        new.load_params(f_params=tmp_path / "weights.pt")
    with pytest.raises(NotFittedError, match="load_params"):
        new.transform(X)

    pfe = ProbabilisticEmbedder(module=emb.module_, uncertainty_hidden=8, **FAST).fit(X, y)
    pfe.save_params(f_params=tmp_path / "pfe.pt")
    with pytest.raises(ValueError, match="saved by a ProbabilisticEmbedder; load it into a "
                                         "ProbabilisticEmbedder"):
        MetricEmbedder(**FAST).initialize().load_params(f_params=tmp_path / "pfe.pt")


@pytest.mark.parametrize("loss", ["arcface", "proxy_anchor"])
def test_proxy_losses_reload_with_their_criterion_file_and_warn_without_it(tmp_path, loss):
    Xi, yi = _images()
    fitted = MetricEmbedder(loss=loss, miner=None, **FAST).fit(Xi, yi)
    fitted.save_params(f_params=tmp_path / "p.pt", f_criterion=tmp_path / "c.pt")
    new = MetricEmbedder(loss=loss, miner=None, **FAST).initialize()  # no classes_ yet
    new.load_params(f_params=tmp_path / "p.pt", f_criterion=tmp_path / "c.pt")
    np.testing.assert_array_equal(new.predict(Xi), fitted.predict(Xi))
    np.testing.assert_array_equal(new.classes_, fitted.classes_)

    new = MetricEmbedder(loss=loss, miner=None, **FAST).initialize()
    with pytest.warns(UserWarning, match="f_criterion"):
        new.load_params(f_params=tmp_path / "p.pt")
    np.testing.assert_array_equal(new.transform(Xi), fitted.transform(Xi))


def test_checkpoint_callback_files_reload_through_load_params(tmp_path):
    from skorch.callbacks import Checkpoint

    X, y = _blobs()
    checkpoint = Checkpoint(dirname=str(tmp_path), monitor=None)
    emb = MetricEmbedder(callbacks=[checkpoint], **FAST).fit(X, y)
    new = MetricEmbedder(**FAST).initialize()
    new.load_params(checkpoint=Checkpoint(dirname=str(tmp_path)))
    np.testing.assert_array_equal(new.transform(X), emb.transform(X))
