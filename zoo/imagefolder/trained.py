"""Weights trained on a folder of images: the spec fitted as they were trained, and the
test images to judge them on (a registered dataset, or the folder's own test split)."""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import CheckpointError
from ..runs import Weights, read_run_info, test_dataset_for, trained_on
from ..spec import ModelSpec


def fitted_for_weights(spec: ModelSpec, weights: str | Path) -> ModelSpec:
    """The spec as the weights at `weights` were trained: for a run on a folder of images,
    fitted to its classes and normalisation (zoo.imagefolder.adapt), from the run.json beside
    the weights or, for weights copied on their own, from their safetensors metadata."""
    from .adapt import fitted_from

    info = run_info_for(spec, weights)
    if info is not None and "fitted" in info:
        return fitted_from(spec, info["fitted"]) or spec
    from ..variants import weights_metadata

    metadata = weights_metadata(weights)
    record = metadata.get("zoo.fitted")
    if record is None or metadata.get("model") != spec.name:
        return spec
    try:
        return fitted_from(spec, json.loads(record)) or spec
    except ValueError:
        return spec


def run_info_for(spec: ModelSpec, weights: str | Path | None) -> dict | None:
    """The run.json beside a weights file when it is a run of this model; None otherwise
    (weights copied on their own, --untrained, an unreadable or foreign run.json)."""
    if weights is None:
        return None
    try:
        info = read_run_info(Path(weights).parent)
    except CheckpointError:
        return None
    return info if isinstance(info, dict) and info.get("model") == spec.name else None


def load_test_data(spec: ModelSpec, weights: str | Path, dataset: str | None = None, data_dir=None,
                   offline: bool = False, on_progress=None):
    """The test split to judge trained weights on (see test_dataset_for), as a
    zoo.data.resolve.LoadedDataset: a registered dataset, or a folder of images (its
    test/ folder, or the very hold-out the run was trained without). `spec` must be
    the fitted one (fitted_for_weights) so that a folder's labels follow its classes."""
    from ..data.resolve import data_root, load_dataset
    from . import is_folder_dataset

    name = test_dataset_for(spec, weights, dataset)
    if not is_folder_dataset(name):
        from ..data.resolve import locate

        if data_dir is None and locate(name) is None:  # where the run found its data, per its run.json
            found = trained_on(spec, weights)
            data_dir = Weights(None, str(weights), Path(weights), found.get("dataset"), found.get("dataset_variant"),
                               dataset_source=found.get("dataset_source")).data_dir(name)
        return load_dataset(name, "test", data_dir=data_dir, offline=offline).check_fits(spec.name, spec.input_shape)
    from .test_split import load_test

    return load_test(name, spec, run_info_for(spec, weights), data_root(data_dir), on_progress)
