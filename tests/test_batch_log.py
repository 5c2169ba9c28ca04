"""--log-every N: training loss and accuracy every N batches in batches.csv, printed
like the tutorials print them, plotted in curves.png (issue 16, item 1)."""
from __future__ import annotations

import csv
import os
import signal

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from zoo.cli.main import app
from zoo.runs import BATCHES_FILE, METRICS_FILE
from zoo.train import BatchLogged, BatchProgress, TrainConfig, train
from zoo.viz.curves import read_batches

runner = CliRunner()


def table(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_cli_logs_every_n_batches_and_draws_them(tmp_path):
    folder = tmp_path / "run"
    result = runner.invoke(app, ["train", "mlp", "--limit", "256", "--batch-size", "32", "--epochs", "1",
                                 "--log-every", "2", "--threads", "1", "--out", str(folder)],
                           catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rows = table(folder / BATCHES_FILE)
    assert [int(r["batch"]) for r in rows] == [2, 4, 6, 8] and [int(r["step"]) for r in rows] == [2, 4, 6, 8]
    assert "[epoch 1, batch 2/8]" in result.stdout and "[epoch 1, batch 8/8]" in result.stdout
    # the rows are interval means: weighted by their samples they give the epoch's own numbers
    epoch = table(folder / METRICS_FILE)[0]
    n = sum(int(r["samples"]) for r in rows)
    assert n == 256
    assert sum(float(r["train_loss"]) * int(r["samples"]) for r in rows) / n == \
        pytest.approx(float(epoch["train_loss"]), rel=1e-4)
    assert sum(float(r["train_acc"]) * int(r["samples"]) for r in rows) / n == \
        pytest.approx(float(epoch["train_acc"]), abs=1e-4)
    curve = read_batches(folder / BATCHES_FILE)
    assert curve.every == 2 and curve.x == pytest.approx([0.25, 0.5, 0.75, 1.0])
    with Image.open(folder / "curves.png") as img:
        assert img.format == "PNG" and np.asarray(img.convert("L")).std() > 10


def test_a_run_resumed_mid_epoch_keeps_each_interval_once(tmp_path):
    folder = tmp_path / "run"
    opts = dict(model="mlp", epochs=2, limit=256, batch_size=32, threads=1, log_every=2, out=folder)
    logged = []

    def stop_at_batch_5(event):
        if isinstance(event, BatchLogged):
            logged.append(event.metrics)
        if isinstance(event, BatchProgress) and (event.epoch, event.batch) == (2, 5):
            os.kill(os.getpid(), signal.SIGINT)

    first = train(TrainConfig(**opts), on_event=stop_at_batch_5)
    assert first.status == "interrupted" and [m.batch for m in logged][-2:] == [2, 4]
    # resumed as `zoo train` says to (`--resume`, no --log-every): it goes on logging every 2 batches
    resumed = {k: v for k, v in opts.items() if k != "log_every"} | {"resume": True}
    assert train(TrainConfig(**resumed)).info["log_every"] == 2
    rows = table(folder / BATCHES_FILE)
    assert [(int(r["epoch"]), int(r["batch"])) for r in rows] == \
        [(1, 2), (1, 4), (1, 6), (1, 8), (2, 2), (2, 4), (2, 6), (2, 8)]
    assert sum(int(r["samples"]) for r in rows if r["epoch"] == "2") < 256  # batch 5 fell between two rows


def test_log_every_must_be_positive(tmp_path):
    result = runner.invoke(app, ["train", "mlp", "--log-every", "0", "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "--log-every" in result.stderr
