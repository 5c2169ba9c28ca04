"""`zoo lr-sweep NAME`: short training runs that differ only in the learning rate,
their loss curves in one figure, and a table of how each one ended."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from .common import TRAIN_RANGES, notice, out, registry


def lr_sweep(
    name: str = typer.Argument(..., help="Model name, as `zoo list` shows it."),
    lrs: str = typer.Option("0.1,0.01,0.001", "--lrs", help="Comma-separated learning rates to compare."),
    epochs: int = typer.Option(3, "--epochs", **TRAIN_RANGES["epochs"], help="Epochs per learning rate."),
    limit: Optional[int] = typer.Option(None, "--limit", **TRAIN_RANGES["limit"],
                                        help="Train and test on a random subset of N images per split."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", **TRAIN_RANGES["batch_size"], help="Default: the model's recipe."),
    optimizer: Optional[str] = typer.Option(None, "--optimizer", help="sgd, adam or adamw (default: the recipe's)."),
    schedule: str = typer.Option("constant", "--schedule", help="Default constant, so each run keeps its lr."),
    momentum: Optional[float] = typer.Option(None, "--momentum", **TRAIN_RANGES["momentum"], help="SGD momentum (default: recipe)."),
    nesterov: Optional[bool] = typer.Option(None, "--nesterov/--no-nesterov", help="SGD with Nesterov momentum "
                                            "(default: recipe)."),
    warmup_fraction: Optional[float] = typer.Option(None, "--warmup-fraction", help="onecycle: share of the steps "
                                                    "spent warming up to each lr (default: recipe)."),
    final_lr_fraction: Optional[float] = typer.Option(None, "--final-lr-fraction", help="onecycle, cosine: the "
                                                      "last step's lr as a fraction of each lr (default: recipe)."),
    weight_decay: Optional[float] = typer.Option(None, "--weight-decay", **TRAIN_RANGES["weight_decay"], help="Weight decay (default: recipe)."),
    label_smoothing: Optional[float] = typer.Option(None, "--label-smoothing", **TRAIN_RANGES["label_smoothing"],
                                                   help="0 to <1 (default: recipe)."),
    ema: Optional[float] = typer.Option(None, "--ema", **TRAIN_RANGES["ema"], help="Decay of the weight average evaluated, 0 to <1; "
                                        "0: off (default: recipe)."),
    cycles: int = typer.Option(1, "--cycles", **TRAIN_RANGES["cycles"], help="Warm restarts (default 1, so each "
                               "run keeps its lr schedule whole)."),
    cycle_decay: Optional[float] = typer.Option(None, "--cycle-decay", **TRAIN_RANGES["cycle_decay"],
                                                help="Each cycle's peak as a fraction of the one before (default: recipe)."),
    augment_from_cycle: Optional[int] = typer.Option(None, "--augment-from-cycle", **TRAIN_RANGES["augment_from_cycle"],
                                                     help="The first cycle with the declared augmentation (default: "
                                                     "recipe; past the last cycle: none)."),
    init: Optional[str] = typer.Option(None, "--init", help="default, kaiming, xavier or normal (default: recipe)."),
    init_std: Optional[float] = typer.Option(None, "--init-std", **TRAIN_RANGES["init_std"],
                                            help="Standard deviation of --init normal."),
    normalize: Optional[str] = typer.Option(None, "--normalize", help="default, unit (0..1) or none (raw 0-255)."),
    model_arg: Optional[List[str]] = typer.Option(None, "--model-arg", help="A builder argument as key=value "
                                                  "(repeatable)."),
    recipe: str = typer.Option("default", "--recipe", help="default or tutorial (the seed tutorial's set-up); "
                               "--lrs and --epochs still decide those two."),
    augment: Optional[bool] = typer.Option(None, "--augment/--no-augment", help="The model's declared "
                                           "augmentation (default) or none."),
    threads: Optional[int] = typer.Option(None, "--threads", **TRAIN_RANGES["threads"], help="CPU threads (default: the free cores)."),
    seed: int = typer.Option(0, "--seed", **TRAIN_RANGES["seed"], help="Same seed for every lr: same initial weights and batches."),
    out_dir: Optional[Path] = typer.Option(None, "--out",
                                           help="Run folder (default runs/NAME); runs go to RUN/lr-sweep/."),
    dataset: Optional[str] = typer.Option(None, "--dataset", help="Dataset name (default: the model's), or a folder "
                                          "of your images (see `zoo train --help`)."),
    holdout: Optional[float] = typer.Option(None, "--holdout", help="Folder without test/: share held out as the "
                                            "test split (default 0.1)."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Folder: leave unreadable image files out."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Where datasets live."),
    offline: bool = typer.Option(False, "--offline", help="Never download a dataset."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
) -> None:
    """Train briefly at each learning rate and plot the loss curves together (replaces the last sweep's runs)."""
    spec = registry().get_spec(name)
    from zoo.runs import run_dir
    from zoo.train.sweep import SWEEP_FOLDER, parse_lrs, run_sweep
    from zoo.viz.lr_sweep import SWEEP_FILE, plot_lr_sweep, sweep_title

    values = parse_lrs(lrs)
    folder = run_dir(name, out_dir)
    options = dict(limit=limit, batch_size=batch_size, optimizer=optimizer, schedule=schedule, seed=seed,
                   data_dir=data_dir, offline=offline, device=device, momentum=momentum, nesterov=nesterov,
                   warmup_fraction=warmup_fraction, final_lr_fraction=final_lr_fraction,
                   weight_decay=weight_decay, label_smoothing=label_smoothing, ema=ema, cycles=cycles, cycle_decay=cycle_decay,
                   augment_from_cycle=augment_from_cycle, init=init, init_std=init_std,
                   normalize=normalize, model_args=model_arg, recipe=recipe, augment=augment, dataset=dataset,
                   holdout=holdout, skip_bad=skip_bad, threads=threads)
    runs = run_sweep(spec.name, values, epochs, folder, on_event=SweepDisplay(), **options)
    path = plot_lr_sweep(runs, folder / SWEEP_FILE, sweep_title(spec.name, runs, spec.recipe, spec.train_transforms.augments),
                         _classes(runs, spec.num_classes))
    out.print(summary_table(runs))
    out.print(f"wrote {path} (runs in {folder / SWEEP_FOLDER}/)")
    if any(r.status == "interrupted" for r in runs):
        raise typer.Exit(130)


def _classes(runs, default: int) -> int:
    """The class count the runs trained with (a folder of images has its own)."""
    from zoo.errors import ZooError
    from zoo.runs import read_run_info

    for run in runs:
        try:
            names = (read_run_info(run.folder) or {}).get("class_names")
        except ZooError:
            continue
        if names:
            return len(names)
    return default


class SweepDisplay:
    """One line per finished epoch; each notice (e.g. a fallback dataset) once."""

    def __init__(self):
        from .decode_display import DecodeDisplay

        self.seen: set[str] = set()
        self.decoding = DecodeDisplay()

    def __call__(self, lr: float, event) -> None:
        from zoo.imagefolder import DecodeProgress
        from zoo.train.events import EpochEnded, Notice, RunStarted

        if isinstance(event, DecodeProgress):
            self.decoding.update(event)
            return
        if isinstance(event, RunStarted):
            self.decoding.close()
        if isinstance(event, Notice) and event.message not in self.seen:
            self.seen.add(event.message)
            notice(event.message)
        elif isinstance(event, RunStarted):
            out.print(f"lr {lr:g}: {event.epochs} epoch(s) on {event.train_samples:,} images -> {event.folder}")
        elif isinstance(event, EpochEnded):
            m = event.metrics
            out.print(f"  epoch {m.epoch}/{event.epochs}  train loss {m.train_loss:.4f}  "
                      f"test loss {m.test_loss:.4f}  test acc {m.test_acc:.2%}  {m.seconds:.1f}s")


def summary_table(runs):
    from rich.table import Table

    table = Table(title="learning-rate sweep")
    for column in ("lr", "status", "train loss", "test loss", "test acc", "best test acc"):
        table.add_column(column, justify="left" if column == "status" else "right")
    for run in runs:
        last = run.final
        best = max((m.test_acc for m in run.epochs), default=None)
        cells = (f"{last.train_loss:.4f}", f"{last.test_loss:.4f}", f"{last.test_acc:.2%}") if last else ("-",) * 3
        status = run.status if not run.error else f"{run.status} (epoch {len(run.epochs) + 1})"
        table.add_row(f"{run.lr:g}", status, *cells, f"{best:.2%}" if best is not None else "-")
    return table
