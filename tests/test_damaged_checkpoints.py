"""--resume from a checkpoint whose fields are each valid alone but damaged: progress that
disagrees with itself (an epoch past the run's end, a metrics list shorter than the epochs
done, a batch past the end of an epoch) and optimizer, scheduler or RNG state that does not
fit the run. Each is one `error:` line from the CLI, before anything in the run folder is
written: a real interrupted run, its real checkpoint rewritten with one field damaged."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors import safe_open
from safetensors.torch import save_file

from zoo.runs import CHECKPOINT_FILE
from zoo.train import EpochEnded, TrainConfig, train
from zoo.train.checkpoint import META_KEY

pytestmark = pytest.mark.timeout(300)
ZOO = str(Path(sys.executable).parent / "zoo")
EPOCHS = 3  # the run's; it is interrupted after epoch 1: 4 batches of 64 per epoch, 4 scheduler steps


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory) -> Path:
    """A lenet5 run (adamw, onecycle) stopped by a real SIGINT after its first epoch."""
    folder = tmp_path_factory.mktemp("damaged") / "run"

    def ctrl_c(event):
        if isinstance(event, EpochEnded):
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.MonkeyPatch.context() as mp:  # the autouse isolation is per test; this runs before it
        mp.setenv("ZOO_OFFLINE", "1")
        mp.setenv("ZOO_DATA_DIR", str(tmp_path_factory.mktemp("zoo-data")))
        result = train(TrainConfig("lenet5", epochs=EPOCHS, limit=256, batch_size=64, threads=1, out=folder,
                                   checkpoint_every="1"), on_event=ctrl_c)
    assert result.status == "interrupted" and result.epoch == 1
    return folder


def damage(folder: Path, edit) -> None:
    """Rewrite the folder's checkpoint with `edit(meta, tensors)` applied (a real safetensors file)."""
    path = folder / CHECKPOINT_FILE
    with safe_open(str(path), framework="pt") as f:
        meta = json.loads(f.metadata()[META_KEY])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    edit(meta, tensors)
    save_file(tensors, str(path), metadata={META_KEY: json.dumps(meta)})


def header(**fields):
    return lambda meta, tensors: meta.update(fields)


def reorder_metrics(meta, tensors):
    meta["metrics"][0]["epoch"] = 2


DAMAGE = {
    # the header's progress, each field valid alone
    "epoch past the run's end": (header(epoch=EPOCHS + 10), "field 'epoch' is 13, past the run's 3 epochs"),
    "metrics emptied": (header(metrics=[]), "field 'metrics' has 0 rows, but field 'epoch' says 1 epochs are done"),
    "metrics out of order": (reorder_metrics, "field 'metrics[0].epoch' is 2, expected 1"),
    "partial not sums": (header(batch=2, partial=[1, 2]), "field 'partial' must be an object, got a list"),
}


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("name", DAMAGE)
def test_a_damaged_checkpoint_is_one_line_and_the_run_is_left_as_it_was(interrupted, tmp_path, name):
    edit, needle = DAMAGE[name]
    folder = tmp_path / "run"
    shutil.copytree(interrupted, folder)
    damage(folder, edit)
    before = snapshot(folder)
    assert {"metrics.csv", "run.json", CHECKPOINT_FILE} <= set(before)

    proc = subprocess.run([ZOO, "train", "lenet5", "--resume", "--out", str(folder), "--threads", "1"],
                          capture_output=True, text=True, timeout=240, env={**os.environ, "COLUMNS": "300"})
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 1 and len(errors) == 1, proc.stderr
    assert needle in errors[0] and "--force" in errors[0], errors[0]
    assert "Traceback" not in proc.stderr and "unexpected" not in errors[0]
    assert snapshot(folder) == before  # metrics.csv, run.json, the checkpoint: nothing written, nothing added


def test_the_undamaged_checkpoint_resumes(interrupted, tmp_path):
    """The checks accept what zoo itself saved (the rewrite alone changes nothing)."""
    folder = tmp_path / "run"
    shutil.copytree(interrupted, folder)
    damage(folder, lambda meta, tensors: None)
    proc = subprocess.run([ZOO, "train", "lenet5", "--resume", "--out", str(folder), "--threads", "1"],
                          capture_output=True, text=True, timeout=240, env={**os.environ, "COLUMNS": "300"})
    assert proc.returncode == 0, proc.stderr
    assert (folder / "model.safetensors").is_file()
    assert [ln.split(",")[0] for ln in (folder / "metrics.csv").read_text().splitlines()[1:]] == ["1", "2", "3"]
