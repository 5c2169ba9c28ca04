"""Shared fixtures. Tests never touch the network and never the user's data cache."""
from __future__ import annotations

import importlib
import sys
import textwrap
from pathlib import Path

import pytest

import zoo


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path_factory):
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    monkeypatch.setenv("ZOO_DATA_DIR", str(tmp_path_factory.mktemp("zoo-data")))
    monkeypatch.delenv("ZOO_PLUGINS", raising=False)
    zoo.reset_registry()
    yield
    zoo.reset_registry()


class FakeDistributions:
    """Installs tiny plugin distributions for real: a module plus a `*.dist-info` folder with
    METADATA and entry_points.txt on sys.path, found by importlib.metadata like any package."""

    def __init__(self, root: Path, monkeypatch):
        self.root = root
        self.modules: list[str] = []
        monkeypatch.syspath_prepend(str(root))
        monkeypatch.setenv("PYTHONPATH", str(root))  # for `zoo` subprocesses

    def add(self, dist: str, module: str, source: str, version: str = "1.0", entry_name: str | None = None) -> None:
        (self.root / f"{module}.py").write_text(textwrap.dedent(source))
        info = self.root / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        (info / "entry_points.txt").write_text(f"[zoo.models]\n{entry_name or module} = {module}\n")
        self.modules.append(module)
        importlib.invalidate_caches()  # the path finder caches folder listings


@pytest.fixture
def fake_dists(tmp_path, monkeypatch):
    root = tmp_path / "site"
    root.mkdir()
    dists = FakeDistributions(root, monkeypatch)
    yield dists
    for module in dists.modules:  # the next test may reuse the module name with other code
        sys.modules.pop(module, None)
    importlib.invalidate_caches()


TOY_MODEL = '''
import zoo
from torch import nn

class Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)        # (b, 4, 26, 26)
        self.pool = nn.MaxPool2d(2)           # (b, 4, 13, 13)
        self.flatten = nn.Flatten()           # (b, 676)
        self.fc = nn.Linear(4 * 13 * 13, 10)

    def forward(self, x):
        return self.fc(self.flatten(self.pool(self.conv(x))))

def toy_spec(name="{name}", pool_shape=(4, 13, 13)):
    t = zoo.Transforms(mean=(0.5,), std=(0.5,))
    return zoo.ModelSpec(
        name=name, summary="a toy", builder=Toy, dataset="mnist", input_shape=(1, 28, 28),
        class_names=tuple("0123456789"),
        layer_shapes={{"conv": (4, 26, 26), "pool": pool_shape, "flatten": (676,), "fc": (10,)}},
        train_transforms=t, eval_transforms=t,
    )
'''


def toy_plugin(name: str = "toy", body: str = "register(toy_spec())") -> str:
    return TOY_MODEL.format(name=name) + textwrap.dedent(f'''
@zoo.hookimpl
def register_models(register):
    {body}
''')


def weights(folder: Path) -> dict:
    """The tensors of a run's saved weights (safetensors, never a pickle)."""
    from safetensors.torch import load_file

    from zoo.runs import WEIGHTS_FILE

    return load_file(str(folder / WEIGHTS_FILE))


def assert_same_weights(a: Path, b: Path) -> None:
    """Two runs' weights are equal bit for bit."""
    import torch

    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), f"{key} differs"
