"""Typed errors. The core raises these and never prints; `zoo.cli` turns them into
one clear line on stderr and an exit code."""
from __future__ import annotations

import difflib


class ZooError(Exception):
    """Base class. `exit_code` is what the CLI exits with."""

    exit_code = 1


class UsageError(ZooError):
    """The user asked for something that cannot exist (bad name, bad option)."""

    exit_code = 2


class UnknownNameError(UsageError):
    """An unknown model or dataset name, with close matches."""

    def __init__(self, kind: str, name: str, known: list[str]):
        self.kind, self.name, self.known = kind, name, sorted(known)
        close = difflib.get_close_matches(name, self.known, n=3, cutoff=0.5)
        hint = f"did you mean {' or '.join(close)}?" if close else f"known: {', '.join(self.known) or 'none'}"
        super().__init__(f"unknown {kind} '{name}': {hint} (`zoo {'list' if kind == 'model' else 'datasets'}` shows them all)")


class SpecError(ZooError):
    """A plugin declared an invalid model or dataset spec."""


class PluginError(ZooError):
    """A plugin failed to load or register."""


class ModelBuildError(PluginError):
    """A registered model's builder raised (or returned something that is not a model)."""

    def __init__(self, model: str, plugin: str, message: str):
        self.model, self.plugin, self.message = model, plugin, message
        super().__init__(f"model '{model}' from plugin {plugin or '?'} cannot be built: {message}")


class DuplicateNameError(PluginError):
    """Two plugins registered the same name."""


class OutputError(ZooError):
    """An output file or folder cannot be written (a file where a folder must be, no permission, disk full)."""


class RunLockedError(ZooError):
    """Another live process is writing the same run folder."""

    def __init__(self, folder, holder=None):
        self.folder, self.holder = folder, holder
        self.pid = holder.pid if holder is not None else None
        who = str(holder) if holder is not None else "another process"
        super().__init__(f"{folder} is in use by a zoo run ({who}); wait for it to finish, stop it, "
                         "or choose another --out")


class DataError(ZooError):
    """A dataset file is missing, corrupt or inconsistent."""


class CheckpointError(ZooError):
    """A weights file or checkpoint is missing, corrupt or does not fit the model."""


class TrainingError(ZooError):
    """Training cannot go on (e.g. the loss became NaN)."""


class ExportError(ZooError):
    """ONNX export or verification could not be done."""



def describe(exc: BaseException, limit: int = 300) -> str:
    """Any exception as one line: `Type: message`, or `Type at file:line` when the
    message is empty (a bare `assert` in a plugin's forward pass). Never raises.

    Multi-line messages (ONNX Runtime, PyTorch) are joined; very long foreign ones are
    cut. Typed zoo errors already read as sentences, ending in the advice, so they are
    given whole and without their type (foreign text inside them was cut when embedded).
    """
    try:
        text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    except Exception:  # a broken __str__ must not break the error path
        text = ""
    if isinstance(exc, ZooError) and text:
        return text
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    kind = type(exc).__name__
    if text:
        return f"{kind}: {text}"
    where = _raised_at(exc)
    return f"{kind} at {where}" if where else kind


def _raised_at(exc: BaseException) -> str:
    """`file:line` of the innermost frame that raised `exc`, or '' when unknown."""
    tb = exc.__traceback__
    if tb is None:
        return ""
    while tb.tb_next is not None:
        tb = tb.tb_next
    return f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}"
