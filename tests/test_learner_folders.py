"""The learners' options on a folder of the user's own images (issue 16 with issue 14):
--normalize and --model-arg carried from training through evaluation and the model
card's reproduce command, and lr-sweep with --holdout and --skip-bad. Real PNG/JPEG
files, real `zoo` processes."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

from test_image_folder import CLASSES, make_folder, truncate

ZOO = str(Path(sys.executable).parent / "zoo")


def zoo(cwd: Path, *args, code: int = 0) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "250"}
    proc = subprocess.run([ZOO, *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr
    return proc


def metrics(folder: Path) -> list[tuple[str, str, str]]:
    with open(folder / "metrics.csv", newline="") as fh:
        return [(r["train_loss"], r["test_loss"], r["test_acc"]) for r in csv.DictReader(fh)]


def test_normalize_and_model_args_on_a_folder_follow_the_run_to_evaluate_and_its_card(tmp_path):
    pictures = make_folder(tmp_path / "pictures")
    zoo(tmp_path, "train", "mlp", "--dataset", "./pictures", "--normalize", "unit", "--model-arg", "hidden=12",
        "--holdout", "0.25", "--epochs", "2", "--batch-size", "8", "--log-every", "2", "--threads", "1",
        "--out", "runs/a", "--quiet")
    info = json.loads((tmp_path / "runs/a/run.json").read_text())
    assert info["normalize"] == "unit" and info["model_args"] == {"hidden": 12} and info["log_every"] == 2
    # --normalize unit: that scale is what the model saw and what is recorded, not the folder's mean/std
    assert info["fitted"]["mean"] == [0.0] and info["fitted"]["std"] == [1.0]
    assert info["class_names"] == list(CLASSES) and info["dataset"] == str(pictures.resolve())

    report = json.loads(zoo(tmp_path, "evaluate", "mlp", "--weights", "runs/a/model.safetensors", "--json").stdout)
    assert report["samples"] == info["image_folder"]["holdout"]["test_images"]
    assert abs(report["accuracy"] - info["test_accuracy"]) < 1e-9  # the same network, pixels and images

    card = (tmp_path / "runs/a/README.md").read_text()
    assert "`--normalize unit`" in card and "`hidden=12`" in card and "normalisation from the training" not in card
    command = next(line for line in card.splitlines() if line.startswith("zoo train "))
    for flag in ("--normalize unit", "--model-arg hidden=12", "--holdout 0.25", "--log-every 2"):
        assert flag in command
    args = command.split()[1:]
    args[args.index("--out") + 1] = "runs/again"
    zoo(tmp_path, *args, "--quiet")
    assert metrics(tmp_path / "runs/again") == metrics(tmp_path / "runs/a")  # bit for bit
    assert (tmp_path / "runs/again/batches.csv").read_text() == (tmp_path / "runs/a/batches.csv").read_text()


def test_lr_sweep_on_a_folder_takes_holdout_and_skip_bad(tmp_path):
    pictures = make_folder(tmp_path / "pictures")
    truncate(pictures / "dark" / "dark-2.png")
    refused = zoo(tmp_path, "lr-sweep", "mlp", "--dataset", "./pictures", "--lrs", "0.01", "--epochs", "1",
                  "--threads", "1", code=1)
    assert "dark-2.png" in refused.stderr and "--skip-bad" in refused.stderr
    proc = zoo(tmp_path, "lr-sweep", "mlp", "--dataset", "./pictures", "--holdout", "0.25", "--skip-bad",
               "--lrs", "0.05,0.005", "--epochs", "1", "--batch-size", "8", "--normalize", "none", "--threads", "1")
    assert proc.stderr.count("dark-2.png") == 1  # said once for the sweep, not once per learning rate
    for lr in ("0.05", "0.005"):
        info = json.loads((tmp_path / f"runs/mlp/lr-sweep/lr-{lr}/run.json").read_text())
        record = info["image_folder"]
        assert record["skipped_files"] == ["dark/dark-2.png"] and record["holdout"]["fraction"] == 0.25
        assert info["normalize"] == "none" and info["class_names"] == list(CLASSES)
    assert (tmp_path / "runs/mlp/lr-sweep.png").stat().st_size > 10_000
    bad = zoo(tmp_path, "lr-sweep", "mlp", "--holdout", "0.25", "--lrs", "0.01", "--epochs", "1", code=2)
    assert "--holdout" in bad.stderr and "folder" in bad.stderr
