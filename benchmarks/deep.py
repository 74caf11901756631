"""Deep embedders on Fashion-MNIST: test-set retrieval after training on the CPU.

Trains :class:`skmetric.deep.MetricEmbedder` (the default multi-similarity loss and miner,
class-balanced batches) with an MLP on the flattened images and with a SmallCNN on the
images, then reports, on the 10 000 test images (leave-one-out retrieval within the test
set), precision@1 and MAP@R (Musgrave et al. 2020) next to Euclidean retrieval on the raw
pixels, with the training time. ``--losses`` also runs the loss + miner timings against
pytorch-metric-learning (``benchmarks/deep_losses.py``).

Needs the data: ``sudo apt-get install dataset-fashion-mnist`` (Debian/Ubuntu), or
``--data DIR`` with the four idx files.

``--open-set`` runs instead the open-set retrieval benchmark of ``deep_open_set.py``: train
on classes 0-4, retrieve among the test images of classes 5-9, for SupCon, multi-similarity
+ miner, ArcFace and XBM + contrastive, next to raw pixels (``--record`` writes its results
to ``benchmarks/results/deep_open_set.json``).

Run ``.venv/bin/python benchmarks/deep.py [--quick] [--losses] [--open-set [--record]]``.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import Run, add_common_args  # noqa: E402

from skmetric.deep import MetricEmbedder  # noqa: E402
from skmetric.deep.datasets import DEFAULT_FASHION_MNIST_PATH, load_fashion_mnist  # noqa: E402
from skmetric.metrics import retrieval_report  # noqa: E402

# Proxy losses and the settings they train with here (issue: classification-based losses).
PROXY_SETTINGS = {
    "l2_softmax": {}, "normface": {}, "proxy_anchor": {}, "soft_triple": {},
    "large_margin_softmax": {"normalize": False, "loss__margin": 2},
    "sphereface": {"normalize": False, "loss__margin": 2},
    "cosface": {"loss__scale": 16.0}, "arcface": {"loss__scale": 16.0, "loss__margin": 0.3},
    "subcenter_arcface": {"loss__scale": 16.0, "loss__margin": 0.3},
    "proxy_nca": {"loss__softmax_scale": 8.0}, "class_circle": {"loss__gamma": 32.0},
}


def retrieval_scores(embeddings, labels, metric):
    """Leave-one-out precision@1 and MAP@R (Musgrave et al. 2020) with skmetric.metrics."""
    report = retrieval_report(np.asarray(embeddings, dtype=np.float32), labels, k=1,
                              metric=metric)
    return report["precision_at_1"], report["map_at_r"]


def run_fashion_mnist(path=DEFAULT_FASHION_MNIST_PATH, n_train=None, mlp_epochs=5,
                      cnn_epochs=6, cnn_train=None, cnn_channels=(16, 32, 64), device="cpu",
                      random_state=0):
    """Train an MLP and a SmallCNN embedder; return result rows and a markdown table."""
    X_train, y_train = load_fashion_mnist(path, "train", n_samples=n_train)
    X_test, y_test = load_fashion_mnist(path, "test")
    flat_train, flat_test = X_train.reshape(len(X_train), -1), X_test.reshape(len(X_test), -1)
    rows = []
    start = time.perf_counter()
    p1, mapr = retrieval_scores(flat_test, y_test, "euclidean")
    rows.append(dict(model="raw pixels, Euclidean", n_train=0, epochs=0, time=0.0, p1=p1,
                     mapr=mapr))
    print(f"raw pixels: P@1 {p1:.4f}  MAP@R {mapr:.4f} ({time.perf_counter() - start:.1f}s)",
          flush=True)
    runs = [
        ("MLP (784-256-64)", flat_train, flat_test, mlp_epochs, {}),
        (f"SmallCNN ({'-'.join(map(str, cnn_channels))} ch.)", X_train[:cnn_train], X_test,
         cnn_epochs, {"module__channels": tuple(cnn_channels)}),
    ]
    for name, Xtr, Xte, epochs, params in runs:
        if epochs <= 0:
            continue
        ytr = y_train[: len(Xtr)]
        emb = MetricEmbedder(batch_size=256, samples_per_class=8, max_epochs=epochs,
                             device=device, random_state=random_state, **params)
        start = time.perf_counter()
        emb.fit(Xtr, ytr)
        elapsed = time.perf_counter() - start
        p1, mapr = retrieval_scores(emb.transform(Xte), y_test, "cosine")
        rows.append(dict(model=name, n_train=len(Xtr), epochs=epochs, time=elapsed, p1=p1,
                         mapr=mapr))
        print(f"{name}: P@1 {p1:.4f}  MAP@R {mapr:.4f}  train {elapsed:.1f}s "
              f"(loss {emb.history[-1, 'train_loss']:.3f})", flush=True)
    return rows, _markdown(rows, device)


def run_proxy_losses(datasets, epochs, n_train, random_state=0):
    """Train an MLP embedder with each proxy loss; evaluate retrieval on the test set (all
    classes, the model trained on all) and on held-out classes (trained on the others)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    lines = [
        "| data | loss | closed-set accuracy | test P@1 | test MAP@R | unseen-class P@1 | "
        "unseen-class MAP@R | train time (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for data in datasets:
        if data == "digits":
            X, y = load_digits(return_X_y=True)
            X = (X / 16.0).astype(np.float32)
            Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, stratify=y,
                                                  random_state=random_state)
            n_epochs, held_out = epochs * 4, 7
        else:
            Xtr, ytr = load_fashion_mnist(n_samples=n_train)
            Xte, yte = load_fashion_mnist(subset="test")
            Xtr, Xte = Xtr.reshape(len(Xtr), -1), Xte.reshape(len(Xte), -1)
            n_epochs, held_out = epochs, 6
        seen, unseen = ytr < held_out, yte >= held_out
        raw = retrieval_scores(Xte, yte, "euclidean")
        raw_unseen = retrieval_scores(Xte[unseen], yte[unseen], "euclidean")
        lines.append(f"| {data} | raw features, Euclidean | | {raw[0]:.4f} | {raw[1]:.4f} | "
                     f"{raw_unseen[0]:.4f} | {raw_unseen[1]:.4f} | |")
        for name, settings in PROXY_SETTINGS.items():
            params = dict(loss=name, miner=None, max_epochs=n_epochs, lr=1e-2, batch_size=128,
                          samples_per_class=None, random_state=random_state, **settings)
            start = time.perf_counter()
            closed = MetricEmbedder(**params).fit(Xtr, ytr)
            elapsed = time.perf_counter() - start
            acc = float(np.mean(closed.predict(Xte) == yte))
            test = retrieval_scores(closed.transform(Xte), yte, "cosine")
            open_set = MetricEmbedder(**params).fit(Xtr[seen], ytr[seen])
            held = retrieval_scores(open_set.transform(Xte[unseen]), yte[unseen], "cosine")
            lines.append(f"| {data} | {name} | {acc:.4f} | {test[0]:.4f} | {test[1]:.4f} | "
                         f"{held[0]:.4f} | {held[1]:.4f} | {elapsed:.1f} |")
            print(lines[-1], file=sys.stderr, flush=True)
    return "\n".join(lines)


def _markdown(rows, device):
    lines = [
        f"Fashion-MNIST test set (10 000 images, leave-one-out retrieval); training on "
        f"{device} with {torch.get_num_threads()} threads; multi-similarity loss + miner, "
        "batches of 32 classes x 8, Adam lr 1e-3, 64-d L2-normalised embeddings.",
        "",
        "| model | training images | epochs | training time (s) | precision@1 | MAP@R |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['model']} | {r['n_train']} | {r['epochs']} | {r['time']:.1f} | "
                     f"{r['p1']:.4f} | {r['mapr']:.4f} |")
    return "\n".join(lines)


def open_set_main(args, parser):
    """``--open-set``: the open-set benchmark, recorded through ``_common.Run``."""
    from deep_open_set import run_open_set

    run = Run("deep_open_set", args)
    if args.quick:  # a smoke run: tiny network, one epoch, at most 50 test images per class
        kwargs = dict(n_train_per_class=min(args.train_per_class, 25), n_test_per_class=50,
                      epochs=1, channels=(8, 16), batch_size=50)
    else:
        kwargs = dict(n_train_per_class=args.train_per_class, epochs=args.epochs,
                      channels=tuple(int(c) for c in args.cnn_channels.split(",")))
    try:
        markdown = run_open_set(run, args.data, device=args.device, **kwargs)
    except FileNotFoundError as exc:
        parser.exit(1, f"{exc}\n")
    print()
    print(markdown)
    run.finish()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None,
                        help="directory of the Fashion-MNIST idx files (default: "
                        f"$SKMETRIC_FASHION_MNIST, else {DEFAULT_FASHION_MNIST_PATH})")
    parser.add_argument("--quick", action="store_true",
                        help="5 000 training images, 2 MLP epochs, 1 CNN epoch")
    parser.add_argument("--mlp-epochs", type=int, default=5)
    parser.add_argument("--cnn-epochs", type=int, default=6)
    parser.add_argument("--cnn-train", type=int, default=None,
                        help="training images of the CNN (default: all 60 000)")
    parser.add_argument("--cnn-channels", default="16,32,64",
                        help="channels of the SmallCNN blocks (default 16,32,64; the "
                        "estimator's default is 32,64,128, about 3x slower)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--proxy", action="store_true",
                        help="train every proxy loss on digits and Fashion-MNIST (MLP) and "
                        "time them against pytorch-metric-learning, instead of the default runs")
    parser.add_argument("--proxy-train", type=int, default=20000,
                        help="Fashion-MNIST training images for --proxy (default 20 000)")
    parser.add_argument("--losses", action="store_true",
                        help="also time the losses and miners against pytorch-metric-learning")
    parser.add_argument("--open-set", action="store_true",
                        help="train on classes 0-4, retrieve among test classes 5-9 (SupCon, "
                        "multi-similarity, ArcFace, XBM + contrastive, raw pixels)")
    parser.add_argument("--train-per-class", type=int, default=1000,
                        help="--open-set: training images per class (default 1000)")
    parser.add_argument("--epochs", type=int, default=5, help="--open-set: epochs (default 5)")
    add_common_args(parser)
    args = parser.parse_args(argv)
    if args.open_set:
        return open_set_main(args, parser)
    if args.proxy:
        from deep_proxy import run_proxy_timing

        datasets = ["digits"] if args.quick else ["digits", "fashion-mnist"]
        print(run_proxy_losses(datasets, epochs=1 if args.quick else 3,
                               n_train=args.proxy_train))
        print()
        print(run_proxy_timing(repeats=3 if args.quick else 10))
        return
    if args.quick:
        kwargs = dict(n_train=5000, mlp_epochs=2, cnn_epochs=1, cnn_train=5000)
    else:
        kwargs = dict(mlp_epochs=args.mlp_epochs, cnn_epochs=args.cnn_epochs,
                      cnn_train=args.cnn_train)
    kwargs["cnn_channels"] = tuple(int(c) for c in args.cnn_channels.split(","))
    try:
        _, markdown = run_fashion_mnist(args.data, device=args.device, **kwargs)
    except FileNotFoundError as exc:
        if not args.quick:
            parser.exit(1, f"{exc}\n")
        # The smoke run must not need a download: say why the table is missing.
        markdown = f"Fashion-MNIST training skipped: {exc}"
    print()
    print(markdown)
    if args.losses:
        from deep_losses import run_loss_benchmark

        sizes = (256,) if args.quick else (256, 1024)
        _, loss_markdown = run_loss_benchmark(sizes, repeats=1 if args.quick else 3,
                                              device=None if args.device == "cpu" else
                                              args.device, verbose=False)
        print()
        print(loss_markdown)


if __name__ == "__main__":
    main()
