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
from dataclasses import asdict
from typing import Any, Iterator

import torch

import zoo

from .. import fileio
from ..errors import UsageError
from ..runs import run_dir
from . import checkpoint as ckpt
from . import records
from .config import TrainConfig, TrainResult, resolve_recipe
from .events import Callback
from .session import Session, StopFlag


def train(config: TrainConfig, on_event: Callback | None = None) -> TrainResult:
    """Train `config.model`, writing its run folder; see TrainConfig and zoo.train.records."""
    spec = zoo.get_spec(config.model)
    resolve_recipe(spec, config)  # a bad option is named before anything looks at the run folder
    folder = fileio.check_folder(run_dir(spec.name, config.out))  # a file in the way: one line, not a traceback
    wipe = records.check_folder(folder, spec.name, config.resume, config.force, config.out is not None)
    saved = ckpt.read_checkpoint(folder) if config.resume else None
    if saved is not None and saved[0].get("model") != spec.name:
        raise UsageError(f"the checkpoint in {folder} is of model '{saved[0].get('model')}', not '{spec.name}'")
    settings = _settings(spec, config, saved[0] if saved else None)
    device = pick_device(config.device)
    with restore_threads(), stop_on_sigint(config.handle_sigint) as stop:
        return Session(spec, folder, settings, device, config, on_event or _ignore, stop, saved).run(wipe)


def _ignore(event) -> None:
    pass


def _settings(spec, config: TrainConfig, meta: dict | None) -> dict[str, Any]:
    """What defines the run: a new one from the config and recipe, a resumed one from
    its checkpoint, where an explicit option that differs is refused."""
    fresh = {
        "recipe": asdict(resolve_recipe(spec, config)),
        "seed": 0 if config.seed is None else int(config.seed),
        "dataset": config.dataset or spec.dataset,
        "limit": config.limit,
        "augment": config.augment is not False,
    }
    if meta is None:
        return fresh
    saved = meta["settings"]
    asked = {f"--{k.replace('_', '-')}": (v, saved["recipe"][k]) for k, v in config.overrides().items()}
    asked |= {f"--{k}": (getattr(config, k), saved[k]) for k in ("seed", "dataset", "limit", "augment")
              if getattr(config, k) is not None}
    clash = [f"{flag} {new} (saved: {old})" for flag, (new, old) in asked.items() if new != old]
    if clash:
        raise UsageError(f"--resume continues the run with its saved settings, but {', '.join(clash)} "
                         "would change it: drop those options, or start over with --force")
    return saved


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
def restore_threads() -> Iterator[None]:
    """The session sets torch's thread count (zoo.train.threads); put the caller's back after."""
    before = torch.get_num_threads()
    try:
        yield
    finally:
        torch.set_num_threads(before)


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
