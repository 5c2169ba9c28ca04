"""What a long run of tiny epochs pays for its bookkeeping (metrics.csv, run.json,
checkpoints, events), against the epochs' own time.

    .venv/bin/python benchmarks/bookkeeping.py                 # 5,000 epochs, seed 002's set-up
    .venv/bin/python benchmarks/bookkeeping.py --epochs 1000 --repeats 2
    .venv/bin/python benchmarks/bookkeeping.py --epochs 500 --checkpoint-every 1

Seed 002's set-up on the bundled MNIST sample: the mlp, one batch of 4,000 images per
epoch (batch size 4000), SGD at a constant learning rate, no augmentation, so each epoch
is one optimizer step plus an evaluation of the 1,000 test images: the tiniest epoch
zoo can run, where bookkeeping weighs the most.

Two loops on the same data, threads and seed:
- bare: the epochs' own work with zoo's own pieces (batch plan, transform, forward,
  backward, step, evaluation) and nothing else: no files, no events;
- zoo: `zoo.train.train` as `zoo train` runs it, writing its run folder.
Each runs in a fresh process of its own (this script with --child), in the order
bare, zoo, zoo, bare, ... (`--repeats` pairs), so that neither inherits the other's
warmed-up allocator or caches and a drift in the machine's speed hits both alike.
Each process times its epochs only (from the start of the first to the end of the
last; start-up and data loading are not timed). overhead = median zoo / median bare - 1.
The script also prints each loop's time per epoch over the first and the last tenth of
the run: constant bookkeeping keeps zoo's as level as the bare loop's. Other processes skew the numbers: the
load average is printed before and after.
Not a test: nothing here asserts a speed.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import zoo
from zoo.train import EpochEnded, RunStarted, TrainConfig, train
from zoo.train.augment import BatchTransform
from zoo.train.data import epoch_plan, iterate, load_run_data, num_batches
from zoo.train.evaluate import evaluate
from zoo.train.optim import make_optimizer

SETUP = dict(model="mlp", dataset="mnist-sample", batch_size=4000, optimizer="sgd", lr=0.1, momentum=0.0,
             weight_decay=0.0, schedule="constant", label_smoothing=0.0, augment=False, seed=0, device="cpu")


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().split(" ")[0] if Path("/proc/loadavg").exists() else "?"


def bare(epochs: int, threads: int) -> tuple[float, list[float]]:
    """The epochs' own work, nothing else: seconds, and each epoch's."""
    torch.set_num_threads(threads)
    spec = zoo.get_spec(SETUP["model"])
    data = load_run_data(spec, SETUP["dataset"], None, True, None, 0)
    tf = BatchTransform(spec.train_transforms.__class__(spec.train_transforms.mean, spec.train_transforms.std),
                        torch.device("cpu"))
    eval_tf = BatchTransform(spec.eval_transforms, torch.device("cpu"))
    torch.manual_seed(0)
    model = spec.builder()
    recipe = zoo.Recipe(epochs=epochs, batch_size=SETUP["batch_size"], optimizer="sgd", lr=SETUP["lr"],
                        momentum=0.0, schedule="constant")
    opt = make_optimizer(model, recipe, torch.device("cpu"))
    batches = num_batches(len(data.train), recipe.batch_size)
    start = time.perf_counter()
    ends = []
    for epoch in range(1, epochs + 1):
        order, params = epoch_plan(len(data.train), epoch, 0, tf)
        model.train()
        for _, x, y, aug in iterate(data.train, order, params, recipe.batch_size, batches, 0,
                                    torch.device("cpu"), True):
            logits = model(tf(x, aug))
            loss = F.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            correct = (logits.detach().argmax(1) == y).sum()  # zoo counts training accuracy too
            float(loss.detach()), int(correct)  # and reads both back once per epoch
        evaluate(model, data.test.images, data.test.labels, spec, torch.device("cpu"), 1024, eval_tf)
        ends.append(time.perf_counter())
    return ends[-1] - start, [b - a for a, b in zip([start] + ends, ends)]


def with_zoo(epochs: int, threads: int, checkpoint_every: str, folder: Path) -> tuple[float, list[float]]:
    """zoo.train.train's time from the start of its first epoch to its return (the bare
    loop's start-up is not timed either), and the time of each epoch, end to end."""
    ends: list[float] = []
    start = 0.0

    def on_event(event):
        nonlocal start
        if isinstance(event, RunStarted):
            start = time.perf_counter()
        elif isinstance(event, EpochEnded):
            ends.append(time.perf_counter())

    train(TrainConfig(epochs=epochs, threads=threads, out=folder, force=True, offline=True,
                      checkpoint_every=checkpoint_every, **SETUP), on_event=on_event)
    return time.perf_counter() - start, [b - a for a, b in zip([start] + ends, ends)]


def child(kind: str, epochs: int, threads: int, checkpoint_every: str) -> dict:
    """One loop in this process: its seconds (and zoo's per-epoch times)."""
    import torch._dynamo  # noqa: F401  (the optimizers import it once: start-up, not epochs)

    if kind == "bare":
        total, per_epoch = bare(epochs, threads)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            total, per_epoch = with_zoo(epochs, threads, checkpoint_every, Path(tmp) / "run")
    return {"seconds": total, "per_epoch": per_epoch}


def spawn(kind: str, args) -> dict:
    argv = [sys.executable, __file__, "--child", kind, "--epochs", str(args.epochs), "--threads", str(args.threads),
            "--checkpoint-every", args.checkpoint_every]
    proc = subprocess.run(argv, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=5000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--checkpoint-every", default="30s", help="as zoo train's option (default 30s)")
    parser.add_argument("--repeats", type=int, default=1, help="pairs of processes: bare, zoo, zoo, bare, ...")
    parser.add_argument("--child", choices=("bare", "zoo"), help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.epochs, args.threads, args.checkpoint_every)))
        return

    before = loadavg()
    times: dict[str, list[float]] = {"bare": [], "zoo": []}
    per_epoch: dict[str, list[float]] = {}
    for r in range(args.repeats):
        for kind in (("bare", "zoo") if r % 2 == 0 else ("zoo", "bare")):
            got = spawn(kind, args)
            times[kind].append(got["seconds"])
            per_epoch[kind] = got["per_epoch"]
    own, total = statistics.median(times["bare"]), statistics.median(times["zoo"])
    tenth = max(1, args.epochs // 10)
    result = {
        "epochs": args.epochs, "threads": args.threads, "checkpoint_every": args.checkpoint_every,
        "bare_seconds": [round(t, 2) for t in times["bare"]], "zoo_seconds": [round(t, 2) for t in times["zoo"]],
        "overhead": round(total / own - 1, 4),
        **{f"{kind}_ms_per_epoch_{part}_tenth": round(1000 * statistics.median(chunk), 3)
           for kind in ("bare", "zoo")
           for part, chunk in (("first", per_epoch[kind][:tenth]), ("last", per_epoch[kind][-tenth:]))},
        "loadavg_before": before, "loadavg_after": loadavg(),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{args.epochs:,} epochs of {SETUP['model']} (batch {SETUP['batch_size']}, one step each), "
          f"{args.threads} thread(s), checkpoint every {args.checkpoint_every}, "
          f"{args.repeats} pair(s) of fresh processes")
    print(f"  epochs' own work (bare loop): {own:8.2f} s  (median of {', '.join(map(str, result['bare_seconds']))})")
    print(f"  zoo train (run folder):       {total:8.2f} s  (median of {', '.join(map(str, result['zoo_seconds']))})"
          f"   overhead {100 * (total / own - 1):+.1f}%")
    for kind in ("bare", "zoo"):
        print(f"  {kind} ms/epoch, first tenth {result[f'{kind}_ms_per_epoch_first_tenth']:.2f}, "
              f"last tenth {result[f'{kind}_ms_per_epoch_last_tenth']:.2f} (medians, its last process)")
    print(f"  load average {before} before, {result['loadavg_after']} after (other processes share the CPU)")


if __name__ == "__main__":
    main()
