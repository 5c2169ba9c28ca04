"""What a plugin declares: `ModelSpec` for an architecture, `DatasetSpec` for a dataset.

Both are frozen dataclasses validated when they are built, with messages that
say what to fix. Nothing here imports torch, so `zoo --help` stays fast.
"""
from __future__ import annotations

import contextlib
import math
import re
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Mapping

from .errors import ModelBuildError, SpecError, describe

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "onecycle", "cosine", "step")
INITS = ("default", "kaiming", "xavier", "normal")
# Training option ranges, shared by the CLI's options (train, lr-sweep), the recipe's own
# checks and the run.json schema (zoo.runfiles), so zoo never writes a run it would refuse
# to read. Beyond them a value is a typo, not a plan (10**9 epochs would run for ever).
MAX_EPOCHS = 100_000
MAX_BATCH = 1 << 20
# Every seed zoo derives (seed x 1,000,003 + epoch x 1009 + rank, zoo.train) must fit the
# 64-bit seed torch's generators take: (2**44 - 1) x 1,000,003 + 10**5 x 1009 + 2**20 < 2**64.
MAX_SEED = 2**44 - 1


def check_name(name: object, what: str) -> str:
    """Names end up in file paths (runs/NAME/, exported/NAME.onnx), so they are
    restricted to a safe alphabet: nothing can escape its output folder."""
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise SpecError(
            f"{what} name {name!r} is invalid: use 1-64 lowercase letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise SpecError(message)


@dataclass(frozen=True)
class Transforms:
    """A declarative preprocessing and augmentation pipeline for uint8 images.

    This one declaration is the single source of truth: calling it returns the
    equivalent torchvision.transforms.v2 pipeline (per-sample, as tutorials use
    it), and `zoo.train` derives its batched on-device path from the same fields.
    Order: random crop after zero padding, random horizontal flip, scale to
    [0, 1], normalise with mean/std.
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]
    crop_padding: int = 0
    hflip: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", tuple(float(m) for m in self.mean))
        object.__setattr__(self, "std", tuple(float(s) for s in self.std))
        _require(len(self.mean) == len(self.std) and len(self.mean) > 0,
                 f"transforms: mean {self.mean} and std {self.std} need one value per channel")
        _require(all(s > 0 for s in self.std), f"transforms: std {self.std} must be positive")
        _require(isinstance(self.crop_padding, int) and self.crop_padding >= 0,
                 f"transforms: crop_padding must be a non-negative int, got {self.crop_padding!r}")

    @property
    def augments(self) -> bool:
        return self.crop_padding > 0 or self.hflip

    def __call__(self, size: tuple[int, int] | None = None):
        """The torchvision.transforms.v2 pipeline for one image (PIL or uint8 tensor)."""
        import torch
        from torchvision.transforms import v2

        steps: list[Any] = [v2.ToImage()]
        if self.crop_padding:
            if size is None:
                raise SpecError("transforms with crop_padding need the image size to build a RandomCrop")
            steps.append(v2.RandomCrop(size, padding=self.crop_padding))
        if self.hflip:
            steps.append(v2.RandomHorizontalFlip())
        steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(self.mean), list(self.std))]
        return v2.Compose(steps)


@dataclass(frozen=True)
class Recipe:
    """The default training recipe; every field can be overridden on the command line."""

    epochs: int = 10
    batch_size: int = 128
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    nesterov: bool = False  # sgd only: Nesterov momentum
    weight_decay: float = 0.0
    schedule: str = "onecycle"
    init: str = "default"
    label_smoothing: float = 0.0
    # onecycle: the share of the steps spent warming up from lr/25 to lr (torch's pct_start).
    warmup_fraction: float = 0.3
    # onecycle and cosine: the last step's learning rate as a fraction of lr (torch's
    # OneCycleLR default: lr / 25 / 1e4).
    final_lr_fraction: float = 4e-6
    init_std: float = 0.01  # the standard deviation of init "normal" (weights ~ N(0, std), biases 0)
    # The decay of an exponential moving average of the weights, updated after every step
    # (0: off). The average is what is evaluated, saved and exported: it is the raw
    # weights smoothed over about 1 / (1 - ema) steps (torch.optim.swa_utils).
    ema: float = 0.0
    # Warm restarts (SGDR, Loshchilov & Hutter 2017; timm's cycle_limit and cycle_decay):
    # the epochs split into `cycles` runs of the schedule, as evenly as they go (see
    # cycle_ends). onecycle and cosine start their curve again in each cycle, at
    # `cycle_decay` times the previous cycle's peak; constant and step are not cycled.
    cycles: int = 1
    cycle_decay: float = 1.0
    # The first cycle trained with the spec's declared augmentation; the ones before see
    # plain images. A small net gets to a good accuracy sooner without it and ends higher
    # with it (plugins/lenet.py), so the first cycle can be fast and a later one thorough.
    augment_from_cycle: int = 1

    def cycle_ends(self) -> list[int]:
        """The last epoch of each cycle, earlier cycles the longer where the epochs do not
        divide (16 epochs in 2: [8, 16]; 15: [8, 15]); a run of fewer epochs than cycles
        (a quick `--epochs 1`) has one cycle an epoch."""
        n = min(self.cycles, self.epochs)
        return [-(-c * self.epochs // n) for c in range(1, n + 1)]

    def augments_at_all(self) -> bool:
        """Whether any epoch does: not when augment_from_cycle is past the run's last cycle."""
        return self.augment_from_cycle <= len(self.cycle_ends())

    def augments_in(self, epoch: int) -> bool:
        """Whether epoch `epoch` (1-based) trains with the declared augmentation."""
        ends = self.cycle_ends()
        cycle = next((i for i, end in enumerate(ends, 1) if epoch <= end), len(ends))
        return cycle >= self.augment_from_cycle

    def __post_init__(self) -> None:
        _require(isinstance(self.epochs, int) and 1 <= self.epochs <= MAX_EPOCHS,
                 f"recipe: epochs must be 1..{MAX_EPOCHS}, got {self.epochs!r}")
        _require(isinstance(self.batch_size, int) and 1 <= self.batch_size <= MAX_BATCH,
                 f"recipe: batch_size must be 1..{MAX_BATCH}, got {self.batch_size!r}")
        _require(self.optimizer in OPTIMIZERS, f"recipe: optimizer {self.optimizer!r} is not one of {', '.join(OPTIMIZERS)}")
        _require(self.schedule in SCHEDULES, f"recipe: schedule {self.schedule!r} is not one of {', '.join(SCHEDULES)}")
        _require(self.init in INITS, f"recipe: init {self.init!r} is not one of {', '.join(INITS)}")
        _require(math.isfinite(self.lr) and self.lr > 0, f"recipe: lr must be a positive number, got {self.lr!r}")
        _require(math.isfinite(self.momentum) and math.isfinite(self.weight_decay),
                 f"recipe: momentum and weight_decay must be finite, got {self.momentum!r}, {self.weight_decay!r}")
        _require(math.isfinite(self.init_std) and self.init_std > 0,
                 f"recipe: init_std must be a positive number, got {self.init_std!r}")
        _require(0 <= self.label_smoothing < 1, f"recipe: label_smoothing must be in [0, 1), got {self.label_smoothing!r}")
        _require(isinstance(self.nesterov, bool), f"recipe: nesterov must be True or False, got {self.nesterov!r}")
        _require(not self.nesterov or (self.optimizer == "sgd" and self.momentum > 0),
                 "recipe: nesterov needs the sgd optimizer with a momentum above 0")
        _require(0 < self.warmup_fraction < 1, f"recipe: warmup_fraction must be in (0, 1), got {self.warmup_fraction!r}")
        _require(isinstance(self.ema, (int, float)) and not isinstance(self.ema, bool) and 0 <= self.ema < 1,
                 f"recipe: ema must be in [0, 1), got {self.ema!r}")
        _require(0 < self.final_lr_fraction <= 1,
                 f"recipe: final_lr_fraction must be in (0, 1], got {self.final_lr_fraction!r}")
        _require(type(self.cycles) is int and 1 <= self.cycles <= MAX_EPOCHS,
                 f"recipe: cycles must be 1..{MAX_EPOCHS}, got {self.cycles!r}")
        _require(isinstance(self.cycle_decay, (int, float)) and not isinstance(self.cycle_decay, bool)
                 and 0 < self.cycle_decay <= 1, f"recipe: cycle_decay must be in (0, 1], got {self.cycle_decay!r}")
        # past the run's last cycle (`--cycles 1` on a recipe that augments from its second): no epoch augments
        _require(type(self.augment_from_cycle) is int and 1 <= self.augment_from_cycle <= MAX_EPOCHS,
                 f"recipe: augment_from_cycle must be 1..{MAX_EPOCHS}, got {self.augment_from_cycle!r}")


def recipe_defaults() -> dict[str, Any]:
    """Every recipe field's default. A field added since a run was saved is missing from its
    run.json, and its default is what that run trained with (a new knob starts as "off":
    no weight average, one cycle), so readers of old runs fill it in from here."""
    return {f.name: f.default for f in fields(Recipe)}


@dataclass(frozen=True)
class Tutorial:
    """The set-up of the seed tutorial a model comes from, so a learner can reproduce it
    with `zoo train NAME --recipe tutorial`: its optimizer, learning rate, batch size,
    epochs and initialisation (`recipe`), its dataset and input scale, how often it
    printed the loss, and whether it augmented (the seeds did not; `augment=True` applies
    the model's declared train transforms). `source` says where the set-up comes from,
    honestly when that is not a seed tutorial; `notes` says what it left open and what
    zoo chose there; `zoo info` shows all of it."""

    recipe: Recipe
    source: str
    dataset: str | None = None
    normalize: str = "default"  # default | unit ([0, 1], ToTensor only) | none (raw 0-255)
    log_every: int | None = None  # batches between the tutorial's loss printouts
    notes: str = ""
    augment: bool = False  # True: the model's declared augmentation, as that set-up used it

    def __post_init__(self) -> None:
        _require(isinstance(self.recipe, Recipe), "tutorial: recipe must be a zoo.Recipe")
        _require(isinstance(self.source, str) and self.source.strip() != "", "tutorial: name its source")
        _require(self.normalize in ("default", "unit", "none"),
                 f"tutorial: normalize {self.normalize!r} is not one of default, unit, none")
        _require(self.log_every is None or (isinstance(self.log_every, int) and self.log_every >= 1),
                 f"tutorial: log_every must be a positive int, got {self.log_every!r}")
        _require(isinstance(self.augment, bool), f"tutorial: augment must be True or False, got {self.augment!r}")
        if self.dataset is not None:
            check_name(self.dataset, "tutorial: dataset")


def _normalise_layer_shapes(layers: object) -> tuple[tuple[str, tuple[int, ...]], ...]:
    items = list(layers.items()) if isinstance(layers, Mapping) else list(layers)  # type: ignore[arg-type]
    _require(len(items) > 0, "layer_shapes: declare the output shape of at least one layer")
    out: list[tuple[str, tuple[int, ...]]] = []
    for item in items:
        _require(isinstance(item, (tuple, list)) and len(item) == 2,
                 f"layer_shapes: expected (layer name, shape) pairs, got {item!r}")
        name, shape = item
        _require(isinstance(name, str) and name != "", f"layer_shapes: layer name {name!r} must be a non-empty string")
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        _require(len(shape) > 0 and all(isinstance(d, int) and d > 0 for d in shape),
                 f"layer_shapes: shape of '{name}' must be positive ints without the batch dimension, got {shape!r}")
        out.append((name, shape))
    names = [n for n, _ in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    _require(not dupes, f"layer_shapes: layer(s) declared twice: {', '.join(dupes)}")
    return tuple(out)


@dataclass(frozen=True)
class ModelSpec:
    """Everything zoo needs to train, check, export and explain one architecture."""

    name: str
    summary: str
    builder: Callable[[], Any]
    dataset: str
    input_shape: tuple[int, int, int]
    class_names: tuple[str, ...]
    layer_shapes: tuple[tuple[str, tuple[int, ...]], ...]
    train_transforms: Transforms
    eval_transforms: Transforms
    recipe: Recipe = field(default_factory=Recipe)
    reference: str = ""
    tutorial: Tutorial | None = None  # the seed tutorial's own set-up, for --recipe tutorial
    # Filled in by the core at registration: the distribution that registered it.
    plugin: str = ""
    plugin_version: str = ""

    def __post_init__(self) -> None:
        check_name(self.name, "model")
        _require(isinstance(self.summary, str) and self.summary.strip() != "" and "\n" not in self.summary,
                 f"model '{self.name}': summary must be one non-empty line")
        _require(callable(self.builder), f"model '{self.name}': builder must be a callable returning an nn.Module")
        check_name(self.dataset, f"model '{self.name}': dataset")
        shape = tuple(self.input_shape)
        _require(len(shape) == 3 and all(isinstance(d, int) and d > 0 for d in shape),
                 f"model '{self.name}': input_shape must be (C, H, W) positive ints, got {self.input_shape!r}")
        object.__setattr__(self, "input_shape", shape)
        names = tuple(self.class_names)
        _require(len(names) >= 2 and all(isinstance(n, str) and n for n in names),
                 f"model '{self.name}': class_names must list at least two non-empty names")
        object.__setattr__(self, "class_names", names)
        object.__setattr__(self, "layer_shapes", _normalise_layer_shapes(self.layer_shapes))
        for which in ("train_transforms", "eval_transforms"):
            t = getattr(self, which)
            _require(isinstance(t, Transforms), f"model '{self.name}': {which} must be a zoo.Transforms")
            _require(len(t.mean) == shape[0],
                     f"model '{self.name}': {which} normalise {len(t.mean)} channel(s) but the input has {shape[0]}")
        _require(not self.eval_transforms.augments, f"model '{self.name}': eval_transforms must not augment")
        _require(isinstance(self.recipe, Recipe), f"model '{self.name}': recipe must be a zoo.Recipe")
        _require(self.tutorial is None or isinstance(self.tutorial, Tutorial),
                 f"model '{self.name}': tutorial must be a zoo.Tutorial")
        last = self.layer_shapes[-1][1]
        _require(last == (self.num_classes,),
                 f"model '{self.name}': the last declared layer should output ({self.num_classes},) "
                 f"for {self.num_classes} classes, got {last}")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def build(self):
        """A fresh nn.Module from the plugin's builder. Whatever the builder does wrong
        (raises, even SystemExit, or returns something else) becomes one ModelBuildError
        naming this model, its plugin and the plugin's own message; only Ctrl-C passes."""
        from torch import nn

        try:
            with contextlib.redirect_stdout(sys.stderr):  # a builder's print() must not break --json output
                model = self.builder()
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # a plugin's fault stays the plugin's: never exit zoo
            raise ModelBuildError(self.name, self.plugin, describe(exc)) from exc
        if not isinstance(model, nn.Module):
            raise ModelBuildError(self.name, self.plugin, f"the builder returned a {type(model).__name__}, "
                                  "not a torch.nn.Module")
        return model

    @property
    def declared_shapes(self) -> dict[str, tuple[int, ...]]:
        return dict(self.layer_shapes)


@dataclass(frozen=True)
class DatasetSpec:
    """A named image-classification dataset.

    `load(root, split)` reads the files under `root` for split "train" or "test"
    and returns (images uint8 (N, C, H, W), labels int64 (N,)) as torch tensors,
    raising `DataError` naming the file and the problem. `files` names what must
    exist under a root for it to count as present. `download(root)` fetches the
    files (None: cannot be downloaded). `locations` are extra folders searched
    after the user's data root (system installs, bundled copies). `fallback` names
    a dataset used instead, with a notice, when this one is absent.
    """

    name: str
    summary: str
    input_shape: tuple[int, int, int]
    class_names: tuple[str, ...]
    load: Callable[[Path, str], Any]
    files: tuple[str, ...] = ()
    download: Callable[[Path], None] | None = None
    locations: tuple[str, ...] = ()
    fallback: str | None = None
    citation: str = ""
    plugin: str = ""
    plugin_version: str = ""

    def __post_init__(self) -> None:
        check_name(self.name, "dataset")
        _require(isinstance(self.summary, str) and self.summary.strip() != "",
                 f"dataset '{self.name}': summary must be a non-empty line")
        shape = tuple(self.input_shape)
        _require(len(shape) == 3 and all(isinstance(d, int) and d > 0 for d in shape),
                 f"dataset '{self.name}': input_shape must be (C, H, W) positive ints")
        object.__setattr__(self, "input_shape", shape)
        object.__setattr__(self, "class_names", tuple(self.class_names))
        _require(len(self.class_names) >= 2, f"dataset '{self.name}': class_names must list at least two classes")
        _require(callable(self.load), f"dataset '{self.name}': load must be callable (root, split) -> (images, labels)")
        _require(self.download is None or callable(self.download), f"dataset '{self.name}': download must be callable")
        if self.fallback is not None:
            check_name(self.fallback, f"dataset '{self.name}': fallback")
        object.__setattr__(self, "files", tuple(self.files))
        object.__setattr__(self, "locations", tuple(str(p) for p in self.locations))
