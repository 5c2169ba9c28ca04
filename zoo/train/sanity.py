"""One look at the freshly built model before any training step.

A model whose output does not have one value per class, or that already outputs
NaN or Inf before a single step, is broken in itself: no learning rate causes
that, and training it would crash on an index error or be blamed on divergence.
"""
from __future__ import annotations

import torch

from ..errors import SpecError, TrainingError, describe
from ..spec import ModelSpec

PROBE_IMAGES = 2


def check_first_output(model: torch.nn.Module, spec: ModelSpec, images: torch.Tensor, normalize) -> None:
    """Run the first few training images (uint8 (N, C, H, W)) through `model` in eval mode."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(normalize(images[:PROBE_IMAGES]))
    except Exception as exc:  # a plugin's forward pass can fail in any way
        raise TrainingError(f"model '{spec.name}' ({spec.plugin or 'plugin'}) fails on its first batch, before "
                            f"any training: {describe(exc)}") from exc
    finally:
        model.train(was_training)
    if not isinstance(out, torch.Tensor) or out.dim() != 2:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise SpecError(f"model '{spec.name}' must return logits of shape (batch, {spec.num_classes}), got {got}")
    if out.shape[1] != spec.num_classes:
        raise SpecError(f"model '{spec.name}' outputs {out.shape[1]} values per image but its spec declares "
                        f"{spec.num_classes} classes: fix the model's last layer or its class_names "
                        f"(`zoo verify-shapes {spec.name}` shows every layer)")
    if not torch.isfinite(out).all():
        bad = "NaN" if torch.isnan(out).any() else "Inf"
        raise TrainingError(f"model '{spec.name}' outputs {bad} on its very first batch, before any training step: "
                            "the model itself is broken (its forward pass or initialisation), not the learning "
                            "rate; fix the model")
