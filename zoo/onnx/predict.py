"""Classify image files with an exported model (ONNX Runtime); zoo.predict does it with
the PyTorch weights.

Images are read as zoo.predict reads them and preprocessed as the file's own
metadata says: normalised here for a float32 input, or passed as uint8 pixels when
the preprocessing is inside the graph (--raw-input exports).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ExportError, describe
from ..predict import Prediction, read_images, softmax_top
from ..spec import ModelSpec
from .metadata import ExportFacts
from .runtime import load_model, open_session
from .verify import facts_of



def _normalised(pixels: np.ndarray, mean, std) -> np.ndarray:
    """float32 model input with the mean/std the file records, by zoo.preprocess.Normalize."""
    import torch

    from ..preprocess import Normalize

    with torch.inference_mode():
        return Normalize(mean, std)(torch.from_numpy(pixels)).numpy()


def read_facts(onnx_path: str | Path, spec: ModelSpec | None = None, proto=None) -> ExportFacts:
    """The file's metadata, checked (zoo.onnx.metadata); for a file without zoo metadata, the spec stands in."""
    facts = facts_of(proto if proto is not None else load_model(onnx_path), str(onnx_path))
    if facts is None:
        if spec is None:
            raise ExportError(f"{onnx_path} has no zoo metadata: name the model it is for")
        t = spec.eval_transforms
        return ExportFacts(model=spec.name, input_shape=["batch", *spec.input_shape],
                           preprocessing={"mean": list(t.mean), "std": list(t.std), "in_graph": False},
                           class_names=list(spec.class_names))
    if spec is not None and facts.model != spec.name:
        raise ExportError(f"{onnx_path} is an export of '{facts.model}', not '{spec.name}'")
    return facts


def predict_images(onnx_path: str | Path, images: list[str | Path], spec: ModelSpec | None = None, top: int = 3,
                   provider: str = "auto", invert: bool = False) -> list[Prediction]:
    """Top-k classes of each image with ONNX Runtime and the file's own preprocessing."""
    proto = load_model(onnx_path)
    facts = read_facts(onnx_path, spec, proto)
    shape = tuple(facts.input_shape[1:]) if facts.input_shape else tuple(spec.input_shape)
    pixels = read_images(images, shape, invert)  # (n, C, H, W) uint8
    prep = facts.preprocessing
    x = pixels if facts.raw_input else _normalised(pixels, prep["mean"], prep["std"])
    session = open_session(proto.SerializeToString(), provider, where=str(onnx_path))
    chunk = facts.static_batch or len(x)
    parts = []
    for start in range(0, len(x), chunk):
        part = x[start:start + chunk]
        if len(part) < chunk:  # a static batch: pad with copies of the last image, drop their results
            part = np.concatenate([part, np.repeat(part[-1:], chunk - len(part), axis=0)])
        try:
            parts.append(np.asarray(session.run(part))[:len(x) - start])
        except Exception as exc:  # onnxruntime's own error classes
            raise ExportError(f"ONNX Runtime failed on {onnx_path}: {describe(exc)}") from exc
    logits = np.concatenate(parts)
    names = facts.class_names or [str(i) for i in range(logits.shape[1])]
    return [Prediction(str(p), t) for p, t in zip(images, softmax_top(logits, names, top, str(onnx_path), images))]
