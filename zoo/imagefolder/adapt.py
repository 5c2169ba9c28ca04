"""A model spec fitted to a folder's classes and pixel statistics.

Builders take no arguments (`ModelSpec.builder()`), so the number of outputs cannot
be passed to them. Instead the built model's last declared layer
(`layer_shapes[-1]`, e.g. "fc3") is swapped for an `nn.Linear` with one output per
class folder; the layers before it are untouched, so the declared shapes still
hold. A model whose last declared layer is not an `nn.Linear` cannot be re-headed
and says so. Normalisation uses the training images' own mean and std.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

from ..errors import SpecError
from ..spec import ModelSpec


def adapt_spec(spec: ModelSpec, class_names: tuple[str, ...] | list[str], mean, std) -> ModelSpec:
    names = tuple(class_names)
    head = spec.layer_shapes[-1][0]
    shapes = spec.layer_shapes[:-1] + ((head, (len(names),)),)

    def builder():
        return with_outputs(spec.builder(), head, len(names), spec.name)

    return dataclasses.replace(
        spec, builder=builder, class_names=names, layer_shapes=shapes,
        train_transforms=dataclasses.replace(spec.train_transforms, mean=tuple(mean), std=tuple(std)),
        eval_transforms=dataclasses.replace(spec.eval_transforms, mean=tuple(mean), std=tuple(std)))


def with_outputs(model, head: str, outputs: int, name: str = "the model"):
    """`model` with its layer `head` replaced by a fresh nn.Linear of `outputs` outputs."""
    from torch import nn

    try:
        layer = model.get_submodule(head)
    except AttributeError:
        layer = None
    if not isinstance(layer, nn.Linear):
        raise SpecError(f"model '{name}' cannot be trained on a folder's classes: its last declared layer "
                        f"'{head}' is not an nn.Linear that zoo could give one output per class")
    if layer.out_features == outputs:
        return model
    parent, _, child = head.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child,
            nn.Linear(layer.in_features, outputs, bias=layer.bias is not None))
    return model


def check_adaptable(spec: ModelSpec) -> None:
    """Fail before any decoding when the model cannot take another number of classes."""
    import torch

    with torch.random.fork_rng():  # building must not shift the run's seeded initialisation
        with_outputs(spec.builder(), spec.layer_shapes[-1][0], 2, spec.name)


def fitted_from(spec: ModelSpec, record: Any) -> ModelSpec | None:
    """The spec fitted as a run's record says ({"class_names": [...], "mean": [...], "std": [...]}),
    or None when the record is missing or malformed (then it is not ours to trust)."""
    if not isinstance(record, dict):
        return None
    names, mean, std = record.get("class_names"), record.get("mean"), record.get("std")
    channels = spec.input_shape[0]
    if not (isinstance(names, list) and len(names) >= 2 and all(isinstance(n, str) and n for n in names)):
        return None
    numbers = [mean, std]
    if not all(isinstance(v, list) and len(v) == channels and
               all(isinstance(x, (int, float)) and math.isfinite(x) for x in v) for v in numbers):
        return None
    if any(s <= 0 for s in std):
        return None
    return adapt_spec(spec, names, mean, std)
