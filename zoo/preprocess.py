"""Turning uint8 images into model input, batch-wise, from a spec's Transforms."""
from __future__ import annotations

import torch

from .spec import Transforms


def normalize(images: torch.Tensor, t: Transforms) -> torch.Tensor:
    """uint8 (N, C, H, W) -> float32 scaled to [0, 1] and normalised with the spec's mean/std.
    Same arithmetic as v2.ToDtype(scale=True) + v2.Normalize, on the whole batch at once."""
    if images.dtype != torch.uint8:
        raise TypeError(f"normalize expects uint8 images, got {images.dtype}")
    mean = torch.tensor(t.mean, device=images.device).view(1, -1, 1, 1)
    std = torch.tensor(t.std, device=images.device).view(1, -1, 1, 1)
    return (images.float() / 255.0 - mean) / std
