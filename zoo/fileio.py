"""Atomic writes: a temporary file in the same folder, flushed, then renamed into
place, so a crash or Ctrl-C never leaves a half-written file where a good one was.

A temporary file's name carries its writer's pid (`.NAME.PID-XXXX.tmp`). One left by
a writer that was killed is removed the next time anything is written to that folder;
those of live writers are left alone."""
from __future__ import annotations

import contextlib
import json
import os
import re
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
        remove_stale_temps(path.parent)
        fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path.name), suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise OutputError(_cannot_write(path, exc)) from exc
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:  # make the bytes durable before the rename
            os.fsync(fh.fileno())
        os.chmod(tmp_path, _mode_for(path))
        os.replace(tmp_path, path)
    except OSError as exc:  # disk full, or a folder where the file should go: the old file is kept
        raise OutputError(_cannot_write(path, exc)) from exc
    finally:
        tmp_path.unlink(missing_ok=True)


def check_folder(folder: str | Path) -> Path:
    """Fail before any slow work when `folder` cannot be a folder zoo writes in: it, or a
    folder above it, is a file (e.g. `--out notes.txt/run`), or the nearest existing one
    takes no new files (/proc, /sys, a read-only filesystem). Creates nothing that stays."""
    folder = Path(folder)
    blocker = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise OutputError(f"cannot use {folder} as a folder: {blocker} is a file; choose another --out")
    existing = next(p for p in (folder, *folder.parents) if p.exists() or p == p.parent)
    try:  # only trying tells: root passes every permission check, /proc and read-only mounts still refuse
        fd, probe = tempfile.mkstemp(prefix=_temp_prefix("zoo-write-check"), suffix=".tmp", dir=existing)
    except OSError as exc:
        raise OutputError(f"cannot write in {existing} ({exc.strerror or exc}), so not in {folder} either; "
                          "choose another --out") from exc
    os.close(fd)
    os.unlink(probe)
    return folder


_TEMP_NAME = re.compile(r"^\..+\.(\d+)-[A-Za-z0-9_]+\.tmp$")


def _temp_prefix(name: str) -> str:
    return f".{name}.{os.getpid()}-"


def remove_stale_temps(folder: str | Path) -> list[str]:
    """Remove the temporary files in `folder` whose writer is dead (killed mid-write).
    Only regular files named like ours; links and everything else are left alone."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _TEMP_NAME.match(entry.name)
        if match is None or int(match.group(1)) == os.getpid() or pid_alive(int(match.group(1))):
            continue
        try:
            if entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
                removed.append(entry.name)
        except OSError:
            pass  # not ours to remove after all (permissions): leave it
    return removed


def pid_alive(pid: int | None) -> bool:
    """Whether a process with this pid exists on this machine."""
    if pid is None or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # alive but someone else's (or a pid we cannot judge: keep its files)
    return True


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


def append_text(path: str | Path, text: str) -> None:
    """Append to a file this run created (metrics.csv grows one row per epoch: O(1) per row,
    however long the run). A link in its place is refused, never followed."""
    flags = os.O_WRONLY | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise OutputError(_cannot_write(Path(path), exc)) from exc
    try:
        os.write(fd, text.encode("utf-8"))
    except OSError as exc:
        raise OutputError(_cannot_write(Path(path), exc)) from exc
    finally:
        os.close(fd)
