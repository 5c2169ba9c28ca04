"""`zoo verify NAME [--onnx PATH] [--vectors]`: does the ONNX file compute what PyTorch computes?"""
from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Optional

import typer

from .common import err, fail, out, print_json, registry, run_spec

PROVIDER_HELP = "ONNX Runtime provider: auto (CUDA when a CUDA device is present), cuda (FAIL if not used), cpu."
PROVIDERS = ("auto", "cuda", "cpu")


def check_provider(provider: str) -> None:
    """Checked before any slow work starts."""
    if provider not in PROVIDERS:
        fail(f"unknown --provider {provider!r}: use {', '.join(PROVIDERS)}", 2)


@contextlib.contextmanager
def status(message: str, quiet: bool = False):
    """One rich status line on stderr while a library works. The console is pinned to the
    real stream now, so the core's capture of other libraries' chatter does not swallow it."""
    if quiet:
        yield
        return
    from rich.console import Console

    console = Console(file=sys.stderr, width=err.width if not err.is_terminal else None, highlight=False)
    with console.status(message):
        yield


def _num(value) -> str:
    return "-" if value is None else f"{value:.2e}"


def check_table(report):
    from .common import escape
    from rich.table import Table

    against = {"pytorch": "PyTorch", "accuracy": "PyTorch, by test-set accuracy"}.get(report.mode, "stored vectors")
    table = Table(title=escape(f"{report.model}: ONNX Runtime vs {against}"))
    for column in ("check", "", "max abs err", "max rel err", "argmax agree", "detail"):
        table.add_column(column, justify="right" if "err" in column or "agree" in column else "left")
    for c in report.checks:
        agree = f"{c.argmax[0]}/{c.argmax[1]}" if c.argmax else "-"
        table.add_row(escape(c.name), "[green]✓[/]" if c.ok else "[red]✗[/]", _num(c.max_abs), _num(c.max_rel),
                      agree, escape(c.detail))
    return table


def show_report(report) -> None:
    """The table, the notes, then one PASS/FAIL line with tolerance and providers."""
    from .common import escape

    from zoo.onnx.defaults import CUDA_TOLERANCE
    from zoo.onnx.verify import describe_failure

    out.print(check_table(report))
    for note in report.notes:
        out.print(f"[yellow]note:[/] {escape(note)}", soft_wrap=True)
    tol = report.tolerance
    if tol is not None:
        gpu = "" if "CUDA" in tol.basis else f"; on CUDA: atol {CUDA_TOLERANCE[0]:g}, rtol {CUDA_TOLERANCE[1]:g}, TF32 off"
        out.print(f"tolerance: atol {tol.atol:g}, rtol {tol.rtol:g} ({tol.basis}){gpu}; a value passes when "
                  f"|onnx - torch| <= atol + rtol x |torch|, so near zero the atol term allows a relative error "
                  f"above rtol", soft_wrap=True)
    out.print(f"providers used: {', '.join(report.providers) or '-'} (asked: {report.provider_choice})",
              soft_wrap=True)
    if report.vectors:
        out.print(f"test vectors: {escape(report.vectors)}/test_data_set_*", soft_wrap=True)
    if report.ok and report.mode == "accuracy":
        out.print(f"[bold green]PASS[/] {report.model}: {escape(report.checks[-2].detail)}; "
                  f"{escape(report.checks[-1].detail)}", soft_wrap=True)
    elif report.ok:
        out.print(f"[bold green]PASS[/] {report.model}: max abs err {_num(report.max_abs)}, "
                  f"max rel err {_num(report.max_rel)}; every value within atol + rtol x |torch|", soft_wrap=True)
    else:
        out.print(f"[bold red]FAIL[/] {report.model}: {escape(describe_failure(report))}", soft_wrap=True)


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
    max_drop: float = typer.Option(1.0, "--max-drop", min=0.0, help="int8/fp16 files: most accuracy points lost."),
    min_agreement: float = typer.Option(0.95, "--min-agreement", min=0.0, max=1.0,
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
    from zoo.onnx.weights import resolve

    if spec is None:  # the file says which model it is
        spec = registry().get_spec(read_facts(path).model)
    spec = run_spec(spec.name, weights, untrained=untrained)  # the run's builder arguments and input scale
    return pipeline.verify_file(spec, resolve(spec, weights, untrained), path, provider, atol, rtol, data_dir,
                                accuracy=accuracy)
