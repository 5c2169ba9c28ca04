"""`zoo export NAME --onnx`: a verified, self-describing ONNX file and its test vectors."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from zoo.onnx.defaults import DEFAULT_OPSET

from .common import err, fail, out, print_json, registry
from .verify_cmd import PROVIDER_HELP, check_provider, show_report, status


def export(
    name: str = typer.Argument(..., help="Model name, as `zoo list` shows it."),
    onnx: bool = typer.Option(True, "--onnx", show_default=False, help="Export to ONNX (the only format so far; the default)."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="Weights file \\[default: runs/NAME/model.safetensors]."),
    untrained: bool = typer.Option(False, "--untrained", help="Export the builder's initial weights (seed 0)."),
    out_path: Optional[Path] = typer.Option(None, "--out", help="Output .onnx file \\[default: exported/NAME.onnx]."),
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
    json_output: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """Export a model to one self-contained ONNX file, check it, record how it was made, verify it against PyTorch."""
    if not onnx:
        fail("ONNX is the only export format so far: drop --no-onnx", 2)
    spec = registry().get_spec(name)
    check_provider(provider)
    if out_path is not None:  # `--out FILE/x.onnx` fails now, not after the export
        from zoo.fileio import check_folder

        check_folder(out_path.parent)
    from zoo.onnx import pipeline
    from zoo.onnx.export import ExportOptions
    from zoo.onnx.weights import resolve

    options = ExportOptions(opset=opset, static_batch=static_batch, raw_input=raw_input)
    source = resolve(spec, weights, untrained)
    with status(f"Exporting {name} to ONNX (opset {opset}) and verifying it ...", json_output):
        report = pipeline.export_and_verify(spec, weights=source, out=out_path or pipeline.default_path(name),
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
