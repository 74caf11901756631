"""Saved models record the versions that wrote them and warn when loaded under others.

Pickles of every public estimator (``skmetric._persistence.VersionedStateMixin``) and the deep
embedders' ``save_params`` files carry the versions of skmetric and scikit-learn (the
embedders: torch and skorch too); loading under other versions, or a model saved before the
record existed, warns with ``skmetric.exceptions.InconsistentVersionWarning``, a subclass of
scikit-learn's. scikit-learn's own estimator checks (``check_estimators_pickle`` among them)
run on every estimator in tests/test_sklearn_compat.py.
"""

import copy
import importlib.metadata
import pickle
import warnings

import numpy as np
import pytest
import sklearn
import sklearn.exceptions
from estimator_registry import TUPLE_LEARNERS, all_instances
from sklearn.base import clone
from sklearn.datasets import load_iris

import skmetric
from skmetric._persistence import VERSIONS_KEY, VersionedStateMixin
from skmetric.exceptions import InconsistentVersionWarning

INSTANCES = all_instances() + [factory() for _, factory in TUPLE_LEARNERS.values()]
IDS = [type(est).__name__ for est in INSTANCES]


def _load_warnings(data):
    """Unpickle ``data``; the estimator and the version warnings it gave."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = pickle.loads(data)
    return loaded, [w for w in caught if issubclass(w.category, InconsistentVersionWarning)]


def _silent_round_trip(obj):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return pickle.loads(pickle.dumps(obj))


@pytest.mark.parametrize("est", INSTANCES, ids=IDS)
def test_every_estimator_warns_when_unpickled_under_another_skmetric(est, monkeypatch):
    saved_with = skmetric.__version__
    data = pickle.dumps(est)
    monkeypatch.setattr(skmetric, "__version__", "99.0.0")
    loaded, caught = _load_warnings(data)
    # One warning for the estimator, one for each skmetric estimator among its parameters
    # (MetricKNeighborsClassifier's metric_learner).
    nested = [p for p in est.get_params().values() if isinstance(p, VersionedStateMixin)]
    assert len(caught) == 1 + len(nested), [str(w.message) for w in caught]
    assert caught[-1].message.estimator_name == type(est).__name__
    for w in caught:
        assert w.message.saved_versions["skmetric"] == saved_with
        assert w.message.current_versions["skmetric"] == "99.0.0"
    assert VERSIONS_KEY not in vars(loaded)  # the record is not left as an attribute
    assert sorted(vars(loaded)) == sorted(vars(est))


@pytest.mark.parametrize("est", INSTANCES, ids=IDS)
def test_same_versions_load_silently_and_params_are_untouched(est):
    loaded = _silent_round_trip(est)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        copied = copy.deepcopy(est)  # deepcopy goes through __getstate__/__setstate__ too
    for other in (loaded, copied, clone(est)):
        assert type(other) is type(est)
        assert VERSIONS_KEY not in vars(other)
        assert repr(other) == repr(est)
        assert other.get_params().keys() == est.get_params().keys()


def test_fitted_learner_round_trip_and_message(monkeypatch):
    X, y = load_iris(return_X_y=True)
    nca = skmetric.NCA(max_iter=5).fit(X, y)
    data = pickle.dumps(nca)
    state = nca.__getstate__()
    assert state[VERSIONS_KEY] == {"skmetric": skmetric.__version__,
                                   "scikit-learn": sklearn.__version__}
    assert np.array_equal(_silent_round_trip(nca).transform(X), nca.transform(X))

    monkeypatch.setattr(skmetric, "__version__", "0.0.1")
    loaded, caught = _load_warnings(data)
    assert np.array_equal(loaded.transform(X), nca.transform(X))  # a warning, still loaded
    (w,) = caught
    assert w.filename == __file__  # attributed to the caller of pickle.loads
    message = str(w.message)
    # Only the package that differs is named, with both versions and what to do.
    saved_with = state[VERSIONS_KEY]["skmetric"]
    assert message.startswith(f"NCA was saved with skmetric {saved_with} and is loaded with "
                              "skmetric 0.0.1:")
    assert "scikit-learn" not in message
    assert "results may differ" in message and "Refit it" in message
    # scikit-learn's warning class: filters set for scikit-learn's models cover it.
    assert isinstance(w.message, sklearn.exceptions.InconsistentVersionWarning)
    assert w.message.original_sklearn_version == sklearn.__version__
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", category=sklearn.exceptions.InconsistentVersionWarning)
        pickle.loads(data)
    # Picklable (an error raised from it in a joblib worker travels back).
    assert str(pickle.loads(pickle.dumps(w.message))) == message


def test_another_scikit_learn_version_warns_too(monkeypatch):
    data = pickle.dumps(skmetric.LMNN())
    # scikit-learn reads its version from sklearn.__version__ at import; skmetric reads it
    # when saving and loading.
    monkeypatch.setattr(sklearn, "__version__", "0.1.0")
    _, (w,) = _load_warnings(data)
    assert w.message.current_versions["scikit-learn"] == "0.1.0"
    assert str(w.message).startswith(
        f"LMNN was saved with scikit-learn {w.message.saved_versions['scikit-learn']} and is "
        "loaded with scikit-learn 0.1.0:")


def test_pickle_without_the_record_warns_that_versions_are_unknown():
    X, y = load_iris(return_X_y=True)
    lfda = skmetric.LFDA(k=3).fit(X, y)
    state = lfda.__getstate__()
    del state[VERSIONS_KEY]  # as written before skmetric recorded versions
    old = skmetric.LFDA.__new__(skmetric.LFDA)
    with pytest.warns(InconsistentVersionWarning,
                      match=r"LFDA was saved by a skmetric version that did not record its "
                            r"versions, and is loaded with skmetric \S+, scikit-learn") as rec:
        old.__setstate__(state)
    assert rec[0].message.saved_versions is None
    assert rec[0].message.original_sklearn_version == "unknown"
    assert np.array_equal(old.transform(X), lfda.transform(X))


def test_the_recorded_version_is_the_installed_distributions():
    # What pickles record must be the version pip installed (pyproject.toml's).
    assert skmetric.__version__ == importlib.metadata.version("skmetric")


# Deep embedders: pickles and save_params files record torch and skorch too.


@pytest.fixture(scope="module")
def embedder():
    pytest.importorskip("skorch")
    from _deep_data import blobs

    from skmetric.deep import MetricEmbedder

    X, y = blobs()
    emb = MetricEmbedder(max_epochs=1, batch_size=16, samples_per_class=4, embedding_dim=4,
                         random_state=0, verbose=0).fit(X, y)
    return emb, X


def test_embedder_pickle_records_torch_and_skorch(embedder, monkeypatch):
    import skorch
    import torch

    emb, X = embedder
    recorded = emb.__getstate__()[VERSIONS_KEY]
    assert recorded == {"skmetric": skmetric.__version__, "scikit-learn": sklearn.__version__,
                        "torch": str(torch.__version__), "skorch": skorch.__version__}
    data = pickle.dumps(emb)
    assert np.array_equal(_silent_round_trip(emb).transform(X), emb.transform(X))
    monkeypatch.setattr(torch, "__version__", "1.0.0")
    loaded, (w,) = _load_warnings(data)
    assert str(w.message).startswith(
        f"MetricEmbedder was saved with torch {recorded['torch']} and is loaded with "
        "torch 1.0.0:")
    assert np.array_equal(loaded.transform(X), emb.transform(X))


def test_embedder_params_file_records_versions_and_load_params_warns(embedder, tmp_path,
                                                                      monkeypatch):
    import torch

    from skmetric.deep import MetricEmbedder
    from skmetric.deep._embedder import _STATE_KEY

    emb, X = embedder
    path = tmp_path / "params.pt"
    emb.save_params(f_params=path)
    # Plain Python strings: the file still loads with torch.load(weights_only=True).
    metadata = torch.load(path, weights_only=True)._metadata[_STATE_KEY]
    assert metadata["versions"] == emb.__getstate__()[VERSIONS_KEY]

    def load():
        new = MetricEmbedder(embedding_dim=4, verbose=0).initialize()
        new.load_params(f_params=path)
        assert np.array_equal(new.transform(X), emb.transform(X))
        assert not hasattr(new, "versions")  # the record is not a fitted attribute
        return new

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load()
    monkeypatch.setattr(skmetric, "__version__", "99.0.0")
    with pytest.warns(InconsistentVersionWarning,
                      match=rf"MetricEmbedder was saved with skmetric "
                            rf"{metadata['versions']['skmetric']} and is loaded with skmetric "
                            r"99\.0\.0: .*Refit it") as rec:
        load()
    assert len(rec) == 1

    # A file written before the record: loads, saying the versions are unknown.
    monkeypatch.setattr(skmetric, "__version__", metadata["versions"]["skmetric"])
    state_dict = torch.load(path, weights_only=True)
    del state_dict._metadata[_STATE_KEY]["versions"]
    torch.save(state_dict, path)
    with pytest.warns(InconsistentVersionWarning, match="did not record its versions"):
        load()
