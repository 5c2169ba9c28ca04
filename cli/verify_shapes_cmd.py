"""`zoo verify-shapes`: declared vs formula vs actual output shape of every layer."""
from __future__ import annotations

from typing import List, Optional

import typer

from rich.markup import escape

from .common import err, fail, layer_table, out, print_json, registry


def _check(spec, model_args=None):
    """The shape report of one model (as these builder arguments build it); a model that
    cannot be built is a failed report, so checking all models still checks all the others."""
    from zoo.errors import ModelBuildError
    from zoo.shapes import ShapeReport
    from zoo.variants import shape_report

    try:
        return shape_report(spec, model_args)
    except ModelBuildError as exc:
        return ShapeReport(spec.name, spec.input_shape, error=f"cannot be built: {exc.message}")


def verify_shapes(
    names: Optional[List[str]] = typer.Argument(None, help="Models to check (default: all)."),
    json_output: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
    model_arg: Optional[List[str]] = typer.Option(None, "--model-arg", help="A builder argument as key=value "
                                                  "(repeatable), as zoo train takes it; needs one model NAME."),
) -> None:
    """Check every layer's output shape: declared by the plugin, the conv/pool formula, a real forward pass."""
    reg = registry()
    specs = [reg.get_spec(n) for n in names] if names else [reg.models[n] for n in sorted(reg.models)]
    if model_arg and len(specs) != 1:
        fail("--model-arg applies to one model: name exactly one", 2)
    reports = [_check(spec, model_arg) for spec in specs]
    if json_output:
        print_json([r.as_dict() for r in reports])
    else:
        for report in reports:
            if report.error and not report.layers:
                continue  # nothing to tabulate; the error line below says why
            out.print(layer_table(report))
            if report.ok:
                out.print(f"[green]✓ {report.model}: declared, formula and actual shapes agree "
                          f"for {len(report.layers)} layers[/]")
    failed = [r for r in reports if not r.ok]
    if failed:
        for report in failed[:-1]:
            err.print(f"[bold red]error:[/] {escape(report.first_problem())}", soft_wrap=True)
        fail(failed[-1].first_problem())
