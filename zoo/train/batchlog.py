"""Training loss and accuracy every N batches (`--log-every N`), as the tutorials print
them ("[epoch 1, batch 2000] loss 2.301"): rows of batches.csv, appended.

Each row is the mean over the N batches that end there, recovered from the epoch's
running sums (the only host read those N batches make). Rows of an epoch are appended
when it ends (or is interrupted), so a long epoch costs one small write, not N.
A resumed run first drops rows past its checkpoint, as metrics.csv does.
"""
from __future__ import annotations

import csv
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from ..runs import BATCH_COLUMNS, BATCHES_FILE
from ..safeio import BATCHES_CSV
from .records import CsvLog


@dataclass(frozen=True)
class BatchMetrics:
    """One row of batches.csv: the mean over the batches since the previous row."""

    epoch: int
    batch: int  # batches done in this epoch
    step: int  # batches done in the run
    samples: int  # samples in this row's interval
    train_loss: float
    train_acc: float
    lr: float

    def as_dict(self) -> dict:
        return asdict(self)


class BatchLog:
    def __init__(self, folder: Path, every: int, batches: int):
        self.every, self.batches = every, batches
        self.file = CsvLog(folder / BATCHES_FILE, BATCH_COLUMNS)
        self.pending: list[dict] = []
        self.prev = (0.0, 0, 0)  # loss sum, correct, samples at the previous row

    def start(self, epoch_done: int, batch_done: int) -> None:
        """A new run: an empty record. A resumed one: the rows up to its checkpoint."""
        self.file.start(kept_rows(self.file.path, epoch_done, batch_done))

    def start_epoch(self, loss_sum: float, correct: int, samples: int) -> None:
        self.prev = (loss_sum, correct, samples)  # non-zero when resuming mid-epoch

    def due(self, done: int) -> bool:
        return done % self.every == 0 or done == self.batches

    def add(self, epoch: int, done: int, loss_sum: float, correct: int, samples: int, lr: float) -> BatchMetrics | None:
        n = samples - self.prev[2]
        if n <= 0:
            return None
        row = BatchMetrics(epoch, done, (epoch - 1) * self.batches + done, n,
                           (loss_sum - self.prev[0]) / n, (correct - self.prev[1]) / n, lr)
        self.prev = (loss_sum, correct, samples)
        self.pending.append(row.as_dict())
        return row

    def flush(self) -> None:
        self.file.append(self.pending)
        self.pending = []


def kept_rows(path: Path, epoch_done: int, batch_done: int) -> list[dict]:
    """The rows of an earlier batches.csv up to (epoch_done complete epochs + batch_done
    batches). A missing, oversized or malformed file keeps nothing: the record restarts."""
    if path.is_symlink() or not path.is_file() or path.stat().st_size > BATCHES_CSV.max_bytes:
        return []
    kept = []
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                epoch, batch = int(row["epoch"]), int(row["batch"])
                if epoch <= epoch_done or (epoch == epoch_done + 1 and batch <= batch_done):
                    kept.append({c: _value(row[c]) for c in BATCH_COLUMNS})
    except (OSError, ValueError, KeyError, TypeError, csv.Error, UnicodeDecodeError):
        return []
    return kept


def _value(text: str) -> float | int:
    number = float(text)
    if not math.isfinite(number) and text.strip().lower() not in ("nan", "inf", "-inf"):
        raise ValueError(text)
    return int(number) if number.is_integer() and "." not in text and "e" not in text.lower() else number
