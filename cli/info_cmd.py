"""`zoo info NAME`: a model's spec and its layer table."""
from __future__ import annotations

from typing import List, Optional

import typer

from .common import cycles_text, fail, layer_table, out, registry, shape_text


def info(
    name: str = typer.Argument(..., help="Model name, as `zoo list` shows it."),
    explain: bool = typer.Option(False, "--explain", help="Show how each layer's parameter count comes about, "
                                 "e.g. 6 x (5 x 5 x 1) + 6 = 156."),
    model_arg: Optional[List[str]] = typer.Option(None, "--model-arg", help="A builder argument as key=value "
                                                  "(repeatable), as zoo train takes it."),
) -> None:
    """Show a model's spec (dataset, transforms, recipes, reference) and its layers."""
    spec = registry().get_spec(name)
    from rich.markup import escape
    from rich.table import Table

    from zoo.variants import builder_arguments, parse_model_args, shape_report

    parse_model_args(spec, model_arg)  # an unknown or mistyped argument: one line, before anything else
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    arguments = ", ".join(f"{k}={v}" for k, v in builder_arguments(spec).items())
    rows = [
        ("model", f"{spec.name}: {spec.summary}"),
        ("plugin", f"{spec.plugin} {spec.plugin_version}"),
        ("dataset", spec.dataset),
        ("input", f"{shape_text(spec.input_shape)} (C x H x W)"),
        ("classes", f"{spec.num_classes}: {', '.join(spec.class_names)}"),
        ("train transforms", _transforms_text(spec.train_transforms)),
        ("eval transforms", _transforms_text(spec.eval_transforms)),
        ("recipe", recipe_text(spec.recipe)),
        ("tutorial recipe", tutorial_text(spec) if spec.tutorial else "- (none declared, so no --recipe tutorial)"),
        ("--model-arg", arguments or "- (the builder takes no arguments)"),
        ("reference", spec.reference or "-"),
    ]
    for key, value in rows:
        facts.add_row(key, escape(value))
    out.print(facts)
    report = shape_report(spec, model_arg)
    out.print(layer_table(report, explain=explain))
    if report.error:  # the forward pass failed, or the output is not one value per class
        fail(report.first_problem())


def recipe_text(r) -> str:
    init = f"normal init (std {r.init_std:g})" if r.init == "normal" else f"{r.init} init"
    momentum = f" momentum {r.momentum:g}" if r.optimizer == "sgd" else ""
    return (f"{r.epochs} epochs, batch {r.batch_size}, {r.optimizer}{' nesterov' if r.nesterov else ''} lr {r.lr:g}"
            f"{momentum}"
            f"{f' wd {r.weight_decay:g}' if r.weight_decay else ''}, {r.schedule} schedule, {init}"
            f"{f', label smoothing {r.label_smoothing:g}' if r.label_smoothing else ''}"
            f"{f', weight average (ema {r.ema:g})' if r.ema else ''}{cycles_text(r)}")


def tutorial_text(spec) -> str:
    """What `zoo train NAME --recipe tutorial` runs, and where it comes from."""
    from zoo.variants import NORMALIZE_HELP

    t = spec.tutorial
    parts = [recipe_text(t.recipe), f"on {t.dataset or spec.dataset}", f"inputs: {NORMALIZE_HELP[t.normalize]}",
             "augmented as the model declares" if t.augment else "no augmentation"]
    if t.log_every:
        parts.append(f"loss logged every {t.log_every} batches")
    text = "; ".join(parts) + f"\n{t.source}"
    if t.notes:
        text += f"\n{t.notes}"
    return text + f"\nrun it: zoo train {spec.name} --recipe tutorial"


def _transforms_text(t) -> str:
    steps = []
    if t.crop_padding:
        steps.append(f"random crop (pad {t.crop_padding})")
    if t.hflip:
        steps.append("horizontal flip")
    steps.append("scale to [0,1]")
    steps.append(f"normalize mean {t.mean} std {t.std}")
    return " -> ".join(steps)
