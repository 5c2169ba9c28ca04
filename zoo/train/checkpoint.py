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
import math
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
            average=None, steps: int | None = None) -> dict[str, torch.Tensor]:
    """Load a checkpoint into freshly built model/optimizer/scheduler (and weight average);
    returns the saved global RNG states, for the caller to set (`set_rng_state`) when it trains on.

    The saved optimizer and scheduler state is checked against the fresh ones first, so that a
    damaged header is one CheckpointError here, not a foreign error in the first step (after
    metrics.csv was rewritten). `scheduler` None: the caller lays out a new schedule (the run
    goes on with another number of processes). `steps`: the scheduler steps the run has taken
    (None: not checked, for a schedule that is never stepped)."""
    fresh_groups = _group_settings(optimizer)
    fresh_schedule = scheduler.state_dict() if scheduler is not None else None
    try:
        model.load_state_dict(_prefixed(tensors, "model."), strict=True)
        if average is not None:
            average.load_state_dict(_prefixed(tensors, "ema."), strict=True)
        optimizer.load_state_dict(unpack(meta["optimizer"], tensors))
        saved_schedule = unpack(meta["scheduler"], tensors)
        rng = unpack(meta["rng"], tensors)
    except (RuntimeError, KeyError, ValueError, TypeError, IndexError) as exc:  # a damaged or edited header
        raise CheckpointError(f"the checkpoint does not fit this model or optimizer ({describe(exc)}); "
                              "start over with --force") from exc
    check_optimizer(optimizer, fresh_groups)
    if scheduler is not None:
        check_schedule(saved_schedule, fresh_schedule, steps)
        scheduler.load_state_dict(saved_schedule)
    check_rng(rng, "the RNG state")
    return rng


def damaged(what: str) -> CheckpointError:
    return CheckpointError(f"the checkpoint is damaged: {what}; start over with --force")


# What training moves; everything else in the saved state follows from the recipe, so a
# value that differs from a freshly built optimizer's or scheduler's is damage, not progress.
SCHEDULER_PROGRESS = frozenset({"last_epoch", "_step_count", "_last_lr", "_is_initial", "_get_lr_called_within_step"})
SCHEDULED_GROUP_KEYS = frozenset({"lr", "betas", "momentum"})  # onecycle cycles momentum (Adam's beta1)


def check_schedule(saved: Any, fresh: dict[str, Any], steps: int | None) -> None:
    """The saved scheduler state is the recipe's schedule (`fresh`), `steps` steps on."""
    if not isinstance(saved, dict):
        raise damaged(f"the scheduler state is {_short(saved)}, not an object")
    # A scheduler's state is its __dict__, whose private bookkeeping differs between torch
    # versions (2.6 saved 'verbose', 2.14 '_is_initial'): compare the keys both know, and keep
    # only those when loading, so that a key of another version cannot shadow a method.
    if "last_epoch" not in saved:
        raise damaged("the scheduler state lacks 'last_epoch'")
    for key in [k for k in saved if k not in fresh]:
        del saved[key]
    _compare(saved, fresh, SCHEDULER_PROGRESS, "the scheduler's", "schedule")  # a key not saved: the fresh one stays
    if steps is not None and saved["last_epoch"] != steps:
        raise damaged(f"the scheduler has taken {_short(saved['last_epoch'])} steps, but the run's progress "
                      f"(epoch and batch) says {steps}")


def check_optimizer(optimizer: torch.optim.Optimizer, fresh_groups: list[dict[str, Any]]) -> None:
    """The restored optimizer has the recipe's settings (`fresh_groups`, only the scheduled
    ones moved) and per-parameter state that fits each parameter, as its own step keeps it."""
    for i, (group, fresh) in enumerate(zip(_group_settings(optimizer), fresh_groups)):
        _same_keys(group, fresh, f"the optimizer's group {i}")
        _compare(group, fresh, SCHEDULED_GROUP_KEYS, "the optimizer's", "optimizer")
    if any(not isinstance(key, torch.Tensor) for key in optimizer.state):
        raise damaged("the optimizer state names parameters this model does not have")
    keys = _state_keys(optimizer, fresh_groups[0])
    params = [p for group in optimizer.param_groups for p in group["params"]]
    for i, p in enumerate(params):
        state = optimizer.state.get(p)
        if state:  # none yet: a parameter that has had no gradient
            _check_param_state(i, p, state, keys)


def _check_param_state(index: int, param: torch.Tensor, state: dict[str, Any], keys: set[str]) -> None:
    _same_keys(state, dict.fromkeys(keys), f"the optimizer state of parameter {index}")
    for key, value in state.items():
        shape = torch.Size([1]) if key == "step" else param.shape  # a step count, or a moment per weight
        ok = isinstance(value, torch.Tensor) and (value.numel() == 1 if key == "step" else
                                                  value.shape == shape and value.is_floating_point())
        if not ok:
            got = f"{value.dtype} of shape {list(value.shape)}" if isinstance(value, torch.Tensor) else _short(value)
            raise damaged(f"the optimizer's '{key}' of parameter {index} is {got}, expected "
                          + ("one number" if key == "step" else f"floats of shape {list(shape)}"))


def _state_keys(optimizer: torch.optim.Optimizer, settings: dict[str, Any]) -> set[str]:
    """The per-parameter state keys this kind of optimizer keeps with these settings (Adam's step
    and moments, SGD's momentum buffer or nothing), learnt from one step on a one-number probe
    rather than listed per optimizer."""
    import inspect

    accepted = inspect.signature(type(optimizer).__init__).parameters
    probe = torch.zeros(1, requires_grad=True)
    stepper = type(optimizer)([probe], **{k: v for k, v in settings.items() if k in accepted})
    probe.grad = torch.ones(1)
    stepper.step()
    return set(stepper.state[probe])


def check_rng(states: Any, what: str) -> None:
    """RNG states are 1-D uint8 tensors and the CPU one is one torch accepts (tried on a fork of
    the global RNG, which is left as it was), so that setting them later cannot fail."""
    if not isinstance(states, dict) or not isinstance(states.get("cpu"), torch.Tensor):
        raise damaged(f"{what} has no CPU generator state")
    for name, state in states.items():
        if not isinstance(state, torch.Tensor) or state.dtype != torch.uint8 or state.dim() != 1:
            got = f"{state.dtype} of shape {list(state.shape)}" if isinstance(state, torch.Tensor) else _short(state)
            raise damaged(f"{what} '{name}' is {got}, expected a 1-D uint8 tensor")
    with torch.random.fork_rng(devices=[]):
        try:
            torch.set_rng_state(states["cpu"])
        except (RuntimeError, ValueError, TypeError) as exc:
            raise damaged(f"{what} 'cpu' is not a generator state ({describe(exc)})") from exc


def _compare(saved: dict, fresh: dict, moving: frozenset, whose: str, made_by: str) -> None:
    """Each of `fresh`'s keys that `saved` has: the same value as the recipe's `made_by` lays
    out, or, for the keys training moves, a value of the same form."""
    for key, value in fresh.items():
        if key not in saved:
            continue
        if key in moving and not _same_form(saved[key], value):
            raise damaged(f"{whose} '{key}' is {_short(saved[key])}, not a value like {_short(value)}")
        if key not in moving and _plain(saved[key]) != _plain(value):
            raise damaged(f"{whose} '{key}' is {_short(saved[key])}, where this run's {made_by} has {_short(value)}")


def _same_keys(saved: dict, fresh: dict, what: str) -> None:
    """Named by the first key too many or missing, not by two lists of all of them."""
    extra, missing = sorted(map(str, set(saved) - set(fresh))), sorted(map(str, set(fresh) - set(saved)))
    if extra:
        raise damaged(f"{what} has '{safeio.for_display(extra[0], 60)}', which this run's does not")
    if missing:
        raise damaged(f"{what} lacks '{missing[0]}'")


def _group_settings(optimizer: torch.optim.Optimizer) -> list[dict[str, Any]]:
    return [{k: v for k, v in group.items() if k not in ("params", "param_names")} for group in optimizer.param_groups]


def _same_form(saved: Any, fresh: Any) -> bool:
    """`saved` is shaped like `fresh`: a finite number for a number, a list of as many for a
    list, the same keys for a dict, the same type otherwise (a flag stays a flag)."""
    if isinstance(fresh, bool) or isinstance(saved, bool):
        return type(saved) is type(fresh)
    if isinstance(fresh, (int, float)):  # a recipe's lr=1 is an int until the schedule moves it
        return isinstance(saved, (int, float)) and math.isfinite(saved)
    if isinstance(fresh, (list, tuple)):
        return (isinstance(saved, (list, tuple)) and len(saved) == len(fresh)
                and all(_same_form(s, f) for s, f in zip(saved, fresh)))
    if isinstance(fresh, dict):
        return isinstance(saved, dict) and set(saved) == set(fresh) and all(_same_form(saved[k], fresh[k])
                                                                           for k in fresh)
    return type(saved) is type(fresh)


def _plain(value: Any) -> Any:
    """JSON's view of a value: a checkpoint stores tuples (Adam's betas) as lists."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _short(value: Any) -> str:
    return safeio.for_display(json.dumps(_plain(value), default=str), 60)


def _prefixed(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
