"""Finding and comparing runs: every folder under runs/ (or any folder) that holds a run.json.

    find_runs("runs")                  -> [RunSummary, ...], newest first
    compare(["runs/a", "runs/b"])      -> Comparison: the settings that differ, final metrics side by side

Every run.json is read as untrusted (zoo.runs.read_run_info: a bounded read of a
regular file, checked against its schema); a run whose run.json fails that is
listed as "unreadable" rather than failing the listing. The status comes from
the run lock (zoo.runlock: "running" only while a live process holds it; a
run.json left at "running" by a killed process is "interrupted").
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import UsageError, ZooError
from .runs import RUN_FILE, RUNS_ROOT, read_run_info
from .spec import recipe_defaults

SORTS = ("date", "accuracy")


@dataclass
class RunSummary:
    path: str
    model: str | None = None
    dataset: str | None = None
    status: str = "unreadable"
    epochs_completed: int | None = None
    epochs: int | None = None
    best_accuracy: float | None = None
    best_epoch: int | None = None
    final_accuracy: float | None = None
    wall_time_seconds: float | None = None
    date: str | None = None  # last update, ISO 8601 UTC
    info: dict = field(default_factory=dict, repr=False)  # the whole run.json, validated as a JSON object

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("info")
        return data


def read_info(folder: str | Path) -> dict | None:
    """run.json of `folder`, read and checked by zoo.runs.read_run_info (regular file, size
    cap, schema); None when it is absent or fails those checks."""
    try:
        info = read_run_info(folder)
    except ZooError:
        return None
    return info if isinstance(info, dict) else None


def summarize(folder: str | Path) -> RunSummary:
    folder = Path(folder)
    info = read_info(folder)
    summary = RunSummary(str(folder), status=_status(folder, info))
    if info is None:
        return summary
    summary.info = info
    summary.model = _text(info.get("model"))
    summary.dataset = _text(info.get("dataset"))
    summary.epochs_completed = _int(info.get("epochs_completed"))
    hp = info.get("hyperparameters")
    summary.epochs = _int(hp.get("epochs")) if isinstance(hp, dict) else None
    summary.best_accuracy = _fraction(info.get("best_test_accuracy"))
    summary.best_epoch = _int(info.get("best_epoch"))
    summary.final_accuracy = _fraction(info.get("test_accuracy"))
    summary.wall_time_seconds = _number(info.get("wall_time_seconds"))
    summary.date = _text(info.get("updated_at")) or _text(info.get("started_at"))
    return summary


def _status(folder: Path, info: dict | None) -> str:
    """zoo.runlock's answer: "running" only while a live process holds the run's lock."""
    from .runlock import run_status

    status = run_status(folder) if info is not None else None
    return status if status in ("finished", "interrupted", "running", "failed") else "unreadable"


def find_runs(folder: str | Path | None = None, sort: str = "date") -> list[RunSummary]:
    """Every run under `folder` (default runs/), newest first or best accuracy first."""
    if sort not in SORTS:
        raise UsageError(f"--sort {sort}: sort by {' or '.join(SORTS)}")
    root = Path(folder) if folder is not None else RUNS_ROOT
    if not root.exists():
        hint = "train a model first (`zoo train NAME`)" if folder is None else "check the path"
        raise UsageError(f"no runs folder at {root}: {hint}")
    if not root.is_dir():
        raise UsageError(f"{root} is a file: give the folder that holds the runs")
    found = []
    for here, dirs, files in os.walk(root, followlinks=False):  # links are not followed out of the folder
        dirs.sort()
        if RUN_FILE in files:
            found.append(summarize(Path(here)))
    return sort_runs(found, sort)


def sort_runs(runs: list[RunSummary], sort: str = "date") -> list[RunSummary]:
    if sort == "accuracy":
        return sorted(runs, key=lambda r: (r.best_accuracy is None, -(r.best_accuracy or 0), r.path))
    dated = sorted(runs, key=lambda r: r.path)
    return sorted(dated, key=lambda r: r.date or "", reverse=True)  # ISO dates sort as text; stable for ties


# -- compare ------------------------------------------------------------------------------------

SETTINGS = ("model", "dataset", "dataset_variant", "train_samples", "test_samples", "limit", "augment", "seed",
            "device", "threads", "plugin_version")
RESULTS = ("status", "epochs_completed", "test_accuracy", "best_test_accuracy", "best_epoch", "test_loss",
           "wall_time_seconds")


@dataclass
class Comparison:
    runs: list[RunSummary]
    differences: dict[str, list[Any]]  # setting -> its value in each run (only settings that differ)
    results: dict[str, list[Any]]  # final metrics, one value per run

    def as_dict(self) -> dict[str, Any]:
        return {"runs": [r.path for r in self.runs], "differences": self.differences, "results": self.results}


def settings_of(info: dict) -> dict[str, Any]:
    """The flat settings that define a run: top-level ones, hyperparameters.*, image_folder.holdout.*."""
    flat = {key: info.get(key) for key in SETTINGS if key in info}
    hp = info.get("hyperparameters")
    if isinstance(hp, dict):  # a field added since an older run was saved: the default it trained with
        hp = {**recipe_defaults(), **hp}
        flat |= {f"hyperparameters.{k}": v for k, v in hp.items() if isinstance(v, (str, int, float, bool))}
    folder = info.get("image_folder")
    held = folder.get("holdout") if isinstance(folder, dict) else None
    if isinstance(held, dict):
        flat |= {f"holdout.{k}": held.get(k) for k in ("fraction", "seed")}
    return flat


def compare(folders: list[str | Path]) -> Comparison:
    if len(folders) < 2:
        raise UsageError("give at least two run folders to compare")
    runs = []
    for folder in folders:
        summary = summarize(folder)
        if not summary.info:
            raise UsageError(f"{folder} holds no readable run.json: give run folders (see `zoo runs`)")
        runs.append(summary)
    settings = [settings_of(r.info) for r in runs]
    keys = list(dict.fromkeys(k for s in settings for k in s))
    differences = {k: [s.get(k) for s in settings] for k in keys if len({json.dumps(s.get(k)) for s in settings}) > 1}
    results = {k: [r.status if k == "status" else r.info.get(k) for r in runs] for k in RESULTS}
    return Comparison(runs, differences, results)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _number(value: Any) -> float | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else None


def _fraction(value: Any) -> float | None:
    number = _number(value)
    return number if number is not None and 0 <= number <= 1 else None
