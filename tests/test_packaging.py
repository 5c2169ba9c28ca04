"""What a wheel installs: pyproject.toml lists the packages by hand (cli/ and plugins/
are installed under zoo), so a new subpackage must be listed there too, or a plain
`pip install .` leaves it out while editable installs still find it."""
from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_zoo_subpackage_is_listed_for_installation():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = {".".join(init.parent.relative_to(ROOT).parts) for init in (ROOT / "zoo").rglob("__init__.py")}
    found |= {"zoo.cli", "zoo.plugins"}  # installed from cli/ and plugins/ (package-dir)
    assert found - listed == set(), f"add these to [tool.setuptools] packages: {sorted(found - listed)}"
    assert {config["package-dir"]["zoo.cli"], config["package-dir"]["zoo.plugins"]} == {"cli", "plugins"}
