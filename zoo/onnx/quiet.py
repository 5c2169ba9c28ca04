"""Keep other libraries' console chatter out of zoo's output.

The torch exporter prints progress lines ("[torch.onnx] Obtain model graph ..."),
warnings and log records; onnxruntime logs from C++. The core never prints, so all
of it is swallowed here. Capture is at the Python level (sys.stdout/sys.stderr,
warnings, logging): a console the CLI pinned to the real stream beforehand (its
status line) keeps working meanwhile.
"""
from __future__ import annotations

import contextlib
import io
import logging
import warnings
from typing import Iterator

# onnxruntime severities: 0 verbose, 1 info, 2 warning, 3 error, 4 fatal.
ORT_LOG_SEVERITY = 3


@contextlib.contextmanager
def captured() -> Iterator[None]:
    """Swallow stdout, stderr, warnings and log records while a library works. Nothing
    keeps them: the errors zoo raises say what went wrong in their own words."""
    sink = io.StringIO()
    previous_disable = logging.root.manager.disable
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.disable(logging.CRITICAL)
        try:
            yield
        finally:
            logging.disable(previous_disable)


def quiet_onnxruntime() -> None:
    """Only errors from onnxruntime's default logger (sessions set their own level too)."""
    import onnxruntime

    onnxruntime.set_default_logger_severity(ORT_LOG_SEVERITY)
