"""`zoo plugins`: the installed plugin distributions and what each registers."""
from __future__ import annotations

import typer

from .common import out, print_json, registry


def plugins(json_output: bool = typer.Option(False, "--json", help="Print JSON for scripts.")) -> None:
    """List plugin distributions, versions, the models and datasets each registers, and broken ones."""
    from zoo.registry import get_registry

    reg = get_registry()  # no warning lines: the table shows every problem itself
    if json_output:
        print_json({"plugins": [p.as_dict() for p in reg.plugins],
                    "conflicts": [{"kind": k, "name": n, "plugins": d} for (k, n), d in reg.conflicts.items()]})
        return
    from rich.table import Table

    table = Table(title="zoo plugins (entry-point group zoo.models)")
    for column in ("distribution", "version", "entry point", "models", "datasets", "status"):
        table.add_column(column)
    for p in reg.plugins:
        status = f"[red]broken: {p.error}[/]" if p.broken else "[green]ok[/]"
        table.add_row(p.dist, p.version, f"{p.name} = {p.value}", ", ".join(p.models) or "-",
                      ", ".join(p.datasets) or "-", status)
    out.print(table)
    for (kind, name), dists in reg.conflicts.items():
        out.print(f"[red]conflict:[/] {kind} '{name}' is registered by {' and '.join(dists)}; it is disabled")
