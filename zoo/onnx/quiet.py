"""Keep other libraries' console chatter out of zoo's output.

The torch exporter prints progress lines ("[torch.onnx] Obtain model graph ..."),
warnings and log records; onnxruntime logs from C++. The core never prints, so
everything is captured here and kept for error messages. Capture is at the
Python level (sys.stdout/sys.stderr, warnings, logging): a console the CLI pinned
to the real stream beforehand (its status line) keeps working meanwhile.
"""
from __future__ import annotations

import contextlib
import io
import logging
import warnings
from dataclasses import dataclass, field
from typing import Iterator

# onnxruntime severities: 0 verbose, 1 info, 2 warning, 3 error, 4 fatal.
ORT_LOG_SEVERITY = 3


@dataclass
class Captured:
    """What a library said while we were not listening."""

    stream: io.StringIO = field(default_factory=io.StringIO)
    warnings: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def tail(self, lines: int = 20) -> str:
        return "\n".join(self.text.strip().splitlines()[-lines:])


@contextlib.contextmanager
def captured() -> Iterator[Captured]:
    """Swallow stdout, stderr, warnings and log records (kept in the yielded object)."""
    box = Captured()
    previous_disable = logging.root.manager.disable
    with contextlib.ExitStack() as stack:
        stack.enter_context(contextlib.redirect_stdout(box.stream))
        stack.enter_context(contextlib.redirect_stderr(box.stream))
        caught = stack.enter_context(warnings.catch_warnings(record=True))
        warnings.simplefilter("always")
        logging.disable(logging.CRITICAL)
        try:
            yield box
        finally:
            logging.disable(previous_disable)
            box.warnings.extend(f"{w.category.__name__}: {w.message}" for w in caught)


def quiet_onnxruntime() -> None:
    """Only errors from onnxruntime's default logger (sessions set their own level too)."""
    import onnxruntime

    onnxruntime.set_default_logger_severity(ORT_LOG_SEVERITY)
