"""Open-set retrieval on Fashion-MNIST: train on classes 0-4, retrieve among classes 5-9.

The network never sees a sandal, shirt, sneaker, bag or ankle boot in training; it is then
evaluated on the test images of those five classes (leave-one-out retrieval within them),
with precision@1 and MAP@R (Musgrave et al. 2020) from ``skmetric.metrics``. Four losses
train the same SmallCNN with light augmentation (random 2-pixel shifts and horizontal
flips): SupCon, multi-similarity with its miner, ArcFace, and cross-batch memory (XBM)
around the contrastive loss; raw pixels with the Euclidean distance are the baseline.

Used by ``benchmarks/deep.py --open-set`` (run as ``.venv/bin/python benchmarks/deep.py
--open-set [--quick] [--data DIR] [--record]``). The data: ``sudo apt-get install
dataset-fashion-mnist`` (Debian/Ubuntu), the environment variable ``SKMETRIC_FASHION_MNIST``
or ``--data DIR`` with the four idx files.
"""

import time

import numpy as np
import torch
from torch import nn

from skmetric.deep import MetricEmbedder
from skmetric.deep.datasets import load_fashion_mnist
from skmetric.deep.losses import ContrastiveLoss, CrossBatchMemory
from skmetric.deep.networks import SmallCNN
from skmetric.metrics import retrieval_report

SEEN, UNSEEN = (0, 1, 2, 3, 4), (5, 6, 7, 8, 9)


class ShiftFlip(nn.Module):
    """Light augmentation of image batches, in training mode only: a random shift of up to
    ``pad`` pixels (zero padding, then a random crop back to the input size) and a
    horizontal flip with probability 1/2, each drawn per image with torch ops.

    Written here as a trunk wrapper because MetricEmbedder has no ``train_transform=`` yet;
    ``transform`` puts the network in eval mode, so embeddings are computed unaugmented.
    """

    def __init__(self, trunk, pad=2, seed=0):
        super().__init__()
        self.trunk = trunk
        self.pad = pad
        self.seed = seed
        self._generator = None

    def forward(self, x):
        if self.training:
            x = self.augment(x)
        return self.trunk(x)

    def augment(self, x):
        if self._generator is None:
            self._generator = torch.Generator().manual_seed(self.seed)
        n, _, h, w = x.shape
        p = self.pad
        padded = nn.functional.pad(x, (p, p, p, p))
        dy = torch.randint(0, 2 * p + 1, (n,), generator=self._generator)
        dx = torch.randint(0, 2 * p + 1, (n,), generator=self._generator)
        rows = (dy[:, None] + torch.arange(h)[None]).to(x.device)  # (n, h)
        cols = (dx[:, None] + torch.arange(w)[None]).to(x.device)  # (n, w)
        batch = torch.arange(n, device=x.device)[:, None, None]
        out = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]
        out = out.permute(0, 3, 1, 2)
        flip = (torch.rand(n, generator=self._generator) < 0.5).to(x.device)
        return torch.where(flip[:, None, None, None], out.flip(-1), out)


def loss_settings(embedding_dim):
    """name -> MetricEmbedder parameters of each loss (PML's defaults unless noted)."""
    return {
        "SupCon": dict(loss="supcon", miner=None),
        "multi-similarity + MS miner": dict(loss="multi_similarity", miner="multi_similarity"),
        # scale 64 (PML's default) saturates the softmax of 5 classes at once; 16 trains.
        "ArcFace (scale 16, margin 0.3)": dict(loss="arcface", miner=None, loss__scale=16.0,
                                               loss__margin=0.3),
        "XBM (memory 2048) + contrastive": dict(
            loss=CrossBatchMemory(ContrastiveLoss(), embedding_size=embedding_dim,
                                  memory_size=2048), miner=None),
    }


def open_set_split(path, n_train_per_class=None, n_test_per_class=None, random_state=0):
    """Training images of classes 0-4 and test images of classes 5-9, subsampled per class."""
    rng = np.random.RandomState(random_state)
    X_train, y_train = load_fashion_mnist(path, "train")
    X_test, y_test = load_fashion_mnist(path, "test")

    def take(X, y, classes, per_class):
        keep = []
        for c in classes:
            idx = np.flatnonzero(y == c)
            if per_class is not None and per_class < len(idx):
                idx = np.sort(rng.choice(idx, per_class, replace=False))
            keep.append(idx)
        keep = np.concatenate(keep)
        return X[keep], y[keep]

    return (*take(X_train, y_train, SEEN, n_train_per_class),
            *take(X_test, y_test, UNSEEN, n_test_per_class))


def raw_pixel_check(run, X, y):
    """skmetric's leave-one-out P@1 on raw pixels against scikit-learn's 2-NN (the first
    neighbour of each query is itself): an agreement check of the evaluation itself."""
    from sklearn.neighbors import NearestNeighbors

    flat = X.reshape(len(X), -1).astype(np.float64)
    report = retrieval_report(flat, y, k=1, metric="euclidean")
    _, ind = NearestNeighbors(n_neighbors=2).fit(flat).kneighbors(flat)
    # a duplicated image may come first instead of the query itself: take the other one
    first = np.where(ind[:, 0] == np.arange(len(X)), ind[:, 1], ind[:, 0])
    ref_p1 = float(np.mean(y[first] == y))
    run.check_close("raw-pixel P@1, skmetric.metrics vs scikit-learn NearestNeighbors",
                    report["precision_at_1"], ref_p1, rtol=0, atol=1e-12)
    return report["precision_at_1"], report["map_at_r"]


def run_open_set(run, path=None, n_train_per_class=1000, n_test_per_class=None, epochs=5,
                 channels=(16, 32, 64), embedding_dim=64, batch_size=125, device="cpu",
                 random_state=0, losses=None):
    """Train each loss on classes 0-4, evaluate on 5-9; add the table to ``run``."""
    Xtr, ytr, Xte, yte = open_set_split(path, n_train_per_class, n_test_per_class,
                                        random_state)
    sizes = (f"{len(Xtr)} training images of classes 0-4 ({np.bincount(ytr)[list(SEEN)]} "
             f"per class), {len(Xte)} test images of classes 5-9, {epochs} epochs, "
             f"SmallCNN{tuple(channels)}, {embedding_dim}-d, batches {batch_size}, "
             f"{torch.get_num_threads()} torch threads")
    print(sizes, flush=True)
    run.note(sizes)
    p1, mapr = raw_pixel_check(run, Xte, yte)
    rows = [["raw pixels, Euclidean", "—", round(p1, 4), round(mapr, 4), None]]
    print(f"raw pixels: P@1 {p1:.4f}  MAP@R {mapr:.4f}", flush=True)
    settings = loss_settings(embedding_dim)
    for name, params in settings.items():
        if losses is not None and name not in losses:
            continue
        trunk = ShiftFlip(SmallCNN(in_channels=1, embedding_dim=embedding_dim,
                                   channels=tuple(channels)), seed=random_state)
        # all five classes in every batch, batch_size // 5 images of each
        emb = MetricEmbedder(trunk, batch_size=batch_size,
                             samples_per_class=batch_size // len(SEEN),
                             max_epochs=epochs, device=device, random_state=random_state,
                             verbose=0,
                             **params)
        start = time.perf_counter()
        emb.fit(Xtr, ytr)
        elapsed = time.perf_counter() - start
        report = retrieval_report(emb.transform(Xte), yte, k=1, metric="cosine")
        rows.append([name, f"{emb.history[-1, 'train_loss']:.3f}",
                     round(report["precision_at_1"], 4), round(report["map_at_r"], 4),
                     round(elapsed, 1)])
        print(f"{name}: P@1 {report['precision_at_1']:.4f}  MAP@R {report['map_at_r']:.4f}"
              f"  train {elapsed:.1f}s", flush=True)
    return run.table(
        "open_set", "Fashion-MNIST open set: trained on classes 0-4, retrieval among the "
        "test images of classes 5-9",
        ["model", "final train loss", "P@1", "MAP@R", "training time (s)"], rows,
        caption=sizes + "; SmallCNN with random 2-pixel shifts and flips, Adam lr 1e-3, "
        "batches of the 5 classes x 25 images, cosine retrieval on L2-normalised "
        "embeddings; training times on a shared, loaded machine (see the load).")
