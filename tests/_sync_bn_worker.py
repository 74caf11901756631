"""One rank of the 2-process runs of tests/test_deep_sync_bn.py (gloo on 127.0.0.1).

``python _sync_bn_worker.py MODE OUT_DIR GROUP_TIMEOUT`` with RANK, WORLD_SIZE, MASTER_ADDR
and MASTER_PORT set; writes ``OUT_DIR/MODE_rank{RANK}.pt``. The parent test computes the
single-process references from the same functions.
"""

import sys
from pathlib import Path

import torch
from _distributed_worker import problem, train_params
from torch import nn

from skmetric.deep import DistributedMetricEmbedder, DistributedProbabilisticEmbedder
from skmetric.deep._sync_batchnorm import SyncBatchNorm
from skmetric.deep.distributed import init_distributed

#: (name, batch shape, BatchNorm keyword arguments); rank 0 gets the first SPLIT rows.
LAYERS = [("1d", (16, 3), {}), ("1d_sequence", (16, 3, 5), {"momentum": None}),
          ("2d", (16, 2, 3, 3), {}), ("no_affine", (16, 4), {"affine": False})]
SPLIT = 5  # unequal shares: 5 and 11 rows


def layer_batch(shape, seed=0):
    """The global batch, the output's upstream gradient, and the initial weight/bias."""
    g = torch.Generator().manual_seed(seed)
    x = 3 * torch.randn(shape, generator=g, dtype=torch.float64) + 1
    grad = torch.randn(shape, generator=g, dtype=torch.float64)
    w, b = torch.rand(shape[1], generator=g, dtype=torch.float64) + 0.5, torch.randn(
        shape[1], generator=g, dtype=torch.float64)
    return x, grad, w, b


def reference_layer(shape, kwargs):
    cls = {2: nn.BatchNorm1d, 3: nn.BatchNorm1d, 4: nn.BatchNorm2d}[len(shape)]
    return cls(shape[1], **kwargs).double()


def run_layer(layer, x, grad, w, b, steps=2):
    """``steps`` forward/backward passes of ``layer`` on x; the last output and gradients
    and the running statistics."""
    if layer.affine:
        with torch.no_grad():
            layer.weight.copy_(w)
            layer.bias.copy_(b)
    for _ in range(steps):
        layer.zero_grad()
        x = x.detach().requires_grad_(True)
        y = layer(x)
        (y * grad).sum().backward()
    return {"y": y.detach(), "dx": x.grad,
            "dw": layer.weight.grad if layer.affine else None,
            "db": layer.bias.grad if layer.affine else None,
            "running_mean": layer.running_mean.clone(),
            "running_var": layer.running_var.clone()}


#: SGD, not Adam: a bias right before a BatchNorm has an exact gradient of 0, which in
#: floating point is rounding noise that depends on the summation order; Adam divides it by
#: its own magnitude and moves the bias by ~lr per step, differently in 1 and 2 processes.
SGD = dict(optimizer=torch.optim.SGD, optimizer__momentum=0.9, lr=0.05)


def pfe_params():
    return dict(module__hidden=(32,), embedding_dim=8, uncertainty_hidden=8, batch_size=32,
                samples_per_class=4, max_epochs=4, random_state=0, verbose=0, **SGD)


def bn_trunk():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(12, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 8))


def bn_trunk_params():
    params = {**train_params("multi_similarity"), "module": bn_trunk(), **SGD}
    del params["module__hidden"]
    return params


def _state(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


def main(mode, out):
    rank, _ = init_distributed("gloo", timeout=float(sys.argv[3]))
    torch.set_num_threads(1)
    result = {}
    rows = slice(0, SPLIT) if rank == 0 else slice(SPLIT, None)
    for name, shape, kwargs in LAYERS:
        x, grad, w, b = layer_batch(shape)
        result[name] = run_layer(SyncBatchNorm(shape[1], **kwargs).double(), x[rows],
                                 grad[rows], w, b)
    X, y = problem()
    pfe = DistributedProbabilisticEmbedder(**pfe_params()).fit(X, y)
    result["pfe"] = {"module": _state(pfe.module_), "variance": pfe.transform_uncertainty(X),
                     "n_sync": sum(isinstance(m, SyncBatchNorm) for m in pfe.module_.modules())}
    local = DistributedProbabilisticEmbedder(sync_batchnorm=False, **pfe_params()).fit(X, y)
    result["pfe_local"] = {"module": _state(local.module_)}
    net = DistributedMetricEmbedder(**bn_trunk_params()).fit(X, y)
    result["bn_trunk"] = {"module": _state(net.module_), "embedding": net.transform(X)}
    torch.save(result, Path(out) / f"{mode}_rank{rank}.pt")
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
