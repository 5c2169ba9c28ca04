"""`zoo runs` and `zoo runs compare`, and the model card of a finished run: real training
runs (finished, interrupted by a real Ctrl-C, failed by a diverging loss) in one folder."""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from zoo.cli.main import app
from zoo.runs_index import compare, find_runs

ZOO = str(Path(sys.executable).parent / "zoo")
runner = CliRunner()


def zoo(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "250"}
    proc = subprocess.run([ZOO, *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def interrupted_run(cwd: Path, out: str) -> None:
    """Start a long run and stop it with a real SIGINT once its first epoch is saved."""
    env = {**os.environ, "COLUMNS": "250"}
    proc = subprocess.Popen([ZOO, "train", "mlp", "--epochs", "100000", "--limit", "64", "--batch-size", "8",
                             "--threads", "1", "--checkpoint-every", "1", "--out", out], cwd=cwd, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not (cwd / out / "run.json").exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=300) == 130


@pytest.fixture(scope="module")
def runs_folder(tmp_path_factory) -> Path:
    cwd = tmp_path_factory.mktemp("runs-index")
    common = ("--limit", "128", "--threads", "1", "--quiet")
    zoo(cwd, "train", "mlp", "--epochs", "2", "--out", "runs/mlp-a", *common)
    zoo(cwd, "train", "mlp", "--epochs", "2", "--lr", "0.002", "--out", "runs/mlp-b", *common)
    failed = zoo(cwd, "train", "mlp", "--epochs", "2", "--lr", "1e30", "--optimizer", "sgd", "--schedule", "constant",
                 "--out", "runs/mlp-diverged", *common, check=False)
    assert failed.returncode == 1 and "diverged" in failed.stderr
    interrupted_run(cwd, "runs/mlp-stopped")
    return cwd


def test_runs_lists_finished_interrupted_and_failed_runs_newest_first(runs_folder):
    found = {Path(r.path).name: r for r in find_runs(runs_folder / "runs")}
    assert found["mlp-a"].status == found["mlp-b"].status == "finished"
    assert found["mlp-stopped"].status == "interrupted"
    a = found["mlp-a"]
    info = json.loads((runs_folder / "runs/mlp-a/run.json").read_text())
    assert (a.model, a.epochs_completed, a.epochs) == ("mlp", 2, 2)
    assert a.final_accuracy == info["test_accuracy"] and a.best_accuracy == info["best_test_accuracy"]
    dates = [r.date for r in find_runs(runs_folder / "runs")]
    assert dates == sorted(dates, reverse=True)
    by_accuracy = [r.best_accuracy for r in find_runs(runs_folder / "runs", sort="accuracy") if r.best_accuracy]
    assert by_accuracy == sorted(by_accuracy, reverse=True)


def test_a_failed_run_is_listed_as_failed(runs_folder):
    found = {Path(r.path).name: r for r in find_runs(runs_folder / "runs")}
    assert found["mlp-diverged"].status == "failed"


def test_runs_cli_table_and_json(runs_folder, monkeypatch):
    monkeypatch.chdir(runs_folder)
    listed = json.loads(runner.invoke(app, ["runs", "--json"]).stdout)
    with_run_json = {p.parent.name for p in (runs_folder / "runs").glob("*/run.json")}
    assert {"mlp-a", "mlp-b", "mlp-stopped"} <= with_run_json
    assert {Path(r["path"]).name for r in listed} == with_run_json
    table = zoo(runs_folder, "runs").stdout
    assert "mlp-stopped" in table and "interrupted" in table and "finished" in table
    missing = zoo(runs_folder, "runs", "nowhere", check=False)
    assert missing.returncode == 2 and missing.stderr.startswith("error: no runs folder at nowhere")


def test_a_hostile_run_json_is_listed_without_reaching_the_terminal_raw(tmp_path):
    evil = tmp_path / "runs" / "evil"
    evil.mkdir(parents=True)
    (evil / "run.json").write_text(json.dumps({"model": "mlp", "status": "finished",
                                               "dataset": "/data/\x1b[2J[red]boom[/]"}))
    for name, text in (("broken", "{not json"), ("wrong", json.dumps({"model": "mlp", "test_accuracy": "lots"}))):
        (tmp_path / "runs" / name).mkdir()
        (tmp_path / "runs" / name / "run.json").write_text(text)
    proc = zoo(tmp_path, "runs")
    assert "\x1b[2J" not in proc.stdout and "\\x1b[2J[red]boom[/]" in proc.stdout
    assert proc.stdout.count("unreadable") == 2


def test_compare_shows_the_settings_that_differ_and_plots_the_curves(runs_folder):
    result = compare([runs_folder / "runs/mlp-a", runs_folder / "runs/mlp-b"])
    assert result.differences["hyperparameters.lr"] == [0.01, 0.002]
    assert "model" not in result.differences and "seed" not in result.differences
    a, b = (json.loads((runs_folder / f"runs/{n}/run.json").read_text()) for n in ("mlp-a", "mlp-b"))
    assert result.results["test_accuracy"] == [a["test_accuracy"], b["test_accuracy"]]
    proc = zoo(runs_folder, "runs", "compare", "runs/mlp-a", "runs/mlp-b", "--plot", "--out", "cmp.png")
    assert "hyperparameters.lr" in proc.stdout and "0.002" in proc.stdout
    with Image.open(runs_folder / "cmp.png") as png:
        assert png.format == "PNG" and png.width > 500
    one = zoo(runs_folder, "runs", "compare", "runs/mlp-a", check=False)
    assert one.returncode == 2 and "at least two" in one.stderr


def test_a_finished_run_has_a_model_card_whose_command_reproduces_it(runs_folder):
    card = (runs_folder / "runs/mlp-a/README.md").read_text()
    info = json.loads((runs_folder / "runs/mlp-a/run.json").read_text())
    assert f"{100 * info['test_accuracy']:.2f}%" in card and "| 0 |" in card  # per-class rows, digits 0-9
    assert not (runs_folder / "runs/mlp-stopped/README.md").exists()
    command = next(line for line in card.splitlines() if line.startswith("zoo train "))
    assert "--dataset mnist-sample" in command  # the stand-in it trained on, not the full MNIST it stood in for
    args = command.split()[1:]
    args[args.index("--out") + 1] = "runs/again"
    zoo(runs_folder, *args, "--quiet")
    def same(run: str) -> list[tuple[str, str, str]]:  # metrics.csv is the record; run.json a summary
        with open(runs_folder / run / "metrics.csv", newline="") as fh:
            return [(m["train_loss"], m["test_loss"], m["test_acc"]) for m in csv.DictReader(fh)]

    assert len(same("runs/again")) == 2 and same("runs/again") == same("runs/mlp-a")  # bit for bit: seed, threads
    assert "zoo export mlp --weights runs/mlp-a/model.safetensors" in card


def test_a_readme_of_the_users_own_is_never_replaced(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "README.md").write_text("my notes\n")
    proc = zoo(tmp_path, "train", "mlp", "--epochs", "1", "--limit", "64", "--threads", "1", "--out", "mine",
               "--quiet")
    assert (tmp_path / "mine" / "README.md").read_text() == "my notes\n"
    assert "not a zoo model card" in proc.stderr


def test_starting_over_removes_the_old_runs_card_but_never_the_users_readme(tmp_path):
    from zoo.train.records import clear_run

    zoo(tmp_path, "train", "mlp", "--epochs", "1", "--limit", "64", "--threads", "1", "--out", "run", "--quiet")
    assert (tmp_path / "run" / "README.md").is_file()
    clear_run(tmp_path / "run")  # what --force does before the new run: its card must not outlive it
    assert not (tmp_path / "run" / "README.md").exists() and not (tmp_path / "run" / "run.json").exists()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "README.md").write_text("my notes\n")
    clear_run(tmp_path / "mine")
    assert (tmp_path / "mine" / "README.md").read_text() == "my notes\n"
    (tmp_path / "pipe").mkdir()
    os.mkfifo(tmp_path / "pipe" / "README.md")  # opening it to read would wait for a writer forever
    clear_run(tmp_path / "pipe")
    assert (tmp_path / "pipe" / "README.md").exists()


def test_the_reproduce_command_of_a_run_from_before_ema_turns_the_average_off():
    from zoo.model_card import reproduce_command

    old = {"model": "lenet5", "dataset": "mnist", "seed": 0,
           "hyperparameters": {"epochs": 8, "batch_size": 256, "lr": 0.01, "label_smoothing": 0.1}}
    assert "--ema 0.0" in reproduce_command(old, "runs/lenet5").split(" --out")[0]  # today's recipe averages
    new = dict(old, hyperparameters=dict(old["hyperparameters"], ema=0.99))
    assert "--ema 0.99" in reproduce_command(new, "runs/lenet5")
