"""Learning-rate comparison: short runs that differ only in the learning rate, and
one figure of their loss curves. Too large a rate oscillates or diverges, too
small a one crawls; the picture shows both.

Each lr trains with `zoo.train.train` in RUN/lr-sweep/lr-<value>/ with the same
seed (same initial weights, same batches) and, unless asked otherwise, a constant
schedule, so the learning rate is the only difference.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from ..errors import TrainingError, UsageError
from ._figure import new_figure, save_png, styled

SWEEP_FOLDER = "lr-sweep"
SWEEP_FILE = "lr-sweep.png"


@dataclass
class SweepRun:
    """One learning rate's run: loss per reporting interval, x in (fractional) epochs."""

    lr: float
    folder: Path
    steps: list[float] = field(default_factory=list)  # epoch position, e.g. 1.25 = a quarter into epoch 2
    losses: list[float] = field(default_factory=list)  # mean training loss over the interval ending there
    epochs: list = field(default_factory=list)  # zoo.train EpochMetrics, one per finished epoch
    status: str = "finished"  # finished | diverged | interrupted
    error: str = ""
    started: object = None  # the run's zoo.train RunStarted event: dataset, hyperparameters, sizes

    @property
    def final(self):
        return self.epochs[-1] if self.epochs else None


def parse_lrs(text: str) -> list[float]:
    """'0.1,0.01,1e-3' -> [0.1, 0.01, 0.001], each positive, no duplicates."""
    values = []
    for part in (p.strip() for p in text.split(",")):
        try:
            value = float(part)
        except ValueError as exc:
            raise UsageError(f"--lrs: {part!r} is not a number; write e.g. --lrs 0.1,0.01,0.001") from exc
        if not (value > 0 and math.isfinite(value)):
            raise UsageError(f"--lrs: learning rates must be positive, got {part}")
        if value in values:
            raise UsageError(f"--lrs: {part} is listed twice")
        values.append(value)
    if not values:
        raise UsageError("--lrs: give at least one learning rate, e.g. --lrs 0.1,0.01,0.001")
    return values


def lr_folder(run_folder: str | Path, lr: float) -> Path:
    """RUN/lr-sweep/lr-0.01: a name from a float, so it can never leave the sweep folder."""
    return Path(run_folder) / SWEEP_FOLDER / f"lr-{lr:g}"


class _IntervalLoss:
    """BatchProgress reports the running mean loss of the epoch; the mean over each
    interval between two reports is recovered from consecutive running means
    (mean_k * n_k - mean_j * n_j) / (n_k - n_j). Interval means show oscillation
    that the epoch's running mean smooths away."""

    def __init__(self, run: SweepRun):
        self.run, self.train_samples, self.epoch = run, 0, 0
        self.prev_samples, self.prev_total = 0, 0.0

    def started(self, event) -> None:  # RunStarted
        self.train_samples = event.train_samples

    def epoch_started(self, event) -> None:
        self.epoch, self.prev_samples, self.prev_total = event.epoch, 0, 0.0

    def progress(self, event) -> None:
        total = event.loss * event.samples
        n = event.samples - self.prev_samples
        if n <= 0:
            return
        self.run.steps.append(self.epoch - 1 + event.samples / max(self.train_samples, 1))
        self.run.losses.append((total - self.prev_total) / n)
        self.prev_samples, self.prev_total = event.samples, total


def run_sweep(model: str, lrs: Sequence[float], epochs: int, run_folder: str | Path, *,
              on_event: Callable[[float, object], None] | None = None, **train_options) -> list[SweepRun]:
    """Train `model` once per lr (train_options go to zoo.train.TrainConfig, e.g. limit,
    batch_size, schedule, seed, data_dir, offline). A run whose loss blows up is kept
    as "diverged" with the losses it reached; other errors propagate."""
    from zoo.train import TrainConfig, train
    from zoo.train.events import BatchProgress, EpochEnded, EpochStarted, RunStarted

    from ..fileio import check_folder

    check_folder(Path(run_folder) / SWEEP_FOLDER)  # a file in the way fails now, not mid-sweep
    train_options.setdefault("schedule", "constant")
    runs = []
    for lr in lrs:
        run = SweepRun(lr, lr_folder(run_folder, lr))
        tracker = _IntervalLoss(run)

        def forward(event, lr=lr, run=run, tracker=tracker):
            if isinstance(event, RunStarted):
                run.started = event
                tracker.started(event)
            elif isinstance(event, EpochStarted):
                tracker.epoch_started(event)
            elif isinstance(event, BatchProgress):
                tracker.progress(event)
            elif isinstance(event, EpochEnded):
                run.epochs.append(event.metrics)
            if on_event is not None:
                on_event(lr, event)

        # force: a sweep's runs are scratch runs; a new sweep replaces the last one's.
        config = TrainConfig(model=model, lr=lr, epochs=epochs, out=run.folder, force=True, **train_options)
        try:
            result = train(config, forward)
            run.status = result.status
        except TrainingError as exc:
            run.status, run.error = "diverged", str(exc)
        runs.append(run)
        if run.status == "interrupted":
            break  # Ctrl-C stops the whole sweep, not just this lr
    return runs


def sweep_title(model: str, runs: Sequence[SweepRun]) -> str:
    """E.g. 'lenet5: learning-rate sweep on mnist-sample (4,000 training images), 3 epochs, sgd,
    constant schedule, batch 128'."""
    first = next((r.started for r in runs if r.started is not None), None)
    if first is None:
        return f"{model}: learning-rate sweep"
    h = first.hparams
    return (f"{model}: learning-rate sweep on {first.variant} ({first.train_samples:,} training images), "
            f"{first.epochs} epoch{'s' if first.epochs != 1 else ''}, {h.get('optimizer')}, "
            f"{h.get('schedule')} schedule, batch {h.get('batch_size')}")


def plot_lr_sweep(runs: Sequence[SweepRun], path: str | Path, title: str, num_classes: int | None = None) -> Path:
    """Left: training loss over the run for every lr (log scale), with the loss of uniform
    guessing, ln(K), as a reference line. Right: test accuracy per epoch."""
    from matplotlib import colormaps
    from matplotlib.ticker import FuncFormatter, MaxNLocator, PercentFormatter

    ordered = sorted(runs, key=lambda r: -r.lr)  # largest lr first, warmest colour
    colors = colormaps["plasma"]
    with styled():
        fig = new_figure(13, 5.2)
        loss_ax, acc_ax = fig.subplots(1, 2, width_ratios=[1.6, 1])
        for k, run in enumerate(ordered):
            color = colors(0.78 * k / max(len(ordered) - 1, 1))  # stop before plasma's pale yellow
            label = f"lr = {run.lr:g}" + ("" if run.status == "finished" else f" ({run.status})")
            _loss_line(loss_ax, run, color, label)
            accs = [(m.epoch, m.test_acc * 100) for m in run.epochs if not math.isnan(m.test_acc)]
            if accs:
                acc_ax.plot(*zip(*accs), marker="o", color=color, linewidth=2, label=label)
        loss_ax.set(title="Training loss (mean over each reporting interval)", xlabel="epoch",
                    ylabel="loss (log scale)")
        if num_classes:
            chance = math.log(num_classes)
            loss_ax.axhline(chance, color="0.45", linestyle="--", linewidth=1.2,
                            label=f"guessing: ln {num_classes} = {chance:.2f}")
            acc_ax.axhline(100 / num_classes, color="0.45", linestyle="--", linewidth=1.2,
                           label=f"guessing: {100 / num_classes:.0f}%")
        loss_ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))  # 1, 10 rather than 10^0
        loss_ax.yaxis.set_minor_formatter(FuncFormatter(_minor_label))
        loss_ax.legend(loc="best", fontsize=10)
        acc_ax.set(title="Test accuracy after each epoch", xlabel="epoch", ylabel="test accuracy")
        acc_ax.yaxis.set_major_formatter(PercentFormatter(decimals=0))
        acc_ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if acc_ax.lines:
            acc_ax.legend(loc="best", fontsize=10)
        fig.suptitle(f"{title}\ntoo large a learning rate oscillates or diverges, too small a one crawls",
                     fontsize=13)
        return save_png(fig, path)


def _minor_label(value: float, _pos) -> str:
    """Label the 2s and 5s between powers of ten (0.2, 0.5, 2, 5): enough to read a log axis."""
    if value <= 0:
        return ""
    lead = round(value / 10 ** math.floor(math.log10(value)))
    return f"{value:g}" if lead in (2, 5) else ""


def _loss_line(ax, run: SweepRun, color, label: str) -> None:
    points = [(s, v) for s, v in zip(run.steps, run.losses) if math.isfinite(v) and v > 0]
    if not points:
        points = [(m.epoch, m.train_loss) for m in run.epochs if math.isfinite(m.train_loss) and m.train_loss > 0]
    if not points:
        ax.plot([], [], color=color, label=f"{label}: no finite loss")
        return
    xs, ys = zip(*points)
    ax.plot(xs, ys, color=color, linewidth=1.8, marker="o" if len(xs) < 15 else None, markersize=4, label=label)
    if run.status == "diverged":
        ax.plot([xs[-1]], [ys[-1]], marker="X", markersize=12, color=color, linestyle="none")
    ax.set_yscale("log")
