"""`zoo export --onnx` and `zoo verify`: real exports, real ONNX Runtime sessions, real files.

One lenet5 export (through the real `zoo` console script, to see its console output)
is shared by the module; tests that damage a file work on a copy.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import numpy_helper
from safetensors.torch import save_file
from torch import nn
from typer.testing import CliRunner

import zoo
from zoo.cli.main import app
from zoo.errors import ExportError

ZOO = str(Path(sys.executable).parent / "zoo")
runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def save_weights(path: Path, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    model = zoo.get_spec("lenet5").builder()
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(model.state_dict(), str(path))
    return model.eval()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("onnx")
    weights = root / "runs" / "lenet5" / "model.safetensors"
    model = save_weights(weights, seed=1)
    out = root / "exported" / "lenet5.onnx"
    env = os.environ | {"ZOO_OFFLINE": "1", "ZOO_DATA_DIR": str(root / "data"), "COLUMNS": "200"}
    proc = subprocess.run([ZOO, "export", "lenet5", "--onnx", "--weights", str(weights), "--out", str(out)],
                          capture_output=True, text=True, env=env, cwd=root, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return SimpleNamespace(root=root, model=model, weights=weights, path=out, proc=proc)


def copy_export(exported, folder: Path) -> Path:
    """The shared export and its vectors, copied so a test can damage them."""
    target = folder / "lenet5.onnx"
    shutil.copy(exported.path, target)
    shutil.copytree(exported.path.with_suffix(""), folder / "lenet5")
    return target


def torch_logits(model, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(np.array(x))).numpy()  # a copy: TensorProto arrays are read-only


def test_export_is_one_checked_file_and_keeps_exporter_chatter_out(exported):
    out, errs = exported.proc.stdout, exported.proc.stderr
    assert "PASS" in out and f"exported lenet5 -> {exported.path}" in out
    assert "[torch.onnx]" not in out + errs and "Warning" not in out + errs
    assert errs.strip() == ""
    # One self-contained file: no external-data file, no temporary leftovers.
    assert sorted(os.listdir(exported.path.parent)) == ["lenet5", "lenet5.onnx"]
    proto = onnx.load(str(exported.path))
    onnx.checker.check_model(proto, full_check=True)
    assert all(init.data_location != onnx.TensorProto.EXTERNAL for init in proto.graph.initializer)
    assert [i.name for i in proto.graph.input] == ["input"] and [o.name for o in proto.graph.output] == ["logits"]


def test_batch_axis_is_dynamic(exported):
    proto = onnx.load(str(exported.path))
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and [d.dim_value for d in dims[1:]] == [1, 28, 28]
    session = ort.InferenceSession(str(exported.path), providers=["CPUExecutionProvider"])
    for batch in (1, 3, 64):
        x = np.random.default_rng(batch).standard_normal((batch, 1, 28, 28)).astype(np.float32)
        got = session.run(None, {"input": x})[0]
        assert got.shape == (batch, 10)
        np.testing.assert_allclose(got, torch_logits(exported.model, x), atol=1e-5, rtol=1e-3)


def test_metadata_records_how_the_file_was_made(exported):
    proto = onnx.load(str(exported.path))
    meta = {p.key: p.value for p in proto.metadata_props}
    spec = zoo.get_spec("lenet5")
    assert meta["zoo.model"] == "lenet5" and meta["zoo.version"] == zoo.__version__
    assert meta["zoo.plugin"] == spec.plugin and meta["zoo.plugin_version"] == spec.plugin_version
    assert meta["zoo.dataset"] == "mnist" and "zoo.dataset_variant" in meta
    assert meta["zoo.weights_sha256"] == hashlib.sha256(exported.weights.read_bytes()).hexdigest()
    assert json.loads(meta["zoo.input_shape"]) == ["batch", 1, 28, 28]
    assert (meta["zoo.input_name"], meta["zoo.input_layout"], meta["zoo.input_dtype"]) == ("input", "NCHW", "float32")
    prep = json.loads(meta["zoo.preprocessing"])
    assert prep["mean"] == list(spec.eval_transforms.mean) and prep["std"] == list(spec.eval_transforms.std)
    assert prep["scale"] == pytest.approx(1 / 255) and prep["in_graph"] is False
    assert json.loads(meta["zoo.class_names"]) == list(spec.class_names)
    opset = next(o.version for o in proto.opset_import if o.domain == "")
    assert meta["zoo.opset"] == str(opset) == "18"
    assert meta["zoo.torch_version"] == torch.__version__ and meta["zoo.onnx_version"] == onnx.__version__
    verdict = json.loads(meta["zoo.verification"])
    assert verdict["verdict"] == "PASS" and verdict["atol"] == 1e-5 and verdict["rtol"] == 1e-3
    assert verdict["providers"] == ["CPUExecutionProvider"] and verdict["max_abs_err"] < 1e-5


def test_the_file_holds_no_exporter_debug_info(exported):
    """The exporter's per-node stack traces would publish this machine's source paths."""
    proto = onnx.load(str(exported.path))
    assert proto.graph.node and not any(n.metadata_props or n.doc_string for n in proto.graph.node)
    data = exported.path.read_bytes()
    assert b"stack_trace" not in data and str(Path(zoo.__file__).parent.parent).encode() not in data


def read_tensor(path: Path) -> np.ndarray:
    tensor = onnx.TensorProto()
    tensor.ParseFromString(path.read_bytes())
    return numpy_helper.to_array(tensor)


def test_stored_vectors_follow_the_model_zoo_layout(exported):
    folder = exported.path.with_suffix("")
    random_in = read_tensor(folder / "test_data_set_0" / "input_0.pb")
    real_in = read_tensor(folder / "test_data_set_1" / "input_0.pb")
    assert random_in.shape == (7, 1, 28, 28) and real_in.shape == (16, 1, 28, 28)
    # Real digits, normalised: background pixels sit at (0 - mean) / std.
    assert real_in.min() == pytest.approx((0 - 0.1307) / 0.3081, abs=1e-5)
    for data_set, inputs in (("test_data_set_0", random_in), ("test_data_set_1", real_in)):
        outputs = read_tensor(folder / data_set / "output_0.pb")
        np.testing.assert_allclose(outputs, torch_logits(exported.model, inputs), atol=1e-6)  # PyTorch's
    result = invoke("verify", "--onnx", exported.path, "--vectors")
    assert result.exit_code == 0, result.output
    assert "PASS" in result.stdout and "16/16" in result.stdout


def test_verify_against_pytorch_reports_every_batch_and_real_images(exported):
    result = invoke("verify", "lenet5", "--onnx", exported.path, "--weights", exported.weights, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["verdict"] == "PASS" and report["providers"] == ["CPUExecutionProvider"]
    names = [c["name"] for c in report["checks"]]
    assert {"random, batch 1", "random, batch 2", "random, batch 7", "random, batch 64"} <= set(names)
    real = next(c for c in report["checks"] if "test images" in c["name"])
    assert real["argmax"] == [256, 256] and real["max_abs"] < 1e-5
    assert report["tolerance"]["atol"] == 1e-5 and report["tolerance"]["rtol"] == 1e-3


def tamper(path: Path) -> None:
    """Change one weight of conv1 in the .onnx file."""
    proto = onnx.load(str(path))
    init = next(i for i in proto.graph.initializer if i.name == "conv1.weight")
    values = numpy_helper.to_array(init).copy()
    values.flat[0] += 0.05
    init.CopyFrom(numpy_helper.from_array(values, init.name))
    onnx.save(proto, str(path))


def test_a_perturbed_initializer_fails_both_checks(exported, tmp_path):
    path = copy_export(exported, tmp_path)
    vectors = path.with_suffix("") / "test_data_set_0" / "output_0.pb"
    before = vectors.read_bytes()
    tamper(path)
    result = invoke("verify", "--onnx", path, "--vectors")
    assert result.exit_code == 1
    assert "FAIL lenet5: test_data_set_0" in result.stdout and "beyond tolerance" in result.stdout
    result = invoke("verify", "lenet5", "--onnx", path, "--weights", exported.weights)
    assert result.exit_code == 1 and "FAIL lenet5" in result.stdout
    assert vectors.read_bytes() == before  # a FAIL never rewrites the reference vectors


@pytest.mark.parametrize("keep", [10, 0.5])
def test_a_truncated_file_is_a_clear_error(exported, tmp_path, keep):
    path = copy_export(exported, tmp_path)
    data = exported.path.read_bytes()
    path.write_bytes(data[:keep if isinstance(keep, int) else int(len(data) * keep)])
    for args in (("--vectors",), ("--weights", exported.weights)):
        result = invoke("verify", "lenet5", "--onnx", path, *args)
        assert result.exit_code == 1
        assert result.stderr.startswith(f"error: {path}") and "export it again" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output


def test_a_file_for_another_model_or_other_weights_fails(exported, tmp_path):
    result = invoke("verify", "cnn", "--onnx", exported.path, "--untrained")
    assert result.exit_code == 1
    assert "FAIL cnn: model name: the file is for model 'lenet5', not 'cnn'" in result.stdout
    other = tmp_path / "other.safetensors"
    save_weights(other, seed=2)
    result = invoke("verify", "lenet5", "--onnx", exported.path, "--weights", other)
    assert result.exit_code == 1 and "the file was made from other weights" in result.stdout


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only machine's path")
def test_cuda_requested_without_a_gpu_fails_and_names_the_provider_used(exported):
    result = invoke("verify", "--onnx", exported.path, "--vectors", "--provider", "cuda")
    assert result.exit_code == 1
    assert "CUDA was requested but the session used CPUExecutionProvider" in result.stdout
    assert "FAIL" in result.stdout and "PASS" not in result.stdout
    result = invoke("verify", "--onnx", exported.path, "--vectors", "--provider", "cpu")
    assert result.exit_code == 0 and "providers used: CPUExecutionProvider (asked: cpu)" in result.stdout


def test_failed_verification_writes_nothing_and_keeps_the_old_file(exported, tmp_path):
    path = copy_export(exported, tmp_path)
    before = path.read_bytes()
    # Zero tolerance: ONNX Runtime's kernels round differently from PyTorch's.
    result = invoke("export", "lenet5", "--weights", exported.weights, "--out", path, "--atol", "0", "--rtol", "0")
    assert result.exit_code == 1
    assert "FAIL lenet5" in result.stdout and "was not written because verification failed" in result.stderr
    assert path.read_bytes() == before


def test_static_batch_fixes_the_batch_axis(tmp_path):
    out = tmp_path / "l3.onnx"
    result = invoke("export", "lenet5", "--untrained", "--static-batch", "3", "--out", out)
    assert result.exit_code == 0, result.output
    assert "static batch 3" in result.stdout and "random, batch 3" in result.stdout
    assert "random, batch 7" not in result.stdout
    dims = onnx.load(str(out)).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims] == [3, 1, 28, 28]
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    with pytest.raises(Exception):
        session.run(None, {"input": np.zeros((2, 1, 28, 28), np.float32)})


def test_without_trained_weights_export_suggests_train_or_untrained(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("export", "lenet5", "--onnx")
    assert result.exit_code == 1
    assert "zoo train lenet5" in result.stderr and "--untrained" in result.stderr
    assert not (tmp_path / "exported").exists()


def test_bad_options_are_one_line_and_touch_nothing(tmp_path):
    result = invoke("export", "lenet5", "--untrained", "--opset", "99")
    assert result.exit_code == 2 and "--opset 99 is not supported" in result.stderr
    result = invoke("export", "lenet5", "--untrained", "--out", tmp_path / "model.txt")
    assert result.exit_code == 1 and "must end with .onnx" in result.stderr
    foreign = tmp_path / "mine.onnx"
    foreign.write_bytes(b"not zoo's")
    result = invoke("export", "lenet5", "--untrained", "--out", foreign)
    assert result.exit_code == 1 and "--force" in result.stderr
    assert foreign.read_bytes() == b"not zoo's"


def test_an_unsupported_operator_is_named_with_its_layer(tmp_path):
    class Zeta(nn.Module):
        def forward(self, x):
            return torch.special.zeta(x, x)

    def builder():
        model = zoo.get_spec("lenet5").builder()
        model.act3 = Zeta()
        return model

    spec = replace(zoo.get_spec("lenet5"), builder=builder)
    from zoo.onnx import export_and_verify

    with pytest.raises(ExportError, match=r"operator prims\.zeta \(in layer 'act3' \(Zeta\)\).*Try: another --opset"):
        export_and_verify(spec, builder(), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_bench_json_structure(exported):
    result = invoke("bench", "lenet5", "--onnx", exported.path, "--weights", exported.weights, "--json",
                    "--repeat", "2", "--warmup", "0", "--batch", "4", "--budget", "0", "--provider", "cpu")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [(t["engine"], t["device"]) for t in report["timings"]] == [("pytorch eager", "cpu"), ("onnxruntime", "cpu")]
    assert report["timings"][1]["providers"] == ["CPUExecutionProvider"]
    assert all(t["batch1_runs"] == 2 and t["big_batch_ms"] > 0 for t in report["timings"])
    assert report["ratios"][0]["device"] == "cpu" and report["ratios"][0]["latency_speedup"] > 0
    assert len(report["load_before"]) == 3 and report["threads"] >= 1


def test_weights_trained_on_another_dataset_carry_its_class_names(tmp_path, monkeypatch):
    """lenet5 trained with --dataset fashion-mnist must export and predict garment names.
    The 'fashion-mnist' here is real IDX files (the bundled digits) under ZOO_DATA_DIR."""
    from PIL import Image

    from zoo.data.classes import FASHION_MNIST_CLASSES

    data = tmp_path / "data" / "fashion-mnist"
    shutil.copytree(Path(zoo.__file__).parent / "data" / "mnist_sample", data,
                    ignore=shutil.ignore_patterns("*.py", "*.md", "__pycache__"))
    env = os.environ | {"ZOO_DATA_DIR": str(tmp_path / "data"), "ZOO_OFFLINE": "1"}
    run = lambda *args: subprocess.run([ZOO, *args], cwd=tmp_path, env=env, capture_output=True, text=True,  # noqa: E731
                                       timeout=300)
    trained = run("train", "lenet5", "--dataset", "fashion-mnist", "--epochs", "1", "--limit", "256", "--out", "r")
    assert trained.returncode == 0, trained.stderr
    exported = run("export", "lenet5", "--weights", "r/model.safetensors", "--out", "m.onnx")
    assert exported.returncode == 0, exported.stderr
    meta = {p.key: p.value for p in onnx.load(str(tmp_path / "m.onnx")).metadata_props}
    assert json.loads(meta["zoo.class_names"]) == list(FASHION_MNIST_CLASSES)
    assert meta["zoo.dataset"] == "fashion-mnist"
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp_path / "x.png")
    for engine in (["--onnx", "m.onnx"], ["--torch", "--weights", "r/model.safetensors"]):
        predicted = run("predict", "lenet5", "x.png", *engine, "--json")
        assert predicted.returncode == 0, predicted.stderr
        top = json.loads(predicted.stdout)["predictions"][0]["top"]
        assert {t["class"] for t in top} <= set(FASHION_MNIST_CLASSES)
