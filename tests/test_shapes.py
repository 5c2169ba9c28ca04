"""The formula engine against real PyTorch layers, and the three-way comparison."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import zoo
from zoo.shapes import AxisFormula, check_model, check_spec, rule_for

LAYERS = [
    (nn.Conv2d(3, 8, 5), (3, 32, 32)),
    (nn.Conv2d(3, 8, 3, stride=2, padding=1), (3, 33, 33)),  # floor on an odd size
    (nn.Conv2d(3, 8, 3, dilation=2), (3, 20, 20)),
    (nn.Conv2d(3, 8, (3, 5), stride=(2, 1), padding=(1, 2), dilation=(1, 2)), (3, 17, 23)),  # asymmetric
    (nn.Conv2d(3, 8, 5, padding="same", dilation=2), (3, 19, 19)),
    (nn.Conv2d(3, 8, 3, padding="valid"), (3, 10, 12)),
    (nn.Conv1d(2, 4, 7, stride=3), (2, 50)),
    (nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1), (4, 7, 7)),
    (nn.MaxPool2d(3, stride=2), (4, 15, 15)),
    (nn.MaxPool2d(3, stride=2, ceil_mode=True), (4, 14, 14)),
    (nn.MaxPool2d(2, stride=2, padding=1, ceil_mode=True), (4, 5, 5)),  # last window would start in padding
    (nn.MaxPool2d(3, stride=1, dilation=2), (4, 11, 11)),
    (nn.AvgPool2d((2, 3), stride=(2, 3), ceil_mode=True), (4, 7, 10)),
    (nn.AdaptiveAvgPool2d((1, 3)), (4, 9, 9)),
    (nn.Flatten(), (4, 3, 5)),
    (nn.Linear(12, 7), (12,)),
    (nn.BatchNorm2d(4), (4, 6, 6)),
]


@pytest.mark.parametrize("module, in_shape", LAYERS, ids=lambda v: repr(v) if isinstance(v, nn.Module) else str(v))
def test_formula_matches_pytorch(module, in_shape):
    actual = tuple(module.eval()(torch.zeros(1, *in_shape)).shape[1:])
    assert rule_for(module, in_shape).shape == actual


def test_formula_text_is_filled_in():
    assert rule_for(nn.Conv2d(1, 6, 5, padding=2), (1, 28, 28)).formula == "(28 + 2*2 - 5)/1 + 1 = 28"
    assert AxisFormula(32, 3, 2, 1).text() == "floor((32 + 2*1 - 3)/2) + 1 = 16"
    assert AxisFormula(20, 3, 1, 0, dilation=2).text() == "(20 + 2*0 - 2*(3 - 1) - 1)/1 + 1 = 16"
    assert AxisFormula(14, 3, 2, 0, ceil_mode=True).text().startswith("ceil((14 + 2*0 - 3)/2) + 1 = 7")
    asym = rule_for(nn.Conv2d(1, 1, (3, 5)), (1, 10, 10)).formula
    assert asym.startswith("H: ") and "; W: " in asym


class Residual(nn.Module):
    """Not a Sequential stack: the formula must see the shape that really flows in."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 8, 3, padding=1)
        self.branch = nn.Conv2d(8, 8, 3, padding=1)
        self.down = nn.Conv2d(8, 16, 1, stride=2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = self.stem(x)
        x = x + self.branch(x)
        return self.fc(self.flatten(self.pool(self.down(x))))


def test_non_sequential_model():
    declared = {"stem": (8, 28, 28), "down": (16, 14, 14), "pool": (16, 1, 1), "fc": (10,)}
    report = check_model(Residual(), "res", (1, 28, 28), declared)
    assert report.ok, report.first_problem()
    down = next(layer for layer in report.layers if layer.name == "down")
    assert down.formula == "floor((28 + 2*0 - 1)/2) + 1 = 14"
    assert down.params == 8 * 16 + 16


def test_wrong_declared_shape_is_explained():
    report = check_model(Residual(), "res", (1, 28, 28), {"down": (16, 13, 13), "fc": (10,)})
    assert not report.ok
    assert "layer 'down' (Conv2d) outputs 16x14x14 but the plugin declares 16x13x13" in report.first_problem()


def test_missing_declared_layer_is_an_error():
    report = check_model(Residual(), "res", (1, 28, 28), {"conv9": (8, 28, 28), "fc": (10,)})
    assert not report.ok
    assert "declared layer 'conv9' does not exist" in report.first_problem()


def test_failing_forward_pass_names_the_layer():
    bad = nn.Sequential(nn.Flatten(), nn.Linear(100, 10))
    report = check_model(bad, "bad", (1, 28, 28), {"1": (10,)})
    assert report.error and "at layer '1' (Linear)" in report.error


@pytest.mark.parametrize("name", sorted(["lenet5", "lenet5-classic", "cnn", "mlp", "cifar-cnn", "vgg16"]))
def test_first_party_shapes_agree(name):
    report = check_spec(zoo.get_spec(name))
    assert report.ok, report.first_problem()
    assert {n for n, _ in zoo.get_spec(name).layer_shapes} <= {layer.name for layer in report.layers}


def test_lenet5_matches_the_seed_arithmetic():
    report = check_spec(zoo.get_spec("lenet5"))
    by_name = {layer.name: layer for layer in report.layers}
    assert by_name["conv1"].params == 6 * (5 * 5 * 1) + 6
    assert by_name["pool2"].actual == (16, 5, 5)
    assert report.total_params == 61706
