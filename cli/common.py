"""What the commands share: consoles, error lines, plugin warnings, JSON output, option
checks, and the tables more than one command renders (layers, verification reports).
Command modules never import each other; what they share lives here or in the core.

Nothing here imports torch: `zoo --help` must stay fast.
"""
from __future__ import annotations

import codecs
import contextlib
import json
import sys
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape as _escape_markup

from zoo.safeio import for_display
from zoo.spec import MAX_BATCH, MAX_EPOCHS, MAX_SEED


# The ranges of the training options `zoo train` and `zoo lr-sweep` share, as typer.Option
# keywords: checked before anything runs (exit 2). The limits are the core's (zoo.spec),
# which the recipe and the run.json schema check too.
TRAIN_RANGES = {
    "epochs": dict(min=1, max=MAX_EPOCHS), "batch_size": dict(min=1, max=MAX_BATCH),
    "seed": dict(min=0, max=MAX_SEED), "momentum": dict(min=0.0, max=1.0), "weight_decay": dict(min=0.0),
    "init_std": dict(min=0.0), "label_smoothing": dict(min=0.0, max=1.0), "ema": dict(min=0.0, max=1.0),
    "cycles": dict(min=1, max=MAX_EPOCHS), "cycle_decay": dict(min=0.0, max=1.0), "augment_from_cycle": dict(min=1, max=MAX_EPOCHS),
    "limit": dict(min=1), "threads": dict(min=1),
}


def cycles_text(recipe) -> str:
    """The warm restarts of a zoo.Recipe, as train and info show them; '' for one cycle."""
    cycles = len(recipe.cycle_ends())  # a run shorter than its cycles has fewer
    if cycles <= 1:
        return ""
    cycled_lr = recipe.schedule in ("onecycle", "cosine")
    peaks = f", each peak x{recipe.cycle_decay:g} the one before" if recipe.cycle_decay != 1 and cycled_lr else ""
    start = recipe.augment_from_cycle
    augmented = f", the declared augmentation from cycle {start}" if start > 1 else ""
    return f", {cycles} cycles{peaks}{augmented}"


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


def warning(message: str) -> None:
    """One yellow `warning:` line on stderr: something was left out, the command went on."""
    err.print(f"[yellow]warning:[/] {escape(message)}", soft_wrap=True)


def registry():
    """The loaded registry, after printing one warning line per broken plugin."""
    from zoo.registry import get_registry

    reg = get_registry()
    if not getattr(reg, "_warned", False):
        for line in reg.warnings:
            warning(line)
        reg._warned = True
    return reg


def model_warning(exc) -> None:
    """One warning line per broken model per command (a ModelBuildError), however often it is met."""
    from zoo.registry import get_registry

    warned = get_registry().__dict__.setdefault("_warned_models", set())
    if exc.model in warned:
        return
    warned.add(exc.model)
    warning(str(exc))


def run_spec(name: str, weights=None, out=None, untrained: bool = False):
    """The model as the run that wrote these weights trained it: its --model-arg builder
    arguments and --normalize input scale (zoo.variants), so every command rebuilds the
    same network and feeds it the same pixels; for a run on a folder of images, also its
    classes and normalisation (zoo.imagefolder). Untrained: the registered spec."""
    spec = registry().get_spec(name)
    if untrained:
        return spec
    from zoo.imagefolder.trained import fitted_for_weights
    from zoo.runs import weights_path
    from zoo.variants import spec_for_weights

    path = weights_path(spec.name, weights, out)
    return fitted_for_weights(spec_for_weights(spec, path), path)


def duration(seconds: float) -> str:
    """12s, 3m05s, 1h02m03s: a wall time as people read it."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    m, s = divmod(seconds, 60)
    return f"{m}m{s:02d}s" if m < 60 else f"{m // 60}h{m % 60:02d}m{s:02d}s"


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


def layer_table(report, explain: bool = False):
    """One row per layer; `explain` adds how each parameter count comes about."""
    from rich.table import Table

    table = Table(title=f"{report.model}: input {shape_text(report.input_shape)}, "
                        f"{report.total_params:,} parameters")
    columns = ["layer", "type", "k/s/p/d", "formula", "declared", "actual", "params"]
    columns += ["parameter formula", ""] if explain else [""]
    for column in columns:
        table.add_column(column, justify="right" if column == "params" else "left")
    for layer in report.layers:
        mark = "[green]✓[/]" if layer.ok else "[red]✗[/]"
        cells = [layer.name, layer.kind, layer.settings or "-", layer.formula or "-",
                 shape_text(layer.declared), shape_text(layer.actual), f"{layer.params:,}"]
        cells += [layer.param_formula or "-", mark] if explain else [mark]
        table.add_row(*cells)
    return table


# --- ONNX Runtime options and verification reports (export, verify, bench, predict) -------

PROVIDER_HELP = "ONNX Runtime provider: auto (CUDA when a CUDA device is present), cuda (FAIL if not used), cpu."
PROVIDERS = ("auto", "cuda", "cpu")


def check_provider(provider: str) -> None:
    """Checked before any slow work starts."""
    if provider not in PROVIDERS:
        fail(f"unknown --provider {provider!r}: use {', '.join(PROVIDERS)}", 2)


@contextlib.contextmanager
def status(message: str, quiet: bool = False):
    """One rich status line on stderr while a library works. The console is pinned to the
    real stream now, so the core's capture of other libraries' chatter does not swallow it."""
    if quiet:
        yield
        return
    console = Console(file=sys.stderr, width=err.width if not err.is_terminal else None, highlight=False)
    with console.status(message):
        yield


def _num(value) -> str:
    return "-" if value is None else f"{value:.2e}"


def check_table(report):
    from rich.table import Table

    against = {"pytorch": "PyTorch", "accuracy": "PyTorch, by test-set accuracy"}.get(report.mode, "stored vectors")
    table = Table(title=escape(f"{report.model}: ONNX Runtime vs {against}"))
    for column in ("check", "", "max abs err", "max rel err", "argmax agree", "detail"):
        table.add_column(column, justify="right" if "err" in column or "agree" in column else "left")
    for c in report.checks:
        agree = f"{c.argmax[0]}/{c.argmax[1]}" if c.argmax else "-"
        table.add_row(escape(c.name), "[green]✓[/]" if c.ok else "[red]✗[/]", _num(c.max_abs), _num(c.max_rel),
                      agree, escape(c.detail))
    return table


def show_report(report) -> None:
    """The table, the notes, then one PASS/FAIL line with tolerance and providers."""
    from zoo.onnx.defaults import CUDA_TOLERANCE
    from zoo.onnx.verify import describe_failure

    out.print(check_table(report))
    for note in report.notes:
        out.print(f"[yellow]note:[/] {escape(note)}", soft_wrap=True)
    tol = report.tolerance
    if tol is not None:
        gpu = "" if "CUDA" in tol.basis else f"; on CUDA: atol {CUDA_TOLERANCE[0]:g}, rtol {CUDA_TOLERANCE[1]:g}, TF32 off"
        out.print(f"tolerance: atol {tol.atol:g}, rtol {tol.rtol:g} ({tol.basis}){gpu}; a value passes when "
                  f"|onnx - torch| <= atol + rtol x |torch|, so near zero the atol term allows a relative error "
                  f"above rtol", soft_wrap=True)
    out.print(f"providers used: {', '.join(report.providers) or '-'} (asked: {report.provider_choice})",
              soft_wrap=True)
    if report.vectors:
        out.print(f"test vectors: {escape(report.vectors)}/test_data_set_*", soft_wrap=True)
    if report.ok and report.mode == "accuracy":
        out.print(f"[bold green]PASS[/] {report.model}: {escape(report.checks[-2].detail)}; "
                  f"{escape(report.checks[-1].detail)}", soft_wrap=True)
    elif report.ok:
        out.print(f"[bold green]PASS[/] {report.model}: max abs err {_num(report.max_abs)}, "
                  f"max rel err {_num(report.max_rel)}; every value within atol + rtol x |torch|", soft_wrap=True)
    else:
        out.print(f"[bold red]FAIL[/] {report.model}: {escape(describe_failure(report))}", soft_wrap=True)
