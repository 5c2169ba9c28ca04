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
    confusion, predictions = confusion.cpu(), predictions.cpu()
    n = len(labels)
    per_class = confusion.diagonal().double() / confusion.sum(1).double()  # NaN for empty classes
    return EvalResult(
        accuracy=float(confusion.diagonal().sum()) / n if n else float("nan"),
        loss=float(loss_sum) / n if n else float("nan"),
        samples=n,
        per_class_accuracy=tuple(float(a) for a in per_class),
        confusion=confusion,
        predictions=predictions,
    )

