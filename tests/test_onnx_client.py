"""examples/onnx_client.py: a client with only onnxruntime, numpy and Pillow (torch and zoo are
blocked from importing) classifies real images from the file's metadata alone, and matches
`zoo predict` on fp32, int8, fp16 and --raw-input exports, non-square and inverted images included."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import zoo
from zoo.cli.main import app
from zoo.data.resolve import load_dataset
from zoo.onnx.pipeline import export_and_verify
from zoo.onnx.export import ExportOptions
from zoo.onnx.quantize import QuantizeOptions
from zoo.onnx.variants import export_quantized
from zoo.runs import untrained_weights as untrained

CLIENT = Path(__file__).resolve().parent.parent / "examples" / "onnx_client.py"
# Run the client with torch and zoo made unimportable: it must not need them.
NO_TORCH = ("import runpy, sys; sys.modules['torch'] = None; sys.modules['zoo'] = None; "
            "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("client")
    spec = zoo.get_spec("lenet5")
    source = untrained(spec)
    paths = {"fp32": export_and_verify(spec, weights=source, out_dir=root).path,
             "raw": export_and_verify(spec, weights=source, out_dir=root, options=ExportOptions(raw_input=True)).path}
    for precision in ("int8", "fp16"):  # untrained weights: the accuracy check would mean nothing here
        q = QuantizeOptions(precision, calibration=64, max_drop=100, min_agreement=0, verify_samples=64)
        paths[precision] = export_quantized(spec, source, q, out=root / f"lenet5.{precision}.onnx").path
    q = QuantizeOptions("fp16", max_drop=100, min_agreement=0, verify_samples=64)
    paths["raw fp16"] = export_quantized(spec, source, q, out=root / "lenet5.raw.fp16.onnx",
                                         options=ExportOptions(raw_input=True)).path
    test = load_dataset("mnist", "test", offline=True)
    images = []
    for i, index in enumerate((0, 500, 999)):
        digit = test.images[index, 0].numpy()
        images.append(root / f"square-{i}.png")
        Image.fromarray(digit, mode="L").save(images[-1])
    wide = np.zeros((28, 50), np.uint8)  # non-square: the crop-then-Lanczos rule matters
    wide[:, 11:39] = test.images[100, 0].numpy()
    images.append(root / "wide.png")
    Image.fromarray(wide, mode="L").resize((100, 56), Image.Resampling.BILINEAR).save(images[-1])
    rgb = np.stack([255 - test.images[300, 0].numpy()] * 3, axis=-1)  # dark ink on white, in colour
    images.append(root / "drawing.jpg")
    Image.fromarray(rgb, mode="RGB").resize((40, 30)).save(images[-1], quality=95)
    return paths, [str(p) for p in images]


def client(model: str, images: list[str], invert: bool) -> list[dict]:
    args = [sys.executable, "-c", NO_TORCH, str(CLIENT), model, *images, "--json", "--top", "10"]
    proc = subprocess.run(args + (["--invert"] if invert else []), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)["predictions"]


def zoo_predict(model: str, images: list[str], invert: bool) -> list[dict]:
    result = CliRunner().invoke(app, ["predict", "lenet5", *images, "--onnx", model, "--json", "--top", "10"]
                                + (["--invert"] if invert else []))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["predictions"]


@pytest.mark.parametrize("variant", ["fp32", "raw", "int8", "fp16", "raw fp16"])
@pytest.mark.parametrize("invert", [False, True])
def test_client_matches_zoo_predict(files, variant, invert):
    paths, images = files
    ours, theirs = client(paths[variant], images, invert), zoo_predict(paths[variant], images, invert)
    assert len(ours) == len(theirs) == len(images)
    for a, b in zip(ours, theirs):
        pa = {t["class"]: t["probability"] for t in a["top"]}
        pb = {t["class"]: t["probability"] for t in b["top"]}
        assert pa.keys() == pb.keys() and len(pa) == 10
        assert max(abs(pa[c] - pb[c]) for c in pa) <= 1e-5
        assert a["top"][0]["class"] == b["top"][0]["class"]


def test_client_needs_zoo_metadata(files, tmp_path):
    import onnx

    paths, images = files
    model = onnx.load(paths["fp32"])
    del model.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(model, str(bare))
    proc = subprocess.run([sys.executable, str(CLIENT), str(bare), images[0]], capture_output=True, text=True)
    assert proc.returncode != 0 and "no zoo metadata" in proc.stderr
