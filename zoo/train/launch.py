"""`zoo train --nproc N`: the same N-process run `torchrun` starts, started through
torch.distributed.run itself (its parser and elastic launcher), on one machine with
a free port (`--standalone`), so both ways run the same code and give the same weights.

Each worker is `python -m zoo.cli.main train ...` and reports for itself (only rank
0 prints); this launcher only turns torchrun's outcome into an exit code and, when a
worker died without a word (killed), one line naming it.
"""
from __future__ import annotations

import logging
import os
import signal
import sys

from ..errors import TrainingError

LAUNCH_ENV = "ZOO_LAUNCH_COMMAND"  # how the workers learn the command line, for run.json


def torchrun_args(nproc: int, worker_args: list[str]) -> list[str]:
    """torchrun's arguments for nproc local workers running `zoo <worker_args>`."""
    return ["--standalone", f"--nproc-per-node={nproc}", "--max-restarts=0", "--monitor-interval=0.1",
            "--module", "zoo.cli.main", *worker_args]


def launch(nproc: int, worker_args: list[str], command: str) -> tuple[int, str | None]:
    """Run the workers to their end: (exit code for the user, a line to report or None).
    Workers report their own errors; the line is for what none of them could say."""
    from torch.distributed import run as torchrun
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    os.environ[LAUNCH_ENV] = command
    # torchrun would set 1 and warn about it; the workers set their own count (--threads).
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    quiet = _silence_torchrun()  # its logging is not for zoo's users: the workers and this say what failed
    try:
        torchrun.run(torchrun.parse_args(torchrun_args(nproc, worker_args)))
    except SignalException:  # Ctrl-C or SIGTERM here: torchrun passed it on, and the workers saved
        return 130, None
    except ChildFailedError as exc:
        by_time = sorted(exc.failures.items(), key=lambda item: item[1].timestamp)
        return outcome({rank: f.exitcode for rank, f in by_time})
    finally:
        for logger, level in quiet.items():
            logger.setLevel(level)
        os.environ.pop(LAUNCH_ENV, None)
    return 0, None


def _silence_torchrun() -> dict[logging.Logger, int]:
    """Raise torch.distributed's loggers (each sets its own level) to CRITICAL; their old levels."""
    loggers = [lg for name, lg in logging.root.manager.loggerDict.items()
               if name.startswith("torch.distributed") and isinstance(lg, logging.Logger)]
    old = {lg: lg.level for lg in loggers}
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    return old


def outcome(codes: dict[int, int]) -> tuple[int, str | None]:
    """The user's exit code and line from the failed workers' exit codes (negative: killed),
    given in the order they failed."""
    from .distributed import QUIET_EXIT

    # torchrun's own SIGTERM to the survivors is not the cause: another signal first, then the earliest.
    killed = sorted((code == -signal.SIGTERM, order) for order, code in enumerate(codes.values()) if code < 0)
    if killed:
        rank = list(codes)[killed[0][1]]
        try:
            name = signal.Signals(-codes[rank]).name
        except ValueError:
            name = f"signal {-codes[rank]}"
        return 1, f"process {rank} of the run was killed ({name}) and the others stopped"
    if all(code == 130 for code in codes.values()):
        return 130, None
    said = [code for _, code in sorted(codes.items()) if code not in (QUIET_EXIT, 130)]
    if said:  # that process reported its error itself
        return (said[0] if 0 < said[0] < 256 else 1), None
    return 1, "the processes of the run lost contact with each other (one stopped answering)"


def worker_command() -> str:
    """The command line recorded in run.json: the launcher's when zoo started the workers."""
    import shlex

    launched = os.environ.get(LAUNCH_ENV)
    if launched:
        return launched
    return "torchrun ...: " + shlex.join(["zoo", *sys.argv[1:]])
