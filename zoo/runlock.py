"""One writer per run folder, and whether a run is really still running.

    with RunLock(folder) as lock:        # RunLockedError at once when a live process holds it
        ...                              # lock.stale: the holder a killed run left behind, if any
    run_status(folder)                   # "running" | "interrupted" | "finished" | "failed" | None
    holder(folder)                       # the live holder (pid, host, since), or None

The lock is an OS lock (flock, through the filelock library) on `.zoo-run.lock` in the
run folder, held for the life of the run. The kernel drops it when its process dies,
however it dies, so a lock left by a killed run is simply free: the next run takes it
over (and says whose it was). Who holds it is written beside it in `.zoo-run.owner`,
which only the holder writes, so a refused command can name the holder's pid.

Nothing here imports torch.
"""
from __future__ import annotations

import json
import os
import socket
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from . import fileio
from .errors import CheckpointError, OutputError, RunLockedError

LOCK_FILE = ".zoo-run.lock"
OWNER_FILE = ".zoo-run.owner"
_WAIT = 0.5  # seconds: a status query may hold the lock for an instant; never longer than this
_OWNER_LIMIT = 4096  # bytes; the owner file is untrusted like any file zoo did not just write


@dataclass(frozen=True)
class Holder:
    """The process holding (or, when stale, last holding) a run folder's lock."""

    pid: int | None
    host: str = ""
    since: str = ""

    def __str__(self) -> str:
        who = f"pid {self.pid}" if self.pid is not None else "another process"
        return who + (f" on {self.host}" if self.host and self.host != socket.gethostname() else "") + \
            (f" since {self.since}" if self.since else "")


class RunLock:
    """The lock of one run folder; a context manager. Creates the folder when needed and,
    on release, removes it again if it created it and nothing else was written there."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.stale: Holder | None = None  # set by acquire(): a dead holder's record it replaced
        self._lock = None
        self._created = False

    def acquire(self) -> "RunLock":
        from filelock import FileLock, Timeout

        self._created = not self.folder.exists()
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            # Open it ourselves first: filelock reports a file it cannot create as a lock it cannot take.
            os.close(os.open(self.folder / LOCK_FILE, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644))
            lock = FileLock(str(self.folder / LOCK_FILE), timeout=_WAIT)
            lock.acquire()
        except Timeout as exc:
            raise RunLockedError(self.folder, _read_owner(self.folder)) from exc
        except OSError as exc:
            self._remove_if_ours()
            raise OutputError(f"cannot write the run folder {self.folder} ({exc.strerror or exc}); "
                              "choose another --out") from exc
        self._lock = lock
        previous = _read_owner(self.folder)
        if previous is not None and previous.pid != os.getpid():
            self.stale = previous  # we hold the lock, so its recorded holder is gone
        try:
            fileio.write_json(self.folder / OWNER_FILE, asdict(Holder(os.getpid(), socket.gethostname(), _now())))
        except OutputError:
            pass  # the lock is held all the same; a refused command just cannot name our pid
        return self

    def release(self) -> None:
        if self._lock is None:
            return
        try:
            (self.folder / OWNER_FILE).unlink(missing_ok=True)
        except OSError:
            pass  # read-only by now: the next holder overwrites it
        self._lock.release()
        self._lock = None
        self._remove_if_ours()

    def _remove_if_ours(self) -> None:
        """A run that failed before writing anything leaves no folder behind."""
        if not self._created:
            return
        try:
            if {p.name for p in self.folder.iterdir()} <= {LOCK_FILE}:
                (self.folder / LOCK_FILE).unlink(missing_ok=True)
                self.folder.rmdir()
        except OSError:
            pass

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def holder(folder: str | Path) -> Holder | None:
    """The live process holding `folder`'s lock, or None when no live process does."""
    from filelock import FileLock, Timeout

    folder = Path(folder)
    path = folder / LOCK_FILE
    if not path.is_file() or path.is_symlink():
        return None
    probe = FileLock(str(path), timeout=0)
    try:
        probe.acquire()
    except Timeout:
        return _read_owner(folder) or Holder(None)
    except OSError:  # not ours to lock (read-only): fall back on the recorded pid being alive
        owner = _read_owner(folder)
        return owner if owner is not None and fileio.pid_alive(owner.pid) else None
    probe.release()
    return None


def run_status(folder: str | Path) -> str | None:
    """What the run in `folder` is doing: "running" while a live process holds its lock,
    "interrupted" when run.json says running but nobody holds it (the process was killed),
    else the status run.json records ("finished", "interrupted", "failed"); "unreadable"
    for a run.json that is not a JSON object; None when the folder holds no run.json."""
    folder = Path(folder)
    if holder(folder) is not None:
        return "running"
    from .runs import read_run_info

    try:
        info = read_run_info(folder)
    except CheckpointError:
        return "unreadable"
    if info is None:
        return None
    status = info.get("status")
    if not isinstance(status, str):
        return "unreadable"
    return "interrupted" if status == "running" else status


def _read_owner(folder: Path) -> Holder | None:
    path = folder / OWNER_FILE
    try:
        if path.is_symlink() or not path.is_file():
            return None
        with open(path, "rb") as fh:
            data = json.loads(fh.read(_OWNER_LIMIT))
        pid = data.get("pid")
        return Holder(pid if isinstance(pid, int) and not isinstance(pid, bool) else None,
                      str(data.get("host", ""))[:100], str(data.get("since", ""))[:40])
    except (OSError, ValueError, AttributeError):
        return None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
