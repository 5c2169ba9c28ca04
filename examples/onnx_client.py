#!/usr/bin/env python3
"""Classify images with a zoo ONNX export using only onnxruntime, numpy and Pillow.

    python examples/onnx_client.py exported/lenet5.onnx digit.png drawing.png --top 3
    python examples/onnx_client.py exported/lenet5.int8.onnx drawing.png --invert --json

Everything it needs comes from the file's metadata (see "What an exported file
records" in the README): input name, shape and dtype, preprocessing, polarity,
resize rule, output kind and class names. No torch, no zoo: copy this file next to
the model and it works. `zoo predict` gives the same probabilities (CI checks it).
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageOps


def metadata(session: ort.InferenceSession, model: str) -> dict:
    """The zoo.* metadata_props, JSON values decoded."""
    props = session.get_modelmeta().custom_metadata_map
    meta = {}
    for key, value in props.items():
        if key.startswith("zoo."):
            try:
                meta[key[4:]] = json.loads(value)
            except ValueError:
                meta[key[4:]] = value
    if "model" not in meta:
        sys.exit(f"error: {model} has no zoo metadata (not made by `zoo export`)")
    return meta


def read_image(path: str, meta: dict, invert: bool) -> np.ndarray:
    """uint8 (C, H, W): the file's channels, centre-cropped to the input's aspect ratio, then Lanczos."""
    channels, height, width = meta["input_shape"][1:]
    with Image.open(path) as img:
        img = img.convert("L" if channels == 1 else "RGB")
        if img.size != (width, height):  # zoo.resize: crop to the aspect ratio first, never stretch
            img = ImageOps.fit(img, (width, height), method=Image.Resampling.LANCZOS)
        pixels = np.asarray(img, dtype=np.uint8)
    if invert:  # zoo.input_polarity "light-on-dark": a dark-on-light drawing must be inverted
        pixels = 255 - pixels
    return pixels[None] if channels == 1 else pixels.transpose(2, 0, 1)


def model_input(pixels: np.ndarray, meta: dict) -> np.ndarray:
    prep = meta["preprocessing"]
    if prep["in_graph"]:  # --raw-input exports take the uint8 pixels themselves
        return pixels
    mean = np.asarray(prep["mean"], dtype=np.float32).reshape(1, -1, 1, 1)
    std = np.asarray(prep["std"], dtype=np.float32).reshape(1, -1, 1, 1)
    return ((pixels.astype(np.float32) / np.float32(255.0) - mean) / std).astype(np.float32)


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def classify(model: str, images: list[str], invert: bool = False) -> tuple[dict, np.ndarray]:
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    meta = metadata(session, model)
    x = model_input(np.stack([read_image(p, meta, invert) for p in images]), meta)
    batch = meta["input_shape"][0]
    outputs = []
    for start in range(0, len(x), batch if isinstance(batch, int) else len(x)):
        part = x[start:start + batch] if isinstance(batch, int) else x
        n = len(part)
        if isinstance(batch, int) and n < batch:  # a static batch: pad, then drop the padding's results
            part = np.concatenate([part, np.repeat(part[-1:], batch - n, axis=0)])
        outputs.append(session.run([meta["output_name"]], {meta["input_name"]: part})[0][:n])
    logits = np.concatenate(outputs)
    assert meta.get("output", "logits") == "logits", "this client knows logits outputs only"
    return meta, softmax(logits)


def main() -> int:
    parser = argparse.ArgumentParser(description="Classify images with a zoo ONNX export.")
    parser.add_argument("model")
    parser.add_argument("images", nargs="+")
    parser.add_argument("--top", type=int, default=3)
    parser.add_argument("--invert", action="store_true", help="dark-on-light drawings for a light-on-dark model")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    meta, probs = classify(args.model, args.images, args.invert)
    names = meta["class_names"]
    results = []
    for path, row in zip(args.images, probs):
        order = np.argsort(-row)[:args.top]
        results.append({"file": path, "top": [{"class": names[j], "probability": float(row[j])} for j in order]})
    if args.json:
        print(json.dumps({"model": meta["model"], "predictions": results}, indent=2))
    else:
        for r in results:
            print(f"{r['file']}: " + ", ".join(f"{t['class']} {t['probability']:.1%}" for t in r["top"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
