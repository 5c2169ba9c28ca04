"""Seconds per training epoch: zoo's loop against the tutorial loop, side by side.

    .venv/bin/python benchmarks/train_speed.py                 # lenet5, cnn, mlp; 3 epochs each
    .venv/bin/python benchmarks/train_speed.py --models lenet5 --epochs 5 --json

The tutorial loop is the one the seed tutorials write: a torchvision dataset with
ToTensor(), DataLoader(batch_size=64, shuffle=True), Adam(lr=1e-3), constant lr.
zoo's loop runs in the same process on the same files with the same batch size,
optimizer, lr and epochs (`zoo.train.train` with --optimizer adam --lr 1e-3
--schedule constant --init default --weight-decay 0 --no-augment: the tutorial
has no augmentation; --augment adds the model's declared one, more work for zoo).
A third timing, the tutorial's model and optimizer alone on batches already in
memory, shows how much of the tutorial's epoch its data pipeline costs at all.

Data: full Fashion-MNIST from /usr/share/datasets/fashion-mnist when present
(torchvision's FashionMNIST wants ROOT/FashionMNIST/raw/ with un-gzipped files: built
in a temporary folder), else the bundled MNIST sample.
Timing: the training pass only (no evaluation), every epoch; the table shows medians.
Both loops use the same number of CPU threads. Other processes on the machine skew
the numbers: the load average is printed before and after each model.
Not a test: nothing here asserts a speed.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

import zoo
from zoo.cores import usable_cores
from zoo.train import BatchProgress, EpochStarted, TrainConfig, train

FASHION = Path("/usr/share/datasets/fashion-mnist")
SAMPLE = Path(zoo.__file__).parent / "data" / "mnist_sample"
RAW_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def torchvision_layout(source: Path, root: Path, folder: str) -> None:
    """ROOT/<folder>/raw/<file> as torchvision expects: a symlink to an un-gzipped file, or
    a decompressed copy of a .gz one (torchvision does not read gzip itself)."""
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    for name in RAW_FILES:
        if (source / name).is_file():
            (raw / name).symlink_to(source / name)
        else:
            with gzip.open(source / f"{name}.gz") as src, open(raw / name, "wb") as dst:
                shutil.copyfileobj(src, dst)


def tutorial_data(root: Path, fashion: bool):
    from torchvision import datasets
    from torchvision.transforms import ToTensor

    cls = datasets.FashionMNIST if fashion else datasets.MNIST
    train_data = cls(root=str(root), train=True, download=False, transform=ToTensor())
    test_data = cls(root=str(root), train=False, download=False, transform=ToTensor())
    return train_data, test_data


def tutorial_run(name: str, train_data, test_data, epochs: int, batch_size: int, seed: int):
    """The seed tutorials' loop, verbatim in spirit: per-epoch seconds and final test accuracy."""
    from torch.utils.data import DataLoader

    torch.manual_seed(seed)
    train_dataloader = DataLoader(train_data, batch_size=batch_size, shuffle=True)
    test_dataloader = DataLoader(test_data, batch_size=batch_size)
    model = zoo.create_model(name)
    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    seconds = []
    for _ in range(epochs):
        start = time.perf_counter()
        model.train()
        for batch, (X, y) in enumerate(train_dataloader):
            pred = model(X)
            loss = loss_fn(pred, y)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            if batch % 100 == 0:
                loss.item()  # the tutorial prints the loss every 100 batches
        seconds.append(time.perf_counter() - start)
    model.eval()
    correct = 0
    with torch.no_grad():
        for X, y in test_dataloader:
            correct += (model(X).argmax(1) == y).type(torch.float).sum().item()
    return seconds, correct / len(test_data)


def tutorial_compute_only(name: str, train_data, batch_size: int, seed: int) -> float:
    """One epoch of the tutorial's model and optimizer on batches already in memory (no
    Dataset, no ToTensor, no collation): what the tutorial would take with a free data
    pipeline, so tutorial / this bounds any speed-up that comes from the data side."""
    torch.manual_seed(seed)
    images = train_data.data.unsqueeze(1).float() / 255  # (N, 1, 28, 28), as ToTensor makes them
    labels = train_data.targets
    model = zoo.create_model(name)
    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    order = torch.randperm(len(labels))
    start = time.perf_counter()
    for i in range(0, len(labels), batch_size):
        idx = order[i:i + batch_size]
        loss = loss_fn(model(images[idx]), labels[idx])
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return time.perf_counter() - start


def zoo_run(name: str, dataset: str, data_dir: Path | None, epochs: int, batch_size: int, seed: int, out: Path,
            augment: bool, threads: int):
    """zoo.train with the tutorial's hyperparameters; seconds of each epoch's training pass."""
    marks: dict[int, list[float]] = {}

    def on_event(e):
        if isinstance(e, EpochStarted):
            marks[e.epoch] = [time.perf_counter()]
        elif isinstance(e, BatchProgress) and e.batch == e.batches:  # read back from the device: all done
            marks[e.epoch].append(time.perf_counter())

    config = TrainConfig(name, epochs=epochs, batch_size=batch_size, optimizer="adam", lr=1e-3, schedule="constant",
                         init="default", weight_decay=0.0, label_smoothing=0.0, ema=0.0, seed=seed, dataset=dataset,
                         data_dir=data_dir, offline=True, out=out, force=True, handle_sigint=False,
                         augment=augment, threads=threads)
    result = train(config, on_event)
    return [end - start for start, end in marks.values()], result.test_accuracy, result.info.get("threads")


def load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="lenet5,cnn,mlp")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None, help="CPU threads for both loops (default: all cores)")
    ap.add_argument("--augment", action="store_true", help="zoo also applies the model's declared augmentation "
                    "(the tutorial has none, so by default zoo does the same work without it)")
    ap.add_argument("--sample", action="store_true", help="use the bundled MNIST sample even if Fashion-MNIST is here")
    ap.add_argument("--json", action="store_true", help="also print the results as JSON")
    args = ap.parse_args(argv)

    fashion = FASHION.is_dir() and not args.sample
    dataset, source = ("fashion-mnist", FASHION) if fashion else ("mnist-sample", SAMPLE)
    threads = args.threads or usable_cores()
    torch.set_num_threads(threads)  # the same for both loops
    rows = []
    with tempfile.TemporaryDirectory(prefix="zoo-bench-") as tmp:
        tmp = Path(tmp)
        torchvision_layout(source, tmp, "FashionMNIST" if fashion else "MNIST")
        train_data, test_data = tutorial_data(tmp, fashion)
        print(f"data: {dataset} ({len(train_data):,} train, {len(test_data):,} test), batch {args.batch_size}, "
              f"{args.epochs} epochs, {threads} threads, zoo augmentation {'on' if args.augment else 'off'}, "
              f"torch {torch.__version__}", flush=True)
        for name in args.models.split(","):
            before = load()
            tut_s, tut_acc = tutorial_run(name, train_data, test_data, args.epochs, args.batch_size, args.seed)
            zoo_s, zoo_acc, _ = zoo_run(name, dataset, None, args.epochs, args.batch_size, args.seed,
                                        tmp / f"run-{name}", args.augment, threads)
            floor = tutorial_compute_only(name, train_data, args.batch_size, args.seed)
            row = {
                "model": name, "tutorial_s": statistics.median(tut_s), "zoo_s": statistics.median(zoo_s),
                "tutorial_compute_s": floor, "tutorial_epochs_s": tut_s, "zoo_epochs_s": zoo_s,
                "tutorial_acc": tut_acc, "zoo_acc": zoo_acc, "load_before": before, "load_after": load(),
            }
            row["ratio"] = row["tutorial_s"] / row["zoo_s"]
            row["ratio_bound"] = row["tutorial_s"] / floor  # the speed-up a free data pipeline alone would give
            rows.append(row)
            print(f"  {name}: tutorial {' '.join(f'{s:.2f}' for s in tut_s)} s/epoch, zoo "
                  f"{' '.join(f'{s:.2f}' for s in zoo_s)} s/epoch, tutorial model+optimizer alone {floor:.2f} s "
                  f"(load {before} -> {row['load_after']})", flush=True)

    print()
    print(f"{'model':8} {'tutorial s/ep':>13} {'zoo s/ep':>9} {'speed-up':>9} {'tut. compute s/ep':>18} "
          f"{'data-only bound':>16} {'tutorial acc':>13} {'zoo acc':>8}  load avg 1/5/15 min before -> after")
    for r in rows:
        print(f"{r['model']:8} {r['tutorial_s']:13.2f} {r['zoo_s']:9.2f} {r['ratio']:8.1f}x "
              f"{r['tutorial_compute_s']:18.2f} {r['ratio_bound']:15.1f}x {100 * r['tutorial_acc']:12.2f}% "
              f"{100 * r['zoo_acc']:7.2f}%  {r['load_before']} -> {r['load_after']}")
    print("(medians over epochs; 'data-only bound': tutorial time / its model+optimizer time alone, the most a "
          "faster data path could give without making the model step itself faster)")
    if args.json:
        print(json.dumps({"dataset": dataset, "epochs": args.epochs, "batch_size": args.batch_size,
                          "threads": threads, "augment": args.augment, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
