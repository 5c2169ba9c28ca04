"""The user's own images as a dataset: `--dataset PATH` wherever a dataset is taken.

A value with a path separator (`./shoes`, `data/shoes`) is a folder, since
registered names never contain one; so is a bare name that is not registered but
names an existing folder. See scan.py for the layouts, load.py for the loading,
adapt.py for how a model gets one output per class folder.
"""
from __future__ import annotations

import os
from pathlib import Path

from .decode import DecodeProgress
from .split import DEFAULT_HOLDOUT

__all__ = ["DecodeProgress", "DEFAULT_HOLDOUT", "is_folder_dataset", "folder_key"]


def is_folder_dataset(value: str | os.PathLike | None) -> bool:
    if value is None:
        return False
    text = os.fspath(value)
    if "/" in text or os.sep in text or (os.altsep and os.altsep in text):
        return True
    import zoo

    return text not in zoo.get_registry().datasets and Path(text).is_dir()


def folder_key(value: str | os.PathLike) -> str:
    """The absolute path a run records for its dataset folder (so it can be found from anywhere)."""
    return str(Path(os.fspath(value)).expanduser().resolve())
