"""A run at chance level is never reported as a plain success (issue 16, item 2)."""
from __future__ import annotations

import json

import pytest

from typer.testing import CliRunner

from zoo.cli.main import app
from zoo.runs import RUN_FILE
from zoo.spec import Recipe
from zoo.train.config import EpochMetrics
from zoo.train.health import CHANCE, LEARNED, RunFacts, chance_threshold, judge

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def facts(test_acc: float, train_loss: float = 2.30, **recipe) -> RunFacts:
    metrics = [EpochMetrics(1, train_loss, 0.1, 2.3, test_acc, 0.01, 1.0)]
    return RunFacts(model="lenet5-classic", num_classes=10, test_samples=10_000, train_samples=60_000,
                    batches_per_epoch=600, recipe=Recipe(**recipe), metrics=metrics, saturating=("Sigmoid",))


def test_chance_threshold_widens_for_small_test_sets():
    chance, big = chance_threshold(10, 10_000)
    _, small = chance_threshold(10, 50)
    assert chance == 0.1 and big == pytest.approx(0.15) and small > big  # 3 standard errors of a guess on 50 images > 5 points


def test_sigmoid_with_slow_sgd_is_named_as_the_cause():
    health = judge(facts(0.1, optimizer="sgd", lr=0.01, momentum=0.0))
    assert health.verdict == CHANCE and health.at_chance
    assert any("sigmoid" in c and "SGD" in c and "more epochs" in c for c in health.likely_causes)
    assert not any("too high" in c for c in health.likely_causes)


def test_a_huge_learning_rate_is_named_as_the_cause():
    health = judge(facts(0.098, train_loss=2.9, optimizer="sgd", lr=10.0))
    assert health.at_chance
    assert "too high" in health.likely_causes[0] and "lr 10" in health.likely_causes[0]
    assert not any("sigmoid" in c for c in health.likely_causes)


def test_a_run_above_chance_has_learned():
    health = judge(facts(0.2, optimizer="adam", lr=1e-3))
    assert health.verdict == LEARNED and not health.likely_causes


def test_seed_004_setup_warns_and_records_chance_in_run_json(tmp_path):
    """Seed 004's set-up (sigmoid LeNet-5, plain SGD at lr 0.01, batch 100), briefly: it cannot learn yet."""
    folder = tmp_path / "run"
    result = invoke("train", "lenet5-classic", "--optimizer", "sgd", "--lr", "0.01", "--momentum", "0",
                    "--batch-size", "100", "--epochs", "1", "--limit", "300", "--schedule", "constant",
                    "--threads", "1", "--out", folder)
    assert result.exit_code == 0, result.output
    info = json.loads((folder / RUN_FILE).read_text())
    assert info["health"]["verdict"] == "chance-level"
    assert info["test_accuracy"] <= info["health"]["threshold"]
    assert "✓" not in result.stdout and "chance level" in result.stdout
    assert "warning:" in result.stderr and "sigmoid" in result.stderr and "more epochs" in result.stderr
    assert info["health"]["likely_causes"] and all(c in result.stderr for c in info["health"]["likely_causes"][:1])
