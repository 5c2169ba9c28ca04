"""`zoo plot NAME`: redraw a run's training curves from its metrics.csv."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .common import out, registry, warning


def plot(
    name: str = typer.Argument(..., help="Model name, as `zoo list` shows it."),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="Run folder to read and write (default runs/NAME)."),
) -> None:
    """Draw loss, accuracy and learning rate against epochs (train and test) as curves.png."""
    registry().get_spec(name)  # an unknown name fails here with close matches
    from zoo.errors import CheckpointError
    from zoo.runs import METRICS_FILE, run_dir
    from zoo.viz.curves import write_curves

    folder = run_dir(name, out_dir)
    if not (folder / METRICS_FILE).is_file():
        raise CheckpointError(f"no {METRICS_FILE} in {folder}: run `zoo train {name}` first"
                              f"{'' if out_dir is None else ' with the same --out'}")
    path = write_curves(folder, warn=warning)
    out.print(f"wrote {path}")
