"""`train(config, on_event)`: the entry point of zoo.train.

It applies the run-folder rule (zoo.train.records), settles the run's settings
(from the config and recipe, or from the checkpoint on --resume), picks the
device, and runs a `Session` with Ctrl-C turned into a polite stop: the batch
in flight finishes, the state is saved, and train() returns "interrupted".
"""
from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator

import torch

import zoo

from .. import fileio
from ..errors import UsageError
from ..runlock import RunLock
from ..runs import run_dir
from . import checkpoint as ckpt
from . import records
from .config import TrainConfig, TrainResult, resolve_recipe
from .events import Callback, Notice
from .session import Session, StopFlag
from .settings import settle


def train(config: TrainConfig, on_event: Callback | None = None) -> TrainResult:
    """Train `config.model`, writing its run folder; see TrainConfig and zoo.train.records."""
    spec = zoo.get_spec(config.model)
    resolve_recipe(spec, config)  # a bad option is named before anything looks at the run folder
    folder = fileio.check_folder(run_dir(spec.name, config.out))  # a file in the way: one line, not a traceback
    emit = on_event or _ignore
    with RunLock(folder) as lock:  # one writer per folder, --resume and --force included
        if lock.stale is not None:
            emit(Notice(f"{folder} was left locked by a zoo run that is gone ({lock.stale}); taking it over"))
        wipe = records.check_folder(folder, spec.name, config.resume, config.force, config.out is not None)
        saved = ckpt.read_checkpoint(folder) if config.resume else None
        if saved is not None and saved[0].get("model") != spec.name:
            raise UsageError(f"the checkpoint in {folder} is of model '{saved[0].get('model')}', not '{spec.name}'")
        settings = settle(spec, config, saved[0] if saved else None)
        device = pick_device(config.device)
        with stop_on_sigint(config.handle_sigint) as stop:
            session = Session(spec, folder, settings, device, config, emit, stop, saved, config.threads)
            return session.run(wipe)


def _ignore(event) -> None:
    pass


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(f"unknown device '{name}': use auto, cpu or cuda") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA GPU is visible to PyTorch here; use --device cpu or auto")
    if device.type not in ("cpu", "cuda"):
        raise UsageError(f"unsupported device '{name}': use auto, cpu or cuda")
    return device


@contextlib.contextmanager
def stop_on_sigint(enabled: bool) -> Iterator[StopFlag]:
    """The first Ctrl-C asks the loop to stop after the current batch; a second one
    interrupts at once (KeyboardInterrupt), for when saving itself hangs."""
    flag = StopFlag()
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum, frame):
        if flag.requested:
            raise KeyboardInterrupt
        flag.requested = True

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)
