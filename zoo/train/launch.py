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
    given in the order they failed.

    When one worker fails, torchrun sends SIGTERM to the others, and a survivor still
    running then shows up as killed by SIGTERM: that is the consequence, not the cause. So
    a worker killed by another signal (SIGKILL, the OOM killer) comes first, then a worker
    that reported its own error, and a SIGTERM only when nothing else explains the end."""
    from .distributed import QUIET_EXIT

    killed = [(rank, code) for rank, code in codes.items() if code < 0]
    by_other_signal = [(rank, code) for rank, code in killed if code != -signal.SIGTERM]
    if by_other_signal:
        return 1, _killed_line(*by_other_signal[0])
    said = [code for _, code in sorted(codes.items()) if code > 0 and code not in (QUIET_EXIT, 130)]
    if said:  # that process reported its error itself
        return (said[0] if said[0] < 256 else 1), None
    if 130 in codes.values() and all(code in (130, -signal.SIGTERM) for code in codes.values()):
        return 130, None  # stopped (Ctrl-C, SIGTERM), the stragglers cut short by torchrun
    if killed:
        return 1, _killed_line(*killed[0])
    return 1, "the processes of the run lost contact with each other (one stopped answering)"


def _killed_line(rank: int, code: int) -> str:
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = f"signal {-code}"
    return f"process {rank} of the run was killed ({name}) and the others stopped"


def worker_command() -> str:
    """The command line recorded in run.json: the launcher's when zoo started the workers."""
    import shlex

    launched = os.environ.get(LAUNCH_ENV)
    if launched:
        return launched
    return "torchrun ...: " + shlex.join(["zoo", *sys.argv[1:]])
