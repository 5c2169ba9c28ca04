"""A model with a layer that does not fit fails train, lr-sweep and export in one line
naming the layer, as verify-shapes does (issue 16, item 4). Real `zoo` processes."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import TOY_MODEL

ZOO = str(Path(sys.executable).parent / "zoo")

# The toy with fc expecting 5 * 13 * 13 features where the pool hands it 4 * 13 * 13.
WRONG_FC = TOY_MODEL.format(name="wrongfc").replace("nn.Linear(4 * 13 * 13, 10)", "nn.Linear(5 * 13 * 13, 10)") + '''
@zoo.hookimpl
def register_models(register):
    register(toy_spec())
'''


def zoo(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([ZOO, *map(str, args)], capture_output=True, text=True, timeout=300, cwd=cwd)


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    return errors[0]


def test_train_sweep_and_export_name_the_layer_that_does_not_fit(fake_dists, tmp_path):
    fake_dists.add("zoo-wrongfc", "zoo_wrongfc_plugin", WRONG_FC)
    verify = one_error_line(zoo(tmp_path, "verify-shapes", "wrongfc"))
    assert "layer 'fc' (Linear)" in verify

    train = one_error_line(zoo(tmp_path, "train", "wrongfc", "--limit", "64", "--epochs", "1", "--threads", "1"))
    assert "layer 'fc' (Linear)" in train and "zoo verify-shapes wrongfc" in train
    assert not (tmp_path / "runs" / "wrongfc").exists()  # refused before any run folder is made

    sweep = one_error_line(zoo(tmp_path, "lr-sweep", "wrongfc", "--lrs", "0.1", "--epochs", "1", "--limit", "64"))
    assert "layer 'fc' (Linear)" in sweep and "zoo verify-shapes wrongfc" in sweep

    export = one_error_line(zoo(tmp_path, "export", "wrongfc", "--untrained", "--out", tmp_path / "w.onnx"))
    assert "layer 'fc' (Linear)" in export and "shape mismatch" in export
    assert "control flow" not in export
    assert not (tmp_path / "w.onnx").exists()
