"""Where a training run lives and how its weights are read back.

    runs/NAME/model.safetensors     final weights (safetensors, never pickle)
    runs/NAME/run.json              what was trained, how, and how well
    runs/NAME/metrics.csv           one row per epoch
    runs/NAME/curves.png            drawn from metrics.csv by zoo.viz.curves (the command layer asks for it)
    runs/NAME/checkpoint.safetensors + checkpoint.json   resumable state
"""
from __future__ import annotations

from pathlib import Path

from . import safeio
from .errors import CheckpointError
from .spec import ModelSpec, check_name

RUNS_ROOT = Path("runs")
WEIGHTS_FILE = "model.safetensors"
RUN_FILE = "run.json"
METRICS_FILE = "metrics.csv"
CURVES_FILE = "curves.png"
CHECKPOINT_FILE = "checkpoint.safetensors"
CHECKPOINT_STATE_FILE = "checkpoint.json"
METRICS_COLUMNS = ("epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "seconds")


def run_dir(name: str, out: str | Path | None = None) -> Path:
    """The run folder: `--out` when given, else runs/NAME. Model names are restricted to
    a safe alphabet, so runs/NAME can never point outside runs/."""
    if out is not None:
        return Path(out)
    return RUNS_ROOT / check_name(name, "model")


def weights_path(name: str, weights: str | Path | None = None, out: str | Path | None = None) -> Path:
    return Path(weights) if weights is not None else run_dir(name, out) / WEIGHTS_FILE


def load_state(path: str | Path) -> dict:
    """Tensors from a safetensors file, with one clear error for every way it can be wrong."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not (path.exists() or path.is_symlink()):
        raise CheckpointError(f"no weights file at {path}")
    safeio.check_regular(path, safeio.WEIGHTS_FILE, CheckpointError)
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path} is not a readable safetensors file ({exc}); retrain or pass another --weights")


def load_trained(spec: ModelSpec, weights: str | Path | None = None, out: str | Path | None = None):
    """The spec's model with trained weights loaded, in eval mode, on the CPU."""
    path = weights_path(spec.name, weights, out)
    if not path.is_file():
        hint = f"run `zoo train {spec.name}` first" if weights is None else "check the path"
        raise CheckpointError(f"no trained weights for '{spec.name}' at {path}: {hint}, or pass --weights PATH")
    state = load_state(path)
    model = spec.build()
    check_tensors(path, state, model.state_dict())
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = next((ln.strip() for ln in str(exc).splitlines()[1:] if ln.strip()), str(exc))
        raise CheckpointError(f"{path} does not fit model '{spec.name}': {first}")
    return model.eval()


def check_tensors(path: Path, state: dict, expected: dict) -> None:
    """Refuse weights that would load silently and score like chance: NaN or Inf values
    (a diverged run), or integer tensors where the model has floats (load_state_dict
    would cast them without a word). Names the first bad tensor."""
    import torch

    for key, tensor in state.items():
        want = expected.get(key)
        if want is None:
            continue  # an unexpected key: load_state_dict(strict=True) names it
        if want.is_floating_point() and not tensor.is_floating_point():
            raise CheckpointError(f"{path}: tensor '{key}' holds {str(tensor.dtype).removeprefix('torch.')} values "
                                  f"where the model has {str(want.dtype).removeprefix('torch.')}: these are not "
                                  "trained weights; retrain or pass another --weights")
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            raise CheckpointError(f"{path}: tensor '{key}' holds {bad} NaN or infinite value(s) of {tensor.numel()}: "
                                  "the weights are broken (a diverged run?); retrain or pass another --weights")


def read_run_info(folder: str | Path) -> dict | None:
    """run.json of a run folder, checked against its schema (zoo.runfiles.RUN), or None
    when there is none. Anything at that path that is not a sane regular file of the
    right shape (a FIFO, a link to a device, 200,000 nested lists, a number for
    class_names) is a CheckpointError naming the file and the field."""
    from .runfiles import read_run_json

    path = Path(folder) / RUN_FILE
    if not (path.exists() or path.is_symlink()):
        return None
    return read_run_json(path)


def trained_on(spec: ModelSpec, weights: str | Path) -> dict:
    """What the weights at `weights` were trained on, from the run.json beside them:
    {"dataset": ..., "dataset_variant": ..., "class_names": (...)}; empty when there is no run.json or it
    belongs to another model (then it is not ours to trust). A damaged run.json is a CheckpointError
    naming the file and the field: silently ignoring it would judge the weights on the wrong data."""
    info = read_run_info(Path(weights).parent)
    if not isinstance(info, dict) or info.get("model") != spec.name:
        return {}
    found = {k: info[k] for k in ("dataset", "dataset_variant", "dataset_source") if isinstance(info.get(k), str)}
    names = info.get("class_names")
    if isinstance(names, list) and len(names) == spec.num_classes and all(isinstance(n, str) for n in names):
        found["class_names"] = tuple(names)  # a lenet5 trained on Fashion-MNIST names garments, not digits
    return found


def trained_data_dir(spec: ModelSpec, weights: str | Path, dataset: str) -> Path | None:
    """The folder the weights' training data was read from (run.json), when it still exists
    and `dataset` is the one they were trained on: `zoo evaluate --weights RUN/...` then
    needs no --data-dir repeated. None otherwise."""
    found = trained_on(spec, weights)
    source = found.get("dataset_source")
    if found.get("dataset") != dataset or found.get("dataset_variant") != dataset or not source:
        return None  # another dataset, or a stand-in (fallback) was used: search as usual
    folder = Path(source)
    return folder if folder.is_dir() and not folder.is_symlink() else None


def test_dataset_for(spec: ModelSpec, weights: str | Path, dataset: str | None = None) -> str:
    """The dataset to test trained weights on: the one asked for, else the one they were
    trained on (a lenet5 trained with --dataset fashion-mnist is judged on Fashion-MNIST),
    else the model's own."""
    return dataset or trained_on(spec, weights).get("dataset") or spec.dataset
