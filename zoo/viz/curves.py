"""Training curves: loss, accuracy and learning rate against epochs, from metrics.csv.

`write_curves(run_folder)` is called by `zoo train` at the end of every run and by
`zoo plot NAME`; it only reads metrics.csv, so it works on any finished or
interrupted run.
"""
from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import CheckpointError
from .. import safeio
from ..runs import BATCH_COLUMNS, BATCHES_FILE, CURVES_FILE, METRICS_COLUMNS, METRICS_FILE, read_run_info
from ..spec import MAX_EPOCHS
from ._figure import new_figure, percent_axis, save_png, styled

TRAIN_COLOR, TEST_COLOR = "tab:blue", "tab:orange"
MAX_COUNT = 2**53  # batches, steps and samples: above it a float no longer holds every whole number


@dataclass
class Metrics:
    """metrics.csv as columns of floats; a blank cell (e.g. no test set) is NaN."""

    epoch: list[float]
    train_loss: list[float]
    train_acc: list[float]
    test_loss: list[float]
    test_acc: list[float]
    lr: list[float]
    seconds: list[float]

    def __len__(self) -> int:
        return len(self.epoch)


def _number(text: str | None) -> float:
    try:
        return float(text) if text not in (None, "") else math.nan
    except ValueError:
        return math.nan


def _is_number(text: str | None) -> bool:
    """A cell float() reads; 'nan' and 'inf' are numbers (zoo writes a diverged loss so)."""
    try:
        float(text)
    except (TypeError, ValueError):
        return False
    return True


def _whole(text: str | None, low: int, high: int) -> int | None:
    """A count such as an epoch or a step: a whole number in low..high, else None."""
    try:
        number = float(text)
    except (TypeError, ValueError):
        return None
    return int(number) if math.isfinite(number) and number.is_integer() and low <= number <= high else None


def _csv_rows(path: Path, limit: safeio.Limit) -> tuple[list[str], list[tuple[int, dict]]]:
    """The header and (line number, row) pairs of a CSV file from elsewhere: a regular
    file under `limit` (a FIFO is refused, not waited on), UTF-8, well-formed."""
    data = safeio.read_bytes(path, limit, CheckpointError)
    try:
        reader = csv.DictReader(io.StringIO(data.decode("utf-8"), newline=""))
        rows = [(reader.line_num, row) for row in reader]
        header = reader.fieldnames or []  # the header line, even when no row follows
    except (UnicodeDecodeError, csv.Error) as exc:
        raise CheckpointError(f"{path} is not a readable CSV file ({exc})")
    return list(header), rows


def _metrics_problem(row: dict) -> str | None:
    """Why a metrics.csv row cannot be drawn, or None. Blank cells are fine (NaN: no test split)."""
    if _whole(row.get("epoch"), 1, MAX_EPOCHS) is None:
        return f"epoch {safeio.for_display(row.get('epoch'), 40)!r} is not a whole number from 1 to {MAX_EPOCHS:,}"
    for column in METRICS_COLUMNS:
        cell = row.get(column)
        if cell not in (None, "") and not _is_number(cell):
            return f"{column} {safeio.for_display(cell, 40)!r} is not a number"
    return None


def read_metrics(path: str | Path, warn: Callable[[str], None] | None = None) -> Metrics:
    """Read a metrics.csv, with one clear error for a missing, empty or foreign file, or
    one without a readable row. Rows that are not numbers are left out; `warn` hears how many."""
    path = Path(path)
    if not (path.exists() or path.is_symlink()):
        raise CheckpointError(f"no {METRICS_FILE} at {path}: train the model first (`zoo train NAME`)")
    header, rows = _csv_rows(path, safeio.METRICS_CSV)
    if not header:
        raise CheckpointError(f"{path} is empty: train the model again (`zoo train NAME --force`)")
    missing = [c for c in ("epoch", "train_loss") if c not in header]
    if not rows or missing:
        what = "has no epochs yet" if not missing else f"lacks column(s) {', '.join(missing)}"
        raise CheckpointError(f"{path} {what}: expected columns {', '.join(METRICS_COLUMNS)}")
    checked = [(line, row, _metrics_problem(row)) for line, row in rows]
    kept = [row for _, row, problem in checked if problem is None]
    problems = [(line, problem) for line, _, problem in checked if problem is not None]
    if problems:
        line, first = problems[0]
        if not kept:
            raise CheckpointError(f"{path} holds no readable rows (line {line}: {first}): "
                                  "train the model again (`zoo train NAME --force`)")
        if warn is not None:
            warn(f"{path}: left out {len(problems)} of {len(rows)} rows that are not numbers (line {line}: {first})")
    return Metrics(**{c: [_number(r.get(c)) for r in kept] for c in METRICS_COLUMNS})


@dataclass
class BatchCurve:
    """batches.csv (zoo train --log-every N): x in epochs (1.5 = half-way through epoch 2)."""

    x: list[float]
    train_loss: list[float]
    train_acc: list[float]
    lr: list[float]
    every: int  # batches per row


def read_batches(path: str | Path, warn: Callable[[str], None] | None = None) -> BatchCurve | None:
    """batches.csv as a curve, or None when it is absent, has no rows yet, or is unreadable
    (the epoch curves still draw; `warn` hears why a file that is there was left out)."""
    path = Path(path)
    if not (path.exists() or path.is_symlink()):
        return None
    try:
        return _batch_curve(_batch_rows(path))
    except CheckpointError as exc:
        if warn is not None:
            warn(f"{exc}; the curves are drawn without it")
        return None


def _batch_rows(path: Path) -> list[dict]:
    """The rows of a batches.csv as numbers, each checked: a damaged file is refused whole
    (one bad step would move every point after it)."""
    header, rows = _csv_rows(path, safeio.BATCHES_CSV)
    missing = [c for c in BATCH_COLUMNS if c not in header]
    if header and missing:
        raise CheckpointError(f"{path} lacks column(s) {', '.join(missing)}")
    checked: list[dict] = []
    for line, row in rows:
        problem = _batch_problem(row, checked[-1] if checked else None)
        if problem:
            raise CheckpointError(f"{path} line {line}: {problem}")
        checked.append({c: float(row[c]) for c in BATCH_COLUMNS})
    return checked


def _batch_problem(row: dict, previous: dict | None) -> str | None:
    """Why a batches.csv row is not one zoo wrote, or None. Rows follow each other in
    training order: epochs from 1 up, steps (batches done in the run) strictly up."""
    counts = {"epoch": (1, MAX_EPOCHS), "batch": (1, MAX_COUNT), "step": (1, MAX_COUNT), "samples": (1, MAX_COUNT)}
    for column, (low, high) in counts.items():
        if _whole(row.get(column), low, high) is None:
            return f"{column} {safeio.for_display(row.get(column), 40)!r} is not a whole number from {low:,} to {high:,}"
    for column in ("train_loss", "train_acc"):
        if not _is_number(row.get(column)):
            return f"{column} {safeio.for_display(row.get(column), 40)!r} is not a number"
    if not (_is_number(row.get("lr")) and math.isfinite(float(row["lr"])) and float(row["lr"]) >= 0):
        return f"lr {safeio.for_display(row.get('lr'), 40)!r} is not a learning rate"
    epoch, batch, step = (float(row[c]) for c in ("epoch", "batch", "step"))
    if step < batch:
        return f"step {step:.0f} comes before batch {batch:.0f} of its own epoch"
    if previous is not None and (epoch < previous["epoch"] or step <= previous["step"]):
        return f"epoch {epoch:.0f}, step {step:.0f} does not follow epoch {previous['epoch']:.0f}, " \
               f"step {previous['step']:.0f}"
    return None


def _batch_curve(rows: list[dict]) -> BatchCurve | None:
    """Checked rows as a curve (None without rows: an interrupted run may not have logged one yet)."""
    if not rows:
        return None
    # Batches per epoch: the last row of every complete epoch is at its last batch.
    per_epoch = max(r["batch"] for r in rows if r["epoch"] == rows[0]["epoch"])
    done = [r for r in rows if r["epoch"] > rows[0]["epoch"]]
    if done:  # its epoch is above the first, so at least 2: no division by zero
        per_epoch = (done[0]["step"] - done[0]["batch"]) / (done[0]["epoch"] - 1)
    every = int(rows[1]["step"] - rows[0]["step"]) if len(rows) > 1 else int(rows[0]["batch"])
    return BatchCurve([r["step"] / max(per_epoch, 1) for r in rows], [r["train_loss"] for r in rows],
                      [r["train_acc"] for r in rows], [r["lr"] for r in rows], max(every, 1))


def _as_percent(values: list[float]) -> list[float]:
    """Accuracies may be stored as fractions (0.97) or percentages (97.0); plot percentages."""
    finite = [v for v in values if math.isfinite(v)]
    if finite and max(finite) <= 1.0:
        return [v * 100 for v in values]
    return values


def _has_data(values: list[float]) -> bool:
    return any(math.isfinite(v) for v in values)


def _line(ax, x, y, label, color, many: bool) -> None:
    # Markers only when there are few points: one epoch must still show a dot.
    ax.plot(x, y, label=label, color=color, marker="o" if not many else None, markersize=5, linewidth=2)


def plot_curves(m: Metrics, path: str | Path, title: str, train_label: str = "train",
                batches: BatchCurve | None = None, num_classes: int | None = None) -> Path:
    """Three panels: loss (train/test), accuracy (train/test), learning rate. With
    `batches` (--log-every N) the training curves are drawn every N batches, so even a
    one-epoch run shows how it learned; test points stay per epoch."""
    from matplotlib.ticker import FuncFormatter

    many = len(m) > 25
    show_lr = _has_data(m.lr)
    with styled():
        fig = new_figure(15 if show_lr else 11, 4.6)
        axes = fig.subplots(1, 3 if show_lr else 2, width_ratios=[1, 1, 0.7] if show_lr else None)
        loss_ax, acc_ax = axes[0], axes[1]
        if batches is not None:
            every = f"every {batches.every} batch{'es' if batches.every != 1 else ''}"
            dense = len(batches.x) > 25
            _line(loss_ax, batches.x, batches.train_loss, f"{train_label}, {every}", TRAIN_COLOR, dense)
            _line(acc_ax, batches.x, _as_percent(batches.train_acc), f"train, {every}", TRAIN_COLOR, dense)
        else:
            _line(loss_ax, m.epoch, m.train_loss, train_label, TRAIN_COLOR, many)
        if _has_data(m.test_loss):
            _line(loss_ax, m.epoch, m.test_loss, "test (end of epoch)" if batches else "test", TEST_COLOR, many)
        loss_ax.set(title="Loss (cross-entropy)", xlabel="epoch", ylabel="loss")
        if batches is None and _has_data(m.train_acc):
            _line(acc_ax, m.epoch, _as_percent(m.train_acc), "train", TRAIN_COLOR, many)
        if _has_data(m.test_acc):
            test_acc = _as_percent(m.test_acc)
            _line(acc_ax, m.epoch, test_acc, "test (end of epoch)" if batches else "test", TEST_COLOR, many)
            _mark_best(acc_ax, m.epoch, test_acc)
        classes = num_classes or 0
        if classes >= 2:  # where a guess lands: a curve on this line has learned nothing
            acc_ax.axhline(100 / classes, color="0.45", linestyle="--", linewidth=1.2,
                           label=f"guessing: {100 / classes:.0f}%")
        acc_ax.set(title="Accuracy", xlabel="epoch", ylabel="accuracy")
        _widen(acc_ax, 5.0, 0.0, 100.0)  # at least 5 points tall: flat 10% reads "10%", not "10% 10% 10%"
        _widen(loss_ax, 0.1, 0.0, None)
        percent_axis(acc_ax)
        for ax in (loss_ax, acc_ax):
            ax.legend(loc="best", fontsize=10)
        if show_lr:
            lr_ax = axes[2]
            lr_x, lr_y = (batches.x, batches.lr) if batches else (m.epoch, m.lr)
            lr_ax.plot(lr_x, lr_y, color="tab:green", marker="o" if len(lr_x) <= 25 else None, linewidth=2)
            lr_ax.set(title="Learning rate" if batches else "Learning rate (end of epoch)", xlabel="epoch",
                      ylabel="learning rate")
            # Plain numbers per tick: a '1e-3' offset label would collide with the title.
            lr_ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.3g}"))
            finite = [v for v in lr_y if math.isfinite(v)]
            if max(finite) - min(finite) <= 1e-9 * max(abs(max(finite)), 1e-30):
                lr_ax.set_ylim(0, max(finite) * 1.5 or 1)  # a constant lr: show it as a flat line, not noise ticks
        last = max([len(m)] + ([math.ceil(batches.x[-1])] if batches else []))
        for ax in axes:
            _epoch_axis(ax, last)
        fig.suptitle(title, fontsize=14, fontweight="bold")
        return save_png(fig, path)


def _widen(ax, minimum: float, floor: float | None, ceiling: float | None) -> None:
    """Give a nearly flat curve a readable y range (at least `minimum` tall, kept within bounds)."""
    low, high = ax.get_ylim()
    if high - low >= minimum:
        return
    middle = (low + high) / 2
    low, high = middle - minimum / 2, middle + minimum / 2
    if floor is not None and low < floor:
        low, high = floor, floor + minimum
    if ceiling is not None and high > ceiling:
        low, high = ceiling - minimum, ceiling
    ax.set_ylim(low, high)


def _epoch_axis(ax, epochs: int) -> None:
    """x from 0 to the last epoch for any length: one epoch reads 0..1 (not 0.945..1.05),
    5,000 read 0, 1,000, 2,000, ... with no labels running together."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    ax.set_xlim(0, max(epochs, 1) * 1.02)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=6, integer=epochs > 1, min_n_ticks=2))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if float(v).is_integer() else f"{v:g}"))


def _mark_best(ax, epochs: list[float], acc: list[float]) -> None:
    """Annotate the best test accuracy: the number a learner looks for first."""
    # The first epoch of a tie, as the terminal's summary and run.json name it.
    best_acc, best_epoch = max(((a, -e) for e, a in zip(epochs, acc) if math.isfinite(a)))
    best_epoch = -best_epoch
    ax.plot([best_epoch], [best_acc], linestyle="none", marker="*", markersize=16, color="tab:red", zorder=5,
            label=f"best test {best_acc:.2f}% (epoch {best_epoch:g})")


def _run_info(run_folder: Path) -> dict:
    try:
        info = read_run_info(run_folder) or {}
    except CheckpointError:
        return {}
    return info if isinstance(info, dict) else {}


def train_loss_label(run_folder: Path) -> str:
    """With label smoothing the train loss is measured against softened targets and sits
    well above the test loss; say so in the legend, or learners suspect a bug."""
    smoothing = (_run_info(run_folder).get("hyperparameters") or {}).get("label_smoothing") or 0
    return f"train (with label smoothing {smoothing:g})" if smoothing else "train"


def curves_title(run_folder: Path) -> str:
    """'lenet5: training curves (mnist-sample)' from run.json when it has the facts."""
    info = _run_info(run_folder)
    name = info.get("model") if isinstance(info.get("model"), str) else run_folder.resolve().name
    data = info.get("dataset_variant") or info.get("dataset")
    return f"{name}: training curves" + (f" ({data})" if isinstance(data, str) else "")


def write_curves(run_folder: str | Path, out: str | Path | None = None,
                 warn: Callable[[str], None] | None = None) -> Path:
    """Read RUN/metrics.csv, write RUN/curves.png (or `out`) atomically, return its path.
    `warn` hears what was left out: unreadable rows of metrics.csv, a damaged batches.csv."""
    run_folder = Path(run_folder)
    metrics = read_metrics(run_folder / METRICS_FILE, warn)
    target = Path(out) if out is not None else run_folder / CURVES_FILE
    names = _run_info(run_folder).get("class_names")
    return plot_curves(metrics, target, curves_title(run_folder), train_loss_label(run_folder),
                       read_batches(run_folder / BATCHES_FILE, warn), len(names) if isinstance(names, list) else None)
