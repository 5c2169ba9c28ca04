"""`zoo list`: every registered architecture with its dataset, input shape and size."""
from __future__ import annotations

import typer

from .common import out, param_count, print_json, registry, shape_text


def list_models(json_output: bool = typer.Option(False, "--json", help="Print JSON for scripts.")) -> None:
    """List the registered models: dataset, input shape, parameter count, plugin."""
    reg = registry()
    rows = []
    for name in sorted(reg.models):
        spec = reg.models[name]
        rows.append({"name": name, "dataset": spec.dataset, "input_shape": list(spec.input_shape),
                     "classes": spec.num_classes, "params": param_count(name), "plugin": spec.plugin,
                     "plugin_version": spec.plugin_version, "summary": spec.summary})
    if json_output:
        print_json(rows)
        return
    from rich.table import Table

    table = Table(title="zoo models")
    for column in ("name", "dataset", "input", "params", "plugin", "summary"):
        table.add_column(column, justify="right" if column == "params" else "left")
    for r in rows:
        table.add_row(r["name"], r["dataset"], shape_text(r["input_shape"]), f"{r['params']:,}",
                      f"{r['plugin']} {r['plugin_version']}", r["summary"])
    out.print(table)
