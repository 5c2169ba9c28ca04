"""Feature maps: what every conv and pool layer outputs for one image.

`capture_feature_maps` runs the model once with forward hooks on its conv and
pool modules; `save_feature_maps` writes each channel as a grayscale PNG (one
folder per layer) and one grid per layer with the input image beside it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from torch import nn
from torch.nn.modules.conv import _ConvNd
from torch.nn.modules.pooling import (_AdaptiveAvgPoolNd, _AdaptiveMaxPoolNd, _AvgPoolNd, _LPPoolNd,
                                      _MaxPoolNd)

from ..fileio import atomic_path
from ._figure import new_figure, save_png, styled

POOLS = (_MaxPoolNd, _AvgPoolNd, _AdaptiveAvgPoolNd, _AdaptiveMaxPoolNd, _LPPoolNd)
MIN_CHANNEL_PX = 56  # a 5x5 map becomes 60x60: big enough to see each cell
GRID_MAX_CHANNELS = 64  # wider layers: the grid shows the first 64, the folder has them all


@dataclass
class FeatureMap:
    index: int  # order in the forward pass, from 1
    name: str  # module path, e.g. "pool1" or "block2.conv1"
    kind: str  # module class, e.g. "Conv2d"
    maps: torch.Tensor  # (C, H, W) float32

    @property
    def folder_name(self) -> str:
        return f"{self.index:02d}-{self.name}"


@dataclass
class Prediction:
    label: int
    probability: float


def is_feature_layer(module: nn.Module) -> bool:
    return isinstance(module, (_ConvNd, *POOLS))


def capture_feature_maps(model: nn.Module, x: torch.Tensor) -> tuple[list[FeatureMap], Prediction]:
    """Run one normalised image x (1, C, H, W) through model; return the 2-D maps of every
    conv and pool module in call order, and the model's prediction."""
    captured: list[FeatureMap] = []

    def hook(name: str, module: nn.Module):
        def record(_module, _inputs, output):
            if isinstance(output, torch.Tensor) and output.dim() == 4:  # (1, C, H, W); 1-d convs are skipped
                # clone: a later in-place ReLU must not change what we saw.
                captured.append(FeatureMap(len(captured) + 1, name, type(module).__name__,
                                           output[0].detach().float().clone()))
        return record

    handles = [m.register_forward_hook(hook(n, m)) for n, m in model.named_modules() if is_feature_layer(m)]
    try:
        with torch.no_grad():
            logits = model(x)  # (1, K)
    finally:
        for h in handles:
            h.remove()
    probs = torch.softmax(logits[0].float(), dim=0)
    label = int(probs.argmax())
    return captured, Prediction(label, float(probs[label]))


def to_uint8(channel: torch.Tensor) -> torch.Tensor:
    """One (H, W) map scaled to 0-255 by its own min and max; a constant map is black."""
    lo, hi = float(channel.min()), float(channel.max())
    if hi - lo < 1e-12:
        return torch.zeros_like(channel, dtype=torch.uint8)
    return ((channel - lo) / (hi - lo) * 255).round().to(torch.uint8)


def upscale_factor(height: int, width: int, min_px: int = MIN_CHANNEL_PX) -> int:
    return max(1, math.ceil(min_px / min(height, width)))


def save_gray_png(pixels: torch.Tensor, path: Path, factor: int) -> None:
    """uint8 (H, W) or (C, H, W) saved as PNG, enlarged by an integer factor with nearest
    neighbour so every cell of a small map stays a crisp square."""
    from PIL import Image

    if pixels.dim() == 3:
        pixels = pixels[0] if pixels.shape[0] == 1 else pixels.permute(1, 2, 0)
    array = pixels.contiguous().numpy()
    img = Image.fromarray(array, mode="L" if array.ndim == 2 else "RGB")
    img = img.resize((img.width * factor, img.height * factor), Image.Resampling.NEAREST)
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")


def save_feature_maps(maps: list[FeatureMap], image: torch.Tensor, out_dir: str | Path, *, model_name: str,
                      class_names: Sequence[str], prediction: Prediction, true_label: int | None = None,
                      image_label: str = "input") -> list[Path]:
    """Write out_dir/input.png, out_dir/NN-layer/channel-CCC.png and out_dir/NN-layer.png
    (the grid). Returns the grid paths, one per layer."""
    out_dir = Path(out_dir)
    save_gray_png(image, out_dir / "input.png", upscale_factor(*image.shape[1:]))
    grids = []
    for fmap in maps:
        folder = out_dir / fmap.folder_name
        factor = upscale_factor(*fmap.maps.shape[1:])
        for c, channel in enumerate(fmap.maps):
            save_gray_png(to_uint8(channel), folder / f"channel-{c:03d}.png", factor)
        caption = _input_caption(class_names, prediction, true_label, image_label)
        grids.append(plot_feature_grid(fmap, image, out_dir / f"{fmap.folder_name}.png",
                                       title=f"{model_name}: {fmap.name}", caption=caption))
    return grids


def _input_caption(class_names, prediction: Prediction, true_label: int | None, image_label: str) -> str:
    lines = [image_label, f"predicted: {class_names[prediction.label]} ({prediction.probability:.0%})"]
    if true_label is not None:
        lines.append(f"true: {class_names[true_label]}")
    return "\n".join(lines)


def _grid_shape(n: int) -> tuple[int, int]:
    cols = n if n <= 4 else math.ceil(math.sqrt(n)) if n <= 16 else 8
    return math.ceil(n / cols), cols


def plot_feature_grid(fmap: FeatureMap, image: torch.Tensor, path: Path, title: str, caption: str) -> Path:
    """The input image on the left, every channel of one layer on the right (own min-max each)."""
    channels, height, width = fmap.maps.shape
    shown = min(channels, GRID_MAX_CHANNELS)
    rows, cols = _grid_shape(shown)
    cell = 1.35 if cols <= 4 else 1.1
    with styled():
        fig = new_figure(2.9 + cols * cell, max(4.3, rows * cell + 1.3))
        left, right = fig.subfigures(1, 2, width_ratios=[2.9, cols * cell], wspace=0.02)
        ax = left.subplots()
        _show(ax, image.permute(1, 2, 0).numpy() if image.shape[0] == 3 else image[0].numpy())
        ax.set_title(caption, fontsize=10, loc="center")
        axes = right.subplots(rows, cols, squeeze=False)
        for c, cax in enumerate(axes.flat):
            if c < shown:
                channel = fmap.maps[c]
                _show(cax, to_uint8(channel).numpy())
                # A flat channel (often a "dead" ReLU) would just look black: say so.
                flat = float(channel.max() - channel.min()) < 1e-12
                cax.set_title(f"ch {c}" + (f" (all {float(channel.max()):.2g})" if flat else ""), fontsize=9, pad=3)
            else:
                cax.set_axis_off()
        more = f", first {shown} shown" if shown < channels else ""
        fig.suptitle(f"{title} ({fmap.kind}): {channels} channels of {height}x{width}{more}\n"
                     f"each channel scaled to its own range, white = strongest response",
                     fontsize=12)
        return save_png(fig, path)


def _show(ax, array) -> None:
    ax.imshow(array, cmap="gray", interpolation="nearest", vmin=0, vmax=255)  # uint8, as in the PNGs
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(True)
        spine.set_color("0.7")
