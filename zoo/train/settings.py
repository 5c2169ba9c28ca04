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
from ..spec import ModelSpec, Recipe
from .config import TrainConfig, resolve_recipe


@dataclass(frozen=True)
class RunSettings:
    recipe: Recipe
    seed: int  # model init, dropout, sample order and augmentation all derive from it
    dataset: str
    limit: int | None  # a seeded random subset of this many samples per split
    augment: bool  # False: normalise only
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
                           augment=data["augment"], holdout=data.get("holdout"),
                           skip_bad=data.get("skip_bad", False))
            valid = (type(settings.seed) is int and isinstance(settings.dataset, str)
                     and (limit is None or (type(limit) is int and limit >= 1)) and type(settings.augment) is bool
                     and (settings.holdout is None or type(settings.holdout) is float)
                     and type(settings.skip_bad) is bool)
        except (KeyError, TypeError, SpecError) as exc:
            raise CheckpointError(f"the checkpoint's settings are not valid ({exc}); start over with --force") from exc
        if not valid:
            raise CheckpointError("the checkpoint's settings are not valid; start over with --force")
        return settings


def settle(spec: ModelSpec, config: TrainConfig, meta: dict | None) -> RunSettings:
    """A new run's settings from the config and recipe; a resumed run's from its
    checkpoint, where an explicit option that differs is refused."""
    if meta is None:
        return RunSettings(
            recipe=resolve_recipe(spec, config),
            seed=0 if config.seed is None else int(config.seed),
            dataset=config.dataset or spec.dataset,
            limit=config.limit,
            augment=config.augment is not False,
            holdout=config.holdout,
            skip_bad=config.skip_bad,
        )
    saved = RunSettings.from_dict(meta.get("settings"))
    asked = {f"--{k.replace('_', '-')}": (v, getattr(saved.recipe, k)) for k, v in config.overrides().items()}
    asked |= {f"--{k}": (getattr(config, k), getattr(saved, k))
              for k in ("seed", "dataset", "limit", "augment", "holdout") if getattr(config, k) is not None}
    clash = [f"{flag} {new} (saved: {old})" for flag, (new, old) in asked.items() if new != old]
    if clash:
        raise UsageError(f"--resume continues the run with its saved settings, but {', '.join(clash)} "
                         "would change it: drop those options, or start over with --force")
    return saved
