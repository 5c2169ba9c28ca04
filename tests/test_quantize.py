"""`zoo export --quantize int8|fp16` and `zoo verify` of such files: a real lenet5, trained briefly
on the bundled MNIST sample, quantized by ONNX Runtime and checked by accuracy with real sessions.

One training run and one export per precision are shared by the module (they are the
slow part); tests that damage or refuse a file work on copies or other paths.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper
from typer.testing import CliRunner

from zoo.cli.main import app
from zoo.data.resolve import load_dataset
from zoo.onnx.metadata import facts_from_props, props_of, set_props

runner = CliRunner()
# Loose enough for a model trained for two epochs on 2,000 images, tight enough to catch a broken file.
MAX_DROP, MIN_AGREEMENT = "3", "0.9"
INT8 = ("--calibration", "128", "--max-drop", MAX_DROP, "--min-agreement", MIN_AGREEMENT)


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("quantize")
    old = Path.cwd()
    os.chdir(root)  # default output paths (exported/...) land here
    try:
        result = invoke("train", "lenet5", "--epochs", "2", "--limit", "2000", "--batch-size", "64",
                        "--threads", "1", "--out", root / "runs" / "lenet5")
        assert result.exit_code == 0, result.output
        weights = root / "runs" / "lenet5" / "model.safetensors"
        exports = {}
        for precision, extra in (("int8", INT8), ("fp16", ())):
            result = invoke("export", "lenet5", "--quantize", precision, "--weights", weights, "--json", *extra)
            assert result.exit_code == 0, result.output
            exports[precision] = json.loads(result.stdout)
        yield SimpleNamespace(root=root, weights=weights, exports=exports)
    finally:
        os.chdir(old)


@pytest.fixture
def in_root(trained, monkeypatch):
    monkeypatch.chdir(trained.root)
    return trained


def facts(path: Path):
    return facts_from_props(props_of(onnx.load(str(path))))


def onnx_accuracy(path: Path) -> tuple[float, np.ndarray]:
    """Accuracy of the file on the sample's test split, computed here with a plain ORT session."""
    test = load_dataset("mnist", "test")
    meta = facts(path).preprocessing
    x = ((test.images.numpy().astype(np.float32) / 255 - meta["mean"][0]) / meta["std"][0]).astype(np.float32)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    logits = session.run(None, {"input": x})[0]
    return float((logits.argmax(1) == test.labels.numpy()).mean()), logits


def test_int8_file_is_quantized_smaller_recorded_and_as_accurate_as_claimed(in_root):
    report = in_root.exports["int8"]
    path = in_root.root / "exported" / "lenet5.int8.onnx"
    assert report["path"] == "exported/lenet5.int8.onnx" and path.is_file() and report["ok"]
    assert not (in_root.root / "exported" / "lenet5.onnx").exists()  # its own name: no fp32 file replaced
    model = onnx.load(str(path))
    ops = {n.op_type for n in model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv", "Gemm"} <= ops
    weights = [numpy_helper.to_array(t) for t in model.graph.initializer if t.data_type == onnx.TensorProto.INT8]
    assert sum(w.size for w in weights) > 40_000  # the conv and linear weights are int8 now
    assert path.stat().st_size < 0.4 * report["fp32_size_bytes"]
    f = facts(path)
    assert f.precision == "int8" and f.quantized
    q = f.quantization
    assert q["scheme"] == "static QDQ" and q["per_channel"] is True and q["reduce_range"] is True
    assert max(int(np.abs(w.astype(np.int16)).max()) for w in weights) <= 64  # 7-bit: no 16-bit saturation
    last = next(n for n in model.graph.node if "logits" in n.output)
    assert last.op_type == "Gemm"  # float logits, not requantized to 256 steps
    assert (q["activation_type"], q["weight_type"]) == ("uint8", "int8")
    assert q["calibration"] | {} == {"dataset": "mnist", "variant": "mnist-sample", "split": "train", "count": 128,
                                     "method": "minmax", "seed": 0}
    acc = f.accuracy
    assert acc["samples"] == 1000 and acc["dataset"] == "mnist-sample"
    assert acc["drop_points"] <= float(MAX_DROP) and acc["agreement"] >= float(MIN_AGREEMENT)
    assert acc["pytorch"] > 0.5  # a trained model, not chance
    measured, _ = onnx_accuracy(path)
    assert measured == pytest.approx(acc["onnx"], abs=1e-9)  # the recorded figure is what the file does
    assert f.verification["verdict"] == "PASS" and f.verification["providers"] == ["CPUExecutionProvider"]
    assert f.output == "logits" and f.input_polarity == "light-on-dark" and "Lanczos" in f.resize
    speed = report["speed"]
    assert [t["label"] for t in speed["timings"]] == ["fp32", "int8"]
    assert all(t["batch1_ms"] > 0 and t["providers"] == ["CPUExecutionProvider"] for t in speed["timings"])


def test_fp16_file_keeps_float32_io_and_the_accuracy(in_root):
    path = in_root.root / "exported" / "lenet5.fp16.onnx"
    report = in_root.exports["fp16"]
    assert report["path"] == "exported/lenet5.fp16.onnx" and report["ok"]
    model = onnx.load(str(path))
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert model.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    halves = [t for t in model.graph.initializer if t.data_type == onnx.TensorProto.FLOAT16]
    assert sum(np.prod(t.dims) for t in halves) > 40_000
    assert path.stat().st_size < 0.6 * report["fp32_size_bytes"]
    f = facts(path)
    assert f.precision == "fp16" and "float16" in f.quantization["tool"]
    assert abs(f.accuracy["drop_points"]) <= 0.5 and f.accuracy["agreement"] >= 0.99
    measured, logits = onnx_accuracy(path)
    assert measured == pytest.approx(f.accuracy["onnx"], abs=1e-9) and logits.dtype == np.float32


@pytest.mark.parametrize("precision", ["int8", "fp16"])
def test_verify_recognises_the_file_and_checks_accuracy(in_root, precision):
    result = invoke("verify", "lenet5", "--onnx", f"exported/lenet5.{precision}.onnx", "--weights", in_root.weights,
                    "--max-drop", MAX_DROP, "--min-agreement", MIN_AGREEMENT, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["mode"] == "accuracy" and report["verdict"] == "PASS"
    names = [c["name"] for c in report["checks"]]
    assert "accuracy on 1000 mnist-sample test images" in names and "top-1 agreement" in names


def _tampered(src: Path, dst: Path, edit) -> Path:
    model = onnx.load(str(src))
    edit(model)
    onnx.save(model, str(dst))
    return dst


def test_a_tampered_int8_file_fails_verify(in_root, tmp_path):
    src = in_root.root / "exported" / "lenet5.int8.onnx"

    def flip_conv_weights(model):  # same shapes and metadata, other int8 weights
        for t in model.graph.initializer:
            if t.data_type == onnx.TensorProto.INT8 and len(t.dims) == 4:
                w = numpy_helper.to_array(t)
                t.CopyFrom(numpy_helper.from_array(np.ascontiguousarray(-w), t.name))

    path = _tampered(src, tmp_path / "lenet5.int8.onnx", flip_conv_weights)
    result = invoke("verify", "lenet5", "--onnx", path, "--weights", in_root.weights, "--max-drop", MAX_DROP,
                    "--min-agreement", MIN_AGREEMENT)
    assert result.exit_code == 1
    assert "FAIL lenet5" in result.stdout

    def claim_fp32(model):  # relabelled as fp32: judged by element-wise closeness, which int8 cannot meet
        f = facts_from_props(props_of(model))
        f.precision = "fp32"
        set_props(model, f.to_props())

    path = _tampered(src, tmp_path / "relabelled.onnx", claim_fp32)
    result = invoke("verify", "lenet5", "--onnx", path, "--weights", in_root.weights)
    assert result.exit_code == 1 and "beyond tolerance" in result.stdout


def outlier_weights(weights: Path, out: Path) -> Path:
    """The same function, hard to quantize: conv1's channel 0 scaled up 1000x and conv2's
    weights on that channel down 1000x (ReLU and max-pooling commute with a positive
    scale). One uint8 range must now span that channel, and the others round to zero."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    with safe_open(str(weights), "pt") as f:
        metadata = f.metadata()
    state = load_file(str(weights))
    state["conv1.weight"][0] *= 1000
    state["conv1.bias"][0] *= 1000
    state["conv2.weight"][:, 0] /= 1000
    save_file(state, str(out), metadata=metadata)
    return out


def test_max_drop_zero_refuses_a_lossy_file_and_leaves_nothing(in_root, tmp_path):
    weights = outlier_weights(in_root.weights, tmp_path / "outlier.safetensors")
    out = tmp_path / "out" / "lenet5.int8.onnx"
    out.parent.mkdir()
    result = invoke("export", "lenet5", "--quantize", "int8", "--weights", weights, "--out", out,
                    "--calibration", "128", "--max-drop", "0", "--min-agreement", "0")
    assert result.exit_code == 1
    drop = re.search(r"drop (-?[0-9.]+) points \(max 0\)", result.stdout)
    assert drop and float(drop.group(1)) > 0, result.stdout  # refused for the drop, not something else
    assert "was not written" in result.output and "nothing was left behind" in result.output
    assert list(out.parent.iterdir()) == []


def test_full_range_keeps_8_bit_weights(in_root, tmp_path):
    out = tmp_path / "full.onnx"
    result = invoke("export", "lenet5", "--quantize", "int8", "--weights", in_root.weights, "--out", out,
                    "--full-range", "--verify-samples", "200", *INT8)
    assert result.exit_code == 0, result.output
    weights = [numpy_helper.to_array(t) for t in onnx.load(str(out)).graph.initializer
               if t.data_type == onnx.TensorProto.INT8]
    assert max(int(np.abs(w.astype(np.int16)).max()) for w in weights) > 64
    assert facts(out).quantization["reduce_range"] is False


def test_no_calibration_data_is_one_line(in_root, tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    result = invoke("export", "lenet5", "--quantize", "int8", "--weights", in_root.weights, "--dataset", "cifar10",
                    "--out", tmp_path / "x.onnx", "--data-dir", tmp_path / "nothing-here")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no calibration data") and "cifar10" in lines[0]
    assert "--data-dir" in lines[0] and "Traceback" not in result.output
    assert not (tmp_path / "x.onnx").exists()


def test_unknown_precision_is_a_choice_error(in_root):
    result = invoke("export", "lenet5", "--quantize", "int4", "--untrained")
    assert result.exit_code == 2 and "'int4' is not one of 'int8', 'fp16'" in result.output


@pytest.fixture(scope="module")
def fp32_export(trained):
    path = trained.root / "exported" / "lenet5.onnx"
    old = Path.cwd()
    os.chdir(trained.root)
    try:
        result = invoke("export", "lenet5", "--weights", trained.weights)
    finally:
        os.chdir(old)
    assert result.exit_code == 0, result.output
    return path


def test_raw_input_export_gets_its_own_default_name(in_root, fp32_export):
    fp32 = fp32_export
    before = fp32.read_bytes()
    result = invoke("export", "lenet5", "--raw-input", "--weights", in_root.weights)
    assert result.exit_code == 0, result.output
    raw = in_root.root / "exported" / "lenet5.raw.onnx"
    assert "exported/lenet5.raw.onnx" in result.stdout and facts(raw).raw_input
    assert fp32.read_bytes() == before and not facts(fp32).raw_input  # the float export and its vectors stay
    assert (in_root.root / "exported" / "lenet5" / "vectors.json").is_file()
    assert json.loads((in_root.root / "exported" / "lenet5.raw" / "vectors.json").read_text())["input_dtype"] == "uint8"


def test_an_operator_the_quantizer_cannot_handle_is_named():
    from onnx import TensorProto, helper

    from zoo.errors import ExportError
    from zoo.onnx.quantize import QuantizeOptions, quantize_int8

    weight = numpy_helper.from_array(np.ones((4, 1, 3, 3), np.float32), "w")
    nodes = [helper.make_node("Conv", ["input", "w"], ["c"]),
             helper.make_node("Frobnicate", ["c"], ["logits"], domain="com.example")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 1, 8, 8])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 4, 6, 6])], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid("com.example", 1)])
    inputs = np.random.default_rng(0).standard_normal((8, 1, 8, 8)).astype(np.float32)
    with pytest.raises(ExportError, match="cannot handle operator com.example.Frobnicate") as info:
        quantize_int8(model, inputs, QuantizeOptions("int8"))
    assert "\n" not in str(info.value) and "--quantize fp16" in str(info.value)


def test_bench_compares_every_exported_variant(in_root, fp32_export):
    result = invoke("bench", "lenet5", "--weights", in_root.weights, "--json", "--budget", "0.1", "--repeat", "5",
                    "--batch", "16", "--threads", "1")
    assert result.exit_code == 0, result.output
    groups = json.loads(result.stdout)["variants"]
    float_group = next(g for g in groups if g["timings"][0]["label"] == "fp32")
    timings = {t["label"]: t for t in float_group["timings"]}
    assert set(timings) == {"fp32", "int8", "fp16"}
    for label, t in timings.items():
        name = "lenet5.onnx" if label == "fp32" else f"lenet5.{label}.onnx"
        assert t["size_bytes"] == (in_root.root / "exported" / name).stat().st_size
        assert t["batch1_ms"] > 0 and t["throughput"] > 0 and t["big_batch"] == 16
        assert t["providers"] == ["CPUExecutionProvider"]
    assert timings["int8"]["size_bytes"] < timings["fp16"]["size_bytes"] < timings["fp32"]["size_bytes"]
    text = invoke("bench", "lenet5", "--weights", in_root.weights, "--budget", "0.1", "--repeat", "5",
                  "--batch", "16", "--threads", "1")
    assert text.exit_code == 0 and "exported variants" in text.stdout and "int8" in text.stdout


def test_verify_vectors_of_an_int8_file_says_how_it_is_checked(in_root):
    result = invoke("verify", "lenet5", "--onnx", "exported/lenet5.int8.onnx", "--vectors")
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "checked by test accuracy" in result.stderr


def test_slimming_the_qdq_graph_keeps_every_logit_and_the_fused_kernels(monkeypatch):
    """A small conv net quantized for real: slim drops the identity requantizations around
    MaxPool and Flatten, the zero int32 bias points, the value_info and the preprocessing
    markers; ONNX Runtime computes the same logits with and without them."""
    from onnx import TensorProto, helper

    import zoo.onnx.quantize as quantize

    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)
             for name, shape in (("w", (8, 1, 3, 3)), ("b", (8,)), ("fw", (10, 8 * 4 * 4)), ("fb", (10,)))]
    nodes = [helper.make_node("Conv", ["input", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Flatten", ["p"], ["f"]),
             helper.make_node("Gemm", ["f", "fw", "fb"], ["logits"], transB=1)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 1, 8, 8])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=8)  # what ORT reads
    inputs = rng.standard_normal((64, 1, 8, 8)).astype(np.float32)
    slim = quantize.quantize_int8(model, inputs, quantize.QuantizeOptions("int8"))
    monkeypatch.setattr(quantize, "slim", lambda m: None)
    full = quantize.quantize_int8(model, inputs, quantize.QuantizeOptions("int8"))

    assert len(slim.SerializeToString()) < len(full.SerializeToString())
    producer = {o: n for n in slim.graph.node for o in n.output}
    assert producer[next(n for n in slim.graph.node if n.op_type == "MaxPool").input[0]].op_type == "QuantizeLinear"
    assert [n.op_type for n in slim.graph.node].count("QuantizeLinear") == 2  # input, conv output
    int32_points = [t for t in slim.graph.initializer if t.data_type == TensorProto.INT32 and "zero_point" in t.name]
    assert not int32_points and not slim.graph.value_info
    assert not [p for p in slim.metadata_props if p.key.startswith("onnx.")]
    assert [p.key for p in full.metadata_props if p.key.startswith("onnx.")]  # there was something to drop
    onnx.checker.check_model(slim, full_check=True)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    logits = [ort.InferenceSession(m.SerializeToString(), opts, providers=["CPUExecutionProvider"])
              .run(None, {"input": inputs})[0] for m in (slim, full)]
    np.testing.assert_array_equal(logits[0], logits[1])
