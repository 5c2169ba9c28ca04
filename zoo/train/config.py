"""What a training run is asked to do (`TrainConfig`) and what it produced (`TrainResult`)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import SpecError, UsageError
from ..spec import ModelSpec, Recipe

# Recipe fields a TrainConfig may override; None means "the spec's recipe decides".
HPARAMS = tuple(f.name for f in dataclasses.fields(Recipe))


@dataclass
class TrainConfig:
    """One training run. Hyperparameters left at None come from the spec's `zoo.Recipe`.

    With `resume`, the run continues with the settings saved in its checkpoint;
    an explicit setting that contradicts them is refused (it would not be the same run).
    """

    model: str
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    optimizer: str | None = None
    schedule: str | None = None
    momentum: float | None = None
    nesterov: bool | None = None
    weight_decay: float | None = None
    init: str | None = None
    init_std: float | None = None
    label_smoothing: float | None = None
    warmup_fraction: float | None = None
    final_lr_fraction: float | None = None
    ema: float | None = None
    cycles: int | None = None
    cycle_decay: float | None = None
    augment_from_cycle: int | None = None
    seed: int | None = None  # None: 0 for a new run, the saved seed on resume
    dataset: str | None = None  # None: the spec's dataset; a path: a folder of images (zoo.imagefolder)
    holdout: float | None = None  # folder without test/: share held out as the test split (None: 10%)
    skip_bad: bool = False  # folder: leave unreadable image files out (with a warning) instead of failing
    data_dir: str | Path | None = None
    offline: bool = False
    out: str | Path | None = None  # run folder; None: runs/MODEL
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    resume: bool = False
    force: bool = False  # start over in a folder that already holds a run
    limit: int | None = None  # use a seeded random subset of this many samples per split (tests, smoke runs)
    augment: bool | None = None  # None: as the spec's train_transforms declare; False: normalise only
    normalize: str | None = None  # default (the spec's mean/std), unit ([0, 1]) or none (raw 0-255)
    model_args: list[str] | dict[str, Any] | None = None  # builder keyword arguments, "key=value"
    recipe: str = "default"  # or "tutorial": the seed tutorial's own set-up (spec.tutorial) fills unset options
    eval_batch_size: int = 1024
    data_on_device: bool | None = None  # None: keep the dataset on the device when it fits
    threads: int | None = None  # CPU threads; None: the free cores (zoo.train.threads), or the saved count on resume
    init_from: str | Path | None = None  # start from this run's weights (a run folder or .safetensors file)
    log_every: int | None = None  # also record training loss/accuracy every N batches (batches.csv)
    checkpoint_every: str = "30s"  # "N" epochs or "Ns" seconds; also at the end and on Ctrl-C
    handle_sigint: bool = True  # Ctrl-C (or SIGTERM) finishes the batch, saves and returns "interrupted"
    sync_bn: bool = False  # several processes: SyncBatchNorm (batch statistics over all of them)
    launch_command: str | None = None  # the command line that started the run, for run.json

    def overrides(self) -> dict[str, Any]:
        """The hyperparameters set explicitly (not None)."""
        return {k: getattr(self, k) for k in HPARAMS if getattr(self, k) is not None}


def resolve_recipe(spec: ModelSpec, config: TrainConfig) -> Recipe:
    """The spec's recipe with the config's explicit settings applied and validated."""
    try:
        recipe = dataclasses.replace(spec.recipe, **config.overrides())
    except (SpecError, TypeError) as exc:
        raise UsageError(f"invalid training option: {str(exc).removeprefix('recipe: ')}") from exc
    if recipe.momentum < 0 or recipe.weight_decay < 0:
        raise UsageError("invalid training option: momentum and weight decay must be >= 0")
    if config.limit is not None and config.limit < 1:
        raise UsageError(f"invalid training option: limit must be >= 1, got {config.limit}")
    return recipe


@dataclass(frozen=True)
class CheckpointEvery:
    """How often the resumable state (and run.json) is rewritten: every `epochs` epochs,
    or at the first epoch end `seconds` after the last save. Always at the end of the run
    and on Ctrl-C. A time interval keeps a run of 5,000 tiny epochs from spending its
    time rewriting checkpoints, while a run of long epochs still saves after each one."""

    epochs: int | None = None
    seconds: float | None = None

    @classmethod
    def parse(cls, text: str | int) -> "CheckpointEvery":
        raw = str(text).strip().lower()
        try:
            if raw.endswith("s"):
                seconds = float(raw[:-1])
                if seconds >= 0 and seconds == seconds and seconds != float("inf"):
                    return cls(seconds=seconds)
            else:
                epochs = int(raw)
                if epochs >= 1:
                    return cls(epochs=epochs)
        except ValueError:
            pass
        raise UsageError(f"--checkpoint-every {text!r}: give a number of epochs (e.g. 1) or of seconds "
                         "(e.g. 30s)")

    def due(self, epochs_since: int, seconds_since: float) -> bool:
        if self.epochs is not None:
            return epochs_since >= self.epochs
        return seconds_since >= (self.seconds or 0.0)

    def __str__(self) -> str:
        return f"{self.epochs} epoch(s)" if self.epochs is not None else f"{self.seconds:g}s"


@dataclass(frozen=True)
class EpochMetrics:
    """One row of metrics.csv. Accuracies are fractions in [0, 1]; lr is the learning
    rate of the epoch's last step (after it the schedule has moved on: past the last
    step of a run it would even climb again); seconds is the epoch's training time."""

    epoch: int
    train_loss: float
    train_acc: float
    test_loss: float
    test_acc: float
    lr: float
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class TrainResult:
    model: str
    folder: Path
    status: str  # "finished" | "interrupted"
    epoch: int  # epochs completed
    epochs: int  # epochs asked for
    batch: int  # batches done in the epoch in progress (0 unless interrupted mid-epoch)
    metrics: list[EpochMetrics] = field(default_factory=list)
    test_accuracy: float | None = None
    test_loss: float | None = None
    wall_time: float = 0.0  # seconds, all sessions of the run together
    device: str = "cpu"
    dataset: str = ""
    dataset_variant: str = ""
    weights: Path | None = None  # model.safetensors, when finished
    checkpoint: Path | None = None
    notices: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)  # what run.json holds
    health: Any = None  # zoo.train.health.Health: whether the finished run learned or stayed at chance

    @property
    def at_chance(self) -> bool:
        """Finished, but the test accuracy is at chance level: never report it as a success."""
        return self.health is not None and self.health.at_chance

    @property
    def finished(self) -> bool:
        return self.status == "finished"
