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


def lr_curve(recipe: zoo.Recipe, steps_per_epoch: int, key: str = "lr") -> list[float]:
    """The lr (or Adam's beta1, key="beta1") of every step of the run, from the real optimizer
    and scheduler on a real model."""
    optimizer = make_optimizer(zoo.create_model("mlp"), recipe, CPU)
    scheduler = make_scheduler(optimizer, recipe, steps_per_epoch)
    values = []
    for _ in range(recipe.epochs * steps_per_epoch):
        group = optimizer.param_groups[0]
        values.append(group["betas"][0] if key == "beta1" else group[key])
        optimizer.step()
        scheduler.step()
    return values


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


# --- warm restarts (cycles) ---------------------------------------------------------------------

@pytest.mark.parametrize("schedule", ["onecycle", "cosine"])
def test_each_cycle_runs_the_one_cycle_curve_at_a_decayed_peak(schedule):
    """A cycled run's first cycle trains exactly as a run of that many epochs would (so a
    recipe that adds a cycle keeps its early epochs), and each later one repeats the curve
    at cycle_decay times the peak before."""
    base = dict(lr=0.02, schedule=schedule, warmup_fraction=0.25, final_lr_fraction=0.01)
    single = lr_curve(zoo.Recipe(epochs=2, **base), steps_per_epoch=15)
    cycled = lr_curve(zoo.Recipe(epochs=6, cycles=3, cycle_decay=0.5, **base), steps_per_epoch=15)
    assert len(cycled) == 3 * len(single)
    for cycle in range(3):
        part = cycled[cycle * len(single):(cycle + 1) * len(single)]
        assert part == pytest.approx([0.5 ** cycle * lr for lr in single], rel=1e-9)
    assert max(cycled[len(single):]) == pytest.approx(0.01, rel=0.01)  # the second peak is half the first
    if schedule == "onecycle":  # and as torch's OneCycleLR, Adam's beta1 moves against the lr in every cycle
        beta1 = lr_curve(zoo.Recipe(epochs=2, optimizer="adamw", **base), 15, key="beta1")
        cycled_beta1 = lr_curve(zoo.Recipe(epochs=6, cycles=3, optimizer="adamw", **base), 15, key="beta1")
        assert cycled_beta1 == pytest.approx(beta1 * 3, rel=1e-9)
        assert min(beta1) == pytest.approx(0.85, abs=1e-3) and beta1[0] == pytest.approx(0.95)


@pytest.mark.parametrize("steps_per_epoch", [1, 2, 3, 7, 40])
@pytest.mark.parametrize("optimizer", ["adamw", "sgd"])
def test_the_first_cycle_is_torchs_onecycle_bit_for_bit(steps_per_epoch, optimizer):
    """Even in cycles so short that the warm-up ends before its first step (torch's phase
    boundary below 0), the lr and the momentum (beta1) are OneCycleLR's to the last bit."""
    momentum = "beta1" if optimizer == "adamw" else "momentum"
    base = dict(lr=0.01, warmup_fraction=0.1, optimizer=optimizer)
    alone = zoo.Recipe(epochs=2, **base)
    cycled = zoo.Recipe(epochs=6, cycles=3, cycle_decay=1.0, **base)
    for key in ("lr", momentum):
        single = lr_curve(alone, steps_per_epoch, key=key)
        assert lr_curve(cycled, steps_per_epoch, key=key) == single * 3  # cycle_decay 1: three equal cycles


def test_cycles_split_the_epochs_and_never_leave_one_empty():
    assert zoo.Recipe(epochs=16, cycles=2).cycle_ends() == [8, 16]
    assert zoo.Recipe(epochs=15, cycles=2).cycle_ends() == [8, 15]
    assert zoo.Recipe(epochs=7, cycles=3).cycle_ends() == [3, 5, 7]
    assert zoo.Recipe(epochs=1, cycles=2).cycle_ends() == [1]  # a quick --epochs 1: one cycle
    recipe = zoo.Recipe(epochs=5, cycles=2, augment_from_cycle=2)
    assert [recipe.augments_in(e) for e in range(1, 6)] == [False, False, False, True, True]
    assert not zoo.Recipe(epochs=1, cycles=2, augment_from_cycle=2).augments_in(1)  # no second cycle: plain
    assert all(zoo.Recipe(epochs=3).augments_in(e) for e in (1, 2, 3))  # the default: every epoch


def test_a_one_cycle_run_keeps_torchs_scheduler():
    """cycles=1 (every recipe before the knob) builds torch's own OneCycleLR, so checkpoints
    saved before it resume on the same scheduler state."""
    from zoo.train.optim import CycledSchedule

    optimizer = make_optimizer(zoo.create_model("mlp"), zoo.Recipe(), CPU)
    assert isinstance(make_scheduler(optimizer, zoo.Recipe(epochs=3), 10), torch.optim.lr_scheduler.OneCycleLR)
    assert isinstance(make_scheduler(optimizer, zoo.Recipe(epochs=3, cycles=2), 10), CycledSchedule)


@pytest.mark.parametrize("field, value", [("cycles", 0), ("cycles", 1.5), ("cycles", True), ("cycle_decay", 0.0),
                                          ("cycle_decay", 1.5), ("cycle_decay", float("nan")),
                                          ("augment_from_cycle", 0), ("augment_from_cycle", True)])
def test_recipe_refuses_bad_cycles(field, value):
    with pytest.raises(SpecError, match=field):
        zoo.Recipe(**{field: value})


def _input_sets(tmp_path, name, **options):
    """The set of distinct input images (normalised, as the model saw them) of every epoch of a
    real run, one batch per epoch, taken by a forward pre-hook on the model being trained."""
    from zoo.train import EpochStarted, TrainConfig, train

    seen: dict[int, set] = {}
    hooks = []

    def watch(event):
        if isinstance(event, EpochStarted):
            batch = seen.setdefault(event.epoch, set())
            for hook in hooks:  # the epoch before's
                hook.remove()

            def take(module, args):
                if module.training:
                    batch.update(bytes(x.contiguous().numpy().tobytes()) for x in args[0])
            hooks.append(event.model.register_forward_pre_hook(take))

    train(TrainConfig("lenet5", out=tmp_path / name, limit=64, batch_size=64, threads=1, offline=True, **options),
          on_event=watch)
    return seen


def test_the_declared_augmentation_starts_with_augment_from_cycle(tmp_path):
    assert zoo.get_spec("lenet5").train_transforms.crop_padding > 0  # the premise: lenet5 declares a shift
    plain = _input_sets(tmp_path, "plain", epochs=1, augment=False)[1]
    late = _input_sets(tmp_path, "late", epochs=2, cycles=2, augment_from_cycle=2)
    assert late[1] == plain  # cycle 1: the plain images, shuffled
    assert late[2] != plain and len(late[2]) == len(plain)  # cycle 2: shifted
    early = _input_sets(tmp_path, "early", epochs=2, cycles=2, augment_from_cycle=1)
    assert early[1] != plain


def test_a_run_whose_augmentation_would_start_past_its_last_cycle_says_it_did_not_augment(tmp_path):
    from zoo.train import TrainConfig, train

    assert zoo.get_spec("lenet5").recipe.augment_from_cycle > 1  # the premise: lenet5 starts its shift late
    options = dict(limit=64, batch_size=64, threads=1, offline=True)
    one = train(TrainConfig("lenet5", out=tmp_path / "one", epochs=1, **options))  # one epoch: one cycle
    assert one.info["augment"] is False
    two = train(TrainConfig("lenet5", out=tmp_path / "two", epochs=2, cycles=2, **options))
    assert two.info["augment"] is True
