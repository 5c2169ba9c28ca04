"""Events `train()` emits to its `on_event` callback. The loop never prints: the
CLI (or a notebook, or an lr sweep) decides what to show."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..imagefolder.decode import DecodeProgress  # emitted while a folder of images is decoded
from .config import EpochMetrics


@dataclass(frozen=True)
class Notice:
    """Something the user should see, e.g. that a fallback dataset is used."""

    message: str


@dataclass(frozen=True)
class RunStarted:
    model: str
    dataset: str
    variant: str
    device: str
    folder: Path
    start_epoch: int  # 1-based epoch the run starts (or resumes) in
    epochs: int
    train_samples: int
    test_samples: int
    batches: int  # per epoch
    hparams: dict[str, Any]
    resumed: bool
    data_on_device: bool
    processes: int = 1  # a distributed run's world size; batch_size in hparams is per process
    backend: str | None = None  # "gloo" | "nccl" with several processes
    options: dict[str, Any] = field(default_factory=dict)  # normalize, model_args, augment, log_every


@dataclass(frozen=True)
class EpochStarted:
    epoch: int
    epochs: int
    batches: int
    start_batch: int  # > 0 when resuming mid-epoch
    lr: float
    model: Any  # the nn.Module being trained: callbacks may inspect it or hook into it


@dataclass(frozen=True)
class BatchProgress:
    """Sent every few batches (the loss is read from the device only then)."""

    epoch: int
    batch: int  # batches done in this epoch
    batches: int
    samples: int  # samples done in this epoch
    loss: float  # running mean over the epoch
    accuracy: float  # running fraction correct over the epoch
    samples_per_second: float
    lr: float


@dataclass(frozen=True)
class BatchLogged:
    """With --log-every N: the mean training loss and accuracy over the last N batches."""

    metrics: Any  # zoo.train.batchlog.BatchMetrics
    batches: int  # per epoch


@dataclass(frozen=True)
class EpochEnded:
    metrics: EpochMetrics
    epochs: int
    checkpoint: Path | None  # None when no checkpoint was due (--checkpoint-every)


@dataclass(frozen=True)
class Interrupted:
    epoch: int
    batch: int
    checkpoint: Path


Event = (DecodeProgress | Notice | RunStarted | EpochStarted | BatchProgress | BatchLogged | EpochEnded
         | Interrupted)
Callback = Callable[[Event], None]
