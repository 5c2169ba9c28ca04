"""`zoo plugins`: the installed plugin distributions and what each registers.

A plugin that loads but has a model whose builder fails is "partly broken": each
model is built once here to find out, and the table says which one and why.
"""
from __future__ import annotations

import typer

from .common import out, print_json


def plugins(json_output: bool = typer.Option(False, "--json", help="Print JSON for scripts.")) -> None:
    """List plugin distributions, versions, the models and datasets each registers, and broken ones."""
    from rich.markup import escape

    from zoo.registry import get_registry

    reg = get_registry()  # no warning lines: the table shows every problem itself
    failing = _model_errors(reg)
    if json_output:
        print_json({"plugins": [p.as_dict() | {"model_errors": {m: failing[m] for m in p.models if m in failing},
                                               "status": _status(p, failing)} for p in reg.plugins],
                    "conflicts": [{"kind": k, "name": n, "plugins": d} for (k, n), d in reg.conflicts.items()],
                    "warnings": reg.warnings})
        return
    from rich.table import Table

    table = Table(title="zoo plugins (entry-point group zoo.models)")
    for column in ("distribution", "version", "entry point", "models", "datasets", "status"):
        table.add_column(column)
    for p in reg.plugins:
        status = _status(p, failing)
        if p.broken:
            shown = f"[red]broken: {escape(p.error)}[/]"
        elif status == "partly broken":
            shown = "[yellow]partly broken (below)[/]"
        else:
            shown = "[green]ok[/]"
        table.add_row(escape(p.dist), escape(p.version), escape(f"{p.name} = {p.value}"),
                      escape(", ".join(p.models)) or "-", escape(", ".join(p.datasets)) or "-", shown)
    out.print(table)
    for p in reg.plugins:  # one line each: a long message stays readable outside the table
        for m in (m for m in p.models if m in failing):
            out.print(f"[yellow]partly broken:[/] {escape(p.dist)}: model '{escape(m)}' cannot be built: "
                      f"{escape(failing[m])}", soft_wrap=True)
    for (kind, name), dists in reg.conflicts.items():
        out.print(f"[red]conflict:[/] {kind} '{escape(name)}' is registered by {escape(' and '.join(dists))}; "
                  "it is disabled")
    for line in reg.warnings:
        if line.startswith("ZOO_PLUGINS"):
            out.print(f"[yellow]warning:[/] {escape(line)}")


def _model_errors(reg) -> dict[str, str]:
    """Model name -> the plugin's message, for every registered model whose builder fails."""
    from zoo.errors import ModelBuildError

    failing = {}
    for name, spec in reg.models.items():
        try:
            spec.build()
        except ModelBuildError as exc:
            failing[name] = exc.message
    return failing


def _status(p, failing: dict[str, str]) -> str:
    if p.broken:
        return "broken"
    return "partly broken" if any(m in failing for m in p.models) else "ok"
