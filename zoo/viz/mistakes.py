"""Misclassified test images in one grid, each titled "predicted / true"."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

from ._figure import new_figure, save_png, styled

MAX_SHOWN = 64
MISTAKES_FILE = "mistakes.png"


def select_mistakes(predicted: Sequence[int], labels: Sequence[int], limit: int = MAX_SHOWN,
                    confidence=None) -> tuple[list[int], int]:
    """(indices to show, total number of mistakes). The most confident mistakes come
    first when confidences are given: they are the instructive ones. Otherwise the
    shown ones are spread evenly over the test set, which may be sorted by class."""
    wrong = [i for i, (p, t) in enumerate(zip(predicted, labels)) if int(p) != int(t)]
    if confidence is not None:
        chosen = sorted(wrong, key=lambda i: -float(confidence[i]))[:limit]
    elif len(wrong) <= limit:
        chosen = wrong
    else:
        step = len(wrong) / limit
        chosen = [wrong[int(k * step)] for k in range(limit)]
    return chosen, len(wrong)


def plot_mistakes(images, predicted: Sequence[int], labels: Sequence[int], indices: Sequence[int],
                  class_names: Sequence[str], path: str | Path, title: str, total: int | None = None,
                  confidence=None) -> Path:
    """Grid of images[indices] (uint8 (N, C, H, W)); each titled with predicted / true class
    names and labelled with its test index, so `zoo features NAME --index N` can follow."""
    shown = list(indices)
    total = len(shown) if total is None else total
    n = max(len(shown), 1)
    cols = min(8, n)
    rows = math.ceil(n / cols)
    longest = max((len(class_names[int(predicted[i])]) + len(class_names[int(labels[i])]) for i in shown), default=5)
    cell = 1.45 if longest <= 12 else 1.85
    with styled():
        fig = new_figure(max(6.0, cols * cell), rows * (cell + 0.25) + 1.0)
        axes = fig.subplots(rows, cols, squeeze=False)
        for ax in axes.flat:
            ax.set_axis_off()
        for ax, i in zip(axes.flat, shown):
            _cell(ax, images[i], class_names[int(predicted[i])], class_names[int(labels[i])], i,
                  None if confidence is None else float(confidence[i]))
        if not shown:
            axes[0, 0].text(0.5, 0.5, "no misclassified images", ha="center", va="center", fontsize=14)
        fig.suptitle(_heading(title, len(shown), total, confidence is not None), fontsize=13)
        return save_png(fig, path)


def _heading(title: str, shown: int, total: int, by_confidence: bool) -> str:
    if total == 0:
        return f"{title}: no misclassified test images, every prediction is right"
    what = f"all {total}" if shown == total else f"{shown} of {total}"
    order = ("most confident first" if by_confidence else
             "in test-set order" if shown == total else "spread over the test set")
    return (f"{title}: {what} misclassified test images ({order})\n"
            "each titled predicted / true; #N under an image is its test index")


def _cell(ax, image, predicted: str, true: str, index: int, confidence: float | None) -> None:
    array = image.permute(1, 2, 0).numpy() if image.shape[0] == 3 else image[0].numpy()
    ax.set_axis_on()
    ax.imshow(array, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    ax.set_title(f"{predicted} / {true}", fontsize=10, color="firebrick", pad=3)
    sure = f"  ({confidence:.0%} sure)" if confidence is not None else ""
    ax.set_xlabel(f"#{index}{sure}", fontsize=8.5, color="0.35", labelpad=2)


def confidences(model, images, indices: Sequence[int], transforms, batch_size: int = 512) -> dict[int, float]:
    """The model's top softmax probability for images[indices]: how sure it was of its wrong answer."""
    import torch

    from ..preprocess import normalize

    out: dict[int, float] = {}
    index = torch.as_tensor(list(indices), dtype=torch.int64)
    with torch.inference_mode():
        for start in range(0, len(index), batch_size):
            chunk = index[start:start + batch_size]
            probs = torch.softmax(model(normalize(images[chunk], transforms)).float(), dim=1)  # (b, K)
            out.update(zip(chunk.tolist(), probs.max(1).values.tolist()))
    return out
