"""ONNX files and test vectors made to be hostile (issue 15.2, 15.3, 15.6, 15.8, 15.9):
metadata that lies about the input or is malformed, external data outside the model's
folder or through links, control characters in class names, test-vector folders that
are links or hold the user's files. Each is one clear line, checked before anything is
allocated or written, and nothing of the user's is touched."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from PIL import Image
from typer.testing import CliRunner

import zoo
from zoo.cli.main import app
from zoo.errors import ExportError
from zoo.onnx import pipeline
from zoo.onnx.metadata import PREFIX, props_of, set_props
from zoo.onnx.predict import predict_images
from zoo.onnx.vectors import INFO_FILE, read_vectors, vectors_dir
from zoo.runs import untrained_weights as untrained

pytestmark = pytest.mark.timeout(300)
runner = CliRunner()


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    """An untrained lenet5 export (unverified: speed) with its test vectors, and a digit PNG."""
    root = tmp_path_factory.mktemp("onnx")
    spec = zoo.get_spec("lenet5")
    report = pipeline.export_and_verify(spec, weights=untrained(spec), out=root / "lenet5.onnx", verify=False)
    assert report.written
    Image.fromarray(np.full((28, 28), 200, np.uint8), mode="L").save(root / "digit.png")
    return root


def edited(exported: Path, tmp_path: Path, **changes: str) -> Path:
    """A copy of the export with some zoo.* metadata values replaced."""
    proto = onnx.load(str(exported / "lenet5.onnx"))
    props = {k: v for k, v in props_of(proto).items() if k.startswith(PREFIX)}
    props |= {PREFIX + k: v for k, v in changes.items()}
    set_props(proto, props)
    path = tmp_path / "lenet5.onnx"
    onnx.save(proto, str(path))
    return path


@pytest.mark.parametrize("key, value, message", [
    ("input_shape", json.dumps(["batch", 1, 100000, 100000]), "'zoo.input_shape[2]' is 100000, outside 1..4096"),
    ("input_shape", json.dumps(["batch", 1, 56, 56]), "'zoo.input_shape' says ['batch', 1, 56, 56] but the graph"),
    ("input_shape", "a string", "'zoo.input_shape' is not valid JSON"),
    ("input_shape", json.dumps("1x28x28"), "'zoo.input_shape' must be a list, got a string"),
    ("preprocessing", json.dumps({"std": [0.3], "in_graph": False}), "'zoo.preprocessing.mean' is missing"),
    ("preprocessing", json.dumps({"mean": [0.1], "std": [0], "in_graph": False}),
     "'zoo.preprocessing.std[0]' is 0.0, it must be above 0"),
    ("preprocessing", json.dumps({"mean": [0.1, 0.2, 0.3], "std": [1, 1, 1], "in_graph": False}),
     "'zoo.preprocessing.mean' has 3 values for 1 input channels"),
    ("class_names", json.dumps(["one"]), "'zoo.class_names' has 1 names but the graph has 10 outputs"),
    ("class_names", "[" * 100_000, "'zoo.class_names' is JSON nested deeper than zoo's limit"),
    ("model", "../../etc", "'zoo.model' '../../etc' is not a valid zoo name"),
])
def test_bad_metadata_is_one_line_naming_the_key(exported, tmp_path, key, value, message):
    path = edited(exported, tmp_path, **{key: value})
    with pytest.raises(ExportError) as info:
        predict_images(path, [exported / "digit.png"], zoo.get_spec("lenet5"))
    assert message in str(info.value) and str(path) in str(info.value)


def test_predict_command_refuses_an_absurd_input_shape(exported, tmp_path):
    path = edited(exported, tmp_path, input_shape=json.dumps(["batch", 1, 100000, 100000]))
    result = runner.invoke(app, ["predict", "lenet5", str(exported / "digit.png"), "--onnx", str(path)])
    assert result.exit_code == 1
    assert "zoo.input_shape" in result.stderr and "Traceback" not in result.stderr


def test_control_characters_in_class_names_are_escaped(exported, tmp_path):
    names = [f"\x1b]0;pwned\x07\x1b[31mred{i}\nline" for i in range(10)]
    path = edited(exported, tmp_path, class_names=json.dumps(names))
    result = runner.invoke(app, ["predict", "lenet5", str(exported / "digit.png"), "--onnx", str(path)])
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert "\\x1b]0;pwned\\x07" in result.stdout and "\\n" in result.stdout


def with_external_data(exported: Path, folder: Path) -> Path:
    """The export re-saved as a model hub might: tensors in weights.bin next to the file."""
    folder.mkdir(parents=True, exist_ok=True)
    proto = onnx.load(str(exported / "lenet5.onnx"))
    path = folder / "lenet5.onnx"
    onnx.save(proto, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
              location="weights.bin", size_threshold=0)
    return path


def relocate(path: Path, location: str) -> None:
    proto = onnx.load(str(path), load_external_data=False)
    for tensor in proto.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = location
    path.write_bytes(proto.SerializeToString())


def test_external_data_next_to_the_model_works_from_any_folder(exported, tmp_path, monkeypatch):
    path = with_external_data(exported, tmp_path / "hub")
    monkeypatch.chdir(tmp_path)  # not the model's folder
    plain = predict_images(exported / "lenet5.onnx", [exported / "digit.png"], zoo.get_spec("lenet5"))
    external = predict_images(path, [exported / "digit.png"], zoo.get_spec("lenet5"))
    assert external[0].top == plain[0].top


def test_external_data_is_not_resolved_against_the_current_folder(exported, tmp_path, monkeypatch):
    path = with_external_data(exported, tmp_path / "hub")
    decoy = tmp_path / "cwd"
    (decoy / "etc").mkdir(parents=True)
    (decoy / "etc" / "passwd").write_bytes((path.parent / "weights.bin").read_bytes())
    relocate(path, "etc/passwd")
    monkeypatch.chdir(decoy)
    with pytest.raises(ExportError, match="external data file 'etc/passwd' is missing next to the model"):
        predict_images(path, [exported / "digit.png"], zoo.get_spec("lenet5"))


@pytest.mark.parametrize("location", ["../weights.bin", "/etc/passwd", "sub/../../weights.bin"])
def test_external_data_outside_the_models_folder_is_refused(exported, tmp_path, location):
    path = with_external_data(exported, tmp_path / "hub" / "inner")
    relocate(path, location)
    with pytest.raises(ExportError, match="is not a plain name inside the model's folder"):
        predict_images(path, [exported / "digit.png"], zoo.get_spec("lenet5"))


def test_external_data_through_a_link_is_refused(exported, tmp_path):
    path = with_external_data(exported, tmp_path / "hub")
    real = tmp_path / "elsewhere.bin"
    (path.parent / "weights.bin").rename(real)
    (path.parent / "weights.bin").symlink_to(real)
    with pytest.raises(ExportError, match="goes through a symbolic link"):
        predict_images(path, [exported / "digit.png"], zoo.get_spec("lenet5"))


def export(out: Path, *extra: str):
    return runner.invoke(app, ["export", "lenet5", "--untrained", "--no-verify", "--out", str(out), *extra])


def test_vectors_folder_that_is_a_link_is_refused_before_writing(tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "lenet5").symlink_to(victim)
    result = export(tmp_path / "out" / "lenet5.onnx")
    assert result.exit_code == 1 and "is a symbolic link" in result.stderr, result.output
    assert list(victim.iterdir()) == [] and not (tmp_path / "out" / "lenet5.onnx").exists()


def test_set_folder_that_is_a_link_is_refused_before_writing(tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    out = tmp_path / "out" / "lenet5.onnx"
    assert export(out).exit_code == 0  # zoo's own vectors folder, then a set in it swapped for a link
    first = out.read_bytes()
    for f in (out.parent / "lenet5" / "test_data_set_0").iterdir():
        f.unlink()
    (out.parent / "lenet5" / "test_data_set_0").rmdir()
    (out.parent / "lenet5" / "test_data_set_0").symlink_to(victim)
    result = export(out, "--force")
    assert result.exit_code == 1 and "is a symbolic link" in result.stderr
    assert list(victim.iterdir()) == [] and out.read_bytes() == first


def test_users_files_in_a_set_folder_are_never_overwritten_or_deleted(tmp_path):
    out = tmp_path / "out" / "lenet5.onnx"
    assert export(out).exit_code == 0
    mine = out.parent / "lenet5" / "test_data_set_0" / "my_input.pb"
    mine.write_bytes(b"my own tensor")
    result = export(out, "--force")
    assert result.exit_code == 1 and "was not written by zoo" in result.stderr
    assert mine.read_bytes() == b"my own tensor"


def test_a_folder_of_the_users_named_like_the_export_is_never_written_into(tmp_path):
    mine = tmp_path / "out" / "lenet5"  # no vectors.json: not zoo's
    mine.mkdir(parents=True)
    (mine / "notes.txt").write_text("mine")
    result = export(tmp_path / "out" / "lenet5.onnx")
    assert result.exit_code == 1 and "is not a test-vector folder of zoo's" in result.stderr
    assert [p.name for p in mine.iterdir()] == ["notes.txt"] and not (tmp_path / "out" / "lenet5.onnx").exists()


def test_stale_sets_deleted_only_as_the_manifest_says(tmp_path):
    out = tmp_path / "out" / "lenet5.onnx"
    assert export(out).exit_code == 0
    folder = vectors_dir(out)
    info = json.loads((folder / INFO_FILE).read_text())
    assert set(info["files"]) >= {"test_data_set_0/input_0.pb", "test_data_set_0/output_0.pb"}
    # A set an earlier export wrote (in the manifest) and one the user made (not in it).
    stale, users = folder / "test_data_set_7", folder / "test_data_set_8"
    for sub in (stale, users):
        sub.mkdir()
        (sub / "input_0.pb").write_bytes(b"x")
        (sub / "output_0.pb").write_bytes(b"x")
    info["files"] += ["test_data_set_7/input_0.pb", "test_data_set_7/output_0.pb"]
    (folder / INFO_FILE).write_text(json.dumps(info))
    assert export(out, "--force").exit_code == 0
    assert not stale.exists() and (users / "input_0.pb").read_bytes() == b"x"


def test_vector_file_that_is_a_link_is_refused_when_reading(exported, tmp_path):
    folder = tmp_path / "lenet5"
    (folder / "test_data_set_0").mkdir(parents=True)
    src = vectors_dir(exported / "lenet5.onnx") / "test_data_set_0"
    (folder / "test_data_set_0" / "input_0.pb").symlink_to(src / "input_0.pb")
    (folder / "test_data_set_0" / "output_0.pb").write_bytes((src / "output_0.pb").read_bytes())
    with pytest.raises(ExportError, match="is a symbolic link"):
        read_vectors(folder)


def test_vector_tensor_pointing_at_external_data_is_refused(exported, tmp_path):
    folder = tmp_path / "lenet5" / "test_data_set_0"
    folder.mkdir(parents=True)
    tensor = onnx.numpy_helper.from_array(np.zeros((1, 1, 28, 28), np.float32), "input")
    onnx.external_data_helper.set_external_data(tensor, "/etc/passwd")
    tensor.data_location = onnx.TensorProto.EXTERNAL
    tensor.ClearField("raw_data")
    (folder / "input_0.pb").write_bytes(tensor.SerializeToString())
    (folder / "output_0.pb").write_bytes(tensor.SerializeToString())
    with pytest.raises(ExportError, match="points at external data"):
        read_vectors(tmp_path / "lenet5")


@pytest.mark.parametrize("bad, message", [
    ({"model": 5}, "field 'model' must be a string, got an integer"),
    ({"sets": []}, "field 'sets' must be an object, got a list"),
    ({"files": ["../../etc/passwd"]}, "field 'files[0]' '../../etc/passwd' is not of the form"),
])
def test_vectors_json_is_validated(exported, tmp_path, bad, message):
    folder = tmp_path / "lenet5"
    src = vectors_dir(exported / "lenet5.onnx")
    (folder / "test_data_set_0").mkdir(parents=True)
    for name in ("input_0.pb", "output_0.pb"):
        (folder / "test_data_set_0" / name).write_bytes((src / "test_data_set_0" / name).read_bytes())
    (folder / INFO_FILE).write_text(json.dumps(bad))
    with pytest.raises(ExportError, match=message.replace("[", r"\[").replace("]", r"\]")):
        read_vectors(folder)
