"""`zoo export NAME --onnx`: a verified, self-describing ONNX file and its test vectors."""
from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from zoo.onnx.defaults import DEFAULT_CALIBRATION, DEFAULT_MAX_DROP, DEFAULT_MIN_AGREEMENT, DEFAULT_OPSET, \
    check_tolerance

from .common import PROVIDER_HELP, check_provider, err, escape, fail, out, print_json, run_spec, show_report, status
from .variants_view import show_quantized


class Precision(str, Enum):
    int8 = "int8"
    fp16 = "fp16"


class Method(str, Enum):
    minmax = "minmax"
    entropy = "entropy"
    percentile = "percentile"


class IntType(str, Enum):
    uint8 = "uint8"
    int8 = "int8"


def export(
    name: str = typer.Argument(..., help="Model name, as `zoo list` shows it."),
    onnx: bool = typer.Option(True, "--onnx", show_default=False, help="Export to ONNX (the only format so far; the default)."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="Weights file \\[default: runs/NAME/model.safetensors]."),
    untrained: bool = typer.Option(False, "--untrained", help="Export the builder's initial weights (seed 0)."),
    out_path: Optional[Path] = typer.Option(None, "--out", help="Output .onnx file \\[default: exported/NAME.onnx, "
                                            "NAME.int8.onnx, NAME.fp16.onnx; NAME.raw.*.onnx with --raw-input]."),
    opset: int = typer.Option(DEFAULT_OPSET, "--opset", help="ONNX opset (14-23)."),
    static_batch: Optional[int] = typer.Option(None, "--static-batch", min=1,
                                               help="Fix the batch size \\[default: dynamic batch axis]."),
    raw_input: bool = typer.Option(False, "--raw-input",
                                   help="Take uint8 NCHW pixels: the preprocessing goes inside the graph."),
    verify: bool = typer.Option(True, "--verify/--no-verify", help="Compare with PyTorch before writing."),
    provider: str = typer.Option("auto", "--provider", help=PROVIDER_HELP),
    atol: Optional[float] = typer.Option(None, "--atol", help="Absolute tolerance \\[default: 1e-5 CPU, 1e-4 CUDA]."),
    rtol: Optional[float] = typer.Option(None, "--rtol", help="Relative tolerance \\[default: 1e-3]."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Where datasets live (for real test images)."),
    force: bool = typer.Option(False, "--force", help="Overwrite an --out file zoo did not write."),
    quantize: Optional[Precision] = typer.Option(None, "--quantize", help="int8 (static QDQ, per-channel) or fp16; "
                                                 "verified by accuracy on the test split."),
    calibration: int = typer.Option(DEFAULT_CALIBRATION, "--calibration", min=1, help="int8: training images for calibration (seeded)."),
    method: Method = typer.Option(Method.minmax, "--calibration-method", help="int8: how activation ranges are set."),
    seed: int = typer.Option(0, "--calibration-seed", help="int8: seed of the calibration image pick."),
    activation_type: IntType = typer.Option(IntType.uint8, "--activation-type", help="int8: activation type."),
    weight_type: IntType = typer.Option(IntType.int8, "--weight-type", help="int8: weight type."),
    reduce_range: bool = typer.Option(True, "--reduce-range/--full-range",
                                      help="int8: 7-bit weights, safe on CPUs without VNNI (8-bit int8 x uint8 "
                                      "sums saturate there)."),
    dataset: Optional[str] = typer.Option(None, "--dataset", help="With --quantize: calibration and test data "
                                          "\\[default: what the weights were trained on]."),
    max_drop: float = typer.Option(DEFAULT_MAX_DROP, "--max-drop", min=0.0, help="With --quantize: refuse the file when accuracy "
                                   "drops more (points)."),
    min_agreement: float = typer.Option(DEFAULT_MIN_AGREEMENT, "--min-agreement", min=0.0, max=1.0,
                                        help="With --quantize: least share of test images classified as PyTorch does."),
    verify_samples: Optional[int] = typer.Option(None, "--verify-samples", min=1,
                                                 help="With --quantize: test images to check \\[default: all]."),
    json_output: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """Export a model to one self-contained ONNX file, check it, record how it was made, verify it against PyTorch."""
    if not onnx:
        fail("ONNX is the only export format so far: drop --no-onnx", 2)
    from zoo.onnx.export import ExportOptions

    options = ExportOptions(opset=opset, static_batch=static_batch, raw_input=raw_input)  # bad values: one line now
    spec = run_spec(name, weights, untrained=untrained)
    check_provider(provider)
    check_tolerance(atol, rtol)
    if out_path is not None:  # `--out FILE/x.onnx` fails now, not after the export
        from zoo.fileio import check_folder

        check_folder(out_path.parent)
    from zoo.onnx import pipeline
    from zoo.runs import resolve_weights

    source = resolve_weights(spec, weights, untrained=untrained, offer_untrained=True)
    if quantize is not None:
        from zoo.onnx.quantize import QuantizeOptions
        from zoo.onnx.variants import export_quantized

        q = QuantizeOptions(quantize.value, calibration, method.value, seed, activation_type.value, weight_type.value,
                            reduce_range=reduce_range, dataset=dataset, max_drop=max_drop, min_agreement=min_agreement,
                            verify_samples=verify_samples)
        with status(f"Exporting {name} to {q.precision} ONNX and checking its accuracy ...", json_output):
            report = export_quantized(spec, source, q, out=out_path or pipeline.default_path(name, q.precision,
                                                                                             raw_input),
                                      options=options, verify=verify, provider=provider, data_dir=data_dir,
                                      force=force)
        print_json(report.as_dict()) if json_output else show_quantized(report, options)
        if not report.ok:
            raise typer.Exit(1)
        return
    with status(f"Exporting {name} to ONNX (opset {opset}) and verifying it ...", json_output):
        path = out_path or pipeline.default_path(name, raw_input=raw_input)
        report = pipeline.export_and_verify(spec, weights=source, out=path,
                                            options=options, verify=verify, provider=provider, atol=atol,
                                            rtol=rtol, data_dir=data_dir, force=force)
    if json_output:
        print_json(report.as_dict())
    else:
        _show(report, options)
    if not report.ok:
        raise typer.Exit(1)


def _show(report, options) -> None:
    if report.verification is not None:
        show_report(report.verification)
    if not report.written:
        err.print(f"[bold red]error:[/] {escape(report.path)} was not written because verification failed "
                  "(an earlier file there is kept); --no-verify writes it anyway", soft_wrap=True)
        return
    batch = f"static batch {options.static_batch}" if options.static_batch else "dynamic batch axis"
    pixels = ", uint8 pixels in (preprocessing in the graph)" if options.raw_input else ""
    out.print(f"[green]✓[/] exported {report.model} -> {escape(report.path)} ({report.size_bytes / 1e6:.2f} MB, "
              f"opset {report.opset}, {batch}{pixels}, {report.seconds:.1f} s)", soft_wrap=True)
    out.print(f"test vectors: {escape(report.vectors)}/test_data_set_*", soft_wrap=True)
    if report.verification is None:
        out.print("[yellow]not verified[/] (--no-verify): check it later with "
                  f"`zoo verify {report.model} --onnx {escape(report.path)}`", soft_wrap=True)
