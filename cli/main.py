"""The Typer app. Each command lives in its own small module; none imports torch
at module level, so `zoo --help` stays fast."""
from __future__ import annotations

import os
import sys

import typer
from typer.core import TyperGroup

from zoo.errors import ZooError, describe

from . import datasets_cmd, info_cmd, list_cmd, plugins_cmd, verify_shapes_cmd
from . import features_cmd
from . import plot_cmd
from . import export_cmd
from . import verify_cmd
from . import bench_cmd
from . import predict_cmd
from . import train_cmd
from . import evaluate_cmd
from . import mistakes_cmd
from . import lr_sweep_cmd
from . import runs_cmd


def _click_class(name: str) -> type:
    """A click exception class, found through Typer's public `BadParameter` (Typer
    vendors click in recent releases, so `click` itself may not be installed)."""
    return next(c for c in typer.BadParameter.__mro__ if c.__name__ == name)


def debug_enabled() -> bool:
    """ZOO_DEBUG=1 shows the whole chained traceback instead of one line."""
    return os.environ.get("ZOO_DEBUG", "").strip().lower() not in ("", "0", "false", "no")


class ZooGroup(TyperGroup):
    """Turns every error into one red line and an exit code: the core's typed errors
    with their own code (2 for usage, 1 otherwise), a bad option value as click's
    message, anything unexpected (a bug in zoo or a plugin) as its type and message.
    With ZOO_DEBUG=1 the full chained traceback is printed as well."""

    def invoke(self, ctx):
        bad_usage, click_error = _click_class("UsageError"), _click_class("ClickException")
        try:
            return super().invoke(ctx)
        except bad_usage as exc:  # a bad option value: one line, not rich's box
            where = exc.ctx.command_path if exc.ctx is not None else "zoo"
            _report(exc, f"{exc.format_message().rstrip('.')}; see `{where} --help`", exc.exit_code)
        except (click_error, typer.Exit, typer.Abort):
            raise  # click's own control flow
        except ZooError as exc:
            if getattr(exc, "quiet", False):  # another process of a distributed run reports it
                raise typer.Exit(exc.exit_code) from exc
            _report(exc, describe(exc), exc.exit_code)  # zoo's own sentences are given whole
        except KeyboardInterrupt as exc:
            _report(exc, "interrupted", 130)
        except OSError as exc:
            if not exc.filename:
                _report(exc, f"unexpected {describe(exc)}; run again with ZOO_DEBUG=1 for the traceback", 1)
            _report(exc, path_error(exc), 1)
        except Exception as exc:  # never a raw traceback for the user
            from zoo.registry import plugin_at_fault

            culprit = plugin_at_fault(exc)
            if culprit is not None:  # a plugin's code raised: say which, so its authors hear of it
                _report(exc, f"{describe(exc)}, raised in {culprit}; the plugin is at fault: report it to its "
                             "authors (ZOO_DEBUG=1 shows the traceback)", 1)
            _report(exc, f"unexpected {describe(exc)}; run again with ZOO_DEBUG=1 for the traceback "
                         "and report it if it is zoo's fault", 1)


def path_error(exc: OSError) -> str:
    """A path the system refused (a name too long for the filesystem, no permission), in its own words."""
    import errno

    from zoo.safeio import for_display

    what = {errno.ENAMETOOLONG: "choose a shorter path", errno.EACCES: "check its permissions",
            errno.EPERM: "check its permissions", errno.EROFS: "choose a writable place"}
    hint = what.get(exc.errno, "check the path")
    return f"{for_display(exc.filename, 120)}: {exc.strerror or exc}; {hint}"


def _report(exc: BaseException, line: str, code: int) -> None:
    from .common import error_line

    if debug_enabled():
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    error_line(line)
    raise typer.Exit(code)


app = typer.Typer(
    name="zoo",
    cls=ZooGroup,
    help="A plugin-based model zoo for PyTorch with verified ONNX export.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

app.command("list")(list_cmd.list_models)
app.command("info")(info_cmd.info)
app.command("plugins")(plugins_cmd.plugins)
app.command("datasets")(datasets_cmd.datasets)
app.command("verify-shapes")(verify_shapes_cmd.verify_shapes)
app.command("plot")(plot_cmd.plot)
app.command("features")(features_cmd.features)
app.command("export")(export_cmd.export)
app.command("verify")(verify_cmd.verify)
app.command("bench")(bench_cmd.bench)
app.command("predict")(predict_cmd.predict)
app.command("train")(train_cmd.train)
app.command("evaluate")(evaluate_cmd.evaluate)
app.command("mistakes")(mistakes_cmd.mistakes)
app.command("lr-sweep")(lr_sweep_cmd.lr_sweep)
app.command("runs")(runs_cmd.runs)


def run() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    run()
