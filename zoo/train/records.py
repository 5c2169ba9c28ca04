"""What a run leaves in its folder besides the checkpoint: run.json, metrics.csv,
model.safetensors (data files only: zoo.viz draws curves.png from metrics.csv when
the command layer asks), and the rule for reusing a folder.

Folder rule: a new run never lands silently on an existing one. A folder that
already holds a run (a checkpoint, run.json or model.safetensors) needs
`resume` (continue it) or `force` (start over: the old run's files are removed
first, so a stale checkpoint can never be resumed by mistake). Other files in
the folder are never touched, and nothing is removed before the new run has
loaded its data and is about to write.
"""
from __future__ import annotations

import csv
import io
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .. import fileio
from ..errors import UsageError
from ..runs import (BATCHES_FILE, CHECKPOINT_FILE, CHECKPOINT_STATE_FILE, CURVES_FILE, METRICS_COLUMNS, METRICS_FILE,
                    RUN_FILE, WEIGHTS_FILE)

# curves.png too: a stale picture of the old run must not sit beside the new one.
RUN_FILES = (CHECKPOINT_FILE, CHECKPOINT_STATE_FILE, RUN_FILE, WEIGHTS_FILE, METRICS_FILE, BATCHES_FILE, CURVES_FILE)


def holds_run(folder: Path) -> bool:
    return any((folder / f).exists() for f in (CHECKPOINT_FILE, RUN_FILE, WEIGHTS_FILE))


def check_folder(folder: Path, model: str, resume: bool, force: bool, out_given: bool) -> bool:
    """Apply the folder rule before anything is loaded; True when the old run must be
    cleared (with `clear_run`, once the new one is ready to write)."""
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{folder} exists and is not a folder: pass another --out")
    if resume and force:
        raise UsageError("--resume continues a run and --force starts it over: pass only one")
    if resume:
        if not (folder / CHECKPOINT_FILE).is_file():
            hint = f"start one with `zoo train {model}`" if not holds_run(folder) else \
                "it has no checkpoint to continue from; start over with --force"
            raise UsageError(f"nothing to resume in {folder}: {hint}")
        return False
    if not holds_run(folder):
        return False
    if not force:
        elsewhere = "another --out folder" if out_given else "--out DIR for a separate run"
        raise UsageError(f"{folder} already holds a run of {describe_existing(folder)}: pass --resume to "
                         f"continue it, --force to start over (deletes it), or {elsewhere}")
    return True


def clear_run(folder: Path) -> None:
    """Remove a previous run's files (only those a run writes, and its model card, never a
    README.md of the user's), so none can be mistaken for the new run's."""
    from ..model_card import CARD_FILE, MARKER

    for name in RUN_FILES:
        (folder / name).unlink(missing_ok=True)
    card = folder / CARD_FILE
    if not card.is_symlink() and _is_card(card, MARKER):
        card.unlink()


def describe_existing(folder: Path) -> str:
    """'lenet5 (finished, 15/15 epochs)' from run.json, best effort (an unreadable one is 'a model')."""
    from ..errors import ZooError
    from ..runs import read_run_info

    try:
        info = read_run_info(folder) or {}
    except ZooError:
        return "a model"
    done, total = info.get("epochs_completed"), (info.get("hyperparameters") or {}).get("epochs")
    return f"{info.get('model', '?')} ({info.get('status', '?')}, {done}/{total} epochs)"


class CsvLog:
    """A CSV record that grows by appended rows: writing one costs the same in epoch 5,000
    as in epoch 1. `start` (re)writes the header and the rows known so far atomically
    (a new run, or a resumed one trimmed to its checkpoint); `append` adds rows."""

    def __init__(self, path: Path, columns: tuple[str, ...]):
        self.path, self.columns = path, columns

    def start(self, rows: list[dict[str, Any]] = ()) -> Path:
        fileio.write_text(self.path, self._lines([dict(zip(self.columns, self.columns))] + list(rows)))
        return self.path

    def append(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            fileio.append_text(self.path, self._lines(rows))

    def _lines(self, rows: list[dict[str, Any]]) -> str:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        for row in rows:
            writer.writerow([_cell(row.get(c, "")) for c in self.columns])
        return buf.getvalue()


def metrics_log(folder: Path) -> CsvLog:
    return CsvLog(folder / METRICS_FILE, METRICS_COLUMNS)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "" if value != value else f"{value:.6g}"
    return str(value)


def versions() -> dict[str, str]:
    import numpy
    import safetensors
    import torch
    import torchvision

    import zoo

    return {
        "zoo": zoo.__version__, "torch": torch.__version__, "torchvision": torchvision.__version__,
        "numpy": numpy.__version__, "safetensors": safetensors.__version__,
        "python": sys.version.split()[0], "platform": platform.platform(),
    }


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def write_run_info(folder: Path, info: dict[str, Any]) -> Path:
    fileio.write_json(folder / RUN_FILE, info)
    return folder / RUN_FILE


def write_model_card(folder: Path, info: dict[str, Any], per_class: list[tuple[str, int, float]]) -> Path | None:
    """README.md in the run folder (zoo.model_card); a README.md that is not a zoo card (the
    user's own, in an --out folder) is never replaced: then None."""
    from ..model_card import CARD_FILE, MARKER, model_card

    path = folder / CARD_FILE
    if path.is_symlink() or (path.exists() and not _is_card(path, MARKER)):
        return None
    fileio.write_text(path, model_card(info, str(folder), per_class))
    return path


def _is_card(path: Path, marker: str) -> bool:
    """Whether `path` is a regular file starting with zoo's card marker (a FIFO or a
    folder named README.md is not, and is not opened for reading)."""
    from ..errors import ZooError
    from ..safeio import MODEL_CARD, open_regular

    try:
        with open_regular(path, MODEL_CARD, follow_links=False) as fh:
            return fh.read(len(marker)).decode("utf-8", "replace") == marker
    except ZooError:
        return False

