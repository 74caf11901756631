"""skmetric.metrics as a package (issue #18): the public names and signatures of the
single module it replaced, one prepared reference set per call, one shared core."""

import inspect

import numpy as np
import pytest

import skmetric
from skmetric import metrics as m
from skmetric._compute import _engine, _faiss

# The public API of skmetric/metrics.py before the split (recorded from that module).
PUBLIC = {
    "VerificationROC", "ami_kmeans", "best_threshold_accuracy", "equal_error_rate",
    "make_pair_scorer", "make_retrieval_scorer", "map_at_r", "mean_average_precision",
    "nmi_kmeans", "precision_at_k", "r_precision", "recall_at_k", "retrieval_report",
    "tar_at_far", "verification_roc",
}
SIGNATURES = {
    "ami_kmeans": (
        "(embeddings, labels, n_clusters=None, *, random_state=None, n_init='auto', "
        "average_method='arithmetic')"),
    "best_threshold_accuracy": (
        "(scores, y, *, greater_is_similar=True)"),
    "equal_error_rate": (
        "(scores, y, *, greater_is_similar=True, return_threshold=False)"),
    "make_pair_scorer": (
        "(name, **kwargs)"),
    "make_retrieval_scorer": (
        "(name, **kwargs)"),
    "map_at_r": (
        "(query, query_labels, reference=None, reference_labels=None, *, max_k=None, "
        "metric='euclidean', M=None, L=None, ref_includes_query=False, average='query', "
        "chunk_size=None, working_memory=None, backend='auto')"),
    "mean_average_precision": (
        "(query, query_labels, reference=None, reference_labels=None, *, "
        "metric='euclidean', M=None, L=None, ref_includes_query=False, average='query', "
        "working_memory=None, backend='auto')"),
    "nmi_kmeans": (
        "(embeddings, labels, n_clusters=None, *, random_state=None, n_init='auto', "
        "average_method='arithmetic')"),
    "precision_at_k": (
        "(query, query_labels, reference=None, reference_labels=None, k=1, *, "
        "metric='euclidean', M=None, L=None, ref_includes_query=False, average='query', "
        "chunk_size=None, working_memory=None, backend='auto')"),
    "r_precision": (
        "(query, query_labels, reference=None, reference_labels=None, *, max_k=None, "
        "metric='euclidean', M=None, L=None, ref_includes_query=False, average='query', "
        "chunk_size=None, working_memory=None, backend='auto')"),
    "recall_at_k": (
        "(query, query_labels, reference=None, reference_labels=None, k=1, *, "
        "metric='euclidean', M=None, L=None, ref_includes_query=False, average='query', "
        "chunk_size=None, working_memory=None, backend='auto')"),
    "retrieval_report": (
        "(query, query_labels, reference=None, reference_labels=None, *, k=(1, 5, 10), "
        "max_k=None, mean_ap=False, metric='euclidean', M=None, L=None, "
        "ref_includes_query=False, average='query', chunk_size=None, working_memory=None,"
        " backend='auto')"),
    "tar_at_far": (
        "(scores, y, far=0.001, *, greater_is_similar=True)"),
    "verification_roc": (
        "(scores, y, *, greater_is_similar=True, drop_intermediate=True)"),
}
SINGLE_METRICS = ["precision_at_k", "recall_at_k", "r_precision", "map_at_r",
                  "mean_average_precision"]


def test_public_names_and_signatures_are_those_of_the_module():
    assert set(m.__all__) == PUBLIC
    assert {name for name in dir(m) if not name.startswith("_")} == PUBLIC
    for name, signature in SIGNATURES.items():
        assert str(inspect.signature(getattr(m, name))) == signature, name
    assert skmetric.make_retrieval_scorer is m.make_retrieval_scorer
    assert skmetric.make_pair_scorer is m.make_pair_scorer


@pytest.mark.parametrize("name", [*SINGLE_METRICS, "retrieval_report"])
def test_shared_parameters_are_documented_in_every_retrieval_function(name):
    doc = getattr(m, name).__doc__
    assert "{shared}" not in doc
    for param in inspect.signature(getattr(m, name)).parameters:
        assert f"\n    {param} :" in doc or f" {param}," in doc or f", {param}" in doc, param


def _count(monkeypatch, cls, method="__init__"):
    calls = []
    real = getattr(cls, method)

    def spy(self, *args, **kwargs):
        calls.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(cls, method, spy)
    return calls


@pytest.mark.parametrize("call", [
    lambda X, y: m.r_precision(X, y, working_memory=2),
    lambda X, y: m.map_at_r(X, y, X, y, ref_includes_query=True, working_memory=2),
    lambda X, y: m.precision_at_k(X[:500], y[:500], X, y, k=1, working_memory=0.01),
    lambda X, y: m.mean_average_precision(X, y, working_memory=2),
    lambda X, y: m.retrieval_report(X, y, k=(1, 5), mean_ap=True, working_memory=2),
], ids=["r_precision", "map_at_r-ref_includes_query", "precision_at_k-reference",
        "mean_average_precision", "retrieval_report-mean_ap"])
def test_the_reference_set_is_prepared_once_per_call(monkeypatch, call):
    """Blocks of queries walk one prepared reference set: before the compute layer, each
    block called the public kneighbors, which validated and prepared the references anew
    (13 times for one r_precision on 20,000 x 16, 195 times with working_memory=64)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2000, 16))
    y = rng.integers(0, 2, 2000)
    expected = call(X, y)
    preparations = _count(monkeypatch, _engine.Prepared)
    searches = _count(monkeypatch, _engine.Prepared, "kneighbors")
    blocks = _count(monkeypatch, _engine.Prepared, "distance_block")
    result = call(X, y)
    assert len(preparations) == 1
    assert len(searches) + len(blocks) > 2  # several blocks of queries, one preparation
    if isinstance(expected, dict):
        assert result.keys() == expected.keys()
        for key in expected:
            np.testing.assert_array_equal(result[key], expected[key])
    else:
        assert result == expected


def test_the_faiss_index_is_built_once_for_all_blocks_of_queries(monkeypatch):
    pytest.importorskip("faiss")
    rng = np.random.default_rng(1)
    X = rng.standard_normal((600, 8)).astype(np.float32)
    y = rng.integers(0, 3, 600)
    builds = _count(monkeypatch, _faiss._FaissSearch)
    searches = _count(monkeypatch, _engine.Prepared, "kneighbors")
    faiss_value = m.map_at_r(X, y, working_memory=0.5, backend="faiss")
    assert len(builds) == 1 and len(searches) > 1
    assert faiss_value == pytest.approx(m.map_at_r(X, y, working_memory=0.5), abs=1e-6)


def test_single_metrics_are_the_report_computed_by_one_core():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((120, 5))
    y = rng.integers(0, 4, 120)
    report = m.retrieval_report(X, y, k=(1, 3), mean_ap=True, max_k=10)
    assert m.precision_at_k(X, y, k=3) == report["precision_at_3"]
    assert m.recall_at_k(X, y, k=1) == report["recall_at_1"]
    assert m.r_precision(X, y, max_k=10) == report["r_precision"]
    assert m.map_at_r(X, y, max_k=10) == report["map_at_r"]
    assert m.mean_average_precision(X, y) == report["mean_average_precision"]
