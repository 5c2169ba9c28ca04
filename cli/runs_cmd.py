"""`zoo runs [FOLDER]`: every run, newest first; `zoo runs compare A B ...`: what differs.

The finding, reading and comparing is zoo.runs_index; this module only shows it.
Text from run.json files is untrusted: control characters are escaped and rich
markup is shown, not applied, before anything reaches the terminal.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from .common import duration, escape, out, print_json, warning

STATUS_STYLE = {"finished": "green", "running": "cyan", "interrupted": "yellow", "failed": "red"}


def safe(value) -> str:
    """Untrusted text for the terminal (control characters shown, markup not applied); '-' for nothing."""
    return "-" if value is None else escape(value)


def runs(
    args: Optional[List[str]] = typer.Argument(None, metavar="[FOLDER] | compare RUN RUN...",
                                               help="Folder to search (default runs/), or `compare` and two or "
                                                    "more run folders."),
    json_output: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
    sort: str = typer.Option("date", "--sort", help="date (newest first) or accuracy (best first)."),
    plot: bool = typer.Option(False, "--plot", help="compare: one figure overlaying the runs' curves."),
    plot_out: Optional[Path] = typer.Option(None, "--out", help="compare --plot: the PNG to write "
                                            "(default: runs/compare.png)."),
) -> None:
    """List runs with model, dataset, status, epochs, accuracy, time and date; or compare runs."""
    from zoo.errors import UsageError

    args = list(args or [])
    if args and args[0] == "compare":
        return compare(args[1:], json_output, plot, plot_out)
    if plot or plot_out is not None:
        raise UsageError("--plot and --out apply to `zoo runs compare A B ...`")
    if len(args) > 1:
        raise UsageError(f"give one folder to list (got {len(args)}); to compare runs: zoo runs compare A B")
    from zoo.runs_index import find_runs

    found = find_runs(args[0] if args else None, sort)
    if json_output:
        print_json([r.as_dict() for r in found])
        return
    if not found:
        out.print(f"no runs in {safe(args[0] if args else 'runs')}: train one with `zoo train NAME`")
        return
    out.print(list_table(found))


def list_table(found):
    from rich.table import Table

    table = Table(title=f"{len(found)} run{'s' if len(found) != 1 else ''}", title_justify="left")
    for column in ("run", "model", "dataset", "status", "epochs", "best acc", "final acc", "time", "date"):
        table.add_column(column, justify="right" if column in ("epochs", "best acc", "final acc", "time") else "left")
    for r in found:
        style = STATUS_STYLE.get(r.status, "magenta")
        epochs = f"{r.epochs_completed if r.epochs_completed is not None else '-'}/{r.epochs or '-'}"
        table.add_row(safe(r.path), safe(r.model), safe(_short(r.dataset)), f"[{style}]{safe(r.status)}[/]", epochs,
                      _pct(r.best_accuracy), _pct(r.final_accuracy),
                      duration(r.wall_time_seconds) if r.wall_time_seconds is not None else "-",
                      safe((r.date or "-").replace("T", " ").removesuffix("+00:00")))
    return table


def compare(folders: list[str], json_output: bool, plot: bool, plot_out: Optional[Path]) -> None:
    from zoo.runs_index import compare as compare_runs

    result = compare_runs(folders)
    png = None
    if plot:
        from zoo.viz.compare import COMPARE_FILE, plot_compare

        target = plot_out or Path("runs") / COMPARE_FILE
        png = plot_compare([r.path for r in result.runs], _labels(result), target,
                           f"{len(result.runs)} runs compared", warn=warning)
    if json_output:
        print_json(result.as_dict() | {"plot": str(png) if png else None})
        return
    out.print(compare_table(result))
    if png is not None:
        out.print(f"wrote {safe(png)}")


def compare_table(result):
    from rich.table import Table

    table = Table(title="runs compared", title_justify="left")
    table.add_column("")
    for label in _labels(result):
        table.add_column(safe(label), justify="right")
    if result.differences:
        table.add_row("[bold]settings that differ[/]", *[""] * len(result.runs))
        for key, values in result.differences.items():
            table.add_row(safe(key), *[safe(_short(v) if key == "dataset" else _value(v)) for v in values])
    else:
        table.add_row("[dim]same settings[/]", *[""] * len(result.runs))
    table.add_row("[bold]results[/]", *[""] * len(result.runs))
    for key, values in result.results.items():
        shown = [_pct(v) if "accuracy" in key else _value(v) for v in values]
        table.add_row(safe(key), *[safe(s) if "accuracy" not in key else s for s in shown])
    return table


def _labels(result) -> list[str]:
    """Short column names: the run folders' names, or their paths when two share a name."""
    names = [Path(r.path).name or r.path for r in result.runs]
    return names if len(set(names)) == len(names) else [r.path for r in result.runs]


def _short(dataset) -> str:
    """A folder dataset by its last two path parts: the table stays readable."""
    if not isinstance(dataset, str) or "/" not in dataset:
        return "-" if dataset is None else str(dataset)
    parts = Path(dataset).parts
    return str(Path(*parts[-2:])) if len(parts) > 2 else dataset


def _pct(value) -> str:
    return f"{100 * value:.2f}%" if isinstance(value, (int, float)) and not isinstance(value, bool) else "-"


def _value(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)

