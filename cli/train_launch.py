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
        err.print(f"the last checkpoint is kept; continue with: {_resume_line(ctx, nproc)}", soft_wrap=True)
    if code:
        raise typer.Exit(code)


def resume_command(name: str, out_dir, data_dir, offline: bool, device: str, processes: int | str | None = None) -> str:
    """The command that continues a run: settings come from the checkpoint, so only where
    things are needs repeating, and how many processes (`processes`: None for one, N for
    `--nproc N`, "torchrun" for a run that torchrun started)."""
    parts = ["zoo", "train", name, "--resume"]
    if processes is not None and processes != "torchrun":
        parts += ["--nproc", str(processes)]
    if out_dir is not None:
        parts += ["--out", str(out_dir)]
    if data_dir is not None:
        parts += ["--data-dir", str(data_dir)]
    if offline:
        parts.append("--offline")
    if device != "auto":
        parts += ["--device", device]
    if processes == "torchrun":
        return f"the same torchrun command with {shlex.join(parts[2:])}"
    return shlex.join(parts)


def _resume_line(ctx: typer.Context, nproc: int) -> str:
    p = ctx.params
    return resume_command(str(p["name"]), p.get("out_dir"), p.get("data_dir"), bool(p.get("offline")),
                          p.get("device") or "auto", nproc)
