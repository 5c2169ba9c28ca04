"""`zoo predict`: real PNG digits through ONNX Runtime, PyTorch and a --raw-input export."""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file
from typer.testing import CliRunner

import zoo
from zoo.cli.main import app
from zoo.data.resolve import load_dataset
from zoo.onnx import ExportOptions, export_and_verify
from zoo.runs import resolve_weights
from zoo.preprocess import normalize

runner = CliRunner()
DIGITS = 5  # test images written as PNG files, one per class 0..4


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def quick_train(spec, data, seed: int = 0):
    """One pass over the bundled sample (4,000 digits): enough to tell digits apart."""
    torch.manual_seed(seed)
    model = spec.builder()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))
    x, y = normalize(data.images[order], spec.eval_transforms), data.labels[order]
    model.train()
    for start in range(0, len(x), 64):
        loss = torch.nn.functional.cross_entropy(model(x[start:start + 64]), y[start:start + 64])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """A briefly trained lenet5, its plain and --raw-input exports, and real test digits as PNG files."""
    root = tmp_path_factory.mktemp("predict")
    spec = zoo.get_spec("lenet5")
    model = quick_train(spec, load_dataset("mnist", "train", offline=True))
    weights = root / "model.safetensors"
    save_file(model.state_dict(), str(weights))
    source = resolve_weights(spec, weights)
    plain = export_and_verify(spec, weights=source, out_dir=root / "plain")
    raw = export_and_verify(spec, weights=source, out_dir=root / "raw", options=ExportOptions(raw_input=True))
    assert plain.ok and raw.ok, (plain.verification.failures, raw.verification.failures)
    test = load_dataset("mnist", "test", offline=True)
    # The sample's labels are sorted by class; take the first image of classes 0..4.
    picks = [int((test.labels == c).nonzero()[0]) for c in range(DIGITS)]
    files = []
    for c, i in zip(range(DIGITS), picks):
        files.append(root / f"digit-{c}.png")
        Image.fromarray(test.images[i, 0].numpy(), mode="L").save(files[-1])
    with torch.no_grad():
        logits = model(normalize(test.images[picks], spec.eval_transforms))
    return SimpleNamespace(root=root, spec=spec, model=model, weights=weights, plain=Path(plain.path),
                           raw=Path(raw.path), files=files, probs=torch.softmax(logits, 1).numpy(),
                           pixels=test.images[picks])


def predictions(result) -> list[dict]:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["predictions"]


def test_predict_png_digits_with_onnx_runtime(digits):
    preds = predictions(invoke("predict", "lenet5", *digits.files, "--onnx", digits.plain, "--json", "--top", "3"))
    assert [p["file"] for p in preds] == [str(f) for f in digits.files]
    for pred, probs in zip(preds, digits.probs):
        top = pred["top"]
        assert len(top) == 3 and top[0]["probability"] >= top[1]["probability"] >= top[2]["probability"]
        assert top[0]["class"] == str(int(probs.argmax()))  # what PyTorch says for the dataset tensor
        assert top[0]["probability"] == pytest.approx(float(probs.max()), abs=1e-5)
    correct = sum(p["top"][0]["class"] == str(c) for c, p in enumerate(preds))
    assert correct >= DIGITS - 1, f"only {correct} of {DIGITS} real digits recognised"


def test_predict_table_output_and_torch_flag_agree(digits):
    result = invoke("predict", "lenet5", digits.files[0], "--onnx", digits.plain)
    assert result.exit_code == 0 and f"{digits.files[0]}: " in result.stdout and "via ONNX Runtime" in result.stdout
    onnx_preds = predictions(invoke("predict", "lenet5", *digits.files, "--onnx", digits.plain, "--json"))
    torch_preds = predictions(invoke("predict", "lenet5", *digits.files, "--torch", "--weights", digits.weights,
                                     "--json"))
    for a, b in zip(onnx_preds, torch_preds):
        assert [t["class"] for t in a["top"]] == [t["class"] for t in b["top"]]
        assert a["top"][0]["probability"] == pytest.approx(b["top"][0]["probability"], abs=1e-5)


def test_raw_input_export_takes_uint8_pixels(digits):
    proto = onnx.load(str(digits.raw))
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["zoo.input_dtype"] == "uint8" and json.loads(meta["zoo.preprocessing"])["in_graph"] is True
    assert json.loads(meta["zoo.verification"])["verdict"] == "PASS"
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8
    session = ort.InferenceSession(str(digits.raw), providers=["CPUExecutionProvider"])
    logits = session.run(None, {"input": digits.pixels.numpy()})[0]  # pixels straight from the files
    probs = np.exp(logits - logits.max(1, keepdims=True))
    np.testing.assert_allclose(probs / probs.sum(1, keepdims=True), digits.probs, atol=1e-5)
    raw_preds = predictions(invoke("predict", "lenet5", *digits.files, "--onnx", digits.raw, "--json"))
    for pred, probs in zip(raw_preds, digits.probs):
        assert pred["top"][0]["probability"] == pytest.approx(float(probs.max()), abs=1e-5)
    result = invoke("verify", "lenet5", "--onnx", digits.raw, "--weights", digits.weights)
    assert result.exit_code == 0 and "PASS" in result.stdout


def test_rgb_and_larger_images_are_converted(digits, tmp_path):
    big = tmp_path / "digit-rgb.png"
    with Image.open(digits.files[3]) as img:  # colour and twice the size: converted and resized back
        img.convert("RGB").resize((56, 56), Image.Resampling.NEAREST).save(big)
    gray, rgb = predictions(invoke("predict", "lenet5", digits.files[3], big, "--onnx", digits.plain, "--json"))
    assert gray["top"][0]["class"] == rgb["top"][0]["class"]
    # Bilinear resizing blurs a little, so the probabilities are close but not equal.
    assert gray["top"][0]["probability"] == pytest.approx(rgb["top"][0]["probability"], abs=0.02)


def test_bad_image_files_are_clear_errors(digits, tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    cut = tmp_path / "cut.png"
    cut.write_bytes(digits.files[0].read_bytes()[:60])
    for path, words in ((text, "not an image file"), (cut, "cannot decode"), (tmp_path / "gone.png", "no such file")):
        result = invoke("predict", "lenet5", digits.files[0], path, "--onnx", digits.plain)
        assert result.exit_code == 1, result.output
        assert result.stderr.startswith(f"error: {path}: {words}")
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output
        assert result.stdout == ""  # nothing half-printed


def test_an_export_whose_outputs_are_not_finite_is_an_error_not_nan_percent(digits, tmp_path):
    """A std that underflows in float32 (the metadata passes: it is positive) turns every
    input into infinities; so would NaN weights. Shown as '0 (nan%)' it read as an answer."""
    proto = onnx.load(str(digits.plain))
    for prop in proto.metadata_props:
        if prop.key == "zoo.preprocessing":
            prop.value = json.dumps(json.loads(prop.value) | {"std": [1e-40]})
    broken = tmp_path / "lenet5.onnx"
    onnx.save(proto, str(broken))
    result = invoke("predict", "lenet5", *digits.files[:2], "--onnx", broken, "--json")
    assert result.exit_code == 1 and result.stdout == "", result.output
    assert result.stderr.startswith(f"error: {broken} gave non-finite outputs (NaN or infinity) for {digits.files[0]}")
    assert len(result.stderr.strip().splitlines()) == 1
    verdict = invoke("verify", "lenet5", "--onnx", broken, "--weights", digits.weights, "--json")
    checks = {c["name"]: c for c in json.loads(verdict.stdout)["checks"]}
    assert verdict.exit_code == 1 and not checks["preprocessing"]["ok"], verdict.output
    assert "std [1e-40]" in checks["preprocessing"]["detail"]
    assert checks["weights"]["ok"]  # the same weights: only the metadata was changed


def test_predict_without_an_export_says_how_to_make_one(tmp_path, monkeypatch, digits):
    monkeypatch.chdir(tmp_path)
    result = invoke("predict", "lenet5", digits.files[0])
    assert result.exit_code == 1 and "zoo export NAME" in result.stderr


def test_invert_reads_dark_on_light_drawings_like_mnist(digits, tmp_path):
    drawn = []
    for path in digits.files:  # the same digits as a person draws them: black ink on white paper
        drawn.append(tmp_path / path.name)
        Image.fromarray(255 - np.asarray(Image.open(path)), mode="L").save(drawn[-1])
    original = predictions(invoke("predict", "lenet5", *digits.files, "--onnx", digits.plain, "--json"))
    inverted = predictions(invoke("predict", "lenet5", *drawn, "--onnx", digits.plain, "--json", "--invert"))
    for a, b in zip(original, inverted):
        assert a["top"] == b["top"]  # 255 - (255 - p) == p: identical pixels, identical answer
    as_is = predictions(invoke("predict", "lenet5", *drawn, "--onnx", digits.plain, "--json"))
    assert [p["top"][0]["class"] for p in as_is] != [p["top"][0]["class"] for p in original]


def test_minus_infinity_rules_a_class_out_but_nan_or_plus_infinity_is_an_error():
    from zoo.errors import ExportError
    from zoo.predict import softmax_top

    top = softmax_top(np.array([[0.0, -np.inf, np.log(3.0)]]), ["a", "b", "c"], 3)[0]
    assert [c for c, _ in top] == ["c", "a", "b"] and top[2][1] == 0.0
    assert top[0][1] == pytest.approx(0.75)
    for row in ([np.nan, 0.0, 0.0], [np.inf, 0.0, 0.0], [-np.inf] * 3):
        with pytest.raises(ExportError, match="non-finite outputs"):
            softmax_top(np.array([row]), ["a", "b", "c"], 3)
