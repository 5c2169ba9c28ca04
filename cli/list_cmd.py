"""`zoo list`: every registered architecture with its dataset, input shape and size.

The parameter count needs the model built; a builder that fails marks its own row
broken (with the plugin's message, also in --json) and never takes the table down.
"""
from __future__ import annotations

import typer

from .common import model_warning, out, print_json, registry, shape_text


def list_models(json_output: bool = typer.Option(False, "--json", help="Print JSON for scripts.")) -> None:
    """List the registered models: dataset, input shape, parameter count, plugin."""
    from zoo.errors import ModelBuildError

    reg = registry()
    rows = []
    for name in sorted(reg.models):
        spec = reg.models[name]
        row = {"name": name, "dataset": spec.dataset, "input_shape": list(spec.input_shape),
               "classes": spec.num_classes, "params": None, "plugin": spec.plugin,
               "plugin_version": spec.plugin_version, "summary": spec.summary, "broken": False, "error": None}
        try:
            row["params"] = sum(p.numel() for p in spec.build().parameters())
        except ModelBuildError as exc:
            model_warning(exc)
            row |= {"broken": True, "error": exc.message}
        rows.append(row)
    if json_output:
        print_json(rows)
        return
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="zoo models")
    for column in ("name", "dataset", "input", "params", "plugin", "summary"):
        table.add_column(column, justify="right" if column == "params" else "left")
    for r in rows:
        params = f"{r['params']:,}" if not r["broken"] else "[red]broken[/]"
        summary = escape(r["summary"]) if not r["broken"] else f"[red]cannot be built: {escape(r['error'])}[/]"
        table.add_row(escape(r["name"]), r["dataset"], shape_text(r["input_shape"]), params,
                      escape(f"{r['plugin']} {r['plugin_version']}"), summary)
    out.print(table)
