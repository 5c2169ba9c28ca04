"""`zoo mistakes NAME`: the test images the trained model gets wrong, in one grid."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .common import notice, out, run_spec


def mistakes(
    name: str = typer.Argument(..., help="Model name, as `zoo list` shows it."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="Weights file (default RUN/model.safetensors)."),
    out_dir: Optional[Path] = typer.Option(None, "--out",
                                           help="Run folder (default runs/NAME); writes RUN/mistakes.png."),
    limit: int = typer.Option(64, "--limit", min=1, max=256, help="Most images in the grid."),
    dataset: Optional[str] = typer.Option(None, "--dataset", help="Dataset to test on, a name or a folder of images "
                                          "(default: the one the weights were trained on)."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Where datasets live."),
    offline: bool = typer.Option(False, "--offline", help="Never download a dataset."),
) -> None:
    """Save a grid of misclassified test images, most confident mistakes first, titled predicted / true."""
    spec = run_spec(name, weights, out_dir)  # a run's builder arguments, input scale and folder classes
    from zoo.imagefolder.trained import load_test_data
    from zoo.runs import resolve_weights, run_dir
    from zoo.train import evaluate
    from zoo.viz.mistakes import MISTAKES_FILE, confidences, plot_mistakes, select_mistakes

    from .decode_display import DecodeDisplay

    trained = resolve_weights(spec, weights, out_dir)
    path, model = trained.path, trained.model
    with DecodeDisplay() as decoding:
        data = load_test_data(spec, path, dataset, data_dir, offline, decoding)
    if data.notice:
        notice(data.notice)
    result = evaluate(model, data.images, data.labels, spec)
    predicted, labels = result.predictions.tolist(), data.labels.tolist()
    wrong, _ = select_mistakes(predicted, labels, limit=len(labels))
    sure = confidences(model, data.images, wrong, spec.eval_transforms)
    shown, total = select_mistakes(predicted, labels, limit, sure)
    path = plot_mistakes(data.images, predicted, labels, shown, data.class_names,
                         run_dir(name, out_dir) / MISTAKES_FILE, f"{name} on {data.variant}", total, sure)
    out.print(f"{total:,} of {len(labels):,} test images misclassified "
              f"({result.accuracy:.2%} correct on '{data.variant}'); the grid shows {len(shown)}")
    out.print(f"wrote {path}")
