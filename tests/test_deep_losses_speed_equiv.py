"""The faster code paths of the issue-17 speed work compute what the plain paths compute, and
benchmarks/deep_losses.py's memory/time rule refuses what would not fit.

The losses' agreement with pytorch-metric-learning is tested in test_deep_losses_batch_*.py;
here each shortcut (all pairs counted instead of listed, cosines by a product of unit rows,
index lists by torch.where on the CPU) is compared with the path it short-cuts, on float64
with and without reference embeddings, so that a slip in the shortcut alone fails.
"""

import math
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

from skmetric.deep import _sync  # noqa: E402
from skmetric.deep._tuples import all_pairs  # noqa: E402
from skmetric.deep.losses import (  # noqa: E402
    AngularLoss,
    IntraPairVarianceLoss,
    ManifoldLoss,
    P2SGradLoss,
)

sys.path.append(str(Path(__file__).resolve().parents[1] / "benchmarks"))


def _batch(seed, n=24, dim=5, classes=6):
    g = torch.Generator().manual_seed(seed)
    emb = torch.randn(n, dim, generator=g, dtype=torch.float64)
    return emb, torch.arange(n) % classes


def _value_and_grad(loss, emb, labels, indices=None, ref=None):
    e = emb.clone().requires_grad_(True)
    r = None if ref is None else ref[0].clone().requires_grad_(True)
    value = loss(e, labels, indices, *(() if ref is None else (r, ref[1])))
    value.backward()
    return value.detach(), e.grad, None if r is None else r.grad


def _assert_same_path(loss, seed):
    """All pairs counted (indices None) == all pairs listed (explicit tuple), also on
    batches without negative pairs and without positive pairs."""
    emb, y = _batch(seed)
    ref = _batch(seed + 50, n=17)
    single, distinct = torch.zeros_like(y), torch.arange(len(y))
    for r, labels in ((None, y), (ref, y), (None, single), (None, distinct)):
        listed = all_pairs(labels, None if r is None else r[1])
        fast = _value_and_grad(loss, emb, labels, None, r)
        slow = _value_and_grad(loss, emb, labels, listed, r)
        for a, b in zip(fast, slow, strict=True):
            if a is not None:
                torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("distance", ["cosine_similarity", "euclidean"])
@pytest.mark.parametrize("seed", [0, 1])
def test_intra_pair_variance_all_pairs_path_equals_listed_pairs(seed, distance):
    _assert_same_path(IntraPairVarianceLoss(0.05, 0.2, distance=distance), seed)


@pytest.mark.parametrize("seed", [0, 1])
def test_angular_all_pairs_path_equals_listed_pairs(seed):
    _assert_same_path(AngularLoss(35.0), seed)


def test_angular_is_zero_without_negatives():
    emb, _ = _batch(0, n=6)
    value, grad, _ = _value_and_grad(AngularLoss(), emb, torch.zeros(6, dtype=torch.long))
    assert value == 0 and torch.all(grad == 0)


def test_manifold_context_equals_broadcast_cosines():
    """The context term by unit rows equals F.cosine_similarity's (n, K) broadcast."""
    torch.manual_seed(0)
    loss = ManifoldLoss(num_classes=5, embedding_size=4).double()
    emb, _ = _batch(3, n=15, dim=4)
    labels = torch.arange(15) % 5
    e = emb.clone().requires_grad_(True)
    value = loss(e, labels)
    value.backward()
    # The reference: the former formula, written out.
    e2 = emb.clone().requires_grad_(True)
    walk = loss._random_walk(torch.cat([e2, loss.proxies]))
    n = len(e2)
    from skmetric.deep.losses.manifold import _hard_proxy_term

    context = F.cosine_similarity(walk[:n], walk[n:, None], dim=-1).T
    ref = (_hard_proxy_term(walk[:n, n:], labels, loss.margin)
           + loss.lambda_c * _hard_proxy_term(context, labels, loss.margin))
    ref.backward()
    torch.testing.assert_close(value, ref, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(e.grad, e2.grad, rtol=1e-10, atol=1e-12)


def test_p2sgrad_equals_mse_to_one_hot_of_clipped_cosines():
    torch.manual_seed(0)
    loss = P2SGradLoss(num_classes=4, embedding_size=3).double()
    loss.W.data.mul_(3.0)  # not unit: the loss must renormalise the columns
    emb, _ = _batch(1, n=8, dim=3)
    labels = torch.arange(8) % 4
    e = emb.clone().requires_grad_(True)
    value = loss(e, labels)
    # renormalised (renorm's 1e-7 guard leaves the norms 1 - 3e-8 here, as in PML)
    unit = loss.W.detach()
    torch.testing.assert_close(unit.norm(dim=0), torch.ones(4, dtype=torch.float64),
                               rtol=0, atol=1e-7)
    cos = (F.normalize(emb, dim=1) @ unit).clamp(-1, 1)
    ref = ((cos - F.one_hot(labels, 4)) ** 2).mean()
    torch.testing.assert_close(value.detach(), ref, rtol=1e-12, atol=1e-14)


def test_where_on_the_cpu_lists_row_major_contiguous_indices():
    mask = torch.rand(7, 9, generator=torch.Generator().manual_seed(0)) > 0.5
    other = ~mask
    a, b, c, d, extra = _sync.where(mask, other, extra=(torch.tensor(5),))
    ref = torch.nonzero(mask)
    assert torch.equal(a, ref[:, 0]) and torch.equal(b, ref[:, 1])
    assert torch.equal(torch.stack([c, d], 1), torch.nonzero(other))
    assert extra == 5 and all(t.is_contiguous() for t in (a, b, c, d))
    (rows, cols) = _sync.nonzero_static(mask, int(mask.sum()))
    assert torch.equal(torch.stack([rows, cols], 1), ref)


# -- benchmarks/deep_losses.py: the memory/time rule ------------------------------------------

def _budget(memory_mib=1000.0, seconds=10.0):
    deep_losses = pytest.importorskip("deep_losses")
    return deep_losses._Budget(memory_mib, seconds)


def test_budget_refuses_a_side_whose_quadratic_memory_would_not_fit():
    budget = _budget(memory_mib=1000.0)
    probed = []

    def probe(b):  # memory grows as batch^2: 1 MiB at 64
        probed.append(b)
        return (b / 64) ** 2, 0.01 * b / 64

    assert budget.refusal(("loss", "x", "pml"), 1024, probe) is None  # 256 MiB at 1024
    assert probed == [16, 32, 64, 128, 256, 512]  # probed upwards, each under the rule
    reason = budget.refusal(("loss", "x", "pml"), 4096, probe)
    assert reason == "n/a — would need ~4.0 GiB of memory, limit 1000 MiB"
    assert probed == [16, 32, 64, 128, 256, 512]  # estimated from 256 and 512: no probe
    # A fresh side asked for 4096 directly: probed up to 1024, not at 2048 (over the limit).
    probed.clear()
    reason = budget.refusal(("loss", "y", "pml"), 4096, probe)
    assert probed == [16, 32, 64, 128, 256, 512, 1024]
    assert reason == "n/a — would need more than ~1.0 GiB of memory, limit 1000 MiB"


def test_budget_extrapolates_from_the_measured_batches_and_refuses_slow_steps():
    budget = _budget(memory_mib=1e6, seconds=10.0)
    key = ("miner", "angular", "skmetric")
    budget.record(key, 128, 5.0, 0.5)
    budget.record(key, 256, 40.0, 4.0)  # cubic in both

    def no_probe(b):
        raise AssertionError(f"probed {b} although two batches were measured")

    reason = budget.refusal(key, 1024, no_probe)
    assert reason == "n/a — a step would take ~256 s, limit 10 s"
    assert math.isclose(budget.memory_mib, 1e6)
    assert budget.refusal(key, 300, no_probe) is None  # ~6.4 s


def test_merged_runs_keep_every_row_once_in_batch_then_case_order(tmp_path):
    deep_losses = pytest.importorskip("deep_losses")
    import json

    def run(date, rows, load):
        return {"benchmark": "deep_losses", "date": date, "command": f"run {date}",
                "quick": False, "machine": {"nproc": 2}, "load_before": load,
                "load_after": load, "checks": [{"what": date, "ok": True}], "notes": [date],
                "tables": [{"key": "loss", "title": "loss + miner", "columns": ["case"],
                            "rows": rows, "caption": None}]}

    paths = []
    for i, data in enumerate([run("2026-01-02", [["circle", "1024", "a"]], [3, 2, 1]),
                              run("2026-01-01", [["circle", "256", "b"],
                                                 ["contrastive", "256", "c"]], [1, 5, 1]),
                              run("2026-01-03", [["contrastive", "256", "d"]], [0, 0, 0])]):
        paths.append(tmp_path / f"{i}.json")
        paths[-1].write_text(json.dumps(data))
    merged = deep_losses.merge_runs(paths)
    rows = merged["tables"][0]["rows"]
    assert rows == [["contrastive", "256", "d"], ["circle", "256", "b"],
                    ["circle", "1024", "a"]]
    assert merged["date"] == "2026-01-01" and merged["load_before"] == [3, 5, 1]
    assert len(merged["checks"]) == 3 and merged["notes"] == ["2026-01-01", "2026-01-02",
                                                               "2026-01-03"]
