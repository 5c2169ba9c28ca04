"""Test-set evaluation: accuracy, loss, per-class accuracy, confusion matrix, predictions."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from ..spec import ModelSpec
from .augment import BatchTransform


@dataclass(frozen=True, eq=False)
class EvalResult:
    """accuracy: fraction correct in [0, 1]; loss: mean cross-entropy (no label
    smoothing); per_class_accuracy[k]: fraction of class k's samples predicted k
    (NaN when class k has none); confusion[i, j]: how many samples of true class i
    were predicted as j, int64 (K, K) on the CPU; predictions: int64 (N,) on the CPU,
    in the order of the images given."""

    accuracy: float
    loss: float
    samples: int
    per_class_accuracy: tuple[float, ...]
    confusion: torch.Tensor
    predictions: torch.Tensor

    @property
    def correct(self) -> int:
        return int(self.confusion.diagonal().sum())

    def as_dict(self, class_names: tuple[str, ...] | None = None) -> dict[str, Any]:
        names = class_names or tuple(str(k) for k in range(len(self.per_class_accuracy)))
        return {
            "accuracy": self.accuracy,
            "loss": self.loss,
            "samples": self.samples,
            "correct": self.correct,
            "per_class_accuracy": {n: (None if a != a else a) for n, a in zip(names, self.per_class_accuracy)},
            "confusion": self.confusion.tolist(),
            "class_names": list(names),
        }


@torch.inference_mode()
def evaluate(model: torch.nn.Module, images_uint8: torch.Tensor, labels: torch.Tensor, spec: ModelSpec,
             device: str | torch.device = "cpu", batch_size: int = 1024,
             transform: BatchTransform | None = None) -> EvalResult:
    """Run `model` over uint8 (N, C, H, W) images with the spec's eval transforms.

    The model must already be on `device`; it is put in eval mode for the pass and
    then returned to its previous mode. Loss, counts and predictions stay on the
    device and are read back once at the end.
    """
    device = torch.device(device)
    loss_sum, confusion, predictions = _totals(model, images_uint8, labels, spec, device, batch_size, transform)
    return _result(float(loss_sum), confusion.cpu(), predictions.cpu())


@torch.inference_mode()
def evaluate_shard(world, model: torch.nn.Module, images_uint8: torch.Tensor, labels: torch.Tensor,
                   spec: ModelSpec, device: torch.device, batch_size: int = 1024,
                   transform: BatchTransform | None = None) -> EvalResult:
    """`evaluate` split over the processes of a distributed run (zoo.train.distributed):
    each takes every size-th image from its rank, so each image is counted exactly once
    (no padding duplicates); the loss sum and the confusion matrix are summed over all,
    so the accuracy is that of one process evaluating the same weights. `predictions`
    holds only this process's share."""
    if not world.many:
        return evaluate(model, images_uint8, labels, spec, device, batch_size, transform)
    from .distributed import sum_

    share = slice(world.rank, None, world.size)
    loss_sum, confusion, predictions = _totals(model, images_uint8[share], labels[share], spec, device,
                                               batch_size, transform)
    loss_sum, confusion = sum_(world, loss_sum), sum_(world, confusion)
    return _result(float(loss_sum), confusion.cpu(), predictions.cpu())


def _totals(model, images_uint8, labels, spec, device, batch_size, transform):
    """(loss sum as a float64 scalar, confusion (K, K) int64, predictions (N,)), on the device."""
    k = spec.num_classes
    transform = transform or BatchTransform(spec.eval_transforms, device)
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    preds = []
    labels_dev = labels.to(device)
    try:
        for start in range(0, len(labels), batch_size):
            x = transform(images_uint8[start:start + batch_size].to(device, non_blocking=True))
            y = labels_dev[start:start + batch_size]
            logits = model(x)  # (b, K)
            loss_sum += F.cross_entropy(logits.float(), y, reduction="sum").double()
            preds.append(logits.argmax(1))
    finally:
        model.train(was_training)
    predictions = torch.cat(preds) if preds else torch.zeros(0, dtype=torch.int64, device=device)
    confusion = torch.bincount(labels_dev * k + predictions, minlength=k * k).view(k, k)  # (K, K)
    return loss_sum, confusion, predictions


def _result(loss_sum: float, confusion: torch.Tensor, predictions: torch.Tensor) -> EvalResult:
    n = int(confusion.sum())
    per_class = confusion.diagonal().double() / confusion.sum(1).double()  # NaN for empty classes
    return EvalResult(
        accuracy=float(confusion.diagonal().sum()) / n if n else float("nan"),
        loss=loss_sum / n if n else float("nan"),
        samples=n,
        per_class_accuracy=tuple(float(a) for a in per_class),
        confusion=confusion,
        predictions=predictions,
    )
