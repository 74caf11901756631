"""Kill tests for the miner base class and the loss/miner registries (seventh session).

``deep/miners/_base.py`` (``BaseMiner``): its stored parameters, its default distance (PML
2.9's miners default to ``LpDistance(p=2, power=1, normalize_embeddings=True)``, the
normalised Euclidean distance) and its ``repr``, whose documented form is
``Name(param=value, ...)`` over the public attributes, without the distance object ``dist``.
Each test was seen to fail on the surviving mutant it names, planted by hand (see
tests/README.md, "the loss and miner registries"). The last test pins the score of
``scripts/mutation.py``: a mutant that no test covers counts as a survivor.
"""

import warnings

import pytest
import torch

from skmetric.deep.miners import BaseMiner, BatchHardMiner, TripletMarginMiner


class _Recorder(BaseMiner):
    """A miner that mines nothing; it holds a private cache and one public parameter."""

    def __init__(self, k=3, **kwargs):
        super().__init__(**kwargs)
        self.k = k
        self._cache = None

    def mine(self, embeddings, labels, ref_emb, ref_labels):
        empty = torch.empty(0, dtype=torch.long)
        return empty, empty, empty


def test_default_distance_is_pml_normalised_euclidean():
    # Kills distance="euclidean" -> "EUCLIDEAN" as BaseMiner's default: the stored name
    # must be the canonical one, and the matrix PML's default LpDistance.
    from pytorch_metric_learning.distances import LpDistance

    miner = _Recorder()
    assert miner.distance == "euclidean"
    assert miner.normalize is True
    x = torch.tensor([[3.0, 4.0], [1.0, 0.0], [0.0, -2.0]], dtype=torch.float64)
    torch.testing.assert_close(miner.dist(x, None), LpDistance()(x))
    # By hand: the unit vectors (0.6, 0.8), (1, 0), (0, -1).
    assert miner.dist(x, None)[0, 1].item() == pytest.approx((0.4**2 + 0.8**2) ** 0.5)


def test_parameters_are_stored_canonical():
    # Kills self.distance = None and self.normalize = None.
    miner = _Recorder(distance="dot", normalize=False)
    assert miner.distance == "dot"
    assert miner.normalize is False
    x = torch.tensor([[3.0, 4.0], [1.0, 2.0]], dtype=torch.float64)
    # Unnormalised dot products, by hand.
    torch.testing.assert_close(miner.dist(x, None),
                               torch.tensor([[25.0, 11.0], [11.0, 5.0]], dtype=torch.float64))
    with pytest.warns(FutureWarning, match="cosine_similarity"):
        renamed = _Recorder(distance="cosine")
    assert renamed.distance == "cosine_similarity"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert TripletMarginMiner(distance="sqeuclidean", normalize=False).normalize is False


def test_repr_lists_public_parameters_only():
    # Kills every __repr__ mutant: the separator, the private/`dist` filter (each half and
    # the `and`), the class name, vars(self).
    assert repr(_Recorder(k=5, distance="dot", normalize=False)) == (
        "_Recorder(distance='dot', normalize=False, k=5)")
    assert repr(BatchHardMiner()) == "BatchHardMiner(distance='euclidean', normalize=True)"


def _mutation_script():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "scripts" / "mutation.py"
    spec = importlib.util.spec_from_file_location("_mutation_script", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_mutation_score_counts_uncovered_mutants_as_survivors(tmp_path):
    # scripts/mutation.py scored killed / (killed + survived) and left out mutmut's "no
    # tests" mutants (exit code 33), so BaseMiner's first run read 92.5 % (37 / 40) while 12
    # __repr__ mutants were never run: 37 / 52 = 71.2 %, as tests/README.md defines the score.
    script = _mutation_script()
    module = "skmetric/x.py"
    (tmp_path / "mutants" / "skmetric").mkdir(parents=True)
    codes = {"skmetric.x.x_f__mutmut_1": 1, "skmetric.x.x_f__mutmut_2": 0,
             "skmetric.x.x_f__mutmut_3": 33, "skmetric.x.x_f__mutmut_4": 33}
    (tmp_path / "mutants" / (module + ".meta")).write_text(
        __import__("json").dumps({"exit_code_by_key": codes}))
    before = script.summarise(tmp_path, module, 1.0)
    # 'survived' counts the uncovered survivors too (eighth session; 'survived_no_tests' says
    # how many of them no test covers).
    assert (before["killed"], before["survived"], before["survived_no_tests"]) == (1, 3, 2)
    assert before["score"] == 0.25
    assert "| 1 | 3 | 0 | 25.0 % |" in script.row(before)
    # A re-check that kills one of the three survivors: 2 of 4 killed, 2 left.
    recheck = dict(before, killed=1, survived=2, survived_no_tests=1)
    merged = script.merge(before, recheck)
    assert (merged["killed"], merged["survived"], merged["score"]) == (2, 2, 0.5)
    assert "| 2 | 2 | 0 | 50.0 % |" in script.row(merged)
