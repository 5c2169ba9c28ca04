"""`zoo train NAME --nproc N`: start N workers running the same `zoo train NAME ...`
(without --nproc) through torchrun's own launcher (zoo.train.launch)."""
from __future__ import annotations

import shlex

import typer

SKIP = ("name", "nproc")


def worker_args(ctx: typer.Context) -> list[str]:
    """The options given, as command-line arguments again: what each worker runs."""
    args = ["train", str(ctx.params["name"])]
    for param in ctx.command.params:
        if param.param_type_name != "option" or param.name in SKIP:
            continue
        value = ctx.params.get(param.name)
        if value is None or value == param.default:
            continue
        if getattr(param, "is_flag", False):
            if value:
                args.append(param.opts[0])
            elif param.secondary_opts:
                args.append(param.secondary_opts[0])
            continue
        if isinstance(value, (list, tuple)):  # a repeatable option (--model-arg): once per value, none if empty
            for item in value:
                args += [param.opts[0], str(item)]
            continue
        args += [param.opts[0], str(value)]
    return args


def launch_workers(ctx: typer.Context, nproc: int) -> None:
    from zoo.train.launch import launch

    args = worker_args(ctx)
    command = shlex.join(["zoo", *args, "--nproc", str(nproc)])
    code, line = launch(nproc, args, command)
    if line:
        from .common import err, error_line

        error_line(line)
        err.print(f"the last checkpoint is kept; continue with: {resume_line(ctx, nproc)}", soft_wrap=True)
    if code:
        raise typer.Exit(code)


def resume_line(ctx: typer.Context, nproc: int) -> str:
    p = ctx.params
    parts = ["zoo", "train", str(p["name"]), "--resume", "--nproc", str(nproc)]
    for flag, key in (("--out", "out_dir"), ("--data-dir", "data_dir")):
        if p.get(key) is not None:
            parts += [flag, str(p[key])]
    if p.get("offline"):
        parts.append("--offline")
    return shlex.join(parts)
