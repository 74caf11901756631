"""Proxy (classification-based) losses: time per forward+backward against
pytorch-metric-learning, measured in the same run on the same batches and weights.

    python benchmarks/deep_proxy.py [--batches 256,1024] [--dim 128] [--classes 100]

Called by ``benchmarks/deep.py --proxy`` too, which adds the training runs.
"""

import argparse
import math
import time

import torch

PML_TWINS = {
    # ours: (PML class name, PML kwargs, our attribute, PML attribute)
    "normface": ("NormalizedSoftmaxLoss", dict(temperature=1 / 16.0), "W", "W"),
    "large_margin_softmax": ("LargeMarginSoftmaxLoss", dict(margin=4, scale=1), "W", "W"),
    "sphereface": ("SphereFaceLoss", dict(margin=4, scale=1), "W", "W"),
    "cosface": ("CosFaceLoss", dict(margin=0.35, scale=64), "W", "W"),
    "arcface": ("ArcFaceLoss", dict(margin=math.degrees(0.5), scale=64), "W", "W"),
    "subcenter_arcface": ("SubCenterArcFaceLoss",
                          dict(margin=math.degrees(0.5), scale=64, sub_centers=3), "W", "W"),
    "proxy_nca": ("ProxyNCALoss", dict(softmax_scale=1), "proxies", "proxies"),
    "proxy_anchor": ("ProxyAnchorLoss", dict(margin=0.1, alpha=32), "proxies", "proxies"),
    "soft_triple": ("SoftTripleLoss", dict(centers_per_class=10), "centers", "fc"),
}
OUR_KWARGS = {"normface": dict(scale=16.0), "soft_triple": dict(centers_per_class=10)}


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


def run_proxy_timing(batches=(256, 1024), dim=128, n_classes=100, repeats=10):
    """Return markdown table rows of our time, PML's time and their ratio per loss/batch."""
    from pytorch_metric_learning import losses as pml_losses

    from skmetric.deep.losses import get_loss

    torch.manual_seed(0)
    lines = ["| loss | batch | skmetric (ms) | PML (ms) | ratio |", "|---|---|---|---|---|"]
    for name, (pml_name, pml_kwargs, ours_attr, pml_attr) in PML_TWINS.items():
        ours = get_loss(name, num_classes=n_classes, embedding_size=dim,
                        **OUR_KWARGS.get(name, {}))
        pml = getattr(pml_losses, pml_name)(num_classes=n_classes, embedding_size=dim,
                                            **pml_kwargs)
        getattr(pml, pml_attr).data = getattr(ours, ours_attr).data.clone()
        for batch in batches:
            emb = torch.randn(batch, dim)
            labels = torch.randint(0, n_classes, (batch,))
            t_ours, t_pml = time_pair(_step(ours, emb, labels), _step(pml, emb, labels),
                                      repeats)
            lines.append(f"| {name} | {batch} | {1e3 * t_ours:.2f} | {1e3 * t_pml:.2f} | "
                         f"{t_ours / t_pml:.2f} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", default="256,1024")
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args(argv)
    batches = [int(b) for b in args.batches.split(",")]
    print(f"## Proxy losses, forward+backward on CPU (dim {args.dim}, {args.classes} classes, "
          f"torch threads {torch.get_num_threads()})\n")
    print(run_proxy_timing(batches, args.dim, args.classes, args.repeats))


if __name__ == "__main__":
    main()
