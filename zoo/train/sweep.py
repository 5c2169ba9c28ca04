"""Learning-rate sweep: short runs that differ only in the learning rate, recorded as
data (loss per reporting interval, metrics per epoch). zoo.viz.lr_sweep draws them.

Each lr trains with `zoo.train.train` in RUN/lr-sweep/lr-<value>/ with the same
seed (same initial weights, same batches) and, unless asked otherwise, a constant
schedule, so the learning rate is the only difference.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from ..errors import TrainingError, UsageError, describe
from ..fileio import check_folder
from .config import TrainConfig
from .events import BatchProgress, EpochEnded, EpochStarted, RunStarted
from .loop import train

SWEEP_FOLDER = "lr-sweep"


@dataclass
class SweepRun:
    """One learning rate's run: loss per reporting interval, x in (fractional) epochs."""

    lr: float
    folder: Path
    steps: list[float] = field(default_factory=list)  # epoch position, e.g. 1.25 = a quarter into epoch 2
    losses: list[float] = field(default_factory=list)  # mean training loss over the interval ending there
    epochs: list = field(default_factory=list)  # zoo.train EpochMetrics, one per finished epoch
    status: str = "finished"  # finished | chance level | diverged | interrupted
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
            run.status = "chance level" if result.at_chance else result.status  # finished, learned nothing
        except TrainingError as exc:
            run.status, run.error = "diverged", describe(exc)
        runs.append(run)
        if run.status == "interrupted":
            break  # Ctrl-C stops the whole sweep, not just this lr
    return runs
