"""The Typer app. Each command lives in its own small module; none imports torch
at module level, so `zoo --help` stays fast."""
from __future__ import annotations

import typer
from typer.core import TyperGroup

from zoo.errors import ZooError

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


class ZooGroup(TyperGroup):
    """Turns the core's typed errors into one red line and the error's exit code."""

    def invoke(self, ctx):
        try:  # recent typer releases vendor click; older ones use click itself
            from typer._click.exceptions import UsageError as BadUsage
        except ImportError:
            from click.exceptions import UsageError as BadUsage

        try:
            return super().invoke(ctx)
        except BadUsage as exc:  # a bad option value: one line, not rich's box
            from rich.markup import escape

            from .common import err

            where = exc.ctx.command_path if exc.ctx is not None else "zoo"
            err.print(f"[bold red]error:[/] {escape(exc.format_message().rstrip('.'))}; see `{escape(where)} --help`",
                      soft_wrap=True)
            raise typer.Exit(exc.exit_code)
        except ZooError as exc:
            from rich.markup import escape

            from .common import err

            err.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
            raise typer.Exit(exc.exit_code)


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


def run() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    run()
