"""The one-line error formatter and the CLI's error path (ZOO_DEBUG)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from zoo.errors import DataError, describe

ZOO = str(Path(sys.executable).parent / "zoo")


def test_describe_joins_lines_and_names_the_type():
    assert describe(RuntimeError("first\n  second\n")) == "RuntimeError: first second"
    assert describe(DataError("a.idx: truncated")) == "a.idx: truncated"  # zoo's own errors read as sentences


def test_describe_empty_message_names_where_it_was_raised():
    import inspect

    try:
        raise AssertionError()  # what a bare `assert` in a plugin raises: no message
    except AssertionError as exc:
        line, raised_on = describe(exc), inspect.currentframe().f_lineno - 2
    assert line == f"AssertionError at {__file__}:{raised_on}", line


def test_describe_survives_a_broken_str():
    class Weird(Exception):
        def __str__(self):
            raise ValueError("no")

    assert describe(Weird()).startswith("Weird")


def test_error_is_one_line_and_zoo_debug_shows_the_chain():
    env = {k: v for k, v in os.environ.items() if k != "ZOO_DEBUG"}
    plain = subprocess.run([ZOO, "info", "no-such-model"], capture_output=True, text=True, env=env)
    assert plain.returncode == 2
    assert plain.stderr.strip().count("\n") == 0 and "Traceback" not in plain.stderr
    debug = subprocess.run([ZOO, "info", "no-such-model"], capture_output=True, text=True,
                           env=env | {"ZOO_DEBUG": "1"})
    assert debug.returncode == 2
    assert "Traceback (most recent call last)" in debug.stderr and "UnknownNameError" in debug.stderr
