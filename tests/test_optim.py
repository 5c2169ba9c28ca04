"""Learning-rate schedules from a recipe (zoo.train.optim): warm-up and final-lr knobs."""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

import zoo
from zoo.cli.main import app
from zoo.errors import SpecError
from zoo.runs import RUN_FILE
from zoo.train.optim import make_optimizer, make_scheduler

CPU = torch.device("cpu")


def lr_curve(recipe: zoo.Recipe, steps_per_epoch: int) -> list[float]:
    """The lr of every step of the run, from the real optimizer and scheduler on a real model."""
    optimizer = make_optimizer(zoo.create_model("mlp"), recipe, CPU)
    scheduler = make_scheduler(optimizer, recipe, steps_per_epoch)
    lrs = []
    for _ in range(recipe.epochs * steps_per_epoch):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


@pytest.mark.parametrize("warmup", [0.1, 0.3, 0.5])
def test_onecycle_peaks_after_the_warmup_fraction(warmup):
    recipe = zoo.Recipe(epochs=4, lr=0.02, schedule="onecycle", warmup_fraction=warmup)
    lrs = lr_curve(recipe, steps_per_epoch=25)
    peak = max(range(len(lrs)), key=lrs.__getitem__)
    assert abs(peak - warmup * len(lrs)) <= 1
    assert lrs[peak] == pytest.approx(0.02)
    assert lrs[0] == pytest.approx(0.02 / 25)


@pytest.mark.parametrize("schedule", ["onecycle", "cosine"])
@pytest.mark.parametrize("fraction", [0.01, 0.1])
def test_the_last_step_ends_near_the_final_lr_fraction(schedule, fraction):
    recipe = zoo.Recipe(epochs=3, lr=0.05, schedule=schedule, final_lr_fraction=fraction)
    lrs = lr_curve(recipe, steps_per_epoch=40)
    # the scheduler reaches the final value one step after the last one trained
    assert lrs[-1] == pytest.approx(0.05 * fraction, rel=0.05)
    assert min(lrs[len(lrs) // 2:]) >= 0.05 * fraction * 0.999  # the decay never undershoots it


def test_defaults_keep_torchs_onecycle():
    """Recipes written before the knobs existed train exactly as they did."""
    recipe = zoo.Recipe(epochs=2, lr=0.01, schedule="onecycle")
    optimizer = make_optimizer(zoo.create_model("mlp"), recipe, CPU)
    reference = torch.optim.lr_scheduler.OneCycleLR(
        torch.optim.SGD(zoo.create_model("mlp").parameters(), lr=0.01), max_lr=0.01, total_steps=2 * 30)
    ours = make_scheduler(optimizer, recipe, 30)
    for _ in range(60):
        assert optimizer.param_groups[0]["lr"] == pytest.approx(reference.get_last_lr()[0], rel=1e-9)
        optimizer.step()
        ours.step()
        reference.optimizer.step()
        reference.step()


@pytest.mark.parametrize("field, value", [("warmup_fraction", 0.0), ("warmup_fraction", 1.0),
                                          ("final_lr_fraction", 0.0), ("final_lr_fraction", 1.5)])
def test_recipe_refuses_out_of_range_knobs(field, value):
    with pytest.raises(SpecError, match=field):
        zoo.Recipe(**{field: value})


def test_train_records_the_knobs_and_refuses_bad_ones(tmp_path):
    runner = CliRunner()
    bad = runner.invoke(app, ["train", "mlp", "--warmup-fraction", "1.5", "--out", str(tmp_path / "bad")])
    assert bad.exit_code == 2 and "warmup_fraction must be in (0, 1)" in bad.stderr
    assert not (tmp_path / "bad").exists()
    ok = runner.invoke(app, ["train", "mlp", "--epochs", "1", "--limit", "128", "--threads", "1", "--quiet",
                             "--warmup-fraction", "0.1", "--final-lr-fraction", "0.05", "--out", str(tmp_path / "r")])
    assert ok.exit_code == 0, ok.stderr
    hparams = json.loads((tmp_path / "r" / RUN_FILE).read_text())["hyperparameters"]
    assert hparams["warmup_fraction"] == 0.1 and hparams["final_lr_fraction"] == 0.05


def test_nesterov_reaches_the_optimizer_and_needs_sgd_with_momentum():
    recipe = zoo.Recipe(optimizer="sgd", momentum=0.9, nesterov=True, lr=0.1)
    optimizer = make_optimizer(zoo.create_model("mlp"), recipe, CPU)
    assert optimizer.param_groups[0]["nesterov"] is True
    for bad in (dict(optimizer="adamw"), dict(optimizer="sgd", momentum=0.0)):
        with pytest.raises(SpecError, match="nesterov needs the sgd optimizer"):
            zoo.Recipe(nesterov=True, **bad)


def test_the_weight_average_follows_the_warmed_up_decay_and_keeps_counters():
    from zoo.train.optim import make_average

    assert make_average(nn.Linear(2, 2), 0.0) is None
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    average = make_average(model, 0.5)  # the warm-up's (1 + n) / (10 + n) passes 0.5 at n = 8: both regimes
    expected = {}
    for step in range(30):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        model(torch.randn(4, 3))  # moves BatchNorm's running statistics and its counter
        average.update_parameters(model)
        d = min(0.5, (1 + step) / (10 + step))  # the first update copies (its d would be 0.1)
        for k, v in model.state_dict().items():
            expected[k] = v.clone() if step == 0 or not v.is_floating_point() else d * expected[k] + (1 - d) * v
    got = average.module.state_dict()
    assert int(average.n_averaged) == 30 and got["1.num_batches_tracked"].item() == 30
    for k, v in expected.items():
        assert torch.allclose(got[k].float(), v.float(), atol=1e-6), k
    assert not torch.allclose(got["0.weight"], model[0].weight)  # an average, not a copy


def test_metrics_record_the_lr_each_epochs_last_step_used(tmp_path):
    """One step an epoch (seed 002's full-batch runs): the lr column is the schedule's own
    curve, ending at the final lr; the value after the last step (the schedule run past
    its end, climbing again) is never recorded."""
    from zoo.train import TrainConfig, train

    recipe = dict(epochs=4, lr=0.01, schedule="onecycle", warmup_fraction=0.3)
    result = train(TrainConfig("mlp", out=tmp_path / "run", limit=64, batch_size=64, threads=1, offline=True, **recipe))
    assert [m.lr for m in result.metrics] == pytest.approx(lr_curve(zoo.Recipe(batch_size=64, **recipe), 1))
    assert result.metrics[-1].lr == pytest.approx(0.01 * 4e-6)
