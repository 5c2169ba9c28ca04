"""What defines a run (`RunSettings`): settled once from the config and the spec's
recipe, saved in the checkpoint, and taken back from it on --resume.

Typed rather than a dict so that every caller (the CLI, each rank of a
distributed run, a calibration pass) states them explicitly, and a checkpoint's
copy is validated when it is read back.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..errors import CheckpointError, SpecError, UsageError
from ..spec import MAX_SEED, ModelSpec, Recipe
from ..variants import NORMALIZE_MODES, parse_model_args
from .config import TrainConfig, resolve_recipe


@dataclass(frozen=True)
class RunSettings:
    recipe: Recipe
    seed: int  # model init, dropout, sample order and augmentation all derive from it
    dataset: str
    limit: int | None  # a seeded random subset of this many samples per split
    augment: bool  # False: normalise only
    normalize: str = "default"  # input scale: default (the spec's mean/std), unit (0..1) or none (raw 0-255)
    model_args: dict[str, Any] = dataclasses.field(default_factory=dict)  # builder arguments (zoo.variants)
    holdout: float | None = None  # a folder of images without test/: the share held out (None: 10%)
    skip_bad: bool = False  # a folder of images: leave unreadable files out

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> "RunSettings":
        """The settings saved in a checkpoint; CheckpointError when they are not valid settings."""
        try:
            recipe = Recipe(**data["recipe"])
            limit = data["limit"]
            settings = cls(recipe=recipe, seed=data["seed"], dataset=data["dataset"], limit=limit,
                           augment=data["augment"], normalize=data.get("normalize", "default"),
                           model_args=data.get("model_args") or {},  # runs from before these: defaults
                           holdout=data.get("holdout"), skip_bad=data.get("skip_bad", False))
            valid = (type(settings.seed) is int and 0 <= settings.seed <= MAX_SEED and isinstance(settings.dataset, str)
                     and (limit is None or (type(limit) is int and limit >= 1)) and type(settings.augment) is bool
                     and settings.normalize in NORMALIZE_MODES and isinstance(settings.model_args, dict)
                     and (settings.holdout is None or type(settings.holdout) is float)
                     and type(settings.skip_bad) is bool)
        except (KeyError, TypeError, SpecError) as exc:
            raise CheckpointError(f"the checkpoint's settings are not valid ({exc}); start over with --force") from exc
        if not valid:
            raise CheckpointError("the checkpoint's settings are not valid; start over with --force")
        return settings


def extended(saved: RunSettings, config: TrainConfig, meta: dict) -> RunSettings:
    """--resume --epochs N beyond the saved total: a constant learning rate simply goes on
    for the extra epochs. A schedule laid out over the total (onecycle, cosine, step) has
    already brought its rate down for the end, and cycles (--cycles) split the total, so
    going on would not be the same run."""
    total = saved.recipe.epochs
    if config.epochs is None or config.epochs <= total:
        return saved
    cycled = len(saved.recipe.cycle_ends()) > 1  # the cycles (and where augmentation starts) follow the total
    if saved.recipe.schedule != "constant" or cycled:
        run = config.out if config.out is not None else f"runs/{config.model}"
        laid_out = (f"{len(saved.recipe.cycle_ends())} cycles were" if cycled else
                    f"{saved.recipe.schedule} schedule was")
        # Kept short: an error line is cut at 300 characters (zoo.errors.describe), and the command goes last.
        raise UsageError(
            f"--epochs {config.epochs}: this run's {laid_out} laid out for {total} epoch(s)"
            f"{' and lowered the lr for their end' if saved.recipe.schedule != 'constant' else ''}, so it cannot "
            f"simply go on; start over with "
            f"--force, or train the extra epochs as a new run from these weights: `zoo train {config.model} "
            f"--init-from {run} --epochs {config.epochs - total} --out NEW_FOLDER`")
    return dataclasses.replace(saved, recipe=dataclasses.replace(saved.recipe, epochs=config.epochs))


def _seed(value: int | None) -> int:
    """0 unless given; one that torch's generators cannot take is refused now, not mid-run."""
    seed = 0 if value is None else int(value)
    if not 0 <= seed <= MAX_SEED:
        raise UsageError(f"invalid training option: seed must be 0..{MAX_SEED}, got {seed}")
    return seed


def settle(spec: ModelSpec, config: TrainConfig, meta: dict | None) -> RunSettings:
    """A new run's settings from the config and recipe; a resumed run's from its
    checkpoint, where an explicit option that differs is refused."""
    if meta is None:
        return RunSettings(
            recipe=resolve_recipe(spec, config),
            seed=_seed(config.seed),
            dataset=config.dataset or spec.dataset,
            limit=config.limit,
            augment=config.augment is not False,
            normalize=config.normalize or "default",
            model_args=parse_model_args(spec, config.model_args),
            holdout=config.holdout,
            skip_bad=config.skip_bad,
        )
    saved = extended(RunSettings.from_dict(meta.get("settings")), config, meta)
    asked = {f"--{k.replace('_', '-')}": (v, getattr(saved.recipe, k)) for k, v in config.overrides().items()}
    asked |= {f"--{k}": (getattr(config, k), _effective(saved, k))
              for k in ("seed", "dataset", "limit", "augment", "normalize", "holdout") if getattr(config, k) is not None}
    if config.model_args:
        asked["--model-arg"] = (parse_model_args(spec, config.model_args), saved.model_args)
    clash = [f"{flag} {new} (saved: {old})" for flag, (new, old) in asked.items() if new != old]
    if clash:
        raise UsageError(f"--resume continues the run with its saved settings, but {', '.join(clash)} "
                         "would change it: drop those options, or start over with --force")
    return saved


def _effective(saved: RunSettings, name: str):
    """A saved setting as it acted: a run saved without a hold-out share held out the default."""
    value = getattr(saved, name)
    if name == "holdout" and value is None:
        from ..imagefolder import DEFAULT_HOLDOUT

        return DEFAULT_HOLDOUT
    return value
