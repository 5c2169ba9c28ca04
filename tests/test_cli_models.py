"""The foundation commands through the real `zoo` console script."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import zoo as zoo_api
from conftest import toy_plugin

# The console script installed next to this interpreter, whether or not the venv is activated.
ZOO = str(Path(sys.executable).parent / "zoo")


def zoo(*args: str, check: bool = False) -> subprocess.CompletedProcess:
    proc = subprocess.run([ZOO, *args], capture_output=True, text=True, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_help_does_not_import_torch():
    code = ("import sys; from zoo.cli.main import app\n"
            "try:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
            "assert 'torch' not in sys.modules, 'torch imported at CLI start-up'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "verify-shapes" in proc.stdout


def test_list_json():
    rows = json.loads(zoo("list", "--json", check=True).stdout)
    by_name = {r["name"]: r for r in rows}
    assert {"lenet5", "lenet5-classic", "cnn", "mlp", "cifar-cnn", "vgg16"} <= set(by_name)
    assert by_name["lenet5"]["params"] == 61706
    assert by_name["lenet5"]["dataset"] == "mnist" and by_name["lenet5"]["plugin"] == "zoo"
    assert by_name["vgg16"]["input_shape"] == [3, 32, 32]


def test_list_table():
    proc = zoo("list", check=True)
    assert "lenet5" in proc.stdout and "61,706" in proc.stdout


def test_info_shows_spec_and_layers():
    proc = zoo("info", "lenet5", check=True)
    assert "LeNet-5" in proc.stdout and "(28 + 2*2 - 5)/1 + 1 = 28" in proc.stdout
    recipe = zoo_api.get_spec("lenet5").recipe
    assert f"{recipe.epochs} epochs, batch {recipe.batch_size}, {recipe.optimizer} lr {recipe.lr:g}" in proc.stdout
    vgg = zoo("info", "vgg16", check=True)  # a model that declares augmentation shows it
    assert f"random crop (pad {zoo_api.get_spec('vgg16').train_transforms.crop_padding})" in vgg.stdout
    assert "sgd nesterov" in vgg.stdout


def test_unknown_name_is_one_line_exit_2():
    proc = zoo("info", "lenet")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: unknown model 'lenet': did you mean lenet5 or lenet5-classic? (`zoo list` shows them all)"]
    assert "Traceback" not in proc.stderr


def test_verify_shapes_all_models_pass():
    proc = zoo("verify-shapes", check=True)
    for name in ("lenet5", "cnn", "mlp", "cifar-cnn", "vgg16"):
        assert f"✓ {name}: declared, formula and actual shapes agree" in proc.stdout


def test_verify_shapes_json_and_mismatch(fake_dists):
    fake_dists.add("zoo-toy", "zoo_toy_plugin", toy_plugin("toy", "register(toy_spec(pool_shape=(4, 12, 12)))"))
    proc = zoo("verify-shapes", "toy", "lenet5", "--json")
    assert proc.returncode == 1
    reports = {r["model"]: r for r in json.loads(proc.stdout)}
    assert reports["lenet5"]["ok"] and not reports["toy"]["ok"]
    pool = next(layer for layer in reports["toy"]["layers"] if layer["name"] == "pool")
    assert pool["declared"] == [4, 12, 12] and pool["actual"] == [4, 13, 13] and not pool["ok"]
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: toy: layer 'pool' (MaxPool2d) outputs 4x13x13 but the plugin declares 4x12x12; "
        "fix layer_shapes or the layer (k=2 s=2 p=0 d=1)")


def test_plugins_lists_broken_and_others_warn(fake_dists):
    fake_dists.add("zoo-broken", "zoo_broken_plugin", "raise ImportError('needs libfoo')", version="0.9")
    fake_dists.add("zoo-toy", "zoo_toy_plugin", toy_plugin("toy"), version="1.2")
    data = json.loads(zoo("plugins", "--json", check=True).stdout)
    by_dist = {p["dist"]: p for p in data["plugins"]}
    assert by_dist["zoo-broken"]["broken"] and "needs libfoo" in by_dist["zoo-broken"]["error"]
    assert by_dist["zoo-toy"]["models"] == ["toy"] and by_dist["zoo-toy"]["version"] == "1.2"
    proc = zoo("list", check=True)  # other commands: one warning line, then carry on
    warnings = [ln for ln in proc.stderr.splitlines() if ln.startswith("warning:")]
    assert warnings == ["warning: plugin 'zoo_broken_plugin' from zoo-broken 0.9 is broken: ImportError: needs libfoo"]
    assert "toy" in proc.stdout and "lenet5" in proc.stdout


def test_duplicate_plugin_cli(fake_dists):
    fake_dists.add("zoo-dup", "zoo_dup_plugin", toy_plugin(name="cnn"))
    proc = zoo("info", "cnn")
    assert proc.returncode == 1
    assert "registered by both zoo and zoo-dup" in proc.stderr
    assert zoo("info", "lenet5").returncode == 0


def test_datasets_lists_where_data_is(tmp_path):
    rows = {r["name"]: r for r in json.loads(zoo("datasets", "--json", "--data-dir", str(tmp_path), check=True).stdout)}
    assert {"mnist", "mnist-sample", "fashion-mnist", "cifar10"} <= set(rows)
    assert rows["mnist-sample"]["found"].endswith("mnist_sample")
    assert rows["mnist"]["found"] is None and rows["mnist"]["fallback"] == "mnist-sample"
    assert rows["cifar10"]["searched"][0] == str(tmp_path / "cifar10")
