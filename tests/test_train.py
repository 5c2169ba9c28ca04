"""zoo.train and `zoo train` on the real bundled MNIST sample, with real files.

Runs are tiny (a few hundred images, 1-2 epochs) to keep the suite fast.
"""
from __future__ import annotations

import csv
import json
import os
import pathlib
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from typer.testing import CliRunner

from conftest import assert_same_weights, weights

import zoo
from zoo.cli.main import app
from zoo.errors import TrainingError
from zoo.runs import (CHECKPOINT_FILE, CHECKPOINT_STATE_FILE, METRICS_COLUMNS, METRICS_FILE, RUN_FILE,
                      WEIGHTS_FILE, load_trained)
from zoo.train import BatchProgress, EpochEnded, EpochStarted, TrainConfig, evaluate, train
from zoo.train.checkpoint import META_KEY, read_checkpoint

ZOO = str(Path(sys.executable).parent / "zoo")
runner = CliRunner()
# threads pinned: results differ in the last bits between thread counts, and "auto" follows the machine's load.
TINY = dict(limit=256, batch_size=64, epochs=1, threads=1)


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def interrupt_when(predicate):
    """An on_event callback that sends this process a real SIGINT (Ctrl-C) once predicate(event) holds."""
    def on_event(event):
        if predicate(event):
            os.kill(os.getpid(), signal.SIGINT)
    return on_event


# --- the CLI and what a run leaves behind ----------------------------------------------------

def test_cli_train_writes_the_run_folder(tmp_path):
    folder = tmp_path / "run"
    result = invoke("train", "lenet5", "--epochs", "2", "--limit", "256", "--batch-size", "64", "--out", folder,
                    "--threads", "1")
    assert result.exit_code == 0, result.output
    assert "mnist-sample" in result.stderr  # the fallback notice is visible
    assert "epoch 1/2" in result.stdout and "epoch 2/2" in result.stdout  # plain lines: not a terminal
    assert "test accuracy" in result.stdout

    for name in (WEIGHTS_FILE, RUN_FILE, METRICS_FILE, CHECKPOINT_FILE, CHECKPOINT_STATE_FILE, "curves.png"):
        assert (folder / name).is_file(), name
    assert str(folder / "curves.png") in result.stdout  # the command drew the curves and says where
    info = json.loads((folder / RUN_FILE).read_text())
    assert info["model"] == "lenet5" and info["plugin"] == "zoo" and info["plugin_version"]
    assert info["dataset"] == "mnist" and info["dataset_variant"] == "mnist-sample"
    assert info["status"] == "finished" and info["epochs_completed"] == 2 and info["metrics_file"] == METRICS_FILE
    assert info["hyperparameters"]["epochs"] == 2 and info["hyperparameters"]["batch_size"] == 64
    assert info["hyperparameters"]["optimizer"] == zoo.get_spec("lenet5").recipe.optimizer
    assert info["seed"] == 0 and info["device"] == "cpu" and info["limit"] == 256 and info["threads"] == 1
    assert info["train_samples"] == 256 and info["test_samples"] == 256
    assert info["augment"] is zoo.get_spec("lenet5").train_transforms.augments  # what the spec declares
    assert info["versions"]["torch"] == torch.__version__
    assert 0 <= info["test_accuracy"] <= 1 and info["test_accuracy"] == info["last_epoch"]["test_acc"]
    assert info["wall_time_seconds"] > 0

    with open(folder / METRICS_FILE, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0].keys()) == METRICS_COLUMNS and [r["epoch"] for r in rows] == ["1", "2"]
    assert float(rows[1]["test_acc"]) == pytest.approx(info["test_accuracy"], abs=1e-5)

    # The weights are the model's state dict, and evaluating them reproduces the run's number.
    spec = zoo.get_spec("lenet5")
    model = load_trained(spec, folder / WEIGHTS_FILE)
    from zoo.train.data import load_run_data

    data = load_run_data(spec, "mnist", None, True, limit=256, seed=0)
    again = evaluate(model, data.test.images, data.test.labels, spec)
    assert again.accuracy == pytest.approx(info["test_accuracy"], abs=1 / 256)  # thread counts may differ


def test_a_folder_holding_a_run_needs_resume_or_force(tmp_path):
    folder = tmp_path / "run"
    assert invoke("train", "lenet5", "--epochs", "1", "--limit", "128", "--out", folder).exit_code == 0
    before = (folder / WEIGHTS_FILE).read_bytes()

    result = invoke("train", "lenet5", "--epochs", "1", "--limit", "128", "--out", folder)
    assert result.exit_code == 2 and "--resume" in result.stderr and "--force" in result.stderr
    assert (folder / WEIGHTS_FILE).read_bytes() == before  # nothing overwritten

    result = invoke("train", "lenet5", "--resume", "--out", folder)  # already finished: nothing to do
    assert result.exit_code == 0 and "already finished" in result.stderr
    assert (folder / WEIGHTS_FILE).read_bytes() == before

    result = invoke("train", "lenet5", "--resume", "--lr", "0.5", "--out", folder)
    assert result.exit_code == 2 and "--lr 0.5" in result.stderr and "saved settings" in result.stderr

    result = invoke("train", "lenet5", "--resume", "--out", tmp_path / "empty")
    assert result.exit_code == 2 and "nothing to resume" in result.stderr

    result = invoke("train", "lenet5", "--force", "--dataset", "cifar10", "--out", folder)  # fails before writing
    assert result.exit_code != 0 and (folder / WEIGHTS_FILE).read_bytes() == before

    result = invoke("train", "lenet5", "--epochs", "1", "--limit", "128", "--seed", "3", "--force", "--out", folder)
    assert result.exit_code == 0, result.output
    assert json.loads((folder / RUN_FILE).read_text())["seed"] == 3


def test_bad_options_are_one_clear_line(tmp_path):
    result = invoke("train", "lenet5", "--optimizer", "adagrad", "--out", tmp_path / "r")
    assert result.exit_code == 2 and "adagrad" in result.stderr and "sgd, adam, adamw" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    result = invoke("train", "lenet5", "--device", "cuda", "--limit", "64", "--out", tmp_path / "r")
    if not torch.cuda.is_available():
        assert result.exit_code == 2 and "no CUDA GPU" in result.stderr
    result = invoke("train", "lenet5", "--dataset", "cifar10", "--limit", "64", "--out", tmp_path / "r")
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert not (tmp_path / "r" / CHECKPOINT_FILE).exists()


# --- resume -----------------------------------------------------------------------------------

@pytest.mark.parametrize("optimizer,schedule,ema", [("adamw", "onecycle", 0.0), ("sgd", "step", 0.0),
                                                    ("adamw", "onecycle", 0.9)])
def test_resume_after_an_epoch_equals_an_uninterrupted_run(tmp_path, optimizer, schedule, ema):
    opts = dict(model="lenet5", epochs=2, limit=256, batch_size=64, optimizer=optimizer, schedule=schedule, threads=1,
                ema=ema)
    straight = train(TrainConfig(out=tmp_path / "straight", **opts))

    first = train(TrainConfig(out=tmp_path / "split", **opts),
                  on_event=interrupt_when(lambda e: isinstance(e, EpochEnded) and e.metrics.epoch == 1))
    assert first.status == "interrupted" and first.epoch == 1 and first.batch == 0
    assert not (tmp_path / "split" / WEIGHTS_FILE).exists()
    second = train(TrainConfig(model="lenet5", out=tmp_path / "split", resume=True))
    assert second.status == "finished" and second.epoch == 2

    assert_same_weights(tmp_path / "straight", tmp_path / "split")
    assert not list((tmp_path / "straight").glob("*.png"))  # training records data; only commands draw
    same = ("train_loss", "train_acc", "test_loss", "test_acc", "lr")
    assert [[getattr(m, k) for k in same] for m in straight.metrics] == \
        [[getattr(m, k) for k in same] for m in second.metrics]
    info = json.loads((tmp_path / "split" / RUN_FILE).read_text())
    assert info["sessions"] == 2 and info["threads"] == 1  # the resumed session kept the run's thread count


@pytest.mark.parametrize("ema", [0.0, 0.9])
def test_resume_mid_epoch_equals_an_uninterrupted_run(tmp_path, ema):
    opts = dict(model="lenet5", epochs=2, limit=512, batch_size=64, threads=1, ema=ema)
    straight = train(TrainConfig(out=tmp_path / "straight", **opts))
    first = train(TrainConfig(out=tmp_path / "split", **opts), on_event=interrupt_when(
        lambda e: isinstance(e, BatchProgress) and e.epoch == 2 and e.batch == 3))
    assert first.status == "interrupted" and (first.epoch, first.batch) == (1, 3)
    meta, _ = read_checkpoint(tmp_path / "split")
    assert (meta["epoch"], meta["batch"]) == (1, 3)
    second = train(TrainConfig(model="lenet5", out=tmp_path / "split", resume=True))
    assert_same_weights(tmp_path / "straight", tmp_path / "split")
    assert second.metrics[-1].train_loss == straight.metrics[-1].train_loss


def test_with_ema_the_moving_average_is_what_is_evaluated_and_saved(tmp_path):
    folder = tmp_path / "run"
    result = train(TrainConfig("lenet5", out=folder, ema=0.9, epochs=2, batch_size=256, threads=1, offline=True))
    meta, tensors = read_checkpoint(folder)
    assert meta["settings"]["recipe"]["ema"] == 0.9
    assert tensors["ema.n_averaged"].item() == 2 * 16  # every step of both epochs (4,000 images, batch 256)
    saved = weights(folder)
    assert all(torch.equal(v, tensors[f"ema.module.{k}"]) for k, v in saved.items())  # the file is the average,
    assert any(not torch.equal(v, tensors[f"model.{k}"]) for k, v in saved.items())  # not the last step's weights
    evaluated = invoke("evaluate", "lenet5", "--weights", folder / WEIGHTS_FILE, "--json", "--offline")
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads(evaluated.stdout)["accuracy"] == result.test_accuracy  # the accuracy the run reported


def test_host_memory_path_trains_the_same_as_the_device_path(tmp_path):
    """The DataLoader fallback (data that does not fit on the device) sees the same batches."""
    on = train(TrainConfig("lenet5", out=tmp_path / "on", data_on_device=True, **TINY))
    off = train(TrainConfig("lenet5", out=tmp_path / "off", data_on_device=False, **TINY))
    assert off.info["data_on_device"] is False
    assert_same_weights(tmp_path / "on", tmp_path / "off")
    assert on.metrics[0].train_loss == off.metrics[0].train_loss


def test_no_augment_trains_on_normalised_images_only(tmp_path):
    result = train(TrainConfig("lenet5", out=tmp_path / "r", augment=False, **TINY))
    assert result.info["augment"] is False
    with pytest.raises(zoo.errors.UsageError, match="--augment"):  # resuming cannot switch it back on
        train(TrainConfig("lenet5", out=tmp_path / "r", resume=True, augment=True))


# --- divergence -------------------------------------------------------------------------------

def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    folder = tmp_path / "run"

    def poison(event):  # a real run whose model starts returning NaN in epoch 2
        if isinstance(event, EpochStarted) and event.epoch == 2:
            event.model.register_forward_hook(lambda module, args, output: output * float("nan"))

    with pytest.raises(TrainingError) as info:
        train(TrainConfig("lenet5", epochs=3, limit=256, batch_size=64, out=folder, checkpoint_every="1"),
              on_event=poison)  # a checkpoint after every epoch, so epoch 1's is the last good one
    message = str(info.value)
    assert "nan" in message and "epoch 2" in message and "end of epoch 1" in message and "--lr" in message
    meta, tensors = read_checkpoint(folder)
    assert meta["epoch"] == 1 and meta["batch"] == 0
    assert all(torch.isfinite(t).all() for k, t in tensors.items() if k.startswith("model."))
    assert not (folder / WEIGHTS_FILE).exists()


def test_cli_divergence_exits_1_with_a_clear_message(tmp_path):
    # batch 64: several steps, so the blown-up weights are trained on (one step only evaluates them)
    result = invoke("train", "lenet5", "--optimizer", "sgd", "--lr", "1e6", "--schedule", "constant",
                    "--epochs", "1", "--limit", "256", "--batch-size", "64", "--out", tmp_path / "r")
    assert result.exit_code == 1
    assert "diverged" in result.stderr and "no checkpoint was written" in result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "r" / CHECKPOINT_FILE).exists()


# --- checkpoints ------------------------------------------------------------------------------

def test_checkpoint_files_hold_no_pickle(tmp_path, monkeypatch):
    folder = tmp_path / "run"
    train(TrainConfig("lenet5", out=folder, **TINY))
    train(TrainConfig("lenet5", out=folder / "2", **(TINY | {"epochs": 2})),
          on_event=interrupt_when(lambda e: isinstance(e, EpochEnded)))
    for name in (CHECKPOINT_FILE, WEIGHTS_FILE):
        raw = (folder / name).read_bytes()
        header_len = int.from_bytes(raw[:8], "little")
        json.loads(raw[8:8 + header_len])  # a safetensors header is JSON, the rest raw tensor bytes
    with safe_open(str(folder / CHECKPOINT_FILE), framework="pt") as f:
        meta = json.loads(f.metadata()[META_KEY])
        keys = set(f.keys())
    assert meta == json.loads((folder / CHECKPOINT_STATE_FILE).read_text())
    assert {"rng.cpu", "model.conv1.weight"} <= keys and any(k.startswith("optimizer.state") for k in keys)
    assert meta["epoch"] == 1 and meta["settings"]["recipe"]["batch_size"] == 64

    def no_unpickling(*args, **kwargs):
        raise AssertionError("something unpickled")

    monkeypatch.setattr(pickle, "load", no_unpickling)
    monkeypatch.setattr(pickle, "loads", no_unpickling)
    monkeypatch.setattr(torch, "load", no_unpickling)
    result = train(TrainConfig("lenet5", out=folder / "2", resume=True))  # reads the checkpoint
    assert result.status == "finished" and result.epoch == 2


def test_a_failed_save_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    folder = tmp_path / "run"
    opts = dict(model="lenet5", epochs=2, limit=256, batch_size=64, out=folder)
    train(TrainConfig(**opts), on_event=interrupt_when(lambda e: isinstance(e, EpochEnded)))
    before = {n: (folder / n).read_bytes() for n in (CHECKPOINT_FILE, CHECKPOINT_STATE_FILE)}

    real_write = pathlib.Path.write_bytes

    def disk_full(self, data):  # half the bytes reach the disk, then the write fails
        real_write(self, data[: len(data) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pathlib.Path, "write_bytes", disk_full)
    with pytest.raises(zoo.ZooError) as info:
        train(TrainConfig(model="lenet5", out=folder, resume=True))
    # the first write of the resumed run fails (metrics.csv, trimmed to the checkpoint, comes first)
    assert "No space left" in str(info.value)
    monkeypatch.undo()

    assert {n: (folder / n).read_bytes() for n in before} == before
    assert [p.name for p in folder.iterdir() if p.name.endswith(".tmp")] == []
    assert train(TrainConfig(model="lenet5", out=folder, resume=True)).status == "finished"


def test_ctrl_c_saves_and_exits_130(tmp_path):
    """A real SIGINT to a real `zoo train` process, after its first epoch line."""
    folder = tmp_path / "run"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([ZOO, "train", "lenet5", "--epochs", "200", "--limit", "1024", "--out", str(folder)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 120
        for line in proc.stdout:
            if line.startswith("epoch") or time.monotonic() > deadline:
                break
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and f"zoo train lenet5 --resume --out {folder}" in stderr
    meta, _ = read_checkpoint(folder)
    assert meta["epoch"] >= 1 and meta["model"] == "lenet5"
    assert json.loads((folder / RUN_FILE).read_text())["status"] == "interrupted"


# --- batched augmentation = the torchvision pipeline ------------------------------------------

def test_batched_crop_and_flip_match_torchvision():
    from torchvision.transforms import v2
    from torchvision.transforms.v2 import functional as TF

    from zoo.train.augment import AugmentParams, BatchTransform

    t = zoo.Transforms(mean=(0.2, 0.4, 0.6), std=(0.3, 0.2, 0.1), crop_padding=3, hflip=True)
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (6, 3, 8, 10), dtype=torch.uint8, generator=g)
    top, left = torch.tensor([0, 6, 3, 1, 5, 2]), torch.tensor([6, 0, 3, 4, 1, 2])
    flip = torch.tensor([False, True, False, True, True, False])
    got = BatchTransform(t)(images, AugmentParams(top, left, flip))

    tail = v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(t.mean), list(t.std))])
    for i in range(len(images)):
        img = TF.crop(TF.pad(images[i], [3], fill=0), int(top[i]), int(left[i]), 8, 10)  # RandomCrop(padding=3)
        img = TF.horizontal_flip(img) if flip[i] else img
        assert torch.allclose(got[i], tail(img), atol=1e-6, rtol=0), f"sample {i}"

    # No augmentation declared: exactly the eval pipeline the spec builds.
    plain = zoo.Transforms(mean=t.mean, std=t.std)
    assert torch.allclose(BatchTransform(plain)(images), torch.stack([plain()(im) for im in images]), atol=1e-6)


def test_random_draws_cover_the_range_torchvision_draws_from():
    from zoo.train.augment import BatchTransform

    tf = BatchTransform(zoo.Transforms(mean=(0.5,), std=(0.5,), crop_padding=2, hflip=True))
    p = tf.draw_params(4000, torch.Generator().manual_seed(1))
    assert set(p.top.tolist()) == set(range(5)) == set(p.left.tolist())  # RandomCrop: top in [0, 2 * padding]
    assert 0.45 < p.flip.float().mean() < 0.55
    none = BatchTransform(zoo.Transforms(mean=(0.5,), std=(0.5,))).draw_params(10, torch.Generator())
    assert not none.flip.any()


# --- evaluate ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("trained")
    with pytest.MonkeyPatch.context() as mp:  # module scope: conftest's isolation is not active yet
        mp.setenv("ZOO_OFFLINE", "1")
        mp.setenv("ZOO_DATA_DIR", str(tmp_path_factory.mktemp("no-data")))
        train(TrainConfig("lenet5", out=folder, limit=512, epochs=1, batch_size=64))
    return folder


def test_evaluate_api_counts_add_up(trained):
    from zoo.data.resolve import load_dataset

    spec = zoo.get_spec("lenet5")
    test = load_dataset("mnist", "test", offline=True)
    result = evaluate(load_trained(spec, trained / WEIGHTS_FILE), test.images, test.labels, spec, batch_size=300)
    assert result.samples == len(test.labels) == len(result.predictions) == int(result.confusion.sum())
    assert result.confusion.shape == (10, 10)
    assert result.accuracy == pytest.approx((result.predictions == test.labels).double().mean().item())
    assert result.per_class_accuracy[3] == pytest.approx(
        (result.predictions[test.labels == 3] == 3).double().mean().item())
    assert 0 < result.loss < 10


def test_cli_evaluate_json(trained):
    result = invoke("evaluate", "lenet5", "--weights", trained / WEIGHTS_FILE, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {"model", "dataset", "accuracy", "loss", "samples", "per_class_accuracy", "confusion"} <= set(data)
    assert data["model"] == "lenet5" and data["dataset"] == "mnist" and data["samples"] == 1000
    assert sum(map(sum, data["confusion"])) == 1000 and 0 <= data["accuracy"] <= 1


def test_cli_evaluate_table_and_plot(trained, tmp_path):
    png = tmp_path / "cm.png"
    result = invoke("evaluate", "lenet5", "--weights", trained / WEIGHTS_FILE, "--plot", "--out", png)
    assert result.exit_code == 0, result.output
    assert "accuracy" in result.stdout and "confusion matrix" in result.stdout and str(png) in result.stdout
    assert png.read_bytes().startswith(b"\x89PNG")


def test_cli_evaluate_without_weights_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("evaluate", "lenet5")
    assert result.exit_code != 0 and "zoo train lenet5" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output


def test_cli_evaluate_rejects_corrupt_or_foreign_weights(tmp_path, trained):
    bad = tmp_path / "model.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    result = invoke("evaluate", "lenet5", "--weights", bad)
    assert result.exit_code != 0 and str(bad) in result.stderr and "Traceback" not in result.output
    result = invoke("evaluate", "cnn", "--weights", trained / WEIGHTS_FILE)
    assert result.exit_code != 0 and "does not fit model 'cnn'" in result.stderr


def test_train_api_refuses_an_out_folder_below_a_file(tmp_path):
    from zoo.errors import OutputError

    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match="is a file"):
        train(TrainConfig("mlp", epochs=1, limit=64, out=tmp_path / "notes.txt" / "run", threads=1))
    assert (tmp_path / "notes.txt").read_text() == "mine"
