"""`zoo datasets`: the registered datasets and where each one would be read from."""
from __future__ import annotations

from typing import Optional

import typer

from .common import out, print_json, registry, shape_text


def datasets(
    data_dir: Optional[str] = typer.Option(None, "--data-dir", help="Data root to search first."),
    json_output: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """List the datasets: classes, image shape, plugin, and where the files were found."""
    from zoo.data.resolve import candidates, locate

    reg = registry()
    rows = []
    for name in sorted(reg.datasets):
        spec = reg.datasets[name]
        found = locate(spec, data_dir)
        rows.append({"name": name, "input_shape": list(spec.input_shape), "classes": len(spec.class_names),
                     "plugin": spec.plugin, "found": str(found) if found else None,
                     "searched": [str(p) for p in candidates(spec, data_dir)],
                     "downloadable": spec.download is not None, "fallback": spec.fallback, "summary": spec.summary})
    if json_output:
        print_json(rows)
        return
    from rich.table import Table

    table = Table(title="zoo datasets")
    for column in ("name", "input", "classes", "plugin", "found at", "if absent"):
        table.add_column(column)
    for r in rows:
        absent = " / ".join(filter(None, ["download" if r["downloadable"] else "",
                                          f"use {r['fallback']}" if r["fallback"] else ""])) or "error"
        found = r["found"] or f"[yellow]not found[/] (searched {', '.join(r['searched'])})"
        table.add_row(r["name"], shape_text(r["input_shape"]), str(r["classes"]), r["plugin"], found, absent)
    out.print(table)
