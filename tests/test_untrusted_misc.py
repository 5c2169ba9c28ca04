"""Checkpoints, weights and paths made to be hostile (issue 15.4, 15.5, 15.10): a FIFO
where a checkpoint or weights file should be, a checkpoint whose JSON header has wrong
types or absurd nesting, path names longer than the filesystem allows, and a failed
download into a data folder that did not exist."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import zoo
from zoo.data.resolve import load_dataset
from zoo.errors import CheckpointError, DataError
from zoo.runs import load_state
from zoo.train.checkpoint import META_KEY, read_checkpoint

pytestmark = pytest.mark.timeout(300)
ZOO = str(Path(sys.executable).parent / "zoo")


def zoo_cli(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([ZOO, *args], capture_output=True, text=True, cwd=cwd, timeout=240,
                          env={**os.environ, "ZOO_OFFLINE": "1", "COLUMNS": "300"})


def one_line(proc: subprocess.CompletedProcess, *needles: str) -> str:
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip() and not ln.startswith("note:")]
    assert proc.returncode != 0 and "Traceback" not in proc.stderr and len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def test_fifo_checkpoint_is_refused(tmp_path):
    os.mkfifo(tmp_path / "checkpoint.safetensors")
    with pytest.raises(CheckpointError, match="is a FIFO"):
        read_checkpoint(tmp_path)


def test_fifo_weights_file_is_refused(tmp_path):
    os.mkfifo(tmp_path / "model.safetensors")
    with pytest.raises(CheckpointError, match="is a FIFO"):
        load_state(tmp_path / "model.safetensors")


def checkpoint_with_header(folder: Path, header: str) -> None:
    save_file({"model.w": torch.zeros(2)}, str(folder / "checkpoint.safetensors"), metadata={META_KEY: header})


SETTINGS = {"recipe": {"epochs": 1}, "seed": 0, "dataset": "mnist", "limit": None, "augment": True}
HEADER = {"format": "zoo.checkpoint/1", "model": "lenet5", "settings": SETTINGS, "optimizer": {}, "scheduler": {},
          "rng": {}}


@pytest.mark.parametrize("header, message", [
    (json.dumps(HEADER | {"epoch": "three"}), "field 'epoch' must be an integer, got a string"),
    (json.dumps(HEADER | {"optimizer": []}), "field 'optimizer' must be an object, got a list"),
    (json.dumps(HEADER | {"settings": SETTINGS | {"dataset": "../x"}}), "field 'settings.dataset' '../x' is not"),
    ("[" * 100_000, "nested deeper than zoo's limit of 64 levels"),
])
def test_checkpoint_header_is_validated(tmp_path, header, message):
    checkpoint_with_header(tmp_path, header)
    with pytest.raises(CheckpointError, match=message) as info:
        read_checkpoint(tmp_path)
    assert "checkpoint.safetensors" in str(info.value)


def test_over_long_out_and_weights_paths_are_one_line(tmp_path):
    long = str(tmp_path / ("a" * 300))
    one_line(zoo_cli(tmp_path, "evaluate", "lenet5", "--weights", f"{long}/model.safetensors"),
             "File name too long; choose a shorter path")
    one_line(zoo_cli(tmp_path, "export", "lenet5", "--untrained", "--no-verify", "--out", f"{long}.onnx"),
             "File name too long")


def test_failed_download_leaves_no_new_parent_folders(tmp_path, monkeypatch):
    import socket

    def refuse(*args, **kwargs):
        raise AssertionError("a test tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.delenv("ZOO_OFFLINE")
    mnist = zoo.get_dataset("mnist")

    def broken(root: Path) -> None:
        (root / "partial").write_bytes(b"x")
        raise ConnectionError("connection reset")

    spec = zoo.DatasetSpec(name="toy-mnist", summary="toy", input_shape=(1, 28, 28), class_names=mnist.class_names,
                           load=mnist.load, files=mnist.files, download=broken)
    with pytest.raises(DataError, match="download failed: ConnectionError"):
        load_dataset(spec, "train", data_dir=tmp_path / "new" / "data" / "root")
    assert list(tmp_path.iterdir()) == []


def test_readme_states_the_limits_the_code_enforces():
    from zoo import images, safeio
    from zoo.data import idx
    from zoo.onnx import metadata
    from zoo.schema import MAX_CLASS_NAME, MAX_CLASSES

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme[readme.index("## Files from elsewhere"):]
    for what, limit in (("`run.json`", safeio.RUN_JSON), ("`vectors.json`", safeio.VECTORS_JSON),
                        ("test-vector `.pb`", safeio.TENSOR_PB), ("CIFAR-10 batch", safeio.CIFAR_BATCH)):
        assert f"| {what} | {limit.text()} |" in section, what
    assert f"| {safeio.IDX_FILE.text()} decompressed, {idx.MAX_DIM:,} per axis |" in section
    assert f"{safeio.IMAGE_FILE.text()} and {images.MAX_PIXELS // 1_000_000} million pixels" in section
    assert f"{metadata.MAX_CHANNELS} channels and {metadata.MAX_SIDE} pixels a side" in section
    assert f"at most {safeio.JSON_MAX_DEPTH} levels deep" in section
    assert f"at most {MAX_CLASSES:,} class names of\n  at most {MAX_CLASS_NAME} characters" in section


def test_fifo_and_oversized_metrics_csv_are_refused(tmp_path):
    from zoo import safeio
    from zoo.viz.curves import read_metrics

    os.mkfifo(tmp_path / "metrics.csv")
    with pytest.raises(CheckpointError, match="is a FIFO"):
        read_metrics(tmp_path / "metrics.csv")
    big = tmp_path / "big" / "metrics.csv"
    big.parent.mkdir()
    with open(big, "wb") as fh:
        fh.truncate(safeio.METRICS_CSV.max_bytes + 1)  # sparse
    with pytest.raises(CheckpointError, match="over zoo's limit of 64 MB for a metrics.csv"):
        read_metrics(big)
