"""metrics.csv is appended, run.json is a summary, checkpoints come at an interval
(--checkpoint-every), and a crashed run resumes from its checkpoint with the record
trimmed to match (issue 16, item 3). Real runs on the bundled sample."""
from __future__ import annotations

import csv
import json

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from zoo.cli.main import app
from zoo.errors import UsageError
from zoo.runs import CHECKPOINT_FILE, METRICS_FILE, RUN_FILE, WEIGHTS_FILE
from zoo.train import EpochEnded, EpochStarted, TrainConfig, train
from zoo.train.checkpoint import read_checkpoint
from zoo.train.config import CheckpointEvery

TINY = dict(limit=128, batch_size=64, threads=1)


def rows(folder):
    with open(folder / METRICS_FILE, newline="") as fh:
        return list(csv.DictReader(fh))


class Crash(Exception):
    pass


def test_checkpoint_every_parses_epochs_and_seconds():
    assert CheckpointEvery.parse("3") == CheckpointEvery(epochs=3)
    assert CheckpointEvery.parse("30s") == CheckpointEvery(seconds=30.0)
    assert CheckpointEvery.parse("2").due(2, 0.0) and not CheckpointEvery.parse("2").due(1, 1e9)
    assert CheckpointEvery.parse("10s").due(1, 10.0) and not CheckpointEvery.parse("10s").due(99, 9.9)
    for bad in ("0", "-1s", "soon", "nans"):
        with pytest.raises(UsageError, match="--checkpoint-every"):
            CheckpointEvery.parse(bad)


def test_rows_are_appended_and_checkpoints_follow_the_interval(tmp_path):
    folder = tmp_path / "run"
    seen = []

    def watch(event):
        if isinstance(event, EpochEnded):
            saved = read_checkpoint(folder)[0]["epoch"] if (folder / CHECKPOINT_FILE).exists() else None
            seen.append((event.metrics.epoch, len(rows(folder)), event.checkpoint is not None, saved))

    result = train(TrainConfig("mlp", epochs=3, out=folder, checkpoint_every="2", **TINY), on_event=watch)
    # each epoch's row is in metrics.csv as soon as it ends; the checkpoint only every 2 epochs and at the end
    assert seen == [(1, 1, False, None), (2, 2, True, 2), (3, 3, True, 3)]
    info = json.loads((folder / RUN_FILE).read_text())
    assert "metrics" not in info and info["metrics_file"] == METRICS_FILE
    assert info["last_epoch"]["epoch"] == 3 and info["test_accuracy"] == result.metrics[-1].test_acc
    assert [int(r["epoch"]) for r in rows(folder)] == [1, 2, 3]


def test_a_crash_between_checkpoints_resumes_with_the_record_trimmed(tmp_path):
    whole, crashed = tmp_path / "whole", tmp_path / "crashed"
    train(TrainConfig("mlp", epochs=4, out=whole, checkpoint_every="1", **TINY))

    def crash_in_epoch_4(event):
        if isinstance(event, EpochStarted) and event.epoch == 4:
            raise Crash  # as if the machine went down: epoch 3 is in metrics.csv, not in the checkpoint

    with pytest.raises(Crash):
        train(TrainConfig("mlp", epochs=4, out=crashed, checkpoint_every="2", **TINY), on_event=crash_in_epoch_4)
    assert len(rows(crashed)) == 3 and read_checkpoint(crashed)[0]["epoch"] == 2
    train(TrainConfig("mlp", epochs=4, out=crashed, resume=True, **TINY))
    assert [int(r["epoch"]) for r in rows(crashed)] == [1, 2, 3, 4]
    for a, b in zip(rows(whole), rows(crashed)):  # the same run, bit for bit, apart from timings
        assert {k: v for k, v in a.items() if k != "seconds"} == {k: v for k, v in b.items() if k != "seconds"}
    a, b = load_file(str(whole / WEIGHTS_FILE)), load_file(str(crashed / WEIGHTS_FILE))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_cli_refuses_a_bad_interval_before_training(tmp_path):
    result = CliRunner().invoke(app, ["train", "mlp", "--checkpoint-every", "often", "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "--checkpoint-every 'often'" in result.stderr
    assert not (tmp_path / "r").exists()
