"""`zoo predict NAME IMAGE...`: classify image files with the exported model."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from .common import PROVIDER_HELP, check_provider, escape, out, print_json, run_spec


def predict(
    name: str = typer.Argument(..., help="Model name, as `zoo list` shows it."),
    images: List[Path] = typer.Argument(..., help="PNG or JPEG files."),
    onnx_path: Optional[Path] = typer.Option(None, "--onnx", help="The .onnx file \\[default: exported/NAME.onnx]."),
    use_torch: bool = typer.Option(False, "--torch", help="Use the PyTorch weights instead of the ONNX file."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="With --torch: weights file."),
    untrained: bool = typer.Option(False, "--untrained", help="With --torch: the builder's initial weights."),
    top: int = typer.Option(3, "--top", "-k", min=1, help="How many classes to show per image."),
    provider: str = typer.Option("auto", "--provider", help=PROVIDER_HELP),
    invert: bool = typer.Option(False, "--invert", help="Invert the pixels: dark-on-light drawings -> MNIST's light-on-dark."),
    json_output: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """Print the top-k classes with probabilities for each image (ONNX Runtime, or PyTorch with --torch)."""
    spec = run_spec(name, weights, untrained=untrained)
    check_provider(provider)
    from zoo.onnx import pipeline
    from zoo.onnx.predict import predict_images
    from zoo.predict import predict_torch
    from zoo.runs import resolve_weights

    if use_torch:
        chosen = resolve_weights(spec, weights, untrained=untrained, offer_untrained=True)
        top = min(top, spec.num_classes)
        results = predict_torch(spec, chosen.model, images, top, chosen.class_names, invert)
        engine = "PyTorch"
    else:
        results = predict_images(onnx_path or pipeline.default_path(name), images, spec, top, provider, invert)
        engine = "ONNX Runtime"
    if json_output:
        print_json({"model": name, "engine": engine, "predictions": [r.as_dict() for r in results]})
        return
    for r in results:
        best = escape(", ".join(f"{c} {p:.1%}" for c, p in r.top))
        out.print(f"{escape(r.file)}: [bold]{escape(r.top[0][0])}[/] ({best})", soft_wrap=True)
    out.print(f"[dim]{name} via {engine}[/]")
