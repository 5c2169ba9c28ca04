"""Classify image files with a PyTorch model, and the result type both engines share.

Images are read by zoo.images.load_image (the model's channels, centre-cropped and
resized to its H x W) and normalised by zoo.preprocess.normalize with the spec's
eval transforms. zoo.onnx.predict does the same with ONNX Runtime.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ExportError
from .images import load_image
from .spec import ModelSpec


@dataclass
class Prediction:
    file: str
    top: list[tuple[str, float]]  # (class name, probability), best first

    def as_dict(self) -> dict:
        return {"file": self.file, "top": [{"class": c, "probability": p} for c, p in self.top]}


def softmax_top(logits: np.ndarray, class_names, k: int, source: str = "the model",
                images: list[str | Path] | None = None) -> list[list[tuple[str, float]]]:
    """The k most probable classes of each row. NaN or +inf logits (broken weights, or a file
    whose preprocessing divides by next to nothing) are an error, never 'nan%' shown as an
    answer; -inf is a class ruled out (probability 0), as long as one class is not."""
    bad = np.flatnonzero(np.isnan(logits).any(axis=1) | np.isposinf(logits).any(axis=1)
                         | ~np.isfinite(logits.max(axis=1)))
    if len(bad):
        which = f" for {images[bad[0]]}" if images is not None else ""
        raise ExportError(f"{source} gave non-finite outputs (NaN or infinity){which}: its weights or its "
                          "preprocessing are broken; export it again from trained weights")
    z = logits.astype(np.float64)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    probs = z / z.sum(axis=1, keepdims=True)
    order = np.argsort(-probs, axis=1)[:, :k]
    return [[(str(class_names[j]), float(row[j])) for j in idx] for row, idx in zip(probs, order)]


def read_images(images: list[str | Path], shape, invert: bool = False) -> np.ndarray:
    """uint8 (n, C, H, W) pixels of image files, as the model with input `shape` sees them."""
    return np.stack([load_image(p, tuple(shape), invert) for p in images])


def predict_torch(spec: ModelSpec, model, images: list[str | Path], top: int = 3,
                  class_names: tuple[str, ...] | None = None, invert: bool = False) -> list[Prediction]:
    """Top-k classes of each image with the PyTorch model and the spec's eval preprocessing;
    `class_names` of the data the weights were trained on, when it differs from the spec's."""
    import torch

    from .preprocess import normalize

    pixels = torch.from_numpy(read_images(images, spec.input_shape, invert))
    with torch.inference_mode():
        logits = model.eval()(normalize(pixels, spec.eval_transforms)).float().numpy()
    top_k = softmax_top(logits, class_names or spec.class_names, top, f"{spec.name}'s PyTorch model", images)
    return [Prediction(str(p), t) for p, t in zip(images, top_k)]
