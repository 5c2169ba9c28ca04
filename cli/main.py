"""The Typer app. Each command lives in its own small module; none imports torch
at module level, so `zoo --help` stays fast."""
from __future__ import annotations

import typer
from typer.core import TyperGroup

from zoo.errors import ZooError

from . import datasets_cmd, info_cmd, list_cmd, plugins_cmd, verify_shapes_cmd


class ZooGroup(TyperGroup):
    """Turns the core's typed errors into one red line and the error's exit code."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except ZooError as exc:
            from .common import err

            err.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
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


def run() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    run()
