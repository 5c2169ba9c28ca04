"""`zoo info NAME`: a model's spec and its layer table."""
from __future__ import annotations

import typer

from .common import fail, layer_table, out, registry, shape_text


def info(name: str = typer.Argument(..., help="Model name, as `zoo list` shows it.")) -> None:
    """Show a model's spec (dataset, transforms, recipe, reference) and its layers."""
    spec = registry().get_spec(name)
    from rich.table import Table

    from zoo.shapes import check_spec

    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    r = spec.recipe
    rows = [
        ("model", f"{spec.name}: {spec.summary}"),
        ("plugin", f"{spec.plugin} {spec.plugin_version}"),
        ("dataset", spec.dataset),
        ("input", f"{shape_text(spec.input_shape)} (C x H x W)"),
        ("classes", f"{spec.num_classes}: {', '.join(spec.class_names)}"),
        ("train transforms", _transforms_text(spec.train_transforms)),
        ("eval transforms", _transforms_text(spec.eval_transforms)),
        ("recipe", f"{r.epochs} epochs, batch {r.batch_size}, {r.optimizer}{' nesterov' if r.nesterov else ''} lr {r.lr:g}"
                   f"{f' wd {r.weight_decay:g}' if r.weight_decay else ''}, {r.schedule} schedule, {r.init} init"
                   f"{f', label smoothing {r.label_smoothing:g}' if r.label_smoothing else ''}"),
        ("reference", spec.reference or "-"),
    ]
    for key, value in rows:
        facts.add_row(key, value)
    out.print(facts)
    report = check_spec(spec)
    out.print(layer_table(report))
    if report.error:  # the forward pass failed, or the output is not one value per class
        fail(report.first_problem())


def _transforms_text(t) -> str:
    steps = []
    if t.crop_padding:
        steps.append(f"random crop (pad {t.crop_padding})")
    if t.hflip:
        steps.append("horizontal flip")
    steps.append("scale to [0,1]")
    steps.append(f"normalize mean {t.mean} std {t.std}")
    return " -> ".join(steps)
