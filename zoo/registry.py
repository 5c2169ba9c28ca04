"""Plugin discovery and the model/dataset registry.

Plugins are modules named by entry points in the `zoo.models` group, found with
importlib.metadata and loaded into a pluggy PluginManager. Each plugin's hooks
are called on their own, with a `register` callback built here, so a plugin
that fails to import, raises while registering or registers something invalid
is recorded as broken and nothing else is affected. A name registered by two
plugins is withdrawn and becomes an error that names both.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import sys
import threading
from dataclasses import dataclass, field
from importlib import metadata
from typing import Callable, Iterator


import pluggy

from . import hookspecs
from .errors import DuplicateNameError, SpecError, UnknownNameError, describe
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
    # names in ZOO_PLUGINS that match no installed entry point or distribution
    unknown_selected: list[str] = field(default_factory=list)
    installed: list[str] = field(default_factory=list)  # every entry point name, selected or not

    @property
    def warnings(self) -> list[str]:
        """One line per problem, for the CLI to show on stderr."""
        lines = [f"plugin '{p.name}' from {p.dist} {p.version} is broken: {p.error}" for p in self.plugins if p.broken]
        lines += [self._conflict_message(kind, name) for kind, name in self.conflicts]
        if self.unknown_selected:
            lines.append(f"{PLUGINS_ENV} names {', '.join(map(repr, self.unknown_selected))}, but no installed plugin "
                         f"is called that (installed: {', '.join(self.installed) or 'none'})")
        return lines

    def _conflict_message(self, kind: str, name: str) -> str:
        owners = self.conflicts[(kind, name)]
        dists = " and ".join(owners)
        others = [d for d in owners if d != "zoo"]
        if "zoo" in owners and others:  # zoo itself cannot be uninstalled: the plugin's name has to change
            return (f"{kind} '{name}' is registered by both {dists}: it is one of zoo's own {kind}s, so rename "
                    f"the {kind} in {', '.join(others)} (the name is disabled until then)")
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


def _selected(entry_points: list[metadata.EntryPoint]) -> tuple[list[metadata.EntryPoint], list[str]]:
    """ZOO_PLUGINS=a,b keeps only entry points (or distributions) named a or b; also
    returns the names that match nothing (a typo would otherwise leave zoo silently empty)."""
    wanted = os.environ.get(PLUGINS_ENV)
    if wanted is None:
        return entry_points, []
    names = list(dict.fromkeys(w.strip() for w in wanted.split(",") if w.strip()))
    known = {ep.name for ep in entry_points} | {ep.dist.name for ep in entry_points if ep.dist}
    kept = [ep for ep in entry_points if ep.name in names or (ep.dist and ep.dist.name in names)]
    return kept, [n for n in names if n not in known] or ([] if names else [wanted])


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
    selected, registry.unknown_selected = _selected(entry_points)
    registry.installed = sorted({ep.name for ep in entry_points})
    with _sigint_watch() as ctrl_c:
        for ep in sorted(selected, key=lambda e: (e.dist.name if e.dist else "", e.name)):
            _load_one(registry, pm, ep, ctrl_c)
    return registry


def _load_one(registry: Registry, pm: pluggy.PluginManager, ep: metadata.EntryPoint, ctrl_c) -> None:
    info = PluginInfo(ep.name, ep.value, ep.dist.name if ep.dist else "?", ep.dist.version if ep.dist else "?")
    registry.plugins.append(info)
    collector = _Collector(info)
    try:
        with contextlib.redirect_stdout(sys.stderr):  # what a plugin prints must not break --json output
            module = ep.load()
            pm.register(module, name=f"{info.dist}:{ep.name}")
            _call_hooks(pm, module, collector)
        if not collector.models and not collector.datasets:
            raise SpecError("registers no models or datasets (is a hook decorated with @zoo.hookimpl?)")
    except BaseException as exc:  # a plugin's fault, even sys.exit() at import, never breaks the others
        if isinstance(exc, KeyboardInterrupt) and ctrl_c():
            raise  # the user pressed Ctrl-C
        info.error = describe(exc)
        return
    info.models = [s.name for s in collector.models]
    info.datasets = [s.name for s in collector.datasets]
    _commit(registry, "model", registry.models, collector.models, info.dist)
    _commit(registry, "dataset", registry.datasets, collector.datasets, info.dist)


@contextlib.contextmanager
def _sigint_watch() -> Iterator[Callable[[], bool]]:
    """Tells a real Ctrl-C (SIGINT arrived) from a KeyboardInterrupt a plugin raised itself."""
    pressed: list[bool] = []
    if threading.current_thread() is not threading.main_thread():
        yield lambda: True  # cannot watch signals here: assume it was real
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum, frame):
        if previous is not signal.SIG_IGN:
            pressed.append(True)
            raise KeyboardInterrupt

    try:
        signal.signal(signal.SIGINT, handler)
    except (ValueError, OSError):
        yield lambda: True
        return
    try:
        yield lambda: bool(pressed)
    finally:
        signal.signal(signal.SIGINT, previous)


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




def plugin_at_fault(exc: BaseException) -> str | None:
    """'plugin NAME (DIST VERSION) at FILE:LINE in FUNCTION' when a third-party plugin's
    code raised `exc` (or one of its causes): its frame is the innermost of plugin or zoo
    code, libraries such as torch below it aside (a conv the plugin fed the wrong shape is
    the plugin's fault). None when zoo's own code lies deeper (a zoo helper the plugin
    called) or no plugin code ran: then it may be zoo's fault. A plugin's code is its entry
    point's module and, for a package of its own, everything in it."""
    if _cached is None:
        return None
    owners = [(_code_of(p.value), p) for p in _cached.plugins if not p.broken and p.dist != "zoo"]
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        for frame, line in reversed(_frames(exc)):
            module = str(frame.f_globals.get("__name__", ""))
            owner = next((info for prefix, info in owners if module == prefix or module.startswith(prefix + ".")),
                         None)
            if owner is not None:
                return (f"plugin '{owner.name}' ({owner.dist} {owner.version}) at {frame.f_code.co_filename}:"
                        f"{line} in {frame.f_code.co_name}")
            if module == "zoo" or module.startswith("zoo."):
                break  # zoo raised it; a wrapped error's cause may still be the plugin's
        exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    return None


def _frames(exc: BaseException) -> list:
    frames, tb = [], exc.__traceback__
    while tb is not None:
        frames.append((tb.tb_frame, tb.tb_lineno))
        tb = tb.tb_next
    return frames


def _code_of(entry_point_value: str) -> str:
    """The module prefix that is a plugin's own code: its package for a third-party plugin,
    its module for one of zoo's own (zoo.plugins.lenet, not all of zoo)."""
    module = entry_point_value.split(":")[0].strip()
    top = module.split(".")[0]
    return module if top == "zoo" else top
