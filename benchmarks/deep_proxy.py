"""Proxy (classification-based) losses: time per forward+backward against
pytorch-metric-learning, measured in the same run on the same batches and weights.

Before a loss is timed, its value and gradient (embeddings and weights) are asserted equal to
PML's on the same batch (``RTOL``). L-Softmax and SphereFace are timed twice: without
annealing (``lambda_start=0``, the function PML computes, so checked) and with skmetric's
default annealing (λ blending, which PML does not have: timed only, and the table says so).

    python benchmarks/deep_proxy.py [--batches 256,1024] [--dim 128] [--classes 100]
                                    [--quick] [--record]

Called by ``benchmarks/deep.py --proxy`` too, which adds the training runs.
"""

import argparse
import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Run, add_common_args  # noqa: E402

PML_TWINS = {
    # ours: (PML class name, PML kwargs, our attribute, PML attribute)
    "normface": ("NormalizedSoftmaxLoss", dict(temperature=1 / 16.0), "W", "W"),
    "large_margin_softmax": ("LargeMarginSoftmaxLoss", dict(margin=4, scale=1), "W", "W"),
    "large_margin_softmax (annealed)": ("LargeMarginSoftmaxLoss", dict(margin=4, scale=1),
                                        "W", "W"),
    "sphereface": ("SphereFaceLoss", dict(margin=4, scale=1), "W", "W"),
    "sphereface (annealed)": ("SphereFaceLoss", dict(margin=4, scale=1), "W", "W"),
    "cosface": ("CosFaceLoss", dict(margin=0.35, scale=64), "W", "W"),
    "arcface": ("ArcFaceLoss", dict(margin=math.degrees(0.5), scale=64), "W", "W"),
    "subcenter_arcface": ("SubCenterArcFaceLoss",
                          dict(margin=math.degrees(0.5), scale=64, sub_centers=3), "W", "W"),
    "proxy_nca": ("ProxyNCALoss", dict(softmax_scale=1), "proxies", "proxies"),
    "proxy_anchor": ("ProxyAnchorLoss", dict(margin=0.1, alpha=32), "proxies", "proxies"),
    "soft_triple": ("SoftTripleLoss", dict(centers_per_class=10), "centers", "fc"),
}
OUR_KWARGS = {"normface": dict(scale=16.0), "soft_triple": dict(centers_per_class=10),
              "large_margin_softmax": dict(lambda_start=0.0),
              "sphereface": dict(lambda_start=0.0)}
# skmetric's default λ annealing: a different function from PML's, so timed only.
ANNEALED = {"large_margin_softmax (annealed)", "sphereface (annealed)"}
RTOL, ATOL = 1e-4, 1e-6


def time_pair(fn_a, fn_b, repeats):
    """Best-of-``repeats`` seconds of two functions, run interleaved so that load from
    other processes hits both alike."""
    fn_a(), fn_b()  # warm-up
    best_a = best_b = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn_a()
        mid = time.perf_counter()
        fn_b()
        best_a, best_b = min(best_a, mid - start), min(best_b, time.perf_counter() - mid)
    return best_a, best_b


def _step(loss, emb, labels):
    def run():
        e = emb.detach().requires_grad_(True)
        loss.zero_grad(set_to_none=True)
        loss(e, labels).backward()
    return run


def _value_and_grads(loss, emb, labels, attr):
    e = emb.detach().clone().requires_grad_(True)
    loss.zero_grad(set_to_none=True)
    value = loss(e, labels)
    value.backward()
    return value.item(), e.grad.numpy(), getattr(loss, attr).grad.numpy()


def check_twins(run, name, ours, pml, ours_attr, pml_attr, emb, labels):
    """Same value and gradients (embeddings, weights) as PML from the same weights."""
    v0, ge0, gw0 = _value_and_grads(ours, emb, labels, ours_attr)
    v1, ge1, gw1 = _value_and_grads(pml, emb, labels, pml_attr)
    run.check_close(f"{name}, batch {len(emb)}: loss value vs PML", v0, v1, RTOL, ATOL)
    run.check_close(f"{name}, batch {len(emb)}: embedding gradient vs PML", ge0, ge1, RTOL,
                    ATOL)
    run.check_close(f"{name}, batch {len(emb)}: weight gradient vs PML", gw0, gw1, RTOL, ATOL)


def run_proxy_timing(batches=(256, 1024), dim=128, n_classes=100, repeats=10, run=None,
                     names=None):
    """Return a markdown table of our time, PML's time and their ratio per loss/batch."""
    from pytorch_metric_learning import losses as pml_losses

    from skmetric.deep.losses import get_loss

    run = run if run is not None else Run("deep_proxy", quick=True)
    torch.manual_seed(0)
    rows = []
    for name, (pml_name, pml_kwargs, ours_attr, pml_attr) in PML_TWINS.items():
        if names is not None and name not in names:
            continue
        ours = get_loss(name.split(" ")[0], num_classes=n_classes, embedding_size=dim,
                        **OUR_KWARGS.get(name, {}))
        pml = getattr(pml_losses, pml_name)(num_classes=n_classes, embedding_size=dim,
                                            **pml_kwargs)
        getattr(pml, pml_attr).data = getattr(ours, ours_attr).data.clone()
        for batch in batches:
            emb = torch.randn(batch, dim)
            labels = torch.randint(0, n_classes, (batch,))
            if name in ANNEALED:
                run.note(f"{name}: λ-annealed, not PML's function; timed, not compared")
                checked = "no (annealing)"
            else:
                check_twins(run, name, ours, pml, ours_attr, pml_attr, emb, labels)
                checked = "yes"
            t_ours, t_pml = time_pair(_step(ours, emb, labels), _step(pml, emb, labels),
                                      repeats)
            rows.append([name, batch, f"{1e3 * t_ours:.2f}", f"{1e3 * t_pml:.2f}",
                         f"{t_ours / t_pml:.2f}", checked])
    return run.table("proxy_timing", "Proxy losses, forward + backward",
                     ["loss", "batch", "skmetric (ms)", "PML (ms)", "ratio",
                      "equal to PML (value, gradients)"], rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", default="256,1024")
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=10)
    add_common_args(parser)
    args = parser.parse_args(argv)
    run = Run("deep_proxy", args)
    batches = [int(b) for b in args.batches.split(",")]
    if args.quick:
        batches, args.repeats = [64], 2
    print(run_proxy_timing(batches, args.dim, args.classes, args.repeats, run=run))
    run.finish()


if __name__ == "__main__":
    main()
