"""The tutorials' own set-ups (--normalize, --init normal, --recipe tutorial), builder
arguments (--model-arg) used by every command that rebuilds a run's model, and
parameter formulas (zoo info --explain). Issue 16, items 5, 6 and 9."""
from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file
from torch import nn
from typer.testing import CliRunner

import zoo
from conftest import toy_plugin
from zoo.cli.main import app
from zoo.errors import UsageError
from zoo.data.resolve import load_dataset
from zoo.runs import RUN_FILE, WEIGHTS_FILE, load_trained
from zoo.train import evaluate
from zoo.train.optim import init_weights
from zoo.variants import normalized, parse_model_args, spec_for_weights

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def test_normalize_modes_give_raw_unit_or_declared_inputs():
    from zoo.preprocess import normalize

    t = zoo.get_spec("mlp").eval_transforms
    pixels = torch.tensor([0, 51, 255], dtype=torch.uint8).view(1, 1, 1, 3)
    assert normalize(pixels, normalized(t, "none")).flatten().tolist() == pytest.approx([0, 51, 255])
    assert normalize(pixels, normalized(t, "unit")).flatten().tolist() == pytest.approx([0, 0.2, 1])
    assert normalized(t, "default") == t
    with pytest.raises(UsageError, match="--normalize"):
        normalized(t, "raw")


def test_init_normal_draws_weights_with_the_given_std():
    torch.manual_seed(0)
    layer = nn.Linear(400, 300)
    init_weights(layer, "normal", std=0.2)
    assert layer.weight.std().item() == pytest.approx(0.2, rel=0.02) and not layer.bias.any()


def test_model_args_are_checked_against_the_builder():
    spec = zoo.get_spec("mlp")
    assert parse_model_args(spec, ["hidden=12", "activation=Sigmoid"]) == {"hidden": 12, "activation": "sigmoid"}
    for bad, words in ((["hiden=12"], "did you mean hidden"), (["hidden=many"], "whole number"),
                       (["activation=swish3"], "sigmoid"), (["num_classes=3"], "--dataset"),
                       (["hidden"], "key=value")):
        with pytest.raises(UsageError, match=words):
            parse_model_args(spec, bad)


def test_a_varied_model_is_rebuilt_with_its_arguments_and_input_scale_everywhere(tmp_path):
    folder = tmp_path / "run"
    result = invoke("train", "mlp", "--model-arg", "hidden=12", "--model-arg", "activation=gelu",
                    "--normalize", "none", "--init", "normal", "--init-std", "0.05", "--epochs", "1",
                    "--limit", "128", "--threads", "1", "--out", folder)
    assert result.exit_code == 0, result.output
    info = json.loads((folder / RUN_FILE).read_text())
    assert info["model_args"] == {"hidden": 12, "activation": "gelu"} and info["normalize"] == "none"
    assert info["hyperparameters"]["init"] == "normal" and info["hyperparameters"]["init_std"] == 0.05
    weights = folder / WEIGHTS_FILE
    assert load_file(str(weights))["fc1.weight"].shape == (12, 784)
    with safe_open(str(weights), framework="pt") as f:
        assert json.loads(f.metadata()["model_args"]) == info["model_args"] and f.metadata()["normalize"] == "none"
    spec = spec_for_weights(zoo.get_spec("mlp"), weights)
    assert isinstance(spec.builder().act1, nn.GELU) and spec.eval_transforms.std == (1 / 255,)

    evaluated = invoke("evaluate", "mlp", "--weights", weights, "--json")
    assert evaluated.exit_code == 0, evaluated.output
    test = load_dataset("mnist", "test", offline=True)
    model = load_trained(spec, weights)
    as_trained = evaluate(model, test.images, test.labels, spec)
    as_registered = evaluate(model, test.images, test.labels, zoo.get_spec("mlp"))  # normalised pixels: wrong
    assert json.loads(evaluated.stdout)["loss"] == pytest.approx(as_trained.loss, rel=1e-5)
    assert as_registered.loss != pytest.approx(as_trained.loss, rel=1e-3)
    exported = invoke("export", "mlp", "--weights", weights, "--out", tmp_path / "mlp.onnx")
    assert exported.exit_code == 0, exported.output


def test_verify_shapes_and_info_take_model_args():
    result = invoke("verify-shapes", "mlp", "--model-arg", "hidden=64")
    assert result.exit_code == 0 and "784->64" in result.stdout
    result = invoke("info", "lenet5-classic", "--model-arg", "activation=relu", "--explain")
    assert result.exit_code == 0, result.output
    assert "6 x (5 x 5 x 1) + 6 = 156" in result.stdout and "120 x 400 + 120 = 48,120" in result.stdout
    assert "ReLU" in result.stdout and "Sigmoid" not in result.stdout
    bad = invoke("verify-shapes", "mlp", "--model-arg", "hiden=3")
    assert bad.exit_code == 2 and "did you mean hidden" in bad.stderr


def test_recipe_tutorial_runs_the_seed_setup_and_flags_still_win(tmp_path):
    folder = tmp_path / "run"
    result = invoke("train", "mlp", "--recipe", "tutorial", "--epochs", "2", "--limit", "128", "--threads", "1",
                    "--out", folder)
    assert result.exit_code == 0, result.output
    info = json.loads((folder / RUN_FILE).read_text())
    tutorial = zoo.get_spec("mlp").tutorial
    h = info["hyperparameters"]
    assert h["epochs"] == 2 and h["batch_size"] == tutorial.recipe.batch_size  # the flag wins, the rest is the seed's
    assert (h["optimizer"], h["lr"], h["label_smoothing"]) == (tutorial.recipe.optimizer, tutorial.recipe.lr, 0)
    assert info["normalize"] == tutorial.normalize and info["augment"] is False
    shown = invoke("info", "mlp")
    assert "zoo train mlp --recipe tutorial" in shown.stdout and "raw 0-255" in shown.stdout


def test_every_first_party_model_has_a_tutorial_recipe_with_its_source_shown():
    for name in zoo.list_models():
        spec = zoo.get_spec(name)
        assert spec.tutorial is not None, name
        shown = invoke("info", name)
        assert f"zoo train {name} --recipe tutorial" in shown.stdout
    vgg = zoo.get_spec("vgg16").tutorial  # no seed gives its training: the source says so, and it augments
    assert vgg.source.startswith("not a seed tutorial") and vgg.augment
    assert "augmented as the model declares" in " ".join(invoke("info", "vgg16").stdout.split())


def test_a_model_without_a_tutorial_gets_one_line(tmp_path, fake_dists):
    fake_dists.add("zoo-toy", "toyplug", toy_plugin("toy"))
    refused = invoke("train", "toy", "--recipe", "tutorial", "--out", tmp_path / "other")
    assert refused.exit_code == 2 and "no tutorial recipe" in refused.stderr
    assert "`zoo train toy` uses its tuned recipe" in refused.stderr and not (tmp_path / "other").exists()
