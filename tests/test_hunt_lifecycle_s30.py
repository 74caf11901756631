"""Estimator lifecycle and first hour: the demo's options, verbose progress, reloading.

Each test pins a bug found in the thirtieth session's hunt (the docstring or a comment says
what the old behaviour was).
"""

import pickle
import re
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_iris
from sklearn.exceptions import NotFittedError
from sklearn.preprocessing import StandardScaler

from skmetric import LFDA, LMNN, MLKR, NCA, ITML_Supervised, KernelPCA, _demo
from skmetric._sklearn_compat import InvalidParameterError

# -- the demo's options ------------------------------------------------------------------


@pytest.mark.parametrize("args, match", [
    # Was "ValueError: max() arg is an empty sequence", a traceback.
    (["--datasets", ","], r"No dataset given; choose at least one from \['wine'"),
    # Each of these ran every fit and failed every row of the table, for minutes on digits.
    (["--datasets", "iris", "--folds", "51"],
     r"--folds 51 is more than the 50 samples of iris's smallest class"),
    (["--datasets", "iris", "--folds", "2", "--neighbors", "76"],
     r"--neighbors 76 is more than the 75 training samples of iris's smallest training fold"),
    (["--datasets", "iris", "--random-state", "-1"],
     r"--random-state must be in \[0, 2\*\*32 - 1\] \(a NumPy seed\); got -1"),
    (["--datasets", "iris", "--random-state", str(2**32)], r"--random-state must be in"),
    # Was a FileNotFoundError traceback, after the whole run.
    (["--datasets", "iris", "--output", "/no/such/folder/table.md"],
     r"--output /no/such/folder/table.md: its folder does not exist"),
])
def test_demo_refuses_options_that_would_fail_before_running_anything(args, match, capsys,
                                                                       monkeypatch):
    def run_demo(*args, **kwargs):
        raise AssertionError("the demo ran its fits on options it should have refused")

    monkeypatch.setattr(_demo, "run_demo", run_demo)
    with pytest.raises(SystemExit) as info:
        _demo.main(args)
    assert info.value.code == 2  # argparse's usage error
    err = capsys.readouterr().err
    assert re.search(r"python -m skmetric: error: " + match, err), err
    assert "Traceback" not in err


def test_demo_output_and_plots_paths_are_checked_first(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(_demo, "run_demo", lambda *a, **k: pytest.fail("ran"))
    a_file = tmp_path / "figs"
    a_file.write_text("")
    for args, match in [(["--output", str(tmp_path)], "is a folder; give a file name"),
                        (["--plots", str(a_file)], "is a file; give a folder")]:
        with pytest.raises(SystemExit):
            _demo.main(["--datasets", "iris", *args])
        assert match in capsys.readouterr().err


def test_demo_runs_a_repeated_name_once(monkeypatch, capsys):
    calls = []

    def run_demo(datasets, learners, *args):
        calls.append((datasets, learners))
        return []

    monkeypatch.setattr(_demo, "run_demo", run_demo)
    monkeypatch.setattr(_demo, "format_table", lambda *a: "")
    # Each repeat was fitted again and printed as a second row of the table.
    assert _demo.main(["--datasets", "iris,wine,iris", "--learners", "LFDA,NCA,LFDA",
                       "--folds", "2"]) == 0
    assert calls == [(["iris", "wine"], ["LFDA", "NCA"])]
    # No learner at all still measures the Euclidean baselines, as before.
    assert _demo.main(["--datasets", "iris", "--learners", ""]) == 0
    assert calls[-1] == (["iris"], [])
    capsys.readouterr()


# -- verbose progress of prior_strength='auto' -------------------------------------------

def _iris(n_per_class=20):
    X, y = load_iris(return_X_y=True)
    keep = np.r_[:n_per_class, 50:50 + n_per_class, 100:100 + n_per_class]
    return StandardScaler().fit_transform(X[keep]), y[keep]


@pytest.mark.parametrize("learner, name, first_row", [
    (LMNN(prior_strength="auto", max_iter=4, random_state=0), "LMNN", r"\[LMNN\] +iter "),
    (MLKR(prior_strength="auto", max_iter=4), "MLKR", r"\[MLKR\] iter +1 "),
    (ITML_Supervised(max_iter=3, random_state=0), "ITML_Supervised",
     r"\[ITML_Supervised\] sweep 1:"),
    (NCA(max_iter=3, random_state=0), "NCA", r"\[NCA\] +iter "),
])
def test_verbose_auto_fits_say_what_they_choose_and_print_one_final_fit(learner, name,
                                                                        first_row, capsys):
    # LMNN and ITML_Supervised printed the iterations of every inner fit, each like a fit of
    # its own (four tables for one fit), MLKR nothing until its final fit; none said what
    # ran or what it chose (only NCA did, by a print of its own).
    X, y = _iris()
    learner = clone(learner).set_params(verbose=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        learner.fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    lines = [line for line in lines if not line.startswith("[MLKR] fitting ")]
    assert re.fullmatch(rf"\[{name}\] choosing prior_strength among inf, .*0 by inner "
                        r"3-fold CV", lines[0]), lines[0]
    shown = f"{learner.prior_strength_:g}"
    assert re.fullmatch(rf"\[{name}\] prior_strength 'auto': inf: -?[\d.]+, .* -> {shown}",
                        lines[1]), lines[1]
    assert set(re.findall(r"([\d.e+-]+|inf): ", lines[1])) == {
        f"{s:g}" for s in learner.prior_scores_} if hasattr(learner, "prior_scores_") else True
    # One final fit: its first row once (NCA may keep the prior: no row then).
    rows = [line for line in lines[2:] if re.match(first_row, line)]
    assert len(rows) == (0 if name == "NCA" and np.isinf(learner.prior_strength_) else 1)
    # Silent without verbose, the inner fits too.
    clone(learner).set_params(verbose=0).fit(X, y)
    assert capsys.readouterr().out == ""


def test_verbose_auto_says_when_the_classes_are_too_small_for_inner_folds(capsys):
    X, y = _iris(n_per_class=2)  # 2 samples per class: no 3 inner folds
    nca = NCA(max_iter=2, verbose=1).fit(X, y)
    assert capsys.readouterr().out.splitlines()[0] == (
        "[NCA] too few samples for inner 3-fold CV: prior_strength 'auto' keeps the plain "
        "objective (0)")
    assert nca.prior_strength_ == 0


# -- refitting with other parameters -----------------------------------------------------

def _fitted_names(estimator):
    return sorted(name for name in vars(estimator) if name.endswith("_"))


@pytest.mark.parametrize("learner, first, then", [
    (LFDA(), {"prior_strength": "auto"}, {"prior_strength": 0.5}),
    (LMNN(max_iter=3, random_state=0), {"prior_strength": "auto"}, {"prior_strength": 0.5}),
    (ITML_Supervised(max_iter=3, random_state=0), {"prior_strength": "auto"},
     {"prior_strength": 0}),
    (KernelPCA(n_components=2, kernel="rbf"), {}, {"n_landmarks": 10, "random_state": 0}),
    (KernelPCA(n_components=2, kernel="rbf", fit_inverse_transform=True), {},
     {"fit_inverse_transform": False}),
], ids=["LFDA", "LMNN", "ITML_Supervised", "KernelPCA-landmarks", "KernelPCA-inverse"])
def test_refit_with_other_parameters_keeps_no_fitted_attribute_of_the_first(learner, first,
                                                                          then):
    X, y = _iris()
    fitted = clone(learner).set_params(**first).fit(X, y)
    fresh = clone(learner).set_params(**{**first, **then}).fit(X, y)
    refitted = fitted.set_params(**then).fit(X, y)
    # prior_scores_ of the 'auto' fit stayed (saying 'auto' chose among strengths that a
    # fixed strength never compared); the exact KernelPCA's training samples (X_fit_) and
    # eigenvectors stayed in the landmark model, and were pickled with it.
    assert _fitted_names(refitted) == _fitted_names(fresh)
    np.testing.assert_allclose(refitted.transform(X), fresh.transform(X))


def test_a_fit_that_fails_on_its_data_leaves_the_learner_unfitted():
    X, y = _iris()
    nca = NCA(max_iter=3).fit(X, y)
    with pytest.raises(ValueError, match="NaN"):
        nca.fit(np.full_like(X, np.nan), y)
    # The old map with the new call's failure: transform went on answering with the map
    # of the earlier fit, as if the failed fit had not happened.
    with pytest.raises(NotFittedError):
        nca.transform(X)
    # Invalid parameters are refused before anything is dropped (scikit-learn's order).
    fitted = LFDA().fit(X, y)
    with pytest.raises(InvalidParameterError):
        fitted.set_params(k=-1).fit(X, y)
    assert fitted.set_params(k=None).transform(X).shape == (len(X), 4)


# -- the deep embedders' parameter files -------------------------------------------------

def _embedder(**params):
    from skmetric.deep import MetricEmbedder

    return MetricEmbedder(**{"embedding_dim": 4, "samples_per_class": 2, "batch_size": 8,
                             "max_epochs": 1, "random_state": 0, "verbose": 0, **params})


def _blobs(n=24, d=5, seed=0):
    rng = np.random.RandomState(seed)
    y = np.arange(n) % 4
    return (rng.randn(n, d) + 2 * y[:, None]).astype(np.float32), y


def test_load_params_into_a_fitted_embedder_keeps_none_of_its_fitted_state(tmp_path):
    pytest.importorskip("skorch")
    pd = pytest.importorskip("pandas")
    X, y = _blobs()
    saved = _embedder().fit(X, y)  # fitted on an array: no feature names
    saved.save_params(f_params=tmp_path / "params.pt")
    X7, y7 = _blobs(n=30, d=7, seed=1)
    columns = [f"f{i}" for i in range(7)]
    target = _embedder().fit(pd.DataFrame(X7, columns=columns), y7 + 10)
    target.load_params(f_params=tmp_path / "params.pt")
    # feature_names_in_ of the target's own fit stayed, beside the file's n_features_in_=5:
    # transform(X) warned "X does not have valid feature names", and a DataFrame of the
    # file's five columns was refused for not being named f0..f6.
    assert not hasattr(target, "feature_names_in_")
    assert target.n_features_in_ == 5 and target.input_shape_ == (5,)
    np.testing.assert_array_equal(target.classes_, saved.classes_)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(target.transform(X), saved.transform(X))
    with pytest.warns(UserWarning, match="fitted without feature names"):
        target.transform(pd.DataFrame(X, columns=list("abcde")))


def test_load_params_into_an_embedder_of_other_sizes_says_which(tmp_path):
    pytest.importorskip("skorch")
    X, y = _blobs()
    path = str(tmp_path / "params.pt")
    _embedder().fit(X, y).save_params(f_params=path)
    # Was torch's RuntimeError "Error(s) in loading state_dict for MLP: size mismatch for
    # layers.3.weight: copying a param with shape torch.Size([4, 256]) ...".
    with pytest.raises(ValueError, match=r"params\.pt' does not fit this MetricEmbedder's: it "
                       r"returns 4 dimensions, this MetricEmbedder builds a network of 8: "
                       r"construct it with embedding_dim=4\.$"):
        _embedder(embedding_dim=8).initialize().load_params(f_params=path)
    with pytest.raises(ValueError, match=r"size mismatch for layers\.\d+\.weight: .*\]\); "
                       r"construct this MetricEmbedder with the module parameters \(module, "
                       r"module__\*\)"):
        _embedder(module__hidden=(16,)).initialize().load_params(f_params=path)
    same = _embedder().initialize()
    same.load_params(f_params=path)
    assert same.transform(X).shape == (len(X), 4)


def test_a_fitted_embedder_refuses_a_device_it_cannot_use_and_stays_usable(tmp_path):
    pytest.importorskip("skorch")
    X, y = _blobs()
    emb = pickle.loads(pickle.dumps(_embedder().fit(X, y)))
    before = emb.transform(X)
    # Unpickled, the device was taken silently and transform then failed with torch's
    # AssertionError "Torch not compiled with CUDA enabled"; freshly fitted, set_params
    # raised that AssertionError itself, from skorch's re-initialisation.
    with pytest.raises(ValueError, match=r"device='cuda:99' cannot be used: .*Pass "
                       r"device='cpu'"):
        emb.set_params(device="cuda:99")
    assert emb.device == "cpu"
    np.testing.assert_array_equal(emb.transform(X), before)
    path = str(tmp_path / "params.pt")
    emb.save_params(f_params=path)
    # A misspelt device was torch's RuntimeError from inside torch.load.
    with pytest.raises(ValueError, match=r"device='gpu' cannot be used"):
        _embedder(device="gpu").initialize().load_params(f_params=path)


def test_a_fitted_loss_shows_the_parameters_it_was_given():
    pytest.importorskip("skorch")
    from skmetric.deep import losses

    X, y = _blobs()
    emb = _embedder(loss="triplet_margin", miner=None, loss__margin=0.3).fit(X, y)
    # Both printed "TripletMarginLoss(distance='cosine_similarity', normalize=True)": after
    # loss__margin=0.3 (or a grid search over it) the loss looked like the default one.
    assert re.fullmatch(r"TripletMarginLoss\(distance='cosine_similarity', normalize=True, "
                        r"margin=0\.3, random_state=\d+\)", repr(emb.loss_)), repr(emb.loss_)
    assert repr(losses.ArcFaceLoss(num_classes=3, embedding_size=4, margin=0.3)) == (
        "ArcFaceLoss(num_classes=3, embedding_size=4, margin=0.3)")  # was "ArcFaceLoss()"
    assert repr(losses.TripletMarginLoss()) == ("TripletMarginLoss(distance='euclidean', "
                                                "normalize=True)")


def test_a_subclass_keeps_what_it_sets_before_calling_fit():
    # benchmarks/lmnn_equal_work.py's pattern: a trace started in the subclass's fit and
    # filled by a hook during the fit. Only what a fit itself set is dropped on the next.
    class TracedLFDA(LFDA):
        def fit(self, X, y):
            self.calls_ = getattr(self, "calls_", 0) + 1
            return super().fit(X, y)

    X, y = _iris()
    lfda = TracedLFDA(prior_strength="auto").fit(X, y)
    assert lfda.calls_ == 1 and hasattr(lfda, "prior_scores_")
    lfda.set_params(prior_strength=0).fit(X, y)
    assert lfda.calls_ == 2 and not hasattr(lfda, "prior_scores_")
