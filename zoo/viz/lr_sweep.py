"""The learning-rate sweep's figure: every lr's loss curve in one picture. Too large a
rate oscillates or diverges, too small a one crawls; the picture shows both.

It draws the runs zoo.train.sweep.run_sweep recorded (anything with lr, status,
steps, losses, epochs and started), without importing zoo.train.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

from ._figure import new_figure, percent_axis, save_png, styled

SWEEP_FILE = "lr-sweep.png"


def sweep_title(model: str, runs: Sequence, recipe=None, augments: bool = False) -> str:
    """E.g. 'lenet5: learning-rate sweep on mnist-sample (4,000 training images), 3 epochs, sgd,
    constant schedule, batch 128', then every setting that differs from the model's recipe
    (`recipe`, a zoo.Recipe) and its defaults: momentum 0, label smoothing 0, raw inputs..."""
    first = next((r.started for r in runs if r.started is not None), None)
    if first is None:
        return f"{model}: learning-rate sweep"
    h = first.hparams
    title = (f"{model}: learning-rate sweep on {first.variant} ({first.train_samples:,} training images), "
             f"{first.epochs} epoch{'s' if first.epochs != 1 else ''}, {h.get('optimizer')}, "
             f"{h.get('schedule')} schedule, batch {h.get('batch_size')}")
    changed = _changed_settings(h, getattr(first, "options", {}) or {}, recipe, augments)
    return title + (f"\n{', '.join(changed)}" if changed else "")


def _changed_settings(h: dict, options: dict, recipe, augments: bool) -> list[str]:
    """The settings that differ from the recipe (optimizer, schedule and batch are in the title already)."""
    changed = []
    names = {"momentum": "momentum", "nesterov": "nesterov", "weight_decay": "weight decay",
             "label_smoothing": "label smoothing", "init": "init", "init_std": "init std",
             "warmup_fraction": "warm-up fraction", "final_lr_fraction": "final lr fraction",
             "ema": "weight average", "cycles": "cycles", "cycle_decay": "cycle decay",
             "augment_from_cycle": "augmented from cycle"}
    for key, label in names.items():
        if recipe is not None and key in h and h[key] != getattr(recipe, key, h[key]) and _acts(key, h):
            value = h[key]
            changed.append(f"{label} {value:g}" if isinstance(value, float)
                           else label if value is True else f"no {label}" if value is False else f"{label} {value}")
    if options.get("normalize", "default") != "default":
        changed.append({"none": "raw 0-255 inputs", "unit": "inputs scaled to 0..1"}[options["normalize"]])
    if options.get("model_args"):
        changed.append("model " + ", ".join(f"{k}={v}" for k, v in options["model_args"].items()))
    if augments and options.get("augment") is False:
        changed.append("no augmentation")
    return changed


def _acts(key: str, h: dict) -> bool:
    """Whether a setting does anything in this sweep (momentum only for SGD, a warm-up only for onecycle...)."""
    if key in ("momentum", "nesterov"):
        return h.get("optimizer") == "sgd"
    if key == "init_std":
        return h.get("init") == "normal"
    if key == "warmup_fraction":
        return h.get("schedule") == "onecycle"
    if key == "final_lr_fraction":
        return h.get("schedule") in ("onecycle", "cosine")
    if key == "cycles":  # the lr's shape; where the augmentation starts is said as "no augmentation" or not
        return h.get("schedule") in ("onecycle", "cosine")
    if key == "cycle_decay":
        return h.get("schedule") in ("onecycle", "cosine") and h.get("cycles", 1) > 1
    if key == "augment_from_cycle":
        return h.get("cycles", 1) > 1
    return True


def plot_lr_sweep(runs: Sequence, path: str | Path, title: str, num_classes: int | None = None) -> Path:
    """Left: training loss over the run for every lr (log scale), with the loss of uniform
    guessing, ln(K), as a reference line. Right: test accuracy per epoch."""
    from matplotlib import colormaps
    from matplotlib.ticker import FuncFormatter, MaxNLocator

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
        percent_axis(acc_ax)
        acc_ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        last = max((len(r.epochs) for r in runs), default=1)
        for ax in (loss_ax, acc_ax):  # one epoch reads 0..1, not 0.945..1.05
            ax.set_xlim(0, max(last, 1) * 1.02)
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


def _loss_line(ax, run, color, label: str) -> None:
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
