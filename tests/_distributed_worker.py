"""One rank of the 2-process runs of tests/test_deep_distributed.py (gloo on 127.0.0.1).

``python _distributed_worker.py MODE OUT_DIR`` with RANK, WORLD_SIZE, MASTER_ADDR and
MASTER_PORT set; writes ``OUT_DIR/MODE_rank{RANK}.pt``. The parent test computes the
single-process references from the same functions (``problem``, ``combos``, ...).
"""

import inspect
import sys
from pathlib import Path

import numpy as np
import torch
from skorch.callbacks import Callback, Checkpoint, EarlyStopping

from skmetric.deep import (
    DistributedMetricEmbedder,
    MetricEmbedder,
)
from skmetric.deep.distributed import init_distributed
from skmetric.deep.losses import LOSSES
from skmetric.deep.miners import MINERS as MINER_REGISTRY
from skmetric.deep.miners import get_miner

# Every registered pair loss (proxy losses have their own 20-step test; VICReg takes two
# views, not labels) and every registered miner, so a new one is covered by default.
PAIR_LOSSES = [name for name, cls in LOSSES.items()
               if not getattr(cls, "requires_classes", False) and name != "vicreg"]
MINERS = list(MINER_REGISTRY)


def combos():
    """Every pair loss without a miner and with its namesake miner, every miner with
    the contrastive and the triplet loss."""
    out = [(loss, None) for loss in PAIR_LOSSES]
    out += [(loss, loss) for loss in PAIR_LOSSES if loss in MINERS]
    out += [(loss, miner) for miner in MINERS for loss in ("contrastive", "triplet_margin")]
    return list(dict.fromkeys(out))


#: Combinations checked with efficient=True too (losses that accept ref_emb).
EFFICIENT = [("contrastive", None), ("triplet_margin", "hard"),
             ("multi_similarity", "multi_similarity")]


def batch(n=16, dim=8):
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, dim, generator=g), torch.arange(n) % 4


def gradient_of(cls, loss, miner, E, y, **kwargs):
    """d(loss)/d(E) of the estimator's training loss on the batch E, y."""
    if miner is not None and "random_state" in inspect.signature(
            type(get_miner(miner)).__init__).parameters:
        kwargs["miner__random_state"] = 0  # the same draws in both runs
    net = cls(module=torch.nn.Linear(8, 8), loss=loss, miner=miner, embedding_dim=8,
              verbose=0, random_state=0, **kwargs)
    net.initialize()
    net.on_train_begin(net)
    net.on_epoch_begin(net)
    E = E.clone().requires_grad_(True)
    torch.manual_seed(123)  # stochastic miners draw alike in both runs
    value = net.get_loss(E, y, training=True)
    value.backward()
    return E.grad, float(value.detach())


def problem(n_classes=8, per_class=20, dim=12):
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(n_classes), per_class)
    X = (rng.standard_normal((y.size, dim)) + 2 * rng.standard_normal((n_classes, dim))[y])
    return X.astype(np.float32), y


def train_params(loss):
    # 160 samples, global batches of 32 (8 classes x 4): 5 steps per epoch, 20 in all.
    return dict(loss=loss, miner="multi_similarity" if loss != "proxy_anchor" else None,
                module__hidden=(32,), embedding_dim=8, batch_size=32, samples_per_class=4,
                max_epochs=4, lr=1e-2, random_state=0, verbose=0)


class _FailOnRank(Callback):
    def __init__(self, rank, at_batch):
        self.rank, self.at_batch, self.seen = rank, at_batch, 0

    def on_batch_begin(self, net, **kwargs):
        self.seen += 1
        if torch.distributed.get_rank() == self.rank and self.seen == self.at_batch:
            raise RuntimeError("planted failure on rank 1")


def main(mode, out):
    rank, world = init_distributed("gloo", timeout=float(sys.argv[3]) if len(sys.argv) > 3
                                   else 30.0)
    torch.set_num_threads(1)
    result = {}
    if mode == "grads":
        E, y = batch()
        share = E.shape[0] // world
        rows = slice(rank * share, (rank + 1) * share)
        for loss, miner in combos():
            for efficient in (False, True) if (loss, miner) in EFFICIENT else (False,):
                grad, value = gradient_of(DistributedMetricEmbedder, loss, miner, E[rows],
                                          y[rows], efficient=efficient)
                result[(loss, miner, efficient)] = (grad, value)
    elif mode == "train":
        X, y = problem()
        for loss in ("multi_similarity", "proxy_anchor"):
            callbacks = [Checkpoint(dirname=str(Path(out) / f"ckpt_{loss}_rank{rank}"),
                                    monitor=None),
                         EarlyStopping(monitor="train_loss", patience=50)]
            net = DistributedMetricEmbedder(callbacks=callbacks, **train_params(loss))
            net.fit(X, y)
            result[loss] = {
                "module": {k: v.clone() for k, v in net.module_.state_dict().items()},
                "loss": {k: v.clone() for k, v in net.loss_.state_dict().items()},
                "embedding": net.transform(X),
                "train_loss": net.history[:, "train_loss"],
                "steps": sum(len(e["batches"]) for e in net.history),
            }
    elif mode == "fail":
        X, y = problem()
        net = DistributedMetricEmbedder(callbacks=[_FailOnRank(1, 3)],
                                        **train_params("multi_similarity"))
        net.fit(X, y)
    elif mode == "different_data":
        # Each rank fits data of its own (a shard, other labels): refused on every rank.
        X, y = problem()
        shards = {"sizes": (X[rank * 8:], y[rank * 8:]),
                  "labels": (X, np.roll(y, rank))}
        for name, (X_rank, y_rank) in shards.items():
            try:
                DistributedMetricEmbedder(**train_params("multi_similarity")).fit(X_rank,
                                                                                 y_rank)
            except ValueError as exc:
                result[name] = str(exc)
    torch.save(result, Path(out) / f"{mode}_rank{rank}.pt")
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()


# Import-time names for the parent test.
__all__ = ["MetricEmbedder", "batch", "combos", "gradient_of", "problem", "train_params"]

if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
