"""One rank of the 2-process runs of tests/test_deep_distributed_history.py.

``python _distributed_history_worker.py MODE OUT_DIR GROUP_TIMEOUT`` with RANK, WORLD_SIZE,
MASTER_ADDR and MASTER_PORT set; writes ``OUT_DIR/MODE_rank{RANK}.pt``.
"""

import sys
import time
from pathlib import Path

import torch
from _distributed_worker import problem, train_params
from skorch.callbacks import Callback, Checkpoint, EarlyStopping

from skmetric.deep import DistributedMetricEmbedder
from skmetric.deep.distributed import init_distributed


class RankScore(Callback):
    """Records a score that improves every epoch on rank 0 and worsens on rank 1, so that
    an EarlyStopping on it stops rank 1 alone (after ``patience`` epochs)."""

    def on_epoch_end(self, net, **kwargs):
        epoch = len(net.history)
        sign = -1 if torch.distributed.get_rank() == 0 else 1
        net.history.record("rank_score", float(sign * epoch))


class SlowRank1(DistributedMetricEmbedder):
    """Rank 1 records its step 0.2 s after rank 0 (when ``slow``): rank 0 then reads the
    history before rank 1's records of the step exist, and must wait for them (not take
    stale ones from an earlier fit)."""

    slow = False

    def train_step(self, batch, **fit_params):
        step = super().train_step(batch, **fit_params)
        if self.slow and torch.distributed.get_rank() == 1:
            time.sleep(0.2)
        return step


def checkpoint_params(dirname):
    return dict(dirname=str(dirname), monitor=None, f_params="params.pt",
                f_optimizer="optimizer.pt", f_criterion="criterion.pt",
                f_history="history.json")


def _always(net):
    return True  # a Checkpoint monitor: save every epoch (and load the last at the end)


def efficient_params():
    return {**train_params("multi_similarity"), "efficient": True, "max_epochs": 2}


def _rows(history):
    """The history as plain lists, without the (per-rank) durations."""
    rows = []
    for row in history.to_list():
        rows.append({k: v for k, v in row.items() if k != "dur"})
    return rows


def main(mode, out):
    rank, _ = init_distributed("gloo", timeout=float(sys.argv[3]))
    torch.set_num_threads(1)
    X, y = problem()
    result = {}
    start = time.monotonic()
    # efficient=True: each rank's loss is its own, so the histories only agree if shared
    net = SlowRank1(**efficient_params()).fit(X, y)
    result["efficient"] = {"history": _rows(net.history), "embedding": net.transform(X)}
    # a second fit of the same net (other losses) records afresh, none of the first's
    net.set_params(lr=3e-2, max_epochs=1)
    net.slow = True
    net.fit(X, y)
    result["refit"] = _rows(net.history)

    # EarlyStopping that would stop rank 1 alone: both stop, at the same epoch
    stopper = EarlyStopping(monitor="rank_score", patience=2, load_best=False)
    net = DistributedMetricEmbedder(callbacks=[RankScore(), stopper],
                                    **{**train_params("proxy_anchor"), "max_epochs": 8})
    net.fit(X, y)
    result["early"] = {"epochs": len(net.history), "history": _rows(net.history)}

    # Checkpoint every epoch: rank 0 alone writes (each rank names its own folder here,
    # to see who wrote); the best one, in a folder shared as usual, is read back by all
    ckpt = Checkpoint(**checkpoint_params(Path(out) / f"ckpt_rank{rank}"))
    best = Checkpoint(**{**checkpoint_params(Path(out) / "best"),
                         "monitor": _always, "load_best": True})
    net = DistributedMetricEmbedder(callbacks=[ckpt, best], **train_params("proxy_anchor"))
    net.fit(X, y)
    result["checkpoint"] = {"history": _rows(net.history), "embedding": net.transform(X),
                            "loss": {k: v.clone() for k, v in net.loss_.state_dict().items()}}
    print(f"rank {rank}: {time.monotonic() - start:.1f} s", file=sys.stderr)
    torch.save(result, Path(out) / f"{mode}_rank{rank}.pt")
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
