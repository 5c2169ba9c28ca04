"""The run-folder lock with real processes: two `zoo train` into one --out, a killed
holder's stale lock taken over, and the running/interrupted status query."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from zoo.errors import RunLockedError
from zoo.runlock import OWNER_FILE, RunLock, holder, run_status

ZOO = str(Path(sys.executable).parent / "zoo")
HOLD = "import sys, time; from zoo.runlock import RunLock; l = RunLock(sys.argv[1]).acquire(); print('held', flush=True); time.sleep(600)"


def hold_lock(folder: Path) -> subprocess.Popen:
    """Another real process holding `folder`'s lock until killed."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def zoo_train(folder: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([ZOO, "train", "lenet5", "--epochs", "1", "--limit", "128", "--threads", "1",
                           "--out", str(folder), *extra], capture_output=True, text=True, timeout=300)


def test_a_second_train_into_a_running_folder_is_refused_naming_the_holder(tmp_path):
    folder = tmp_path / "run"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    first = subprocess.Popen([ZOO, "train", "lenet5", "--epochs", "200", "--limit", "1024", "--threads", "1",
                              "--out", str(folder)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 120
        while holder(folder) is None:  # the first run holds the lock before it loads any data
            assert first.poll() is None and time.monotonic() < deadline, first.stderr.read() if first.poll() else "slow"
            time.sleep(0.05)
        for extra in ((), ("--force",), ("--resume",)):
            second = zoo_train(folder, *extra)
            assert second.returncode == 1, (extra, second.stderr)
            assert f"pid {first.pid}" in second.stderr and "Traceback" not in second.stderr
            assert len(second.stderr.strip().splitlines()) == 1
        assert run_status(folder) == "running"
    finally:
        first.send_signal(signal.SIGINT)  # the first run stops politely and keeps its state
        first.communicate(timeout=120)
    assert first.returncode == 130
    assert run_status(folder) == "interrupted" and holder(folder) is None


def test_a_lock_left_by_a_killed_process_is_taken_over(tmp_path):
    folder = tmp_path / "run"
    proc = hold_lock(folder)
    assert holder(folder).pid == proc.pid
    with pytest.raises(RunLockedError) as refused:
        RunLock(folder).acquire()
    assert refused.value.pid == proc.pid
    proc.kill()
    proc.wait()
    assert holder(folder) is None  # the kernel dropped the dead process's lock
    result = zoo_train(folder)
    assert result.returncode == 0, result.stderr
    assert f"pid {proc.pid}" in result.stderr and "taking it over" in result.stderr
    assert run_status(folder) == "finished"
    assert not (folder / OWNER_FILE).exists()  # released at the end of the run


def test_status_says_interrupted_when_run_json_says_running_but_nobody_holds_it(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "run.json").write_text(json.dumps({"model": "lenet5", "status": "running"}))
    assert run_status(folder) == "interrupted"
    proc = hold_lock(folder)
    try:
        assert run_status(folder) == "running"
    finally:
        proc.kill()
        proc.wait()
    assert run_status(folder) == "interrupted"
    assert run_status(tmp_path / "nothing") is None


def test_a_run_that_fails_before_writing_leaves_no_folder(tmp_path):
    folder = tmp_path / "run"
    result = zoo_train(folder, "--dataset", "cifar10", "--offline")  # cifar10 is not on disk
    assert result.returncode != 0
    assert not folder.exists()
