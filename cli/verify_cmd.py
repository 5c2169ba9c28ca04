"""`zoo verify NAME [--onnx PATH] [--vectors]`: does the ONNX file compute what PyTorch computes?"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from zoo.onnx.defaults import DEFAULT_MAX_DROP, DEFAULT_MIN_AGREEMENT, check_tolerance

from .common import PROVIDER_HELP, check_provider, fail, print_json, registry, run_spec, show_report, status



def verify(
    name: Optional[str] = typer.Argument(None, help="Model name (read from the file's metadata when omitted)."),
    onnx_path: Optional[Path] = typer.Option(None, "--onnx", help="The .onnx file \\[default: exported/NAME.onnx]."),
    vectors: bool = typer.Option(False, "--vectors",
                                 help="Re-check against the stored test vectors; no PyTorch weights needed."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="Weights file \\[default: runs/NAME/model.safetensors]."),
    untrained: bool = typer.Option(False, "--untrained", help="Use the builder's initial weights (seed 0)."),
    provider: str = typer.Option("auto", "--provider", help=PROVIDER_HELP),
    atol: Optional[float] = typer.Option(None, "--atol", help="Absolute tolerance \\[default: 1e-5 CPU, 1e-4 CUDA]."),
    rtol: Optional[float] = typer.Option(None, "--rtol", help="Relative tolerance \\[default: 1e-3]."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Where datasets live (for real test images)."),
    dataset: Optional[str] = typer.Option(None, "--dataset", help="int8/fp16 files: test data \\[default: what the "
                                          "weights were trained on]."),
    max_drop: float = typer.Option(DEFAULT_MAX_DROP, "--max-drop", min=0.0, help="int8/fp16 files: most accuracy points lost."),
    min_agreement: float = typer.Option(DEFAULT_MIN_AGREEMENT, "--min-agreement", min=0.0, max=1.0,
                                        help="int8/fp16 files: least top-1 agreement with PyTorch."),
    verify_samples: Optional[int] = typer.Option(None, "--verify-samples", min=1,
                                                 help="int8/fp16 files: test images to check \\[default: all]."),
    json_output: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """Run ONNX Runtime and PyTorch on the same inputs (random batches 1, 2, 7, 64 and real test images); PASS or FAIL.

    On PASS the reference test vectors next to the file (exported/NAME/test_data_set_N/) are refreshed;
    --vectors re-checks the file against them without PyTorch weights. An int8 or fp16 file (its metadata
    says so) is checked by accuracy and top-1 agreement with PyTorch on the test split instead."""
    if name is None and onnx_path is None:
        fail("give a model NAME or --onnx PATH", 2)
    check_provider(provider)
    check_tolerance(atol, rtol)
    spec = registry().get_spec(name) if name is not None else None
    from zoo.onnx import pipeline

    path = onnx_path or pipeline.default_path(spec.name)
    with status(f"Verifying {path} ...", json_output):
        if vectors:
            report = pipeline.verify_vectors(path, name, provider, atol, rtol)
        else:
            accuracy = dict(dataset=dataset, max_drop=max_drop, min_agreement=min_agreement,
                            verify_samples=verify_samples)
            report = _against_torch(spec, path, weights, untrained, provider, atol, rtol, data_dir, accuracy)
    print_json(report.as_dict()) if json_output else show_report(report)
    if not report.ok:
        raise typer.Exit(1)


def _against_torch(spec, path, weights, untrained, provider, atol, rtol, data_dir, accuracy):
    from zoo.onnx import pipeline
    from zoo.onnx.predict import read_facts
    from zoo.runs import resolve_weights

    if spec is None:  # the file says which model it is
        spec = registry().get_spec(read_facts(path).model)
    spec = run_spec(spec.name, weights, untrained=untrained)  # the run's builder arguments, input scale, classes
    source = resolve_weights(spec, weights, untrained=untrained, offer_untrained=True)
    return pipeline.verify_file(spec, source, path, provider, atol, rtol, data_dir, accuracy=accuracy)
