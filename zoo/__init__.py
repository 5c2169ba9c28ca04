"""zoo: a plugin-based model zoo for PyTorch with verified ONNX export.

    import zoo
    zoo.list_models()            # ['cifar-cnn', 'cnn', 'lenet5', ...]
    spec = zoo.get_spec("lenet5")
    model = zoo.create_model("lenet5")

Importing zoo does not import torch; building a model does.
"""
from __future__ import annotations

from .errors import ZooError
from .hookspecs import hookimpl
from .registry import get_registry, reset_registry
from .spec import DatasetSpec, ModelSpec, Recipe, Transforms, Tutorial

__version__ = "0.1.0"
__all__ = [
    "DatasetSpec", "ModelSpec", "Recipe", "Transforms", "Tutorial", "ZooError", "hookimpl",
    "list_models", "get_spec", "create_model", "list_datasets", "get_dataset", "list_plugins",
]


def list_models() -> list[str]:
    return sorted(get_registry().models)


def get_spec(name: str) -> ModelSpec:
    return get_registry().get_spec(name)


def create_model(name: str):
    """A freshly initialised nn.Module for `name` (weights as the builder leaves them)."""
    return get_spec(name).build()


def list_datasets() -> list[str]:
    return sorted(get_registry().datasets)


def get_dataset(name: str) -> DatasetSpec:
    return get_registry().get_dataset(name)


def list_plugins():
    return list(get_registry().plugins)
