"""Did the run learn anything? A finished run whose test accuracy is at chance level
(1 / number of classes, within a margin) is not a success, whatever else went right.

`judge()` compares the final accuracy with chance and, when it is there, names the
likely causes for *this* run from its recipe, its model and its loss history, so the
learner gets "sigmoid + SGD at lr 0.01 needs many more epochs", not a generic hint.
The core only returns the verdict; the CLI words it on the terminal, run.json keeps it.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Sequence

from torch import nn

from ..spec import Recipe
from .config import EpochMetrics

LEARNED, CHANCE = "learned", "chance-level"
MIN_MARGIN = 0.05  # five points above chance at least: 14.9% on 10 classes has learned next to nothing
SATURATING = (nn.Sigmoid, nn.Tanh, nn.Hardsigmoid, nn.Hardtanh, nn.Softsign, nn.LogSigmoid)
HIGH_LR = {"sgd": 1.0, "adam": 0.05, "adamw": 0.05}  # steps this large throw most small nets around
LOW_LR = {"sgd": 1e-3, "adam": 1e-5, "adamw": 1e-5}
FEW_STEPS = 100


@dataclass(frozen=True)
class RunFacts:
    """What the verdict looks at, gathered by the session."""

    model: str
    num_classes: int
    test_samples: int
    train_samples: int
    batches_per_epoch: int
    recipe: Recipe
    metrics: Sequence[EpochMetrics]
    saturating: tuple[str, ...] = ()  # activation types that flatten out (Sigmoid, Tanh)
    normalize: str = "default"


@dataclass(frozen=True)
class Health:
    verdict: str  # LEARNED | CHANCE
    accuracy: float
    chance: float
    threshold: float  # at or below this the accuracy counts as chance level
    message: str = ""
    likely_causes: list[str] = field(default_factory=list)

    @property
    def at_chance(self) -> bool:
        return self.verdict == CHANCE

    def as_dict(self) -> dict:
        return asdict(self) | {"chance": round(self.chance, 6), "threshold": round(self.threshold, 6)}


def chance_threshold(num_classes: int, test_samples: int) -> tuple[float, float]:
    """(chance, threshold): a guess scores 1/K; three standard errors of such a guess on
    this many test images (or five points, whichever is more) still count as chance."""
    chance = 1.0 / num_classes
    spread = 3 * math.sqrt(chance * (1 - chance) / max(test_samples, 1))
    return chance, chance + max(MIN_MARGIN, spread)


def saturating_activations(model: nn.Module) -> tuple[str, ...]:
    return tuple(sorted({type(m).__name__ for m in model.modules() if isinstance(m, SATURATING)}))


def judge(facts: RunFacts) -> Health:
    last = facts.metrics[-1]
    chance, threshold = chance_threshold(facts.num_classes, facts.test_samples)
    if last.test_acc > threshold:
        return Health(LEARNED, last.test_acc, chance, threshold)
    message = (f"{facts.model}: test accuracy {last.test_acc:.2%} is chance level for {facts.num_classes} classes "
               f"(a guess scores {chance:.2%}): the model learned nothing useful")
    return Health(CHANCE, last.test_acc, chance, threshold, message, likely_causes(facts))


def likely_causes(facts: RunFacts) -> list[str]:
    """The causes that fit this run, most specific first; never empty."""
    r, metrics = facts.recipe, facts.metrics
    uniform = math.log(facts.num_classes)  # the cross-entropy of a uniform guess
    last_loss = metrics[-1].train_loss
    steps = len(metrics) * facts.batches_per_epoch
    causes: list[str] = []
    # A loss worse than guessing that also failed to fall over the epochs; one epoch's loss alone
    # can sit above ln K simply because the untrained net starts there.
    worse = last_loss > uniform * 1.05 and len(metrics) > 1 and last_loss >= metrics[0].train_loss
    too_high = r.lr >= HIGH_LR[r.optimizer] or worse
    if too_high:
        why = (f"the training loss ended at {last_loss:.3g}, worse than the {uniform:.2f} of a uniform guess"
               if worse else "steps this large throw the weights around (ReLU units can switch off for good)")
        causes.append(f"learning rate too high: lr {r.lr:g} with {r.optimizer}: {why}; try a lower --lr, or "
                      f"compare several with `zoo lr-sweep {facts.model} --lrs 0.1,0.01,0.001`")
    if facts.saturating and r.optimizer == "sgd" and r.lr <= 0.1 and not too_high:
        causes.append(f"{' and '.join(facts.saturating).lower()} activations with SGD at a low learning rate "
                      f"(lr {r.lr:g}, momentum {r.momentum:g}) learn slowly: the loss sits near {uniform:.2f} for "
                      f"many epochs before it falls; train many more epochs (--epochs), or use a higher --lr, "
                      f"momentum 0.9 or --optimizer adam")
    elif r.lr <= LOW_LR[r.optimizer]:
        causes.append(f"learning rate too low: lr {r.lr:g} with {r.optimizer} barely moves the weights in "
                      f"{steps:,} steps; try a higher --lr")
    if facts.normalize == "none":
        causes.append("raw 0-255 pixels (--normalize none) make the first layer's sums hundreds of times larger "
                      "than normalised inputs: saturating activations stick, large steps explode; use a lower "
                      "--lr or drop --normalize none")
    if steps < FEW_STEPS:
        causes.append(f"only {steps:,} optimizer steps ({len(metrics)} epoch(s) of {facts.batches_per_epoch} "
                      f"batches): too few to learn; train more epochs or use a smaller --batch-size")
    if facts.train_samples < 1000:
        causes.append(f"only {facts.train_samples:,} training images: too few for this model to learn from "
                      "(more images, or a larger --limit if one was given)")
    if not too_high and abs(last_loss - uniform) < 0.1 * uniform:
        causes.append(f"the training loss is still {last_loss:.3f}, about ln({facts.num_classes}) = {uniform:.2f}: "
                      f"the model has not started to learn yet")
    if metrics[-1].train_acc > threshold_of(facts) + 0.2:
        causes.append(f"train accuracy is {metrics[-1].train_acc:.2%} but test accuracy is at chance: the test "
                      "data may not match the training data (another dataset or preprocessing)")
    if not causes:
        causes.append(f"check the layers with `zoo verify-shapes {facts.model}` and the learning rate with "
                      f"`zoo lr-sweep {facts.model}`")
    return causes


def threshold_of(facts: RunFacts) -> float:
    return chance_threshold(facts.num_classes, facts.test_samples)[1]
