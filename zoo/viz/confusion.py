"""Confusion-matrix heat map: rows are the true class, columns the predicted one."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from ..errors import UsageError
from ._figure import new_figure, save_png, styled


def _as_rows(confusion: Any) -> list[list[int]]:
    """A KxK list of ints from a list of lists, numpy array or torch tensor."""
    rows = confusion.tolist() if hasattr(confusion, "tolist") else confusion
    rows = [[int(v) for v in row] for row in rows]
    k = len(rows)
    if k == 0 or any(len(r) != k for r in rows):
        raise UsageError(f"confusion matrix must be square KxK, got {k} rows of lengths {[len(r) for r in rows]}")
    return rows


def plot_confusion(confusion: Any, class_names: Sequence[str], path: str | Path,
                   title: str = "Confusion matrix") -> Path:
    """Heat map of KxK counts with every count written in its cell; returns `path`.

    Colour follows each row's share (recall), with a square-root scale so the
    few mistakes off the diagonal are visible next to the large correct counts.
    """
    from matplotlib.colors import PowerNorm

    rows = _as_rows(confusion)
    k = len(rows)
    names = [str(n) for n in class_names]
    if len(names) != k:
        raise UsageError(f"confusion matrix is {k}x{k} but {len(names)} class names were given")
    share = [[v / max(sum(r), 1) for v in r] for r in rows]
    total, correct = sum(map(sum, rows)), sum(rows[i][i] for i in range(k))
    long_names = max(len(n) for n in names) > 3
    cell = 0.62 if k <= 12 else 0.4
    with styled():
        label_room = 0.9 if long_names else 0.3  # rotated names need space below and left
        fig = new_figure(max(6.0, cell * k + 2.6 + label_room), max(5.0, cell * k + 1.6 + label_room))
        ax = fig.subplots()
        # aspect="auto": the figure size keeps cells near-square, and a fixed aspect
        # would make the constrained layout cut off the y label.
        image = ax.imshow(share, cmap="Blues", norm=PowerNorm(gamma=0.5, vmin=0, vmax=1), aspect="auto")
        ax.grid(False)
        ax.set_xticks(range(k), names, rotation=45 if long_names else 0, ha="right" if long_names else "center",
                      rotation_mode="anchor")
        ax.set_yticks(range(k), names)
        ax.set(xlabel="predicted class", ylabel="true class")
        _annotate(ax, rows, share, fontsize=10 if k <= 12 else 7)
        bar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.03)
        bar.set_label("share of the true class (row)")
        bar.ax.yaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
        subtitle = f"{total:,} images, {correct / total:.2%} correct" if total else "no images"
        ax.set_title(f"{title}\n{subtitle}", fontsize=12)
        return save_png(fig, path)


def _annotate(ax, rows: list[list[int]], share: list[list[float]], fontsize: int) -> None:
    for i, row in enumerate(rows):
        for j, count in enumerate(row):
            if count == 0:
                ax.text(j, i, "0", ha="center", va="center", fontsize=fontsize - 1, color="0.75")
                continue
            # Dark cells get white text (PowerNorm gamma 0.5: dark above ~25% share).
            color = "white" if share[i][j] > 0.3 else "black"
            weight = "bold" if i == j else "normal"
            ax.text(j, i, f"{count}", ha="center", va="center", fontsize=fontsize, color=color, fontweight=weight)
