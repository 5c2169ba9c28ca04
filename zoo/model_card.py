"""The model card: README.md in a finished run's folder, in Markdown.

What was trained (model, data, classes, normalisation), how (the recipe), how well
(accuracy overall and per class on the test split), the exact command that trains
it again, and how to export and use it. Built only from the run's own record
(run.json's fields) and the final evaluation, so it never disagrees with them.
"""
from __future__ import annotations

import math
import re
import shlex
from typing import Any

from .spec import recipe_defaults

CARD_FILE = "README.md"
MARKER = "<!-- written by zoo: the model card of this run -->"  # a README.md without it is the user's
_UNSAFE = re.compile(r"[\x00-\x1f\x7f|`<>\[\]\\*_]")


def md(value: Any) -> str:
    """A value for Markdown text or a table cell: no control characters, no markup, no cell breaks."""
    return _UNSAFE.sub(lambda m: f"\\{m.group()}" if m.group().isprintable() else " ", str(value))


def code(value: Any) -> str:
    """A value inside `...`: no control characters, no backtick to end the span early."""
    return re.sub(r"[\x00-\x1f\x7f`]", " ", str(value))


def reproduce_command(info: dict, folder: str) -> str:
    """`zoo train` with every setting spelled out: recipe defaults may change, this run may not."""
    hp = info.get("hyperparameters") or {}
    if hp:  # a run from before --ema or --cycles: what it trained with (no average, one cycle)
        hp = {**recipe_defaults(), **hp}
    parts = ["zoo", "train", str(info.get("model"))]
    dataset, variant = info.get("dataset"), info.get("dataset_variant")
    if isinstance(variant, str) and variant != dataset:  # a stand-in (the MNIST sample): that, not the full set
        dataset = variant
    if isinstance(dataset, str):
        parts += ["--dataset", dataset]
    for key, value in hp.items():  # every recipe field is a train flag of the same name
        flag = f"--{key.replace('_', '-')}"
        if isinstance(value, bool):
            parts.append(flag if value else f"--no-{flag[2:]}")
        elif isinstance(value, (int, float, str)):
            parts += [flag, repr(value) if isinstance(value, float) else str(value)]  # every digit: the same run
    parts += ["--seed", str(info.get("seed", 0))]
    if info.get("normalize") not in (None, "default"):
        parts += ["--normalize", str(info["normalize"])]
    for key, value in (info.get("model_args") or {}).items():
        parts += ["--model-arg", f"{key}={value}"]
    if isinstance(info.get("init_from"), str):
        parts += ["--init-from", info["init_from"]]
    if info.get("limit") is not None:
        parts += ["--limit", str(info["limit"])]
    if info.get("augment") is False:
        parts.append("--no-augment")
    if isinstance(info.get("log_every"), int):
        parts += ["--log-every", str(info["log_every"])]
    held = (info.get("image_folder") or {}).get("holdout")
    if isinstance(held, dict) and held.get("fraction") is not None:
        parts += ["--holdout", f"{held['fraction']:g}"]
    if (info.get("image_folder") or {}).get("skipped_files"):
        parts.append("--skip-bad")
    device = str(info.get("device", "cpu"))
    if device.startswith("cuda"):
        parts += ["--device", "cuda"]
    elif info.get("threads"):
        parts += ["--device", "cpu", "--threads", str(info["threads"])]  # same threads: same bits on a CPU
    parts += ["--out", folder]
    return " ".join(shlex.quote(p) for p in parts)


def _pct(x: Any) -> str:
    return f"{100 * x:.2f}%" if isinstance(x, (int, float)) and math.isfinite(x) else "-"


def _data_lines(info: dict) -> list[str]:
    folder = info.get("image_folder")
    lines = [f"- dataset: `{code(info.get('dataset'))}`"
             + (f" (read from the stand-in `{code(info.get('dataset_variant'))}`)"
                if info.get("dataset_variant") not in (None, info.get("dataset")) else "")]
    if isinstance(folder, dict):
        held = folder.get("holdout")
        split = (f"a seeded stratified hold-out of {held.get('fraction', 0):.0%} (seed {held.get('seed')}, "
                 f"fingerprint `{str(held.get('sha256'))[:16]}…`)" if isinstance(held, dict)
                 else f"the `{code(folder.get('test_folder'))}/` folder")
        lines.append(f"- a folder of images; test split: {split}")
        norm = folder.get("normalization") or {}
        if info.get("normalize") in (None, "default"):
            lines.append(f"- normalisation from the training images: mean {norm.get('mean')}, std {norm.get('std')}")
        if folder.get("skipped_files"):
            lines.append(f"- {len(folder['skipped_files'])} unreadable file(s) left out (--skip-bad)")
    if info.get("normalize") in ("unit", "none"):  # --normalize: that scale, not a mean/std
        lines.append("- inputs: " + ("pixels scaled to 0..1 only (`--normalize unit`)" if info["normalize"] == "unit"
                                     else "raw 0-255 pixels (`--normalize none`)"))
    if info.get("model_args"):
        lines.append("- builder arguments: " + ", ".join(f"`{code(k)}={code(v)}`"
                                                         for k, v in info["model_args"].items()))
    lines.append(f"- {info.get('train_samples', 0):,} training and {info.get('test_samples', 0):,} test images")
    names = info.get("class_names") or []
    lines.append(f"- {len(names)} classes: " + ", ".join(md(n) for n in names))
    return lines


def model_card(info: dict, folder: str, per_class: list[tuple[str, int, float]]) -> str:
    """The card's Markdown; `per_class` is (class name, test images, accuracy) for every class."""
    model = md(info.get("model"))
    hp = info.get("hyperparameters") or {}
    lines = [MARKER, f"# {model} trained on {md(info.get('dataset'))}", "",
             f"Model card written by zoo {md((info.get('versions') or {}).get('zoo', '?'))} when the run finished "
             f"({md(info.get('updated_at'))}).", "",
             "## Model", "", f"- **{model}**: {md(info.get('summary', ''))}",
             f"- from the plugin {md(info.get('plugin', '?'))} {md(info.get('plugin_version', ''))}",
             "- weights: `model.safetensors` (safetensors; class names and normalisation in its metadata)", "",
             "## Data", "", *_data_lines(info), "",
             "## Recipe", "", "| setting | value |", "| --- | --- |",
             *[f"| {md(k)} | {md(v)} |" for k, v in hp.items()],
             f"| seed | {md(info.get('seed'))} |", f"| augmentation | {md(info.get('augment'))} |",
             f"| device | {md(info.get('device'))}"
             + (f", threads {md(info.get('threads'))}" if info.get("threads") else "") + " |", "",
             "## Results", "",
             f"- test accuracy **{_pct(info.get('test_accuracy'))}** after {info.get('epochs_completed')} epochs "
             f"(best {_pct(info.get('best_test_accuracy'))} at epoch {info.get('best_epoch')}), "
             f"test loss {info.get('test_loss', float('nan')):.4f}",
             f"- training took {info.get('wall_time_seconds', 0):.1f} s", "",
             "| class | test images | accuracy |", "| --- | ---: | ---: |",
             *[f"| {md(name)} | {count:,} | {_pct(acc) if count else '-'} |" for name, count, acc in per_class], "",
             "## Reproduce", "", "```sh", reproduce_command(info, folder), "```", "",
             "The same seed and settings repeat the run; on a CPU with the same `--threads`, bit for bit. "
             "Pick another `--out` to keep this run (or add `--force` to replace it).", "",
             "## Export and use", "", "```sh",
             f"zoo export {shlex.quote(str(info.get('model')))} --weights {shlex.quote(folder + '/model.safetensors')} "
             f"--out {shlex.quote('exported/' + str(info.get('model')) + '.onnx')}",
             f"zoo predict {shlex.quote(str(info.get('model')))} "
             f"--onnx {shlex.quote('exported/' + str(info.get('model')) + '.onnx')} IMAGE.png", "```", "",
             "The ONNX file carries the class names and the preprocessing in its metadata; `zoo verify` re-checks "
             "it against these weights.", ""]
    return "\n".join(lines)
