"""`train(config, on_event)`: the entry point of zoo.train.

It applies the run-folder rule (zoo.train.records), settles the run's settings
(from the config and recipe, or from the checkpoint on --resume), picks the
device, and runs a `Session` with Ctrl-C turned into a polite stop: the batch
in flight finishes, the state is saved, and train() returns "interrupted".
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import threading
from typing import Any, Iterator

import torch

import zoo

from .. import fileio
from ..errors import SpecError, TrainingError, UsageError, ZooError
from ..runlock import RunLock
from ..runs import run_dir
from ..variants import with_options
from . import checkpoint as ckpt
from . import distributed as dist
from . import records
from .config import HPARAMS, CheckpointEvery, TrainConfig, TrainResult, resolve_recipe
from .events import Callback, Notice
from .launch import LAUNCH_ENV
from .session import Session, StopFlag
from .settings import RunSettings, settle
from ..cores import usable_cores


def train(config: TrainConfig, on_event: Callback | None = None) -> TrainResult:
    """Train `config.model`, writing its run folder; see TrainConfig and zoo.train.records.

    Started by torchrun (WORLD_SIZE etc. in the environment), this process joins the
    run's process group and trains its share (zoo.train.distributed)."""
    world = dist.from_env()
    if world.many:
        return _train_rank(config, on_event, world)
    spec, config = _checked(config)
    folder = fileio.check_folder(run_dir(spec.name, config.out))  # a file in the way: one line, not a traceback
    emit = on_event or _ignore
    with RunLock(folder) as lock:  # one writer per folder, --resume and --force included
        _say_stale(lock, folder, emit)
        wipe = records.check_folder(folder, spec.name, config.resume, config.force, config.out is not None)
        saved = _read_saved(folder, spec, config)
        settings, spec = _settled(spec, config, saved)
        device = pick_device(config.device)
        with stop_on_signals(config.handle_sigint) as stop:
            session = Session(spec, folder, settings, device, config, emit, stop, saved, config.threads)
            return session.run(wipe)


def _say_stale(lock: RunLock, folder, emit: Callback) -> None:
    if lock.stale is not None:
        emit(Notice(f"{folder} was left locked by a zoo run that is gone ({lock.stale}); taking it over"))


def _read_saved(folder, spec, config: TrainConfig):
    saved = ckpt.read_checkpoint(folder) if config.resume else None
    if saved is not None and saved[0].get("model") != spec.name:
        raise UsageError(f"the checkpoint in {folder} is of model '{saved[0].get('model')}', not '{spec.name}'")
    return saved


def _train_rank(config: TrainConfig, on_event: Callback | None, world: dist.World) -> TrainResult:
    """One process of a distributed run. Everything that can fail before training is
    tried on every process first; then they agree, and only the lowest failing rank
    reports (an error common to all is said once). Only rank 0 reads the folder rule,
    writes and talks to the user."""
    try:
        device, backend = dist.choose_device(world, config.device)
        bad_device = None
    except UsageError as exc:  # said after joining, so that it is said once
        (device, backend), bad_device = (torch.device("cpu"), "gloo"), exc
    world = dist.join(world, device, backend)
    emit = (on_event or _ignore) if world.main else _ignore
    stop = None
    try:
        with contextlib.ExitStack() as held, stop_on_signals(config.handle_sigint) as stop:
            failure, session, wipe = None, None, False
            try:
                if bad_device is not None:
                    raise bad_device
                session, wipe = _prepare_rank(config, world, device, emit, stop, held)
            except ZooError as exc:
                failure = exc
            reporter = dist.lowest(world, failure is not None, device)
            if reporter is not None:
                if reporter != world.rank:
                    raise dist.RankStopped("another process reported the error") from failure
                raise dist.RankFailed(world, failure) from failure
            return _run_rank(session, world, wipe)
    except dist.RankStopped as exc:
        dist.leave()
        # Another process is reporting: let it exit first, so that its line and exit code reach
        # the user (torchrun's SIGTERM, once it has, ends the wait). Not when the run lost a
        # process, nor when that SIGTERM has already come (taken as a stop request).
        if not isinstance(exc, dist.RankLost) and not (stop is not None and stop.requested):
            dist.linger()
        raise
    finally:
        dist.leave()


def _prepare_rank(config, world, device, emit, stop, held: contextlib.ExitStack) -> tuple[Session, bool]:
    if config.sync_bn and device.type != "cuda":
        raise UsageError("--sync-bn needs a CUDA GPU per process (SyncBatchNorm runs on GPUs only); on the CPU "
                         "rank 0's BatchNorm statistics are given to all processes before each evaluation and save")
    spec, config = _checked(config)
    folder = run_dir(spec.name, config.out)
    wipe = False
    if world.main:  # the folder rule and lock are rank 0's: the other nodes may not even see the folder
        fileio.check_folder(folder)
        _say_stale(held.enter_context(RunLock(folder)), folder, emit)
        wipe = records.check_folder(folder, spec.name, config.resume, config.force, config.out is not None)
    saved = _read_saved(folder, spec, config)  # on --resume every process reads the checkpoint
    settings, spec = _settled(spec, config, saved)
    threads = config.threads
    if device.type == "cpu" and threads is None:  # the cores split evenly between this machine's processes
        same = saved is not None and saved[0].get("world_size", 1) == world.size
        threads = (saved[0].get("threads") if same else None) or max(1, usable_cores() // world.local_size)
    session = Session(spec, folder, settings, device, config, emit, stop, saved, threads, world)
    return session, wipe


def _checked(config: TrainConfig):
    """(spec, config) with every option checked before anything looks at the run folder or
    the data: the recipe, the intervals, the model's shapes, a folder dataset's options.
    One process and every process of a distributed run take the same path."""
    spec = zoo.get_spec(config.model)
    config = with_recipe(spec, config)
    resolve_recipe(spec, config)
    CheckpointEvery.parse(config.checkpoint_every)
    if config.log_every is not None and config.log_every < 1:
        raise UsageError(f"--log-every must be >= 1 (batches), got {config.log_every}")
    check_shapes(with_options(spec, config.normalize or "default", config.model_args))  # before any data
    return spec, _with_folder_dataset(spec, config)


def _settled(spec, config: TrainConfig, saved) -> tuple[RunSettings, Any]:
    """The run's settings (new, or the checkpoint's on --resume) and the network they train."""
    settings = settle(spec, config, saved[0] if saved else None)
    spec = with_options(spec, settings.normalize, settings.model_args)
    if saved is not None:
        check_shapes(spec)  # with the arguments the run was saved with
    return settings, spec


def _run_rank(session: Session, world: dist.World, wipe: bool) -> TrainResult:
    try:
        return session.run(wipe)
    except TrainingError as exc:  # found in all-reduced values: the same on every process, said once
        if world.main:
            raise
        raise dist.RankStopped("rank 0 reports it") from exc
    except Exception as exc:
        if not dist.is_collective_failure(exc):
            raise dist.RankFailed(world, exc) from exc
        if not world.main or os.environ.get(LAUNCH_ENV):  # zoo's launcher names the lost process
            raise dist.RankLost("rank 0 or the launcher reports it") from exc
        kept = f"the last checkpoint ({session.last_checkpoint}) is kept" if session.last_checkpoint else \
            "no checkpoint was written yet"
        raise TrainingError(f"lost contact with another process of the run (it stopped, was killed or ran out "
                            f"of memory; any message of its own is above); {kept} in {session.folder}: "
                            "continue it with --resume") from exc


def with_recipe(spec, config: TrainConfig) -> TrainConfig:
    """--recipe tutorial: the seed tutorial's own set-up (spec.tutorial) for every option
    not given explicitly; no label smoothing, and no augmentation unless that set-up
    augmented (or it is asked for)."""
    if config.recipe == "default":
        return config
    if config.recipe != "tutorial":
        raise UsageError(f"--recipe {config.recipe!r}: use default (the model's tuned recipe) or tutorial "
                         "(the seed tutorial's own set-up)")
    tutorial = spec.tutorial
    if tutorial is None:
        raise UsageError(f"{spec.name} declares no tutorial set-up, so there is no tutorial recipe to run; "
                         f"`zoo train {spec.name}` uses its tuned recipe, and `zoo info` shows which models have one")
    given = {k: getattr(tutorial.recipe, k) for k in HPARAMS if getattr(config, k) is None}
    extras = {"dataset": tutorial.dataset, "normalize": tutorial.normalize, "log_every": tutorial.log_every,
              "augment": tutorial.augment}
    given |= {k: v for k, v in extras.items() if getattr(config, k) is None and v is not None}
    return dataclasses.replace(config, **given)


def check_shapes(spec) -> None:
    """Run verify-shapes' forward pass of one example first: a layer that does not fit
    (a Linear with the wrong input size) becomes one sentence naming it, not a traceback
    from inside the training loop. The caller's random state is left as it was."""
    from ..shapes import check_spec

    with torch.random.fork_rng(devices=[]):
        report = check_spec(spec)
    if report.error:
        raise SpecError(f"{spec.name}: {report.error}; `zoo verify-shapes {spec.name}` shows every layer's shape")


def _ignore(event) -> None:
    pass


def _with_folder_dataset(spec, config: TrainConfig) -> TrainConfig:
    """A folder dataset is recorded by its absolute path (a run can be evaluated from anywhere);
    its options are checked, and the model's ability to take its classes, before any decoding."""
    from ..imagefolder import folder_key, is_folder_dataset
    from ..imagefolder.adapt import check_adaptable
    from ..imagefolder.split import check_fraction

    if not is_folder_dataset(config.dataset):
        if config.holdout is not None or config.skip_bad:
            raise UsageError("--holdout and --skip-bad apply to a folder of images given as --dataset PATH")
        return config
    holdout = check_fraction(config.holdout) if config.holdout is not None else None
    check_adaptable(spec)
    return dataclasses.replace(config, dataset=folder_key(config.dataset), holdout=holdout)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise UsageError(f"unknown device '{name}': use auto, cpu or cuda") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA GPU is visible to PyTorch here; use --device cpu or auto")
    if device.type not in ("cpu", "cuda"):
        raise UsageError(f"unsupported device '{name}': use auto, cpu or cuda")
    return device


@contextlib.contextmanager
def stop_on_signals(enabled: bool) -> Iterator[StopFlag]:
    """The first Ctrl-C (SIGINT) or SIGTERM asks the loop to stop after the current batch;
    a second one interrupts at once (KeyboardInterrupt), for when saving itself hangs.
    Both alike: torchrun passes a Ctrl-C on to its workers as SIGTERM, and a cluster
    scheduler preempting a job sends SIGTERM."""
    flag = StopFlag()
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum, frame):
        if flag.requested:
            raise KeyboardInterrupt
        flag.requested = True

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag
    finally:
        for sig, before in previous.items():
            signal.signal(sig, before)
