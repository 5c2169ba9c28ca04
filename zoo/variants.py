"""A model as one run trained it: the spec with the run's input normalisation
(`--normalize`) and builder arguments (`--model-arg key=value`) applied.

Training records both in run.json and in the weights' metadata; every command that
rebuilds the model from a run (evaluate, export, features, mistakes, predict, verify)
calls `spec_for_weights` first, so the network and its preprocessing match the run.
Nothing here imports torch at module level.
"""
from __future__ import annotations

import dataclasses
import difflib
import functools
import inspect
import json
from pathlib import Path
from typing import Any, Mapping

from .errors import UsageError
from .spec import ModelSpec, Transforms

NORMALIZE_MODES = ("default", "unit", "none")
NORMALIZE_HELP = {
    "default": "scale to [0, 1], then the model's declared mean/std",
    "unit": "scale to [0, 1] only (ToTensor() without Normalize)",
    "none": "raw 0-255 pixel values",
}
# Activation names a --model-arg may give for a builder argument whose default is a layer class.
ACTIVATIONS = ("relu", "sigmoid", "tanh", "gelu", "silu", "elu", "leakyrelu", "relu6", "softplus", "mish")
POOLS = {"max": "MaxPool2d", "avg": "AvgPool2d", "maxpool2d": "MaxPool2d", "avgpool2d": "AvgPool2d"}
META_NORMALIZE, META_MODEL_ARGS = "normalize", "model_args"
FIXED = {"num_classes": "the dataset's number of classes", "in_channels": "the dataset's image channels"}


def normalized(t: Transforms, mode: str) -> Transforms:
    """The same pipeline with another input scale: 'unit' is mean 0, std 1 after scaling
    to [0, 1]; 'none' is mean 0, std 1/255, which gives back the raw 0-255 values."""
    if mode == "default":
        return t
    if mode not in NORMALIZE_MODES:
        raise UsageError(f"--normalize {mode!r}: use one of {', '.join(NORMALIZE_MODES)}")
    channels = len(t.mean)
    std = 1.0 if mode == "unit" else 1.0 / 255.0
    return dataclasses.replace(t, mean=(0.0,) * channels, std=(std,) * channels)


def parse_model_args(spec: ModelSpec, items: list[str] | Mapping[str, Any] | None) -> dict[str, Any]:
    """`key=value` strings (or a recorded dict) checked against the builder's signature and
    converted to the type of each parameter's default; the result is JSON-able."""
    if not items:
        return {}
    pairs = items.items() if isinstance(items, Mapping) else [_split(item) for item in items]
    params = _parameters(spec)
    args: dict[str, Any] = {}
    for key, value in pairs:
        if key in FIXED:
            raise UsageError(f"--model-arg {key}: {spec.name} sets it from {FIXED[key]}; use --dataset instead")
        if key not in params:
            close = difflib.get_close_matches(key, list(params), n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            known = ", ".join(f"{n}={_show(p.default)}" for n, p in params.items()) or "none"
            raise UsageError(f"--model-arg {key}: {spec.name}'s builder takes no argument '{key}'; {hint}"
                             f"it takes: {known}")
        args[key] = _convert(spec.name, key, value, params[key].default)
    return args


def _split(item: str) -> tuple[str, str]:
    key, sep, value = str(item).partition("=")
    if not sep or not key.strip() or not value.strip():
        raise UsageError(f"--model-arg {item!r}: write key=value, e.g. --model-arg hidden=100")
    return key.strip(), value.strip()


def _parameters(spec: ModelSpec) -> dict[str, inspect.Parameter]:
    try:
        signature = inspect.signature(spec.builder)
    except (TypeError, ValueError):
        return {}
    return {n: p for n, p in signature.parameters.items()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.default is not p.empty and n not in FIXED}


def builder_arguments(spec: ModelSpec) -> dict[str, str]:
    """The builder arguments --model-arg can set, with their defaults, for `zoo info`."""
    return {n: _show(p.default) for n, p in _parameters(spec).items()}


def _show(default: Any) -> str:
    return default.__name__.lower() if isinstance(default, type) else repr(default)


def _convert(model: str, key: str, value: Any, default: Any) -> Any:
    """Recorded values come back as they were stored (int, float, str)."""
    text = str(value).strip()
    wrong = f"--model-arg {key}={text}: {model} expects"
    if isinstance(default, bool):
        if text.lower() in ("true", "1", "yes"):
            return True
        if text.lower() in ("false", "0", "no"):
            return False
        raise UsageError(f"{wrong} true or false")
    if isinstance(default, int):
        try:
            number = int(text)
        except ValueError:
            raise UsageError(f"{wrong} a whole number (default {default})") from None
        if number < 1:
            raise UsageError(f"{wrong} a positive number, got {number}")
        return number
    if isinstance(default, float):
        try:
            return float(text)
        except ValueError:
            raise UsageError(f"{wrong} a number (default {default})") from None
    if isinstance(default, type):  # a layer class such as nn.ReLU: named by a word
        names = POOLS if "pool" in default.__name__.lower() else {a: a for a in ACTIVATIONS}
        if text.lower() not in names:
            raise UsageError(f"{wrong} one of {', '.join(sorted(set(names)))} (default {_show(default)})")
        return text.lower()
    if isinstance(default, str):
        return text
    raise UsageError(f"--model-arg {key}: {model}'s builder argument cannot be set from the command line")


def builder_kwargs(spec: ModelSpec, args: Mapping[str, Any]) -> dict[str, Any]:
    """Recorded (JSON) arguments -> what the builder takes (layer names -> classes)."""
    from torch import nn

    params = _parameters(spec)
    kwargs = {}
    for key, value in args.items():
        default = params[key].default if key in params else None
        if isinstance(default, type) and isinstance(value, str):
            name = POOLS.get(value) or next(n for n in dir(nn) if n.lower() == value)
            kwargs[key] = getattr(nn, name)
        else:
            kwargs[key] = value
    return kwargs


def with_options(spec: ModelSpec, normalize: str = "default", model_args: Mapping[str, Any] | None = None) -> ModelSpec:
    """The spec as a run with these options trains and rebuilds it. The declared layer
    shapes are the default model's: with builder arguments they may no longer hold,
    so only verify-shapes' formula and forward pass judge such a model."""
    changes: dict[str, Any] = {}
    if normalize != "default":
        changes |= {"train_transforms": normalized(spec.train_transforms, normalize),
                    "eval_transforms": normalized(spec.eval_transforms, normalize)}
    args = parse_model_args(spec, model_args)
    if args:
        changes["builder"] = functools.partial(spec.builder, **builder_kwargs(spec, args))
    return dataclasses.replace(spec, **changes) if changes else spec


def recorded_options(metadata: Mapping[str, str] | None) -> tuple[str, dict[str, Any]]:
    """(normalize, model_args) from a weights file's metadata; defaults when absent or unreadable."""
    metadata = metadata or {}
    normalize = metadata.get(META_NORMALIZE, "default")
    try:
        args = json.loads(metadata.get(META_MODEL_ARGS) or "{}")
    except ValueError:
        args = {}
    return (normalize if normalize in NORMALIZE_MODES else "default",
            args if isinstance(args, dict) else {})


def weights_metadata(path: str | Path) -> dict[str, str]:
    """The header metadata of a safetensors weights file; empty when it is absent or
    cannot be read (load_trained then says so in one line)."""
    path = Path(path)
    if not path.is_file():
        return {}
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except Exception:  # safetensors raises its own errors, OSError, ValueError
        return {}


def spec_for_weights(spec: ModelSpec, weights: str | Path) -> ModelSpec:
    """The spec as the run that wrote `weights` trained it (see with_options); the spec
    itself when the file is absent or unreadable (the caller reports that) or records no options."""
    metadata = weights_metadata(weights)
    if not metadata:
        return spec
    normalize, args = recorded_options(metadata)
    return with_options(spec, normalize, args)


def shape_report(spec: ModelSpec, model_args=None):
    """verify-shapes' report (zoo.shapes) of the model as these builder arguments build it.
    The plugin's declared shapes describe the default model, so with arguments they are
    not compared; the conv/pool formula and the forward pass still are."""
    from .shapes import check_model, check_spec

    if not model_args:
        return check_spec(spec)
    varied = with_options(spec, "default", model_args)
    return check_model(varied.build(), spec.name, spec.input_shape, {})
