"""Checkpoints and weights without pickle: tensors in safetensors, everything else JSON.

checkpoint.safetensors holds the model's tensors ("model.*"), the weight average's
("ema.*", with --ema), the optimizer's and scheduler's tensors ("optimizer.*",
"scheduler.*") and the RNG states ("rng.*");
its header metadata "zoo.checkpoint" holds the JSON rest: progress, settings, the
optimizer's param groups and scalars, scheduler state, metrics so far. Being one
file written with one atomic rename, it can never be half old, half new.
checkpoint.json is a readable copy of that JSON, written just after it, for
people and tools; loading never depends on it.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from .. import fileio, safeio
from ..errors import CheckpointError, OutputError, describe
from ..runfiles import check_checkpoint
from ..runs import CHECKPOINT_FILE, CHECKPOINT_STATE_FILE

FORMAT = "zoo.checkpoint/1"
META_KEY = "zoo.checkpoint"
TENSOR, ITEMS = "__tensor__", "__items__"


def pack(obj: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """A JSON-able copy of obj: tensors move into `tensors` under a key built from
    their path and are replaced by {"__tensor__": key}; dicts with non-string keys
    (optimizer state is keyed by int) become {"__items__": [[key, value], ...]}."""
    if isinstance(obj, torch.Tensor):
        tensors[prefix] = obj.detach().to("cpu", copy=True).contiguous()
        return {TENSOR: prefix}
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj):
            return {k: pack(v, f"{prefix}.{k}", tensors) for k, v in obj.items()}
        return {ITEMS: [[k, pack(v, f"{prefix}.{k}", tensors)] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        return [pack(v, f"{prefix}.{i}", tensors) for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise CheckpointError(f"cannot store {type(obj).__name__} at '{prefix}' in a checkpoint without pickle")


def unpack(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {TENSOR}:
            return tensors[obj[TENSOR]]
        if set(obj) == {ITEMS}:
            return {k: unpack(v, tensors) for k, v in obj[ITEMS]}
        return {k: unpack(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [unpack(v, tensors) for v in obj]
    return obj


def rng_state() -> dict[str, torch.Tensor]:
    """The global torch RNG states (uint8 tensors): dropout and any other in-model randomness."""
    states = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states.update({f"cuda{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    return states


def set_rng_state(states: dict[str, torch.Tensor]) -> None:
    torch.set_rng_state(states["cpu"])
    cuda = [states[k] for k in sorted(states) if k.startswith("cuda")]
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


def model_tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    # contiguous(): channels_last parameters are stored in the standard layout.
    return {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}


def to_bytes(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> bytes:
    from safetensors.torch import save

    return save(tensors, metadata=metadata)


def save_weights(path: Path, model: torch.nn.Module, metadata: dict[str, str]) -> Path:
    """model.safetensors: the state dict only, readable by zoo.runs.load_state and any safetensors tool."""
    fileio.write_bytes(path, to_bytes(model_tensors(model), metadata))
    return path


def save_checkpoint(folder: Path, model, optimizer, scheduler, state: dict[str, Any], average=None) -> Path:
    """Write the resumable state of a run atomically; `state` is the JSON part (progress,
    settings); `average`: the moving average of the weights (zoo.train.optim.make_average)."""
    tensors: dict[str, torch.Tensor] = {f"model.{k}": v for k, v in model_tensors(model).items()}
    if average is not None:
        tensors |= {f"ema.{k}": v for k, v in model_tensors(average).items()}
    meta = dict(state, format=FORMAT)
    meta["optimizer"] = pack(optimizer.state_dict(), "optimizer", tensors)
    meta["scheduler"] = pack(scheduler.state_dict(), "scheduler", tensors)
    meta["rng"] = pack(rng_state(), "rng", tensors)
    if "rank_rng" in meta:  # each process's RNG in a distributed run (zoo.train.distributed)
        meta["rank_rng"] = pack(meta["rank_rng"], "rank_rng", tensors)
    text = json.dumps(meta, allow_nan=True)
    path = folder / CHECKPOINT_FILE
    try:
        fileio.write_bytes(path, to_bytes(tensors, {META_KEY: text}))
        fileio.write_text(folder / CHECKPOINT_STATE_FILE, json.dumps(meta, indent=1, allow_nan=True) + "\n")
    except OutputError as exc:  # fileio says why (disk full, a folder in the way); the old file stays
        raise CheckpointError(f"could not save the checkpoint: {exc}; the previous checkpoint is kept") from exc
    return path


def read_checkpoint(folder: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(JSON state, tensors) of a run folder's checkpoint, or a CheckpointError saying what is wrong."""
    from safetensors import SafetensorError, safe_open

    path = Path(folder) / CHECKPOINT_FILE
    if not (path.exists() or path.is_symlink()):
        raise CheckpointError(f"no checkpoint at {path}")
    safeio.check_regular(path, safeio.WEIGHTS_FILE, CheckpointError)
    try:
        with safe_open(str(path), framework="pt") as f:
            text = (f.metadata() or {}).get(META_KEY)
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path} is not a readable checkpoint ({exc}); start over with --force")
    if not text:
        raise CheckpointError(f"{path} is not a zoo checkpoint ({FORMAT}); start over with --force")
    safeio.check_size(path, len(text), safeio.CHECKPOINT_JSON, CheckpointError)
    meta = check_checkpoint(safeio.parse_json(text, f"{path} (its JSON header)", CheckpointError),
                            f"{path} (its JSON header)")
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a zoo checkpoint ({FORMAT}); start over with --force")
    return meta, tensors


def restore(meta: dict[str, Any], tensors: dict[str, torch.Tensor], model, optimizer, scheduler,
            average=None) -> dict[str, torch.Tensor]:
    """Load a checkpoint into freshly built model/optimizer/scheduler (and weight average);
    returns the saved global RNG states, for the caller to set (`set_rng_state`) when it trains on."""
    try:
        model.load_state_dict(_prefixed(tensors, "model."), strict=True)
        if average is not None:
            average.load_state_dict(_prefixed(tensors, "ema."), strict=True)
        optimizer.load_state_dict(unpack(meta["optimizer"], tensors))
        scheduler.load_state_dict(unpack(meta["scheduler"], tensors))
        rng = unpack(meta["rng"], tensors)
    except (RuntimeError, KeyError, ValueError, TypeError, IndexError) as exc:  # a damaged or edited header
        raise CheckpointError(f"the checkpoint does not fit this model or optimizer ({describe(exc)}); "
                              "start over with --force") from exc
    return rng


def _prefixed(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
