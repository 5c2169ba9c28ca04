"""`zoo evaluate NAME`: test accuracy, loss, per-class accuracy and a confusion matrix
of trained weights (runs/NAME/model.safetensors or --weights), optionally as JSON
and as a heat map PNG (--plot)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .common import err, notice, out, print_json, run_spec

CONFUSION_FILE = "confusion.png"


def evaluate(
    name: str = typer.Argument(..., help="Model name, as `zoo list` shows it."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="Weights file (default: runs/NAME/model.safetensors)."),
    json_output: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
    plot: bool = typer.Option(False, "--plot", help="Save the confusion matrix as a heat map PNG."),
    plot_out: Optional[Path] = typer.Option(None, "--out", help="Where --plot writes (a .png file or a folder; "
                                            "default: runs/NAME/confusion.png)."),
    dataset: Optional[str] = typer.Option(None, "--dataset", help="Dataset to test on, a name or a folder of images "
                                          "(default: the one the weights were trained on, per run.json, else the "
                                          "model's)."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Where datasets live."),
    offline: bool = typer.Option(False, "--offline", help="Never download."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    batch_size: int = typer.Option(1024, "--batch-size", min=1, help="Images per forward pass."),
) -> None:
    """Evaluate trained weights on the test split: accuracy, loss, per-class accuracy, confusion matrix."""
    spec = run_spec(name, weights)
    png = _plot_path(name, plot_out) if plot else None
    from zoo.imagefolder.trained import load_test_data
    from zoo.runs import resolve_weights
    from zoo.train import evaluate as run_eval
    from zoo.train import pick_device

    from .decode_display import DecodeDisplay

    trained = resolve_weights(spec, weights)  # one clear CheckpointError when missing, corrupt or mismatched
    path, model = trained.path, trained.model
    with DecodeDisplay(quiet=json_output) as decoding:
        test = load_test_data(spec, path, dataset, data_dir, offline, decoding)
    if test.notice:
        notice(test.notice)
    dev = pick_device(device)
    result = run_eval(model.to(dev), test.images, test.labels, spec, dev, batch_size)
    names = tuple(test.class_names) if len(test.class_names) == spec.num_classes else spec.class_names
    if png is not None:
        from zoo.viz.confusion import plot_confusion

        plot_confusion(result.confusion, names, png, f"{name} on {test.variant}")
    if json_output:
        print_json({"model": name, "dataset": test.name, "dataset_variant": test.variant, "weights": str(path),
                    **result.as_dict(names), "plot": str(png) if png else None})
    else:
        show(name, test, path, result, names)
    if png is not None:
        (err if json_output else out).print(f"confusion matrix heat map written to {png}", soft_wrap=True,
                                            highlight=False)


def _plot_path(name: str, given: Optional[Path]) -> Path:
    from zoo.runs import run_dir

    if given is None:
        return run_dir(name) / CONFUSION_FILE
    if given.is_dir() or given.suffix == "":
        return given / CONFUSION_FILE
    if given.suffix.lower() != ".png":
        from .common import fail

        fail(f"--out {given}: the heat map is a PNG; give a .png file name or a folder", 2)
    return given


def show(name: str, test, path: Path, result, names: tuple[str, ...]) -> None:
    from rich.table import Table

    out.print(f"[bold]{name}[/] on {test.variant} test ({result.samples:,} images), weights {path}",
              soft_wrap=True, highlight=False)
    out.print(f"accuracy [bold]{100 * result.accuracy:.2f}%[/] ({result.correct:,}/{result.samples:,}), "
              f"loss {result.loss:.4f}", highlight=False)
    per_class = Table(title="per class")
    for col in ("class", "images", "correct", "accuracy"):
        per_class.add_column(col, justify="left" if col == "class" else "right")
    conf = result.confusion
    for k, label in enumerate(names):
        total, hit = int(conf[k].sum()), int(conf[k, k])
        acc = f"{100 * hit / total:.2f}%" if total else "-"
        per_class.add_row(_row_label(k, label), f"{total:,}", f"{hit:,}", acc)
    out.print(per_class)
    matrix = Table(title="confusion matrix (rows: true class, columns: predicted)")
    matrix.add_column("true \\ pred")
    for k in range(len(names)):
        matrix.add_column(str(k), justify="right")
    for i, label in enumerate(names):
        cells = [(f"[bold green]{int(v)}[/]" if i == j else (f"[red]{int(v)}[/]" if v else "[dim]0[/]"))
                 for j, v in enumerate(conf[i].tolist())]
        matrix.add_row(_row_label(i, label), *cells)
    out.print(matrix)


def _row_label(k: int, label: str) -> str:
    """Columns are numbered by class index, so rows carry the index too ("3 Dress"), unless the name is it.
    Escaped: class names may come from a file (control characters, rich markup)."""
    from .common import escape

    return escape(label if label == str(k) else f"{k} {label}", 200)
