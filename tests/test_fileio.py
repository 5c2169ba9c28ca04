"""Atomic writes: all or nothing, and files readable like any other."""
from __future__ import annotations

import os

import pytest

from zoo.fileio import atomic_path, write_json, write_text


def test_new_file_gets_the_usual_mode(tmp_path):
    umask = os.umask(0o022)
    try:
        write_text(tmp_path / "model.onnx", "x")
    finally:
        os.umask(umask)
    assert (tmp_path / "model.onnx").stat().st_mode & 0o777 == 0o644


def test_existing_mode_is_kept(tmp_path):
    target = tmp_path / "run.json"
    write_json(target, {"a": 1})
    os.chmod(target, 0o600)
    write_json(target, {"a": 2})
    assert target.stat().st_mode & 0o777 == 0o600
    assert target.read_text().strip().endswith("}")


def test_failure_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "metrics.csv"
    write_text(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half-writ")
            raise RuntimeError("crash while writing")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.csv"]
