"""One figure overlaying the curves of several runs (`zoo runs compare A B --plot`):
test loss and test accuracy against epochs, a line per run, from each metrics.csv."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..errors import CheckpointError
from ..runs import METRICS_FILE
from ._figure import new_figure, percent_axis, save_png, styled
from .curves import _as_percent, read_metrics

COMPARE_FILE = "compare.png"


def plot_compare(folders: list[str | Path], labels: list[str], path: str | Path, title: str,
                 warn: Callable[[str], None] | None = None) -> Path:
    """Overlay test loss and accuracy (train loss dashed) of every run; a run without epochs
    is an error, rows of a metrics.csv that are not numbers are left out (`warn` hears it)."""
    from matplotlib.ticker import MaxNLocator

    metrics = []
    for folder in folders:
        try:
            metrics.append(read_metrics(Path(folder) / METRICS_FILE, warn))
        except CheckpointError as exc:
            raise CheckpointError(f"cannot plot {folder}: {exc}") from exc
    with styled():
        fig = new_figure(12, 4.8)
        loss_ax, acc_ax = fig.subplots(1, 2)
        for i, (m, label) in enumerate(zip(metrics, labels)):
            color = f"C{i % 10}"
            marker = "o" if len(m) <= 25 else None
            loss_ax.plot(m.epoch, m.test_loss, color=color, marker=marker, linewidth=2, label=f"{label} test")
            loss_ax.plot(m.epoch, m.train_loss, color=color, linestyle="--", linewidth=1.2, alpha=0.7,
                         label=f"{label} train")
            acc_ax.plot(m.epoch, _as_percent(m.test_acc), color=color, marker=marker, linewidth=2, label=label)
        loss_ax.set(title="Loss (solid: test, dashed: train)", xlabel="epoch", ylabel="loss")
        acc_ax.set(title="Test accuracy", xlabel="epoch", ylabel="accuracy")
        percent_axis(acc_ax)
        for ax in (loss_ax, acc_ax):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        acc_ax.legend(loc="best", fontsize=9)
        fig.suptitle(title, fontsize=14, fontweight="bold")
        return save_png(fig, path)
