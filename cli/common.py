"""What every command shares: consoles, error lines, plugin warnings, JSON output.

Nothing here imports torch: `zoo --help` must stay fast.
"""
from __future__ import annotations

import codecs
import json
import sys
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape as _escape_markup

from zoo.safeio import for_display


def escape(text: object, limit: int = 4000) -> str:
    """Text from anywhere (a file, a plugin, an error) as the terminal should show it:
    control characters made visible (no colours, window titles or split lines from a
    hostile class name) and rich markup shown, not applied."""
    return _escape_markup(for_display(text, limit))

# What a terminal that cannot show a symbol (PYTHONIOENCODING=ascii, a latin-1 locale) gets
# instead; anything else becomes '?'. Output degrades, it never fails (rich draws ASCII boxes).
PLAIN = {"✓": "ok", "✗": "x", "…": "...", "→": "->", "←": "<-", "—": "-", "–": "-", "×": "x", "±": "+/-",
         "•": "*", "─": "-", "│": "|", "≈": "~", "≤": "<=", "≥": ">=", "µ": "u", "°": " deg"}


def _plain(error: UnicodeEncodeError) -> tuple[str, int]:
    text = error.object[error.start:error.end]
    return "".join(PLAIN.get(c, "?") for c in text), error.end


codecs.register_error("zoo-plain", _plain)
for _stream in (sys.stdout, sys.stderr):
    if hasattr(_stream, "reconfigure"):  # a real text stream (not a test runner's capture)
        _stream.reconfigure(errors="zoo-plain")

# Wide enough for the layer tables when output goes to a file or CI log.
_width = None if sys.stdout.isatty() else 200
out = Console(width=_width, highlight=False)
err = Console(stderr=True, width=_width, highlight=False)


def error_line(message: str) -> None:
    """One red `error:` line on stderr; markup in the message is shown, not applied."""
    err.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)


def fail(message: str, code: int = 1) -> NoReturn:
    """One clear line on stderr and a non-zero exit: no traceback."""
    error_line(message)
    raise typer.Exit(code)


def notice(message: str) -> None:
    err.print(f"[yellow]note:[/] {escape(message)}", soft_wrap=True)


def registry():
    """The loaded registry, after printing one warning line per broken plugin."""
    from zoo.registry import get_registry

    reg = get_registry()
    if not getattr(reg, "_warned", False):
        for line in reg.warnings:
            err.print(f"[yellow]warning:[/] {escape(line)}", soft_wrap=True)
        reg._warned = True
    return reg


def model_warning(exc) -> None:
    """One warning line per broken model per command (a ModelBuildError), however often it is met."""
    from zoo.registry import get_registry

    warned = get_registry().__dict__.setdefault("_warned_models", set())
    if exc.model in warned:
        return
    warned.add(exc.model)
    err.print(f"[yellow]warning:[/] {escape(str(exc))}", soft_wrap=True)


def run_spec(name: str, weights=None, out=None, untrained: bool = False):
    """The model as the run that wrote these weights trained it: its --model-arg builder
    arguments and --normalize input scale (zoo.variants), so every command rebuilds the
    same network and feeds it the same pixels. Untrained: the registered spec."""
    spec = registry().get_spec(name)
    if untrained:
        return spec
    from zoo.runs import weights_path
    from zoo.variants import spec_for_weights

    return spec_for_weights(spec, weights_path(spec.name, weights, out))


def print_json(data: Any) -> None:
    """Machine-readable output goes to stdout untouched by rich."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def shape_text(shape) -> str:
    return "-" if shape is None else "x".join(str(d) for d in shape)


def warn_chance(health) -> None:
    """A run at chance level: a yellow warning with this run's likely causes, on stderr."""
    err.print(f"[bold yellow]warning:[/] {escape(health.message)}", soft_wrap=True)
    err.print("likely causes:", soft_wrap=True)
    for cause in health.likely_causes:
        err.print(f"  - {escape(cause)}", soft_wrap=True)
