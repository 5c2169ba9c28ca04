"""The pluggy hooks a zoo plugin implements.

A plugin is a module named by an entry point in the `zoo.models` group. It
implements one or both hooks with `@zoo.hookimpl`; the core builds the
`register` callback it receives, so validation and duplicate checks live here,
not in every plugin.
"""
from __future__ import annotations

import pluggy

PROJECT = "zoo"
ENTRY_POINT_GROUP = "zoo.models"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_models(register):
    """Call `register(ModelSpec(...))` once per architecture."""


@hookspec
def register_datasets(register):
    """Call `register(DatasetSpec(...))` once per dataset."""
