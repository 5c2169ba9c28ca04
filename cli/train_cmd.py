"""`zoo train NAME`: train a model and write its run folder (runs/NAME/ by default).

Display: a live bar per epoch on a terminal, plain lines elsewhere (CI logs,
pipes), only notices and one result line with --quiet. The loop itself
(zoo.train) never prints; `TrainDisplay` turns its events into output.

Folder rule (zoo.train.records): a folder that already holds a run is never
overwritten silently; --resume continues it, --force starts over.
Exit codes: 0 done, 1 training failed (e.g. the loss diverged), 2 bad usage,
130 interrupted by Ctrl-C (state saved, resumable). A run that finished at chance
level (zoo.train.health) exits 0 with its weights, but ends with a warning naming
the likely causes instead of the ✓ line, and run.json records it under "health".
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import List, Optional

import typer

from zoo.spec import Recipe

from .common import TRAIN_RANGES, cycles_text, duration, err, notice, out, warn_chance, warning
from .train_launch import resume_command

PLAIN_EVERY = 10.0  # seconds between progress lines when output is not a terminal


def pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def short_time(seconds: float) -> str:
    """An epoch's time: '41ms' for the tiny epochs of a 5,000-epoch run, not '0.0s'."""
    return f"{1000 * seconds:.0f}ms" if seconds < 1 else f"{seconds:.1f}s"


def epoch_line(m, epochs: int) -> str:
    return (f"epoch {m.epoch:>{len(str(epochs))}}/{epochs}  train loss {m.train_loss:.4f} acc {pct(m.train_acc)}  "
            f"test loss {m.test_loss:.4f} acc {pct(m.test_acc)}  lr {m.lr:.2e}  {short_time(m.seconds)}")


class TrainDisplay:
    """Callable on zoo.train events; use as a context manager around train()."""

    def __init__(self, quiet: bool = False, live: bool | None = None):
        self.quiet = quiet
        self.live = out.is_terminal if live is None else live
        self.progress = None
        self.task = None
        self.last_plain = 0.0
        self.logging_batches = False
        from .decode_display import DecodeDisplay

        self.decoding = DecodeDisplay(quiet=quiet, live=self.live)

    def __enter__(self) -> "TrainDisplay":
        if self.live and not self.quiet:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                       TimeElapsedColumn, TimeRemainingColumn)

            self.progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"), TextColumn("{task.fields[stats]}"),
                TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                console=out, transient=True)
            self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.decoding.close()
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    def print(self, text: str) -> None:
        (self.progress.console if self.progress else out).print(text, soft_wrap=True, highlight=False)

    def __call__(self, event) -> None:
        handler = getattr(self, f"on_{type(event).__name__}", None)
        if handler is not None:
            handler(event)

    def on_Notice(self, e) -> None:
        if self.progress is not None:
            self.progress.console.print(f"[yellow]note:[/] {e.message}", soft_wrap=True)
        else:
            notice(e.message)

    def on_DecodeProgress(self, e) -> None:
        self.decoding.update(e)

    def on_RunStarted(self, e) -> None:
        self.decoding.close()
        if self.quiet:
            return
        where = "resuming" if e.resumed else "training"
        data = e.variant if e.variant == e.dataset else f"{e.variant} (for {e.dataset})"
        h = e.hparams
        self.print(f"{where} [bold]{e.model}[/] on {data}: {e.train_samples:,} train / {e.test_samples:,} test "
                   f"images, {e.device}, from epoch {e.start_epoch} of {e.epochs}")
        extras = "".join([f" wd {h['weight_decay']:g}" if h["weight_decay"] else "",
                          f" momentum {h['momentum']:g}" if h["optimizer"] == "sgd" else "",
                          " nesterov" if h.get("nesterov") else "",
                          f", label smoothing {h['label_smoothing']:g}" if h["label_smoothing"] else "",
                          f", weight average (ema {h['ema']:g})" if h.get("ema") else "",
                          cycles_text(Recipe(**h))])  # the run's whole recipe, as settled
        init = f"normal init (std {h.get('init_std', 0.01):g})" if h["init"] == "normal" else f"{h['init']} init"
        if e.processes > 1:
            self.print(f"  {e.processes} processes ({e.backend}), batch {h['batch_size']} per process, "
                       f"{h['batch_size'] * e.processes} in all")
        self.print(f"  batch {h['batch_size']}, {h['optimizer']} lr {h['lr']:g}{extras}, {h['schedule']} schedule, "
                   f"{init} -> {e.folder}")
        o = e.options
        inputs = {"none": "raw 0-255 pixels", "unit": "pixels scaled to 0..1"}.get(o.get("normalize"), "normalised")
        args = ", ".join(f"{k}={v}" for k, v in (o.get("model_args") or {}).items())
        self.print(f"  inputs {inputs}, {'augmented' if o.get('augment') else 'no augmentation'}"
                   + (f", model {args}" if args else "")
                   + (f", loss logged every {o['log_every']} batches" if o.get("log_every") else ""))
        self.logging_batches = bool(o.get("log_every"))

    def on_EpochStarted(self, e) -> None:
        self.last_plain = time.monotonic()
        if self.progress is not None:
            self.task = self.progress.add_task(f"epoch {e.epoch}/{e.epochs}", total=e.batches,
                                               completed=e.start_batch, rate="", stats="")

    def on_BatchProgress(self, e) -> None:
        stats = f"loss {e.loss:.4f} acc {pct(e.accuracy)}"
        if self.progress is not None and self.task is not None:
            self.progress.update(self.task, completed=e.batch, rate=f"{e.samples_per_second:,.0f} img/s",
                                 stats=stats)
        elif (not self.quiet and not self.logging_batches and e.batch < e.batches
              and time.monotonic() - self.last_plain >= PLAIN_EVERY):  # --log-every prints its own lines
            self.last_plain = time.monotonic()
            self.print(f"  epoch {e.epoch} batch {e.batch}/{e.batches}  {stats}  {e.samples_per_second:,.0f} img/s")

    def on_BatchLogged(self, e) -> None:
        """--log-every N: one line per N batches, as the tutorials print them, and the bar shows it."""
        m = e.metrics
        stats = f"last {m.samples:,} images: loss {m.train_loss:.4f} acc {pct(m.train_acc)}"
        if self.progress is not None and self.task is not None:
            self.progress.update(self.task, stats=stats)
        if not self.quiet:
            self.print(f"  \\[epoch {m.epoch}, batch {m.batch:>{len(str(e.batches))}}/{e.batches}] "
                       f"loss {m.train_loss:.4f}  acc {pct(m.train_acc)}")

    def on_EpochEnded(self, e) -> None:
        if self.progress is not None and self.task is not None:
            self.progress.remove_task(self.task)
            self.task = None
        if not self.quiet:
            self.print(epoch_line(e.metrics, e.epochs))

    def on_Interrupted(self, e) -> None:
        if self.progress is not None and self.task is not None:
            self.progress.remove_task(self.task)
            self.task = None


def draw_curves(folder: Path) -> Path | None:
    """curves.png from the run's metrics.csv; a picture must never cost the user a finished run."""
    from zoo.errors import describe
    from zoo.viz.curves import write_curves

    try:
        return write_curves(folder, warn=warning)
    except Exception as exc:
        notice(f"could not draw the training curves: {describe(exc)}")
        return None


def summary_table(result, curves: Path | None = None):
    from rich.table import Table

    info = result.info
    h = info.get("hyperparameters", {})
    table = Table(title=f"{result.model}: {result.status}", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    data = result.dataset_variant if result.dataset_variant == result.dataset else \
        f"{result.dataset_variant} (for {result.dataset})"
    rows = [
        ("dataset", f"{data}: {info.get('train_samples', 0):,} train, {info.get('test_samples', 0):,} test"),
        ("epochs", f"{result.epoch}/{result.epochs}"),
        ("recipe", f"batch {h.get('batch_size')}, {h.get('optimizer')} lr {h.get('lr'):g}, {h.get('schedule')}"),
        ("device", f"{result.device}" + (f", {plural(info['threads'], 'thread')}" if info.get("threads") else "")),
    ]
    if result.metrics:
        last = result.metrics[-1]
        best = max(result.metrics, key=lambda m: m.test_acc)
        per_epoch = sum(m.seconds for m in result.metrics) / len(result.metrics)
        rows += [("train", f"loss {last.train_loss:.4f}, accuracy {pct(last.train_acc)}"),
                 ("test", f"loss {last.test_loss:.4f}, accuracy [bold]{pct(last.test_acc)}[/]"),
                 ("best test", f"{pct(best.test_acc)} (epoch {best.epoch})"),
                 ("time", f"{duration(result.wall_time)} ({short_time(per_epoch)} per epoch)")]
    files = [str(p) for p in (result.weights, result.folder / "run.json", result.folder / "metrics.csv",
                              curves) if p is not None]
    rows.append(("files", "\n".join(files)))
    for key, value in rows:
        table.add_row(key, value)
    return table


def train(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Model name, as `zoo list` shows it."),
    epochs: Optional[int] = typer.Option(None, "--epochs", **TRAIN_RANGES["epochs"], help="Epochs (default: the model's recipe)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", **TRAIN_RANGES["batch_size"], help="Batch size per process (default: recipe)."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Learning rate; the peak for onecycle (default: recipe)."),
    optimizer: Optional[str] = typer.Option(None, "--optimizer", help="sgd, adam or adamw (default: recipe)."),
    schedule: Optional[str] = typer.Option(None, "--schedule",
                                           help="constant, onecycle, cosine or step (default: recipe)."),
    momentum: Optional[float] = typer.Option(None, "--momentum", **TRAIN_RANGES["momentum"], help="SGD momentum (default: recipe)."),
    nesterov: Optional[bool] = typer.Option(None, "--nesterov/--no-nesterov", help="SGD with Nesterov momentum "
                                            "(default: recipe)."),
    weight_decay: Optional[float] = typer.Option(None, "--weight-decay", **TRAIN_RANGES["weight_decay"], help="Weight decay (default: recipe)."),
    init: Optional[str] = typer.Option(None, "--init", help="default, kaiming, xavier or normal (default: recipe)."),
    init_std: Optional[float] = typer.Option(None, "--init-std", **TRAIN_RANGES["init_std"], help="Standard deviation of --init normal "
                                             "(default: recipe, else 0.01)."),
    label_smoothing: Optional[float] = typer.Option(None, "--label-smoothing", **TRAIN_RANGES["label_smoothing"], help="0 to <1 (default: recipe)."),
    warmup_fraction: Optional[float] = typer.Option(None, "--warmup-fraction", help="onecycle: share of the steps "
                                                    "spent warming up to --lr (default: recipe)."),
    final_lr_fraction: Optional[float] = typer.Option(None, "--final-lr-fraction", help="onecycle, cosine: the last "
                                                      "step's lr as a fraction of --lr (default: recipe)."),
    ema: Optional[float] = typer.Option(None, "--ema", **TRAIN_RANGES["ema"], help="Decay of a moving average of the "
                                        "weights, 0 to <1, which is what is evaluated and saved; 0 turns it off "
                                        "(default: recipe)."),
    cycles: Optional[int] = typer.Option(None, "--cycles", **TRAIN_RANGES["cycles"], help="Warm restarts: the epochs "
                                         "split into N runs of the onecycle or cosine schedule (default: recipe)."),
    cycle_decay: Optional[float] = typer.Option(None, "--cycle-decay", **TRAIN_RANGES["cycle_decay"], help="Each "
                                                "cycle's peak lr as a fraction of the one before (default: recipe)."),
    augment_from_cycle: Optional[int] = typer.Option(None, "--augment-from-cycle", **TRAIN_RANGES["augment_from_cycle"],
                                                     help="The first cycle trained with the model's declared "
                                                     "augmentation; earlier ones see plain images (default: recipe)."),
    seed: Optional[int] = typer.Option(None, "--seed", **TRAIN_RANGES["seed"], help="Random seed (default 0); with the same seed and "
                                        "--threads a CPU run repeats bit for bit."),
    dataset: Optional[str] = typer.Option(None, "--dataset", help="Dataset name (default: the model's), or a folder "
                                          "of your images: PATH/CLASS/*.png|jpg, or PATH/train/ + PATH/test/."),
    holdout: Optional[float] = typer.Option(None, "--holdout", help="Folder without test/: the share of each class "
                                            "held out as the test split (default 0.1)."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Folder: leave unreadable image files out (listed in "
                                  "one warning) instead of stopping."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Where datasets live (default: $ZOO_DATA_DIR "
                                            "or ~/.cache/zoo/data)."),
    offline: bool = typer.Option(False, "--offline", help="Never download; use what is on disk or the bundled sample."),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="Run folder (default: runs/NAME)."),
    device: str = typer.Option("auto", "--device", help="auto (CUDA when present), cpu or cuda."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in the folder from its checkpoint, "
                                "with its saved settings."),
    force: bool = typer.Option(False, "--force", help="Start over in a folder that already holds a run (deletes it)."),
    limit: Optional[int] = typer.Option(None, "--limit", **TRAIN_RANGES["limit"], help="Train and test on a random subset of N images each "
                                        "(quick checks)."),
    normalize: Optional[str] = typer.Option(None, "--normalize", help="Input scale: default (the model's "
                                            "mean/std), unit (0..1, ToTensor only) or none (raw 0-255 pixels)."),
    model_arg: Optional[List[str]] = typer.Option(None, "--model-arg", help="A builder argument as key=value, "
                                                  "e.g. hidden=100 or activation=sigmoid (repeatable; `zoo info "
                                                  "NAME` lists them)."),
    recipe: str = typer.Option("default", "--recipe", help="default (the model's tuned recipe) or tutorial (the "
                               "seed tutorial's own set-up; `zoo info NAME` shows it); flags given override it."),
    augment: Optional[bool] = typer.Option(None, "--augment/--no-augment", help="Apply the model's declared "
                                           "augmentation (default) or only normalise."),
    threads: Optional[int] = typer.Option(None, "--threads", **TRAIN_RANGES["threads"], help="CPU threads per process (default: the "
                                          "cores other processes leave free, split evenly between the processes "
                                          "of a distributed run; on --resume, the run's own count)."),
    nproc: Optional[int] = typer.Option(None, "--nproc", min=1, help="Train data-parallel in N processes on this "
                                        "machine (torch.distributed through torchrun's launcher; --batch-size "
                                        "is per process)."),
    sync_bn: bool = typer.Option(False, "--sync-bn", help="With several processes: BatchNorm statistics over "
                                 "all of them (SyncBatchNorm) instead of rank 0's."),
    init_from: Optional[Path] = typer.Option(None, "--init-from", help="Start from the weights of another run "
                                             "(its folder or model.safetensors) instead of a fresh initialisation."),
    log_every: Optional[int] = typer.Option(None, "--log-every", min=1, help="Also record the training loss "
                                            "and accuracy every N batches (batches.csv, printed and plotted)."),
    checkpoint_every: str = typer.Option("30s", "--checkpoint-every", help="Save the resumable state every N "
                                         "epochs (e.g. 1) or at the first epoch end N seconds after the last "
                                         "save (e.g. 30s); always at the end and on Ctrl-C."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only notices and the result line."),
) -> None:
    """Train a model: progress per epoch, then weights, run.json, metrics.csv, curves.png and a checkpoint."""
    from zoo.fileio import check_folder
    from zoo.runs import RUNS_ROOT

    from .common import registry

    check_folder(out_dir if out_dir is not None else RUNS_ROOT)  # unwritable: one line now, before plugins load

    from zoo.train.distributed import from_env

    world = from_env()
    if nproc is not None and world.many:
        from zoo.errors import UsageError

        raise UsageError("--nproc starts its own processes; under torchrun leave it out "
                         "(torchrun's --nproc-per-node says how many)")
    if nproc is not None and nproc > 1:
        from .train_launch import launch_workers

        launch_workers(ctx, nproc)
        return
    if not world.main:
        quiet = True

    registry()  # plugin warnings first, and an unknown name fails before any data is loaded
    registry().get_spec(name)
    from zoo.train import TrainConfig
    from zoo.train import train as run_training

    config = TrainConfig(
        model=name, epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer, schedule=schedule,
        momentum=momentum, nesterov=nesterov, weight_decay=weight_decay, init=init, init_std=init_std,
        label_smoothing=label_smoothing, warmup_fraction=warmup_fraction, final_lr_fraction=final_lr_fraction,
        ema=ema, cycles=cycles, cycle_decay=cycle_decay, augment_from_cycle=augment_from_cycle,
        seed=seed, normalize=normalize, model_args=model_arg, recipe=recipe,
        dataset=dataset, holdout=holdout, skip_bad=skip_bad, data_dir=data_dir, offline=offline, out=out_dir,
        device=device, resume=resume, force=force, limit=limit, augment=augment, threads=threads, sync_bn=sync_bn,
        checkpoint_every=checkpoint_every, launch_command=launch_command(world), log_every=log_every,
        init_from=init_from)
    try:
        with TrainDisplay(quiet=quiet) as display:
            result = run_training(config, on_event=display)
    except KeyboardInterrupt:  # a second Ctrl-C: stop without saving again
        if not world.main:
            raise typer.Exit(130)
        err.print("[yellow]stopped.[/] The last checkpoint is kept; resume with: "
                  f"{resume_command(name, out_dir, data_dir, offline, device, _processes(world))}", soft_wrap=True)
        raise typer.Exit(130)
    if not world.main:  # only rank 0 talks to the user
        raise typer.Exit(130 if result.status == "interrupted" else 0)
    if result.status == "interrupted":
        where = f"epoch {result.epoch + 1}, batch {result.batch}" if result.batch else f"end of epoch {result.epoch}"
        err.print(f"[yellow]interrupted:[/] saved the state at {where} in {result.checkpoint}", soft_wrap=True)
        err.print(f"resume with: {resume_command(name, out_dir, data_dir, offline, device, _processes(world))}", soft_wrap=True)
        raise typer.Exit(130)
    curves = draw_curves(result.folder)
    if not quiet:
        out.print(summary_table(result, curves))
    acc = f"test accuracy {pct(result.test_accuracy)}" if result.test_accuracy is not None else "done"
    if result.at_chance:  # finished, but learned nothing: never a plain success
        warn_chance(result.health)
        out.print(f"[bold yellow]![/] {name}: {acc} after {plural(result.epoch, 'epoch')} is [bold]chance level[/] "
                  f"({pct(result.health.chance)} for a guess); weights in {result.weights or result.folder}, "
                  "recorded as chance-level in run.json", soft_wrap=True, highlight=False)
        return
    out.print(f"[green]✓[/] {name}: {acc} after {plural(result.epoch, 'epoch')} ({duration(result.wall_time)}); "
              f"weights in {result.weights or result.folder}", soft_wrap=True, highlight=False)


def launch_command(world) -> str:
    """The command line that started this run, for run.json."""
    import shlex
    import sys

    if world.many:
        from zoo.train.launch import worker_command

        return worker_command()
    return shlex.join(["zoo", *sys.argv[1:]])


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _processes(world) -> int | str | None:
    """How this run's processes were started, for its resume line: None (one process),
    their number (`--nproc N`, zoo's launcher) or "torchrun"."""
    import os

    if not world.many:
        return None
    from zoo.train.launch import LAUNCH_ENV

    return world.size if os.environ.get(LAUNCH_ENV) else "torchrun"
