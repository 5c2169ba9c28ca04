"""Extending a finished run (--resume --epochs N), --init-from RUN, lr-sweep with train's
flags, and the small ones (issue 16, items 7, 8 and 10)."""
from __future__ import annotations

import csv
import json

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from conftest import toy_plugin
from zoo.cli.main import app
from zoo.errors import UsageError
from zoo.runs import METRICS_FILE, RUN_FILE, WEIGHTS_FILE
from zoo.train import TrainConfig, train

runner = CliRunner()
TINY = dict(limit=128, batch_size=64, threads=1)


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def test_a_finished_constant_run_extends_and_equals_the_longer_run(tmp_path):
    opts = dict(model="mlp", optimizer="sgd", lr=0.05, schedule="constant", **TINY)
    train(TrainConfig(epochs=3, out=tmp_path / "long", **opts))
    train(TrainConfig(epochs=2, out=tmp_path / "short", **opts))
    more = train(TrainConfig(epochs=3, out=tmp_path / "short", resume=True, **opts))
    assert more.status == "finished" and [m.epoch for m in more.metrics] == [1, 2, 3]
    a, b = load_file(str(tmp_path / "long" / WEIGHTS_FILE)), load_file(str(tmp_path / "short" / WEIGHTS_FILE))
    assert all(torch.equal(a[k], b[k]) for k in a)  # the same run as one trained for 3 epochs at once
    with open(tmp_path / "short" / METRICS_FILE, newline="") as fh:
        assert [r["epoch"] for r in csv.DictReader(fh)] == ["1", "2", "3"]


def test_a_cycled_constant_run_does_not_extend(tmp_path):
    """Cycles split the total: 2 epochs in 2 cycles augment from epoch 2, 4 in 2 from epoch 3,
    so going on would change epochs already trained; the whole advice is on one line."""
    opts = dict(model="lenet5", optimizer="sgd", lr=0.05, schedule="constant", cycles=2, augment_from_cycle=2,
                **TINY)
    first = tmp_path / "first"
    train(TrainConfig(epochs=2, out=first, **opts))
    with pytest.raises(UsageError, match="2 cycles were laid out for 2 epoch"):
        train(TrainConfig(epochs=4, out=first, resume=True, **opts))
    told = invoke("train", "lenet5", "--resume", "--epochs", "4", "--out", first)
    assert told.exit_code == 2 and "lowered" not in told.stderr and told.stderr.strip().endswith("--out NEW_FOLDER`")


def test_a_schedule_laid_out_over_the_total_offers_init_from(tmp_path):
    opts = dict(model="mlp", schedule="onecycle", **TINY)
    first = tmp_path / "first"
    train(TrainConfig(epochs=1, out=first, **opts))
    with pytest.raises(UsageError, match="--init-from"):
        train(TrainConfig(epochs=2, out=first, resume=True, **opts))
    told = invoke("train", "mlp", "--resume", "--epochs", "2", "--out", first)
    assert told.exit_code == 2 and "--force" in told.stderr  # the whole advice, long path and all, on its one line
    assert told.stderr.strip().endswith("--out NEW_FOLDER`") and len(told.stderr.strip().splitlines()) == 1
    seeded = train(TrainConfig(epochs=1, out=tmp_path / "second", init_from=first, **opts))
    assert seeded.info["init_from"] == str(first / WEIGHTS_FILE)
    result = invoke("train", "mlp", "--init-from", first, "--model-arg", "hidden=12", "--epochs", "1",
                    "--limit", "64", "--out", tmp_path / "third")
    assert result.exit_code == 1 and "do not fit" in result.stderr and "Traceback" not in result.output


def test_lr_sweep_takes_train_flags_and_its_title_names_them(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("lr-sweep", "lenet5", "--lrs", "0.05", "--epochs", "1", "--limit", "128",
                    "--optimizer", "sgd", "--momentum", "0", "--label-smoothing", "0", "--no-augment",
                    "--normalize", "unit", "--model-arg", "activation=tanh", "--threads", "1",
                    "--schedule", "onecycle", "--warmup-fraction", "0.5", "--final-lr-fraction", "0.1")
    assert result.exit_code == 0, result.output
    info = json.loads((tmp_path / "runs" / "lenet5" / "lr-sweep" / "lr-0.05" / RUN_FILE).read_text())
    assert info["hyperparameters"]["momentum"] == 0 and info["hyperparameters"]["label_smoothing"] == 0
    assert info["normalize"] == "unit" and info["model_args"] == {"activation": "tanh"} and info["augment"] is False
    from zoo.viz.lr_sweep import _changed_settings
    import zoo

    changed = _changed_settings(info["hyperparameters"], {"normalize": "unit", "model_args": info["model_args"],
                                                           "augment": False}, zoo.get_spec("lenet5").recipe, True)
    assert {"momentum 0", "label smoothing 0", "inputs scaled to 0..1", "model activation=tanh",
            "no augmentation", "warm-up fraction 0.5", "final lr fraction 0.1"} <= set(changed)
    assert (info["hyperparameters"]["warmup_fraction"], info["hyperparameters"]["final_lr_fraction"]) == (0.5, 0.1)
    # a setting that does nothing in this sweep is not named: no warm-up without onecycle, no nesterov without sgd
    recipe = zoo.get_spec("vgg16").recipe
    quiet = _changed_settings({**info["hyperparameters"], "schedule": "constant", "optimizer": "adam",
                               "nesterov": False}, {}, recipe, False)
    assert not any(("warm-up" in c or "nesterov" in c or "final lr" in c) for c in quiet)
    loud = _changed_settings({**info["hyperparameters"], "optimizer": "sgd", "nesterov": False}, {}, recipe, False)
    assert "no nesterov" in loud


def test_a_declared_batch_dimension_gets_a_hint(fake_dists):
    import zoo
    from zoo.shapes import check_spec

    fake_dists.add("zoo-batchdim", "zoo_batchdim_plugin",
                   toy_plugin("batchdim", "register(toy_spec(pool_shape=(1, 4, 13, 13)))"))
    report = check_spec(zoo.get_spec("batchdim"))
    assert "leave out the batch dimension" in report.first_problem() and "4x13x13" in report.first_problem()


def test_a_plugin_reusing_a_zoo_name_is_told_to_rename(fake_dists):
    from zoo.registry import load_registry

    fake_dists.add("zoo-dup", "zoo_dup_plugin", toy_plugin(name="cnn"))
    message = " ".join(load_registry().warnings)
    assert "rename the model in zoo-dup" in message and "uninstall" not in message
