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
