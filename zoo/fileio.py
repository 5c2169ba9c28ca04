"""Atomic writes: a temporary file in the same folder, flushed, then renamed into
place, so a crash or Ctrl-C never leaves a half-written file where a good one was."""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Iterator

from .errors import OutputError


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to `path`; on success it replaces `path` atomically."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise OutputError(_cannot_write(path, exc)) from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:  # make the bytes durable before the rename
            os.fsync(fh.fileno())
        os.chmod(tmp_path, _mode_for(path))
        os.replace(tmp_path, path)
    except OSError as exc:  # disk full, or a folder where the file should go: the old file is kept
        raise OutputError(_cannot_write(path, exc)) from None
    finally:
        tmp_path.unlink(missing_ok=True)


def check_folder(folder: str | Path) -> Path:
    """Fail before any slow work when `folder` cannot be a folder: it, or a folder above
    it, is a file (e.g. `--out notes.txt/run`)."""
    folder = Path(folder)
    blocker = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise OutputError(f"cannot use {folder} as a folder: {blocker} is a file; choose another --out")
    return folder


def _cannot_write(path: Path, exc: OSError) -> str:
    """One line saying why `path` cannot be written and what to do instead."""
    if path.is_dir():
        return f"cannot write {path}: it is a folder; remove it or choose another output path"
    blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        return f"cannot write {path}: {blocker} is a file, not a folder; choose another output path"
    return f"cannot write {path} ({exc.strerror or exc}); choose another output path or check the folder"


def _mode_for(path: Path) -> int:
    """mkstemp creates files 0600; give the result the mode the file had, or the mode a
    plain open() would give (0666 less the umask): exported models are meant to be shared."""
    try:
        return path.stat().st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, data: object) -> None:
    write_text(path, json.dumps(data, indent=2, default=str) + "\n")
