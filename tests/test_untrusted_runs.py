"""Run folders made to be hostile (issue 15.4, 15.5): run.json as a FIFO, a link to a
device, a huge file, 200,000 nested lists, wrong types. Each is one line naming the
file and the field, through the reader and through the real `zoo` command."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from zoo import safeio
from zoo.errors import CheckpointError
from zoo.runs import read_run_info

pytestmark = pytest.mark.timeout(300)
ZOO = str(Path(sys.executable).parent / "zoo")

GOOD = {"model": "lenet5", "status": "finished", "dataset": "mnist", "dataset_variant": "mnist-sample",
        "class_names": list("0123456789"), "hyperparameters": {"epochs": 1, "lr": 0.01},
        "metrics": [{"epoch": 1, "train_loss": 1.0, "train_acc": 0.5, "test_loss": 1.0, "test_acc": 0.5,
                     "lr": 0.01, "seconds": 1.0}], "epochs_completed": 1}


def write_run(folder: Path, info) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "run.json").write_text(info if isinstance(info, str) else json.dumps(info))
    return folder


def test_good_run_json_reads_back(tmp_path):
    assert read_run_info(write_run(tmp_path, GOOD))["class_names"] == GOOD["class_names"]


def test_fifo_run_json_is_refused_without_hanging(tmp_path):
    os.mkfifo(tmp_path / "run.json")
    with pytest.raises(CheckpointError, match=r"run.json: is a FIFO \(named pipe\); a run.json must be a regular file"):
        read_run_info(tmp_path)


def test_run_json_linked_to_dev_zero_is_refused(tmp_path):
    (tmp_path / "run.json").symlink_to("/dev/zero")
    with pytest.raises(CheckpointError, match="is a device"):
        read_run_info(tmp_path)


def test_run_json_over_the_size_cap_is_refused_before_reading(tmp_path):
    with open(tmp_path / "run.json", "wb") as fh:
        fh.truncate(safeio.RUN_JSON.max_bytes + 1)  # sparse: no disk used
    with pytest.raises(CheckpointError, match="over zoo's limit of 16 MB for a run.json"):
        read_run_info(tmp_path)


def test_deeply_nested_run_json_is_one_line(tmp_path):
    write_run(tmp_path, "[" * 200_000 + "]" * 200_000)
    with pytest.raises(CheckpointError, match="nested deeper than zoo's limit of 64 levels"):
        read_run_info(tmp_path)


def test_nesting_just_past_the_limit_is_refused(tmp_path):
    write_run(tmp_path, dict(GOOD, extra=json.loads("[" * 65 + "]" * 65)))
    with pytest.raises(CheckpointError, match="nested deeper"):
        read_run_info(tmp_path)


@pytest.mark.parametrize("field, value, message", [
    ("metrics", {"epoch": 1}, "field 'metrics' must be a list, got an object"),
    ("class_names", 10, "field 'class_names' must be a list, got an integer"),
    ("hyperparameters", [1, 2], "field 'hyperparameters' must be an object, got a list"),
    ("dataset", "../../../etc/passwd", "field 'dataset' '../../../etc/passwd' is not a valid zoo name"),
    ("class_names", ["x" * 201] * 10, "field 'class_names[0]' is 201 characters, over zoo's limit of 200"),
    ("metrics", [{"epoch": 1}], "field 'metrics[0].train_loss' is missing"),
    ("epochs_completed", True, "field 'epochs_completed' must be an integer, got true/false"),
    ("sessions", -5, "field 'sessions' is -5, it must be >= 0"),  # no upper bound: never 'outside 0..None'
    ("threads", 0, "field 'threads' is 0, outside 1..65536"),
    ("wall_time_seconds", 1e308, "field 'wall_time_seconds' is 1e+308, outside 0.0..1000000000.0"),
])
def test_wrong_types_name_the_file_and_the_field(tmp_path, field, value, message):
    write_run(tmp_path, dict(GOOD, **{field: value}))
    with pytest.raises(CheckpointError, match=re.escape(message)) as info:
        read_run_info(tmp_path)
    assert str(tmp_path / "run.json") in str(info.value)


def test_class_names_over_the_count_cap(tmp_path):
    write_run(tmp_path, dict(GOOD, class_names=["a"] * 100_001))
    with pytest.raises(CheckpointError, match="has 100,001 items, over zoo's limit of 100,000"):
        read_run_info(tmp_path)


def untrained_weights(folder: Path) -> Path:
    """lenet5's initial weights as a real safetensors file, as `zoo train` would leave them."""
    code = ("import sys, zoo\nfrom safetensors.torch import save_file\n"
            "m = zoo.create_model('lenet5')\n"
            "save_file({k: v.contiguous() for k, v in m.state_dict().items()}, sys.argv[1])\n")
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-c", code, str(folder / "model.safetensors")], check=True, timeout=120)
    return folder / "model.safetensors"


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory) -> Path:
    return untrained_weights(tmp_path_factory.mktemp("weights") / "run")


@pytest.mark.parametrize("command, bad, needle", [
    ("export", '{"model": "lenet5", "class_names": 7}', "field 'class_names' must be a list"),
    ("evaluate", "[" * 200_000, "nested deeper than zoo's limit"),
    ("evaluate", "fifo", "is a FIFO"),
])
def test_commands_give_one_line_for_a_bad_run_json(tmp_path, weights_file, command, bad, needle):
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.safetensors").symlink_to(weights_file)
    if bad == "fifo":
        os.mkfifo(run / "run.json")
    else:
        (run / "run.json").write_text(bad)
    args = [ZOO, command, "lenet5", "--weights", str(run / "model.safetensors")]
    if command == "export":
        args += ["--no-verify", "--out", str(tmp_path / "x.onnx")]
    proc = subprocess.run(args, capture_output=True, text=True, cwd=tmp_path, timeout=240,
                          env={**os.environ, "ZOO_OFFLINE": "1", "COLUMNS": "300"})
    assert proc.returncode == 1, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert "Traceback" not in proc.stderr and len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert needle in lines[0] and "run.json" in lines[0]
    assert not (tmp_path / "x.onnx").exists()


def test_control_characters_in_run_json_class_names_are_escaped(tmp_path, weights_file):
    """Class names from run.json reach the terminal through predict --torch and features."""
    from PIL import Image
    from typer.testing import CliRunner

    from zoo.cli.main import app

    run = tmp_path / "run"
    run.mkdir()
    (run / "model.safetensors").symlink_to(weights_file)
    names = [f"\x1b[2J\x1b]0;title\x07{i}\r\n" for i in range(10)]
    write_run(run, dict(GOOD, class_names=names))
    image = tmp_path / ("d" * 250 + ".png")  # a legal name; "image-" + it would not be a legal folder name
    Image.fromarray(np.full((28, 28), 255, np.uint8), mode="L").save(image)
    runner = CliRunner()
    predict = runner.invoke(app, ["predict", "lenet5", str(image), "--torch", "--weights", str(run / "model.safetensors")])
    features = runner.invoke(app, ["features", "lenet5", "--image", str(image), "--weights",
                                   str(run / "model.safetensors"), "--out", str(run)])
    for result in (predict, features):
        assert result.exit_code == 0, result.output
        assert "\x1b" not in result.stdout and "\x07" not in result.stdout and "\r" not in result.stdout
        assert "\\x1b]0;title\\x07" in result.stdout
    assert all(len(p.name) <= 255 for p in (run / "features").iterdir())
