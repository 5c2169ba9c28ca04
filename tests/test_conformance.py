"""zoo.testing.check_plugin, the helper a plugin's own test suite calls."""
from __future__ import annotations

import pytest

from zoo.testing import check_plugin

from conftest import toy_plugin


@pytest.mark.parametrize("name", ["lenet5", "lenet5-classic", "cnn", "mlp", "cifar-cnn", "vgg16"])
def test_first_party_plugins_conform(name):
    result = check_plugin(name)
    assert "one training step updates the weights" in result.passed
    assert result.passed[-1] == "exports to ONNX and ONNX Runtime matches PyTorch"


def test_third_party_plugin_conforms(fake_dists):
    fake_dists.add("zoo-toy", "zoo_toy_plugin", toy_plugin("toy"))
    assert len(check_plugin("toy").passed) >= 4


def test_wrong_shape_fails_with_a_sentence(fake_dists):
    fake_dists.add("zoo-toy", "zoo_toy_plugin", toy_plugin("toy", "register(toy_spec(pool_shape=(4, 12, 12)))"))
    with pytest.raises(AssertionError, match="layer 'pool' \\(MaxPool2d\\) outputs 4x13x13 but the plugin declares 4x12x12"):
        check_plugin("toy")


NOISY = '''
import torch

class Noisy(Toy):
    """Adds fresh noise in eval too: no ONNX file can reproduce PyTorch's outputs."""
    def forward(self, x):
        return super().forward(x) + torch.rand(x.shape[0], 10)
'''


def test_export_mismatch_fails_conformance(fake_dists):
    body = "register(dataclasses.replace(toy_spec(), builder=Noisy))"
    source = toy_plugin("toy", body).replace("import zoo\n", "import dataclasses\nimport zoo\n", 1)
    fake_dists.add("zoo-noisy", "zoo_noisy_plugin", source.replace("@zoo.hookimpl", NOISY + "\n@zoo.hookimpl"))
    with pytest.raises(AssertionError, match="the ONNX export differs from PyTorch"):
        check_plugin("toy")
    assert "exports to ONNX" not in " ".join(check_plugin("toy", export=False).passed)
