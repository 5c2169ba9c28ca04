"""Runs that fail: a broken plugin model is told from a diverging one, a run that fails
in its first epoch leaves run.json saying so, and a wrong class count is refused before
anything is written. Real plugin packages (dist-info entry points), real `zoo` processes."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import toy_plugin

ZOO = str(Path(sys.executable).parent / "zoo")


def zoo(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([ZOO, *map(str, args)], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, **(env or {})))


def one_error_line(result: subprocess.CompletedProcess) -> str:
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


NAN_FORWARD = '''
import dataclasses

class NaNToy(Toy):
    def forward(self, x):
        return super().forward(x) * float("nan")
'''


def test_nan_from_the_first_forward_pass_blames_the_model_not_the_lr(tmp_path, fake_dists):
    fake_dists.add("zoo-nan", "nanplug", toy_plugin("nantoy", "register(dataclasses.replace(toy_spec(), builder=NaNToy))") + NAN_FORWARD)
    result = zoo("train", "nantoy", "--epochs", "1", "--limit", "64", "--threads", "1", "--out", tmp_path / "r")
    line = one_error_line(result)
    assert result.returncode == 1
    assert "first batch" in line and "model itself is broken" in line and "learning rate" in line
    assert "too high" not in line
    assert not (tmp_path / "r").exists()  # nothing written: the model was checked before training


def test_seven_outputs_for_ten_classes_is_refused_before_anything_is_written(tmp_path, fake_dists):
    plugin = toy_plugin("sevens").replace("nn.Linear(4 * 13 * 13, 10)", "nn.Linear(4 * 13 * 13, 7)")
    fake_dists.add("zoo-sevens", "sevens", plugin)
    result = zoo("train", "sevens", "--epochs", "1", "--limit", "64", "--threads", "1", "--out", tmp_path / "r")
    line = one_error_line(result)
    assert result.returncode == 1 and "7" in line and "10 classes" in line
    assert not (tmp_path / "r").exists()


def test_a_run_that_diverges_in_its_first_epoch_leaves_run_json_saying_failed(tmp_path):
    folder = tmp_path / "r"
    result = zoo("train", "lenet5", "--optimizer", "sgd", "--lr", "1e10", "--schedule", "constant",
                 "--epochs", "2", "--limit", "128", "--threads", "1", "--out", folder)
    line = one_error_line(result)
    assert result.returncode == 1 and "diverged" in line
    info = json.loads((folder / "run.json").read_text())
    assert info["status"] == "failed" and "diverged" in info["error"] and info["epochs_completed"] == 0
    again = zoo("train", "lenet5", "--epochs", "1", "--limit", "128", "--out", folder)
    assert again.returncode == 2 and "failed" in one_error_line(again)  # never overwritten silently


DATASETS = '''
import zoo

DIGITS = tuple("0123456789")


def _images(n, seed):
    import torch
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8, generator=g), torch.arange(n) % 10


def noise(root, split):  # generated in code: no files at all
    return _images(64 if split == "train" else 32, 0 if split == "train" else 1)


def hollow(root, split):  # a test split with nothing in it
    return _images(64 if split == "train" else 0, 0)


def counted(root, split):  # reads how many images to make from a file under its folder
    return _images(int((root / "count.txt").read_text()), 2)


@zoo.hookimpl
def register_datasets(register):
    register(zoo.DatasetSpec(name="noise", summary="noise", input_shape=(1, 28, 28), class_names=DIGITS, load=noise))
    register(zoo.DatasetSpec(name="hollow", summary="empty test split", input_shape=(1, 28, 28),
                             class_names=DIGITS, load=hollow))
    register(zoo.DatasetSpec(name="counted", summary="reads a file", input_shape=(1, 28, 28),
                             class_names=DIGITS, load=counted, files=("count.txt",)))
'''


def test_a_dataset_generated_in_code_is_always_available(fake_dists, tmp_path):
    fake_dists.add("zoo-gen", "genplug", DATASETS)
    result = zoo("train", "lenet5", "--dataset", "noise", "--epochs", "1", "--threads", "1", "--quiet",
                 "--out", tmp_path / "r")
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "r" / "run.json").read_text())["dataset"] == "noise"


def test_empty_splits_and_limit_0_are_one_line_before_any_work(fake_dists, tmp_path):
    fake_dists.add("zoo-gen", "genplug", DATASETS)
    result = zoo("train", "lenet5", "--dataset", "hollow", "--epochs", "1", "--out", tmp_path / "r")
    assert result.returncode == 1 and "empty" in one_error_line(result) and "test" in one_error_line(result)
    assert not (tmp_path / "r").exists()
    result = zoo("train", "lenet5", "--limit", "0", "--epochs", "1", "--out", tmp_path / "r")
    assert result.returncode == 2 and "limit" in one_error_line(result)
    assert not (tmp_path / "r").exists()
    result = zoo("train", "lenet5", "--dataset", "noise", "--epochs", "1", "--threads", "1", "-q", "--out", tmp_path / "ok")
    assert result.returncode == 0, result.stderr
    result = zoo("evaluate", "lenet5", "--weights", tmp_path / "ok" / "model.safetensors", "--dataset", "hollow")
    assert result.returncode == 1 and "empty" in one_error_line(result) and "nan" not in result.stdout


def test_evaluate_reuses_the_data_folder_recorded_in_run_json(fake_dists, tmp_path):
    fake_dists.add("zoo-gen", "genplug", DATASETS)
    data = tmp_path / "elsewhere"
    (data / "counted").mkdir(parents=True)
    (data / "counted" / "count.txt").write_text("40")
    trained = zoo("train", "lenet5", "--dataset", "counted", "--data-dir", data, "--epochs", "1", "--threads", "1",
                  "-q", "--out", tmp_path / "r")
    assert trained.returncode == 0, trained.stderr
    result = zoo("evaluate", "lenet5", "--weights", tmp_path / "r" / "model.safetensors", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["dataset"] == "counted" and report["samples"] == 40
