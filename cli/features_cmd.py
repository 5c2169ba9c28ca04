"""`zoo features NAME`: every channel of every conv and pool layer for one image."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

import typer

from .common import escape, notice, out, run_spec


def features(
    name: str = typer.Argument(..., help="Model name, as `zoo list` shows it."),
    image: Optional[Path] = typer.Option(None, "--image", help="A PNG or JPEG to run through the model."),
    index: Optional[int] = typer.Option(None, "--index", help="Test image N of the model's dataset (default 0)."),
    invert: bool = typer.Option(False, "--invert", help="With --image: invert dark-on-light drawings to light-on-dark."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="Weights file (default RUN/model.safetensors)."),
    out_dir: Optional[Path] = typer.Option(None, "--out",
                                           help="Run folder (default runs/NAME); pictures go to RUN/features/."),
    dataset: Optional[str] = typer.Option(None, "--dataset", help="With --index: the dataset, a name or a folder of "
                                          "images (default: the one the weights were trained on)."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Where datasets live."),
    offline: bool = typer.Option(False, "--offline", help="Never download a dataset."),
) -> None:
    """Save the feature maps of one image: a grayscale PNG per channel and a grid per layer."""
    from zoo.errors import UsageError

    if image is not None and index is not None:
        raise UsageError("pass either --image PATH or --index N, not both")
    spec = run_spec(name, weights, out_dir)
    import torch

    from zoo.images import load_image
    from zoo.preprocess import normalize
    from zoo.runs import resolve_weights, run_dir
    from zoo.safeio import for_display
    from zoo.viz.features import capture_feature_maps, is_feature_layer, save_feature_maps

    trained = resolve_weights(spec, weights, out_dir)
    path, model = trained.path, trained.model
    if not any(is_feature_layer(m) for m in model.modules()):
        raise UsageError(f"model '{name}' has no conv or pool layers: it has no feature maps to show")
    if image is not None:
        pixels = torch.from_numpy(load_image(image, spec.input_shape, invert).copy())
        true_label = None
        class_names = trained.names(spec)
        label, folder = f"image {image.name}", f"image-{_safe_stem(image)}"
    else:
        pixels, true_label, class_names = _test_image(spec, path, dataset, index or 0, data_dir, offline)
        label, folder = f"test image #{index or 0}", f"test-{index or 0}"
    maps, prediction = capture_feature_maps(model, normalize(pixels[None], spec.eval_transforms))
    target = run_dir(name, out_dir) / "features" / folder
    class_names = [for_display(n, 80) for n in class_names]  # from run.json: no control characters in titles
    grids = save_feature_maps(maps, pixels, target, model_name=name, class_names=class_names,
                              prediction=prediction, true_label=true_label, image_label=label)
    truth = f", true {class_names[true_label]}" if true_label is not None else ""
    out.print(escape(f"{label}: predicted {class_names[prediction.label]} ({prediction.probability:.0%}){truth}"))
    for fmap, grid in zip(maps, grids):
        c, h, w = fmap.maps.shape
        size = f"{h}x{w}"
        out.print(escape(f"  {fmap.name:<16} {c:>4} x {size:<7} {grid}  + {c} channel PNGs in {target / fmap.folder_name}/"))
    out.print(escape(f"wrote {len(grids)} layers to {target}/ (input image: {target / 'input.png'})"))


def _test_image(spec, weights: Path, dataset: Optional[str], index: int, data_dir, offline: bool):
    from zoo.errors import UsageError
    from zoo.imagefolder.trained import load_test_data

    from .decode_display import DecodeDisplay

    with DecodeDisplay() as decoding:
        data = load_test_data(spec, weights, dataset, data_dir, offline, decoding)
    if data.notice:
        notice(data.notice)
    if not 0 <= index < len(data):
        raise UsageError(f"--index {index} is out of range: the '{data.variant}' test set has "
                         f"{len(data):,} images, pass 0 to {len(data) - 1}")
    return data.images[index], int(data.labels[index]), data.class_names


def _safe_stem(path: Path) -> str:
    """The image's file name as a folder name that stays inside features/."""
    # At most 64 characters: a legal file name can make an over-long folder name ("File name too long").
    return re.sub(r"[^A-Za-z0-9._-]+", "_", path.stem).strip("._")[:64] or "image"
