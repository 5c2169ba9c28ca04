"""The README is the front door: its commands and its plugin example must be real."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

from zoo.registry import load_registry
from zoo.testing import check_plugin

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def code_block_after(marker: str) -> str:
    match = re.search(re.escape(marker) + r"\s*```\w*\n(.*?)```", README, re.S)
    assert match, f"README has no code block after {marker}"
    return match.group(1)


def test_ci_runs_the_readme_test_command():
    test_command = code_block_after("Run the test suite:").strip()
    assert test_command.endswith("pytest")
    assert test_command in (ROOT / ".ci" / "run").read_text()


def test_ci_checks_the_import_layers():
    """lint-imports runs in CI after the tests, from the test extra, against pyproject's contracts."""
    ci = (ROOT / ".ci" / "run").read_text()
    assert ci.index("lint-imports") > ci.index("&& pytest")
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert any(dep.startswith("import-linter") for dep in pyproject["project"]["optional-dependencies"]["test"])
    contracts = pyproject["tool"]["importlinter"]["contracts"]
    layers = next(c for c in contracts if c["type"] == "layers")
    assert layers["layers"][1] == "viz | onnx | train"  # training and drawing stay independent


def test_readme_plugin_example_works(fake_dists):
    pyproject = tomllib.loads(code_block_after("`pyproject.toml`"))
    module_source = code_block_after("`zoo_tinynet.py`")
    (entry_name, module), = pyproject["project"]["entry-points"]["zoo.models"].items()
    fake_dists.add(pyproject["project"]["name"], module, module_source,
                   version=pyproject["project"]["version"], entry_name=entry_name)
    reg = load_registry()
    assert reg.get_spec("tinynet").plugin == "zoo-tinynet"
    assert "shapes agree for" in " ".join(check_plugin("tinynet").passed)
