"""Data-parallel scaling: one process against two, at one CPU thread each.

    .venv/bin/python benchmarks/ddp_scaling.py                     # lenet5 and cnn, 3 epochs each
    .venv/bin/python benchmarks/ddp_scaling.py --models lenet5 --epochs 1 --repeats 1 --json

Each configuration is a real `zoo train MODEL --dataset fashion-mnist --threads 1`
run (with `--nproc 2` for two processes: torch.distributed, gloo, DistributedDataParallel)
on full Fashion-MNIST from /usr/share/datasets/fashion-mnist, in a fresh run folder.
--batch-size is per process (the recipe's unless given), so two processes step with
twice the global batch, as torchvision's reference scripts do.

Figures per run, from its run.json: median epoch seconds (training plus the sharded
test evaluation, as metrics.csv records them), training samples per second (samples
trained per epoch / median epoch seconds), final test accuracy. Per model: speed-up
(2-process samples/s over 1-process) and parallel efficiency (speed-up / 2).
Target on an idle 2-core machine: efficiency >= 0.85, accuracy within 1 point.

The figures mean something only on a quiet machine: two processes need both cores.
The load average is printed before and after each run. Not a test: nothing here asserts.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FASHION = Path("/usr/share/datasets/fashion-mnist")
ZOO = str(Path(sys.executable).parent / "zoo")


def run(model: str, nproc: int, epochs: int, batch_size: int | None, root: Path) -> dict:
    folder = root / f"{model}-{nproc}"
    cmd = [ZOO, "train", model, "--dataset", "fashion-mnist", "--data-dir", str(FASHION.parent), "--offline",
           "--epochs", str(epochs), "--threads", "1", "--quiet", "--out", str(folder)]
    if batch_size:
        cmd += ["--batch-size", str(batch_size)]
    if nproc > 1:
        cmd += ["--nproc", str(nproc)]
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr}")
    info = json.loads((folder / "run.json").read_text())
    with open(folder / "metrics.csv", newline="") as f:  # the per-epoch record (run.json holds a summary)
        seconds = statistics.median(float(row["seconds"]) for row in csv.DictReader(f) if row.get("seconds"))
    per_process = info["processes"]["batch_size_per_process"]
    batches = info["train_samples"] // nproc // per_process if nproc > 1 else -(-info["train_samples"] // per_process)
    trained = min(batches * per_process * nproc, info["train_samples"])
    return {"model": model, "processes": nproc, "epochs": epochs, "batch_per_process": per_process,
            "global_batch": per_process * nproc, "median_epoch_seconds": round(seconds, 3),
            "samples_per_second": round(trained / seconds, 1), "test_accuracy": info["test_accuracy"],
            "wall_seconds": round(wall, 1), "load_before": load_before, "load_after": os.getloadavg()[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["lenet5", "cnn"])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=None, help="per process (default: the recipe's)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="1- and 2-process runs alternate this many times; the median speed-up is shown "
                             "(a shared VM's two cores are noisy: single pairs ranged 1.3x-1.9x for plain DDP)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not (FASHION / "train-images-idx3-ubyte.gz").is_file() and not (FASHION / "train-images-idx3-ubyte").is_file():
        raise SystemExit(f"full Fashion-MNIST is not in {FASHION}")
    # zoo looks for DATA_DIR/fashion-mnist: the Debian folder's parent is that DATA_DIR.
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models:
            for repeat, nproc in ((r, n) for r in range(args.repeats) for n in (1, 2)):
                rows.append(run(model, nproc, args.epochs, args.batch_size, Path(tmp) / str(repeat)) | {"repeat": repeat})
                if not args.json:
                    r = rows[-1]
                    print(f"{model:8} {nproc} proc  batch {r['batch_per_process']}/process  "
                          f"epoch {r['median_epoch_seconds']:.2f}s  {r['samples_per_second']:,.0f} samples/s  "
                          f"test acc {100 * r['test_accuracy']:.2f}%  load {r['load_before']:.2f} -> "
                          f"{r['load_after']:.2f}", flush=True)
    summary = []
    for model in args.models:
        pairs = [[r for r in rows if r["model"] == model and r["repeat"] == k] for k in range(args.repeats)]
        speedups = [two["samples_per_second"] / one["samples_per_second"] for one, two in
                    (sorted(pair, key=lambda r: r["processes"]) for pair in pairs)]
        one, two = (next(r for r in rows if r["model"] == model and r["processes"] == n) for n in (1, 2))
        speedup = statistics.median(speedups)
        summary.append({"model": model, "speedup": round(speedup, 3), "efficiency": round(speedup / 2, 3),
                        "speedups": [round(x, 3) for x in speedups],
                        "accuracy_difference_points": round(100 * (two["test_accuracy"] - one["test_accuracy"]), 2)})
    if args.json:
        print(json.dumps({"runs": rows, "summary": summary, "cores": os.cpu_count()}, indent=2))
        return
    for s in summary:
        print(f"{s['model']:8} 2 vs 1 process: median x{s['speedup']:.2f} throughput "
              f"({', '.join(f'x{x:.2f}' for x in s['speedups'])}), parallel efficiency "
              f"{100 * s['efficiency']:.0f}%, accuracy {s['accuracy_difference_points']:+.2f} points")
    print(f"load average now: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores "
          "(figures are only meaningful on an otherwise idle machine)")


if __name__ == "__main__":
    main()
