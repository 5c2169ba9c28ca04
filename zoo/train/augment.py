"""Batched, on-device augmentation derived from a spec's `zoo.Transforms`.

The same declaration builds the per-sample torchvision v2 pipeline
(`Transforms.__call__`); here it drives a vectorised version of it for whole
uint8 batches already on the training device:

    v2.RandomCrop(size, padding=p)  ->  pad the batch once with zeros, gather each
                                        sample's window at its own (top, left)
    v2.RandomHorizontalFlip()       ->  torch.where(flip, x.flip(-1), x) per sample
    v2.ToDtype(scale) + Normalize   ->  zoo.preprocess.Normalize (the one definition)

Random parameters are drawn for a whole epoch at once (`draw_params`), from a
CPU generator, so a run is reproducible on any device and resumable mid-epoch
without per-batch host/device traffic.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..preprocess import Normalize
from ..spec import Transforms


@dataclass(frozen=True)
class AugmentParams:
    """Per-sample random choices of one epoch, in batch order. top/left index the
    padded image (0..2p, as v2.RandomCrop draws them); flip is a bool mask."""

    top: torch.Tensor  # (N,) int64
    left: torch.Tensor  # (N,) int64
    flip: torch.Tensor  # (N,) bool

    def to(self, device) -> "AugmentParams":
        return AugmentParams(self.top.to(device), self.left.to(device), self.flip.to(device))

    def slice(self, start: int, stop: int) -> "AugmentParams":
        return AugmentParams(self.top[start:stop], self.left[start:stop], self.flip[start:stop])


class BatchTransform:
    """uint8 (B, C, H, W) on any device -> normalised float32 (B, C, H, W), with the
    declared augmentation applied per sample."""

    def __init__(self, transforms: Transforms, device: torch.device | str = "cpu"):
        self.t = transforms
        self.normalize = Normalize(transforms.mean, transforms.std, device)

    @property
    def augments(self) -> bool:
        return self.t.augments

    def draw_params(self, n: int, generator: torch.Generator) -> AugmentParams:
        """Random crop offsets and flips for n samples, drawn on the CPU."""
        p = self.t.crop_padding
        top = torch.randint(0, 2 * p + 1, (n,), generator=generator)
        left = torch.randint(0, 2 * p + 1, (n,), generator=generator)
        flip = torch.rand(n, generator=generator) < 0.5 if self.t.hflip else torch.zeros(n, dtype=torch.bool)
        return AugmentParams(top, left, flip)

    def __call__(self, x: torch.Tensor, params: AugmentParams | None = None) -> torch.Tensor:
        if params is not None and self.t.crop_padding:
            x = crop(x, self.t.crop_padding, params.top, params.left)
        if params is not None and self.t.hflip:
            x = hflip(x, params.flip)
        return self.normalize(x)


def crop(x: torch.Tensor, padding: int, top: torch.Tensor, left: torch.Tensor) -> torch.Tensor:
    """Zero-pad every image by `padding`, then cut each one's HxW window at its own
    (top, left) in padded coordinates: v2.RandomCrop(size, padding) for a batch."""
    b, c, h, w = x.shape
    padded = F.pad(x, (padding, padding, padding, padding))  # (b, c, h+2p, w+2p)
    pw = w + 2 * padding
    rows = top.view(b, 1) + torch.arange(h, device=x.device)  # (b, h)
    cols = left.view(b, 1) + torch.arange(w, device=x.device)  # (b, w)
    flat_index = (rows.view(b, h, 1) * pw + cols.view(b, 1, w)).view(b, 1, h * w)  # (b, 1, h*w)
    out = padded.flatten(2).gather(2, flat_index.expand(b, c, h * w))  # (b, c, h*w)
    return out.view(b, c, h, w)


def hflip(x: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """Mirror the images whose `flip` is True (v2.RandomHorizontalFlip per sample)."""
    return torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
