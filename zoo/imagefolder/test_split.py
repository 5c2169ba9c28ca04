"""The test images of a folder, for evaluate, mistakes, features and export checks.

For the folder a run was trained on, the test split is the one training used: its
test/ (or val/) folder, or the same seeded hold-out, re-derived from the seed and
fraction in run.json and checked against the recorded fingerprint. Any other
folder is tested whole (its test/ folder when it has one). Labels follow the
run's class names, matched by folder name.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..errors import DataError
from ..spec import ModelSpec
from . import folder_key
from .load import load_folder
from .split import DEFAULT_HOLDOUT


def load_test(dataset: str, spec: ModelSpec, run_info: dict | None, cache_root: Path | None,
              on_progress: Callable | None = None):
    """A zoo.data.resolve.LoadedDataset of the folder's test images, labelled as `spec` (fitted) names classes."""
    import torch

    from ..data.resolve import LoadedDataset

    root, same, data, notices = _as_trained(dataset, spec, run_info, cache_root, on_progress)
    images, labels = data.test.images, data.test.labels
    if not same and data.layout.test is None:  # another folder, no test/: all of it is test data
        images = torch.cat([data.train.images, data.test.images])
        labels = torch.cat([data.train.labels, data.test.labels])
    labels = _relabel(labels, data.class_names, spec.class_names, root)
    return LoadedDataset(images, labels, root, root, root, tuple(spec.class_names), "; ".join(notices) or None)


def load_split(dataset: str, split: str, spec: ModelSpec, cache_root: Path | None, run_info: dict | None = None):
    """The "train" or "test" split of a folder for export's calibration and accuracy check:
    its own test/ folder, else, for the folder the run (`run_info`, its run.json) was
    trained on, the run's own hold-out, so calibration never sees the run's test images;
    any other folder gets the default hold-out (10%, seed 0)."""
    from ..data.resolve import LoadedDataset

    root, _, data, notices = _as_trained(dataset, spec, run_info, cache_root)
    part = data.test if split == "test" else data.train
    labels = _relabel(part.labels, data.class_names, spec.class_names, root)
    return LoadedDataset(part.images, labels, root, root, root, tuple(spec.class_names), "; ".join(notices) or None)


def _as_trained(dataset: str, spec: ModelSpec, run_info: dict | None, cache_root: Path | None,
                on_progress: Callable | None = None):
    """(root, is the run's own folder, FolderData split as the run split it, notices)."""
    root = folder_key(dataset)
    record = run_info.get("image_folder") if isinstance(run_info, dict) else None
    same = isinstance(record, dict) and record.get("root") == root
    held = record.get("holdout") if same and isinstance(record.get("holdout"), dict) else {}
    fraction, seed = held.get("fraction", DEFAULT_HOLDOUT), held.get("seed", 0)
    if not (isinstance(fraction, float) and 0 < fraction < 1 and isinstance(seed, int)
            and not isinstance(seed, bool)):
        raise DataError(f"run.json records an invalid hold-out ({held}); retrain, or pass another --dataset")
    data = load_folder(root, tuple(spec.input_shape), fraction, seed, skip_bad=True, cache_root=cache_root,
                       on_progress=on_progress)
    notices = list(data.notices)
    if same and held and held.get("sha256") != (data.holdout or {}).get("sha256"):
        notices.append(f"{root} changed since the run was trained: its hold-out is not the same "
                       f"{held.get('test_images')} images, so this accuracy is not comparable with the run's")
    return root, same, data, notices


def _relabel(labels, folder_names: tuple[str, ...], run_names: tuple[str, ...], root: str):
    """The folder's labels as indices of the run's classes (matched by name)."""
    import torch

    if tuple(folder_names) == tuple(run_names):
        return labels
    unknown = [n for n in folder_names if n not in run_names]
    if unknown:
        raise DataError(f"{root} has classes the model was not trained on: {', '.join(unknown[:5])}; "
                        f"it knows {', '.join(run_names)}")
    mapping = torch.tensor([run_names.index(n) for n in folder_names], dtype=torch.int64)
    return mapping[labels]


__all__ = ["load_test", "load_split"]
