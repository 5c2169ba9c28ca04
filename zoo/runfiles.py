"""The schemas of the JSON files in a run folder (run.json, checkpoint.json and the
checkpoint's own JSON header), and their checked readers. A run folder may come from
a colleague or an archive, so every field zoo reads is checked for type and bounds on
load, and a bad file is one line naming the file and the field (see zoo.schema)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from . import safeio
from .errors import CheckpointError
from .schema import (Agrees, Bool, Int, List, Num, Obj, Optional, SchemaError, Str, class_names,
                     validate)
from .spec import MAX_BATCH, MAX_EPOCHS, MAX_SEED

WALL_TIME = Num(min=0.0, max=1e9, finite=True)  # seconds: 31 years; more is a damaged file, not a run
SEED = Int(min=0, max=MAX_SEED)  # out of range, a resume would fail seeding its generators

EPOCH = Obj({
    "epoch": Int(min=1, max=MAX_EPOCHS), "train_loss": Optional(Num()), "train_acc": Optional(Num()),
    "test_loss": Optional(Num()), "test_acc": Optional(Num()), "lr": Optional(Num()), "seconds": Optional(Num()),
}, required=("epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "seconds"))

HYPERPARAMETERS = Obj({
    "epochs": Int(min=0, max=MAX_EPOCHS), "batch_size": Int(min=1, max=MAX_BATCH), "optimizer": Str(max_len=64),
    "lr": Num(), "momentum": Num(), "weight_decay": Num(), "schedule": Str(max_len=64), "init": Str(max_len=64),
    "label_smoothing": Num(), "ema": Num(min=0.0, max=1.0), "cycles": Int(min=1, max=MAX_EPOCHS),
    "cycle_decay": Num(min=0.0, max=1.0), "augment_from_cycle": Int(min=1, max=MAX_EPOCHS),
})

# A registered dataset's name, or the absolute path of a folder of images (zoo.imagefolder).
class DatasetRef(Str):
    """A registered dataset's name, or a folder's absolute path: anything else is named as
    not a valid zoo name (a relative path such as ../../etc is neither)."""

    def check(self, value, path):
        if isinstance(value, str) and value.startswith("/") and 1 < len(value) <= self.max_len:
            return value
        return Str(name=True).check(value, path)


DATASET = DatasetRef(max_len=4096)
# A model fitted to a folder: its classes and the training images' normalisation (zoo.imagefolder.adapt).
FITTED = Obj({"class_names": class_names(), "mean": List(Num(), max_items=4), "std": List(Num(), max_items=4)},
             required=("class_names", "mean", "std"))
IMAGE_FOLDER = Obj({
    "root": Str(max_len=4096), "split": Str(choices=("holdout", "folders")), "test_folder": Optional(Str(max_len=16)),
    "holdout": Optional(Obj({"fraction": Num(), "seed": Int(), "test_images": Int(min=0), "sha256": Str(max_len=64)},
                            required=("fraction", "seed", "sha256"))),
    "train_images": Int(min=0), "test_images": Int(min=0), "skipped_files": List(Str(max_len=4096)),
    "links_not_followed": List(Str(max_len=4096)),
}, required=("root", "split"))

# run.json: what was trained, on what, how well. The fields zoo reads; others are kept.
RUN = Obj({
    "model": Str(name=True), "summary": Str(), "plugin": Optional(Str(max_len=256)),
    "plugin_version": Optional(Str(max_len=256)), "status": Str(max_len=64),
    "dataset": DATASET, "dataset_variant": DATASET, "dataset_source": Optional(Str()),
    "fitted": FITTED, "image_folder": IMAGE_FOLDER,
    "class_names": class_names(), "train_samples": Int(min=0), "test_samples": Int(min=0),
    "limit": Optional(Int(min=0)), "augment": Bool(), "hyperparameters": HYPERPARAMETERS,
    "seed": Optional(SEED), "device": Str(max_len=64), "threads": Optional(Int(min=1, max=1 << 16)),
    "versions": Obj(values=Str(max_len=256)), "epochs_completed": Int(min=0, max=MAX_EPOCHS),
    "metrics": List(EPOCH, max_items=MAX_EPOCHS), "test_accuracy": Optional(Num()),
    "test_loss": Optional(Num()), "best_test_accuracy": Optional(Num()), "best_epoch": Optional(Int(min=0)),
    "wall_time_seconds": Optional(WALL_TIME), "sessions": Int(min=0), "started_at": Optional(Str(max_len=64)),
    "updated_at": Optional(Str(max_len=64)), "weights": Optional(Str(max_len=256)),
    "log_every": Optional(Int(min=1)),
}, required=("model",))

# The sums of an epoch stopped part-way (zoo.train.session.Accumulators.state).
PARTIAL = Obj({"loss_sum": Num(), "correct": Int(min=0), "samples": Int(min=0), "seconds": Num()},
              required=("loss_sum", "correct", "samples", "seconds"))

# The JSON part of a checkpoint (checkpoint.safetensors header; checkpoint.json is a copy).
CHECKPOINT = Obj({
    "format": Str(max_len=64), "model": Str(name=True), "epoch": Int(min=0, max=MAX_EPOCHS),
    "batch": Int(min=0), "partial": Optional(PARTIAL), "epochs": Int(min=0, max=MAX_EPOCHS),
    "settings": Obj({"recipe": HYPERPARAMETERS, "seed": SEED, "dataset": DATASET, "limit": Optional(Int(min=0)),
                     "augment": Bool()}, required=("recipe", "seed", "dataset", "limit", "augment")),
    "metrics": List(EPOCH, max_items=MAX_EPOCHS), "wall_time": WALL_TIME, "sessions": Int(min=0),
    "started_at": Optional(Str(max_len=64)), "threads": Optional(Int(min=1, max=1 << 16)),
    "log_every": Optional(Int(min=1)), "optimizer": Obj(), "scheduler": Obj(), "rng": Obj(),
    "batches": Int(min=1, max=1 << 40),  # per epoch per process; absent in checkpoints before it was saved
    # a distributed run's: how many processes saved it, and each one's RNG state (rank order)
    "world_size": Int(min=1, max=1 << 20), "rank_rng": List(Obj(), max_items=1 << 20),
}, required=("format", "model", "settings", "optimizer", "scheduler", "rng"))


def read_run_json(path: str | Path) -> dict[str, Any]:
    """run.json at `path`, read under its size cap and checked against RUN."""
    data = safeio.read_json(path, safeio.RUN_JSON, CheckpointError)
    return validate(data, RUN, str(path), CheckpointError, "the run folder is damaged or not zoo's")


def check_checkpoint(meta: Any, where: str) -> dict[str, Any]:
    return validate(meta, Agrees(CHECKPOINT, _progress_agrees), where, CheckpointError, "start over with --force")


def _progress_agrees(meta: dict[str, Any], path: str) -> None:
    """The progress fields of a header agree with each other. Each is valid alone, but a resume
    trusts them together: an epoch past the run's end would report it finished without weights,
    and a metrics list shorter than the epochs done would rewrite metrics.csv without them.
    (Defaults as zoo.train.session reads them: a header without progress is at the start.)"""
    epoch, batch, metrics = meta.get("epoch", 0), meta.get("batch", 0), meta.get("metrics", [])
    epochs = meta["settings"]["recipe"].get("epochs")
    if epochs is not None and epoch > epochs:
        raise SchemaError("epoch", f"is {epoch}, past the run's {epochs} epochs (settings.recipe.epochs)")
    if epochs is not None and batch and epoch == epochs:
        raise SchemaError("batch", f"is {batch}, but all {epochs} epochs of the run are done")
    if len(metrics) != epoch:
        raise SchemaError("metrics", f"has {len(metrics)} rows, but field 'epoch' says {epoch} epochs are done")
    for i, row in enumerate(metrics):
        if row["epoch"] != i + 1:
            raise SchemaError(f"metrics[{i}].epoch", f"is {row['epoch']}, expected {i + 1} (one row per epoch, in order)")
