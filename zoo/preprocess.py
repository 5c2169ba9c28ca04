"""The model's input preprocessing, defined once: uint8 pixels (N, C, H, W) -> float32
scaled to [0, 1] and normalised with the spec's mean and std.

Training augmentation (zoo.train.augment), evaluation, the ONNX raw-input graph
(zoo.onnx.export.RawInput, which exports this module inside the graph), ONNX Runtime
prediction of float32 exports, and predict/features all use `Normalize`, so the same
image gives the same tensor everywhere (tests/test_preprocess.py checks it).
"""
from __future__ import annotations

from typing import Sequence

import torch

from .spec import Transforms


class Normalize(torch.nn.Module):
    """Same arithmetic as v2.ToDtype(scale=True) + v2.Normalize, on a whole batch at once."""

    def __init__(self, mean: Sequence[float], std: Sequence[float], device: torch.device | str | None = None):
        super().__init__()
        # (1, C, 1, 1) buffers: they broadcast over the batch, follow .to(device), and export as constants.
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32, device=device).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32, device=device).view(1, -1, 1, 1))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return (pixels.float() / 255.0 - self.mean) / self.std


def normalize(images: torch.Tensor, t: Transforms) -> torch.Tensor:
    """uint8 (N, C, H, W) -> the model's float32 input, with the mean/std of transforms `t`."""
    if images.dtype != torch.uint8:
        raise TypeError(f"normalize expects uint8 images, got {images.dtype}")
    return Normalize(t.mean, t.std, images.device)(images)
