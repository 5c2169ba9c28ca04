"""Where a training run lives and how its weights are read back: the one place that
turns "these weights" (runs/NAME, --out RUN, --weights PATH or --untrained) into the
model, its run.json, the dataset and class names it was trained on, and its
fingerprint. Every command that uses trained weights goes through `resolve_weights`.

    runs/NAME/model.safetensors     final weights (safetensors, never pickle)
    runs/NAME/run.json              what was trained, how, and how well
    runs/NAME/metrics.csv           one row per epoch
    runs/NAME/batches.csv           one row per N batches (zoo train --log-every N)
    runs/NAME/curves.png            drawn from metrics.csv by zoo.viz.curves (the command layer asks for it)
    runs/NAME/checkpoint.safetensors + checkpoint.json   resumable state
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from . import safeio
from .errors import CheckpointError, UsageError
from .spec import ModelSpec, check_name

RUNS_ROOT = Path("runs")
WEIGHTS_FILE = "model.safetensors"
RUN_FILE = "run.json"
METRICS_FILE = "metrics.csv"
CURVES_FILE = "curves.png"
CHECKPOINT_FILE = "checkpoint.safetensors"
CHECKPOINT_STATE_FILE = "checkpoint.json"
METRICS_COLUMNS = ("epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "seconds")
BATCHES_FILE = "batches.csv"  # with --log-every N: training loss and accuracy every N batches
BATCH_COLUMNS = ("epoch", "batch", "step", "samples", "train_loss", "train_acc", "lr")


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


UNTRAINED_SEED = 0


@dataclass
class Weights:
    """Weights a command works with, and what their run.json says they were trained on.

    `sha256` is their fingerprint (it goes into ONNX metadata so `zoo verify` can tell a
    file made from other weights): the sha256 of the weights file when there is one
    (what `sha256sum runs/NAME/model.safetensors` prints), else of the tensors
    themselves (in-memory and --untrained models, the builder's initialisation after
    `torch.manual_seed(UNTRAINED_SEED)`). It is computed on first use."""

    model: object  # nn.Module in eval mode, on the CPU
    source: str  # e.g. "runs/lenet5/model.safetensors", "untrained (builder after torch.manual_seed(0))"
    path: Path | None = None  # the weights file, when there is one
    dataset: str | None = None  # the data the weights were trained on, when run.json says
    dataset_variant: str | None = None
    class_names: tuple[str, ...] | None = None  # of that dataset, when run.json records them
    dataset_source: str | None = None  # the folder the training data was read from, per run.json
    _sha256: str | None = field(default=None, repr=False)

    @property
    def sha256(self) -> str:
        if self._sha256 is None:
            self._sha256 = file_sha256(self.path) if self.path is not None else tensor_sha256(self.model)
        return self._sha256

    def test_dataset(self, spec: ModelSpec, asked: str | None = None) -> str:
        """The dataset to test on: the one asked for, else the one the weights were trained
        on (a lenet5 trained with --dataset fashion-mnist is judged on Fashion-MNIST), else
        the model's own."""
        return asked or self.dataset or spec.dataset

    def data_dir(self, dataset: str) -> Path | None:
        """The folder the training data was read from, when it still exists and `dataset` is
        the one the weights were trained on: `zoo evaluate --weights RUN/...` then needs no
        --data-dir repeated. None otherwise (another dataset, or a fallback stood in)."""
        if self.dataset != dataset or self.dataset_variant != dataset or not self.dataset_source:
            return None
        folder = Path(self.dataset_source)
        return folder if folder.is_dir() and not folder.is_symlink() else None

    def names(self, spec: ModelSpec) -> tuple[str, ...]:
        """Class names of the data the weights were trained on, else the spec's."""
        return self.class_names or spec.class_names


def resolve_weights(spec: ModelSpec, weights: str | Path | None = None, out: str | Path | None = None, *,
                    untrained: bool = False, offer_untrained: bool = False) -> Weights:
    """The weights a command uses: --weights PATH, else RUN/model.safetensors (RUN is --out
    or runs/NAME), or the builder's initial weights with `untrained`. `offer_untrained`:
    the command has an --untrained option, so the error for missing weights names it."""
    if untrained:
        if weights is not None:
            raise UsageError("--weights and --untrained exclude each other: pick one")
        return untrained_weights(spec)
    path = weights_path(spec.name, weights, out)
    if offer_untrained and not path.is_file():
        where = f"no trained weights for '{spec.name}' at {path}"
        if weights is None:
            raise CheckpointError(f"{where}: run `zoo train {spec.name}` first, pass --weights PATH, "
                                  "or --untrained to use random initial weights")
        raise CheckpointError(f"{where}: check the path, or pass --untrained to use random initial weights")
    model = load_trained(spec, weights, out)
    info = trained_on(spec, path)
    return Weights(model, str(path), path, info.get("dataset"), info.get("dataset_variant"), info.get("class_names"),
                   info.get("dataset_source"))


def in_memory(model, source: str = "in-memory model") -> Weights:
    return Weights(model.eval(), source)


def untrained_weights(spec: ModelSpec) -> Weights:
    import torch

    torch.manual_seed(UNTRAINED_SEED)
    weights = in_memory(spec.build(), f"untrained (builder after torch.manual_seed({UNTRAINED_SEED}))")
    weights.dataset_variant = "none (untrained)"
    return weights


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def tensor_sha256(model) -> str:
    """sha256 over the state_dict: names, dtypes, shapes and bytes, in name order."""
    import torch

    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}\n".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def test_dataset_for(spec: ModelSpec, weights: str | Path, dataset: str | None = None) -> str:
    """The dataset to test trained weights on: the one asked for, else the one they were
    trained on (a lenet5 trained with --dataset fashion-mnist is judged on Fashion-MNIST),
    else the model's own."""
    return dataset or trained_on(spec, weights).get("dataset") or spec.dataset
