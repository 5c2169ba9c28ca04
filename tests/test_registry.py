"""Plugin discovery through real entry points (importlib.metadata), validation and isolation."""
from __future__ import annotations

import pytest

import zoo
from zoo.errors import DuplicateNameError, SpecError, UnknownNameError
from zoo.registry import load_registry

from conftest import toy_plugin

FIRST_PARTY = {"lenet5", "lenet5-classic", "cnn", "mlp", "cifar-cnn", "vgg16"}


def test_first_party_models_come_through_entry_points():
    reg = load_registry()
    assert FIRST_PARTY <= set(reg.models)
    assert all(reg.models[n].plugin == "zoo" for n in FIRST_PARTY)
    lenet = next(p for p in reg.plugins if p.name == "lenet")
    assert lenet.value == "zoo.plugins.lenet" and lenet.models == ["lenet5", "lenet5-classic"]


def test_python_api():
    assert FIRST_PARTY <= set(zoo.list_models())
    spec = zoo.get_spec("lenet5")
    assert spec.input_shape == (1, 28, 28) and spec.num_classes == 10
    model = zoo.create_model("lenet5")
    assert sum(p.numel() for p in model.parameters()) == 61706


def test_third_party_plugin_is_discovered(fake_dists):
    fake_dists.add("zoo-toy", "zoo_toy_plugin", toy_plugin("toy"), version="2.3")
    reg = load_registry()
    assert reg.models["toy"].plugin == "zoo-toy"
    assert reg.models["toy"].plugin_version == "2.3"
    assert not reg.warnings


@pytest.mark.parametrize("source, expected", [
    ("raise ImportError('needs libfoo')", "ImportError: needs libfoo"),
    (toy_plugin(body="raise RuntimeError('boom')"), "RuntimeError: boom"),
    (toy_plugin(body="register('not a spec')"), "expected a zoo.ModelSpec, got str"),
    (toy_plugin(body="register(toy_spec(name='Bad Name!'))"), "model name 'Bad Name!' is invalid"),
    (toy_plugin(body="register(toy_spec(pool_shape=(4, 0)))"), "must be positive ints"),
    ("import zoo\ndef register_models(register):\n    pass\n", "registers no models or datasets"),
])
def test_broken_plugin_is_isolated(fake_dists, source, expected):
    fake_dists.add("zoo-broken", "zoo_broken_plugin", source, version="0.9")
    reg = load_registry()
    broken = [p for p in reg.plugins if p.broken]
    assert [(p.dist, p.version) for p in broken] == [("zoo-broken", "0.9")]
    assert expected in broken[0].error
    assert FIRST_PARTY <= set(reg.models)  # everything else still works
    assert len(reg.warnings) == 1 and "zoo-broken" in reg.warnings[0]


def test_broken_plugin_leaves_no_half_registration(fake_dists):
    body = "register(toy_spec(name='half'))\n    raise RuntimeError('second one failed')"
    fake_dists.add("zoo-half", "zoo_half_plugin", toy_plugin(body=body))
    reg = load_registry()
    assert "half" not in reg.models


def test_duplicate_name_names_both_distributions(fake_dists):
    fake_dists.add("zoo-dup", "zoo_dup_plugin", toy_plugin(name="lenet5"))
    fake_dists.add("zoo-toy", "zoo_toy_plugin", toy_plugin(name="toy"))
    reg = load_registry()
    with pytest.raises(DuplicateNameError, match="zoo and zoo-dup"):
        reg.get_spec("lenet5")
    assert reg.get_spec("toy").plugin == "zoo-toy"  # the rest keeps working
    assert reg.get_spec("cnn").plugin == "zoo"
    assert any("lenet5" in w and "zoo-dup" in w for w in reg.warnings)


def test_zoo_plugins_env_loads_only_named(fake_dists, monkeypatch):
    fake_dists.add("zoo-toy", "zoo_toy_plugin", toy_plugin("toy"))
    monkeypatch.setenv("ZOO_PLUGINS", "zoo-toy,lenet")
    reg = load_registry()
    assert set(reg.models) == {"toy", "lenet5", "lenet5-classic"}


def test_unknown_name_suggests_close_matches():
    with pytest.raises(UnknownNameError) as info:
        zoo.get_spec("lenet")
    assert "did you mean lenet5" in str(info.value)
    assert info.value.exit_code == 2


def test_spec_validation_messages():
    spec = zoo.get_spec("lenet5")
    import dataclasses

    with pytest.raises(SpecError, match="class_names"):
        dataclasses.replace(spec, class_names=("only-one",))
    with pytest.raises(SpecError, match="last declared layer should output"):
        dataclasses.replace(spec, class_names=tuple("abc"))
    with pytest.raises(SpecError, match="normalise 3 channel"):
        dataclasses.replace(spec, train_transforms=zoo.Transforms(mean=(0, 0, 0), std=(1, 1, 1)))
    with pytest.raises(SpecError, match="optimizer 'lbfgs'"):
        zoo.Recipe(optimizer="lbfgs")
    with pytest.raises(SpecError, match="declared twice"):
        dataclasses.replace(spec, layer_shapes=[("fc3", (10,)), ("fc3", (10,))])


@pytest.mark.parametrize("lr", [float("inf"), float("nan"), -1.0])
def test_recipe_refuses_non_finite_learning_rates(lr):
    with pytest.raises(SpecError, match="lr must be a positive number"):
        zoo.Recipe(lr=lr)
