"""Plugin discovery and the model/dataset registry.

Plugins are modules named by entry points in the `zoo.models` group, found with
importlib.metadata and loaded into a pluggy PluginManager. Each plugin's hooks
are called on their own, with a `register` callback built here, so a plugin
that fails to import, raises while registering or registers something invalid
is recorded as broken and nothing else is affected. A name registered by two
plugins is withdrawn and becomes an error that names both.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from importlib import metadata


import pluggy

from . import hookspecs
from .errors import DuplicateNameError, SpecError, UnknownNameError
from .spec import DatasetSpec, ModelSpec

PLUGINS_ENV = "ZOO_PLUGINS"


@dataclass
class PluginInfo:
    """One entry point in the `zoo.models` group and what became of it."""

    name: str
    value: str
    dist: str
    version: str
    models: list[str] = field(default_factory=list)
    datasets: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def broken(self) -> bool:
        return self.error is not None

    def as_dict(self) -> dict:
        return dataclasses.asdict(self) | {"broken": self.broken}


@dataclass
class Registry:
    models: dict[str, ModelSpec] = field(default_factory=dict)
    datasets: dict[str, DatasetSpec] = field(default_factory=dict)
    plugins: list[PluginInfo] = field(default_factory=list)
    # name -> the distributions that all registered it; such names are withdrawn.
    conflicts: dict[tuple[str, str], list[str]] = field(default_factory=dict)

    @property
    def warnings(self) -> list[str]:
        """One line per problem, for the CLI to show on stderr."""
        lines = [f"plugin '{p.name}' from {p.dist} {p.version} is broken: {p.error}" for p in self.plugins if p.broken]
        lines += [self._conflict_message(kind, name) for kind, name in self.conflicts]
        return lines

    def _conflict_message(self, kind: str, name: str) -> str:
        dists = " and ".join(self.conflicts[(kind, name)])
        return f"{kind} '{name}' is registered by both {dists}; uninstall one of them (the name is disabled until then)"

    def get_spec(self, name: str) -> ModelSpec:
        return self._get("model", name, self.models)

    def get_dataset(self, name: str) -> DatasetSpec:
        return self._get("dataset", name, self.datasets)

    def _get(self, kind: str, name: str, table: dict):
        if (kind, name) in self.conflicts:
            raise DuplicateNameError(self._conflict_message(kind, name))
        if name not in table:
            raise UnknownNameError(kind, name, list(table))
        return table[name]


def _selected(entry_points: list[metadata.EntryPoint]) -> list[metadata.EntryPoint]:
    """ZOO_PLUGINS=a,b keeps only entry points (or distributions) named a or b."""
    wanted = os.environ.get(PLUGINS_ENV)
    if wanted is None:
        return entry_points
    names = {w.strip() for w in wanted.split(",") if w.strip()}
    return [ep for ep in entry_points if ep.name in names or (ep.dist and ep.dist.name in names)]


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


class _Collector:
    """The `register` callbacks one plugin receives. Collects, then commits only if
    the whole plugin registered cleanly, so a broken plugin leaves no half state."""

    def __init__(self, info: PluginInfo):
        self.info = info
        self.models: list[ModelSpec] = []
        self.datasets: list[DatasetSpec] = []

    def _stamp(self, spec, kind: type, what: str):
        if not isinstance(spec, kind):
            raise SpecError(f"register_{what}s: expected a zoo.{kind.__name__}, got {type(spec).__name__}")
        return dataclasses.replace(spec, plugin=self.info.dist, plugin_version=self.info.version)

    def register_model(self, spec: ModelSpec) -> None:
        self.models.append(self._stamp(spec, ModelSpec, "model"))

    def register_dataset(self, spec: DatasetSpec) -> None:
        self.datasets.append(self._stamp(spec, DatasetSpec, "dataset"))


def _call_hooks(pm: pluggy.PluginManager, plugin: object, collector: _Collector) -> None:
    for hook_name, register in (("register_models", collector.register_model),
                                ("register_datasets", collector.register_dataset)):
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            if impl.plugin is plugin:
                impl.function(register=register)


def _commit(registry: Registry, kind: str, table: dict, specs: list, dist: str) -> None:
    for spec in specs:
        key = (kind, spec.name)
        if key in registry.conflicts:
            registry.conflicts[key].append(dist)
        elif spec.name in table:
            registry.conflicts[key] = [table.pop(spec.name).plugin, dist]
        else:
            table[spec.name] = spec


def load_registry(entry_points: list[metadata.EntryPoint] | None = None) -> Registry:
    """Discover and load every plugin. Never raises for a plugin's fault."""
    if entry_points is None:
        entry_points = list(metadata.entry_points(group=hookspecs.ENTRY_POINT_GROUP))
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    registry = Registry()
    for ep in sorted(_selected(entry_points), key=lambda e: (e.dist.name if e.dist else "", e.name)):
        info = PluginInfo(ep.name, ep.value, ep.dist.name if ep.dist else "?", ep.dist.version if ep.dist else "?")
        registry.plugins.append(info)
        collector = _Collector(info)
        try:
            module = ep.load()
            pm.register(module, name=f"{info.dist}:{ep.name}")
            _call_hooks(pm, module, collector)
            if not collector.models and not collector.datasets:
                raise SpecError("registers no models or datasets (is a hook decorated with @zoo.hookimpl?)")
        except Exception as exc:  # a plugin's fault must never break the others
            info.error = _describe(exc)
            continue
        info.models = [s.name for s in collector.models]
        info.datasets = [s.name for s in collector.datasets]
        _commit(registry, "model", registry.models, collector.models, info.dist)
        _commit(registry, "dataset", registry.datasets, collector.datasets, info.dist)
    return registry


_cached: Registry | None = None


def get_registry() -> Registry:
    global _cached
    if _cached is None:
        _cached = load_registry()
    return _cached


def reset_registry() -> None:
    """Forget the loaded plugins (tests, or after installing a plugin in-process)."""
    global _cached
    _cached = None


