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
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from zoo.runs import CHECKPOINT_FILE
from zoo.train import EpochEnded, TrainConfig, train
from zoo.train.checkpoint import META_KEY

pytestmark = pytest.mark.timeout(300)
ZOO = str(Path(sys.executable).parent / "zoo")
EPOCHS = 3  # the run's; it is interrupted after epoch 1: 4 batches of 64 per epoch, 4 scheduler steps


def _interrupted(tmp_path_factory, **options) -> Path:
    folder = tmp_path_factory.mktemp("damaged") / "run"

    def ctrl_c(event):
        if isinstance(event, EpochEnded):
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.MonkeyPatch.context() as mp:  # the autouse isolation is per test; this runs before it
        mp.setenv("ZOO_OFFLINE", "1")
        mp.setenv("ZOO_DATA_DIR", str(tmp_path_factory.mktemp("zoo-data")))
        result = train(TrainConfig("lenet5", epochs=EPOCHS, limit=256, batch_size=64, threads=1, out=folder,
                                   checkpoint_every="1", **options), on_event=ctrl_c)
    assert result.status == "interrupted" and result.epoch == 1
    return folder


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory) -> Path:
    """A lenet5 run (adamw, torch's OneCycleLR: one cycle) stopped by a real SIGINT after its first epoch."""
    return _interrupted(tmp_path_factory, cycles=1)


@pytest.fixture(scope="module")
def interrupted_cycled(tmp_path_factory) -> Path:
    """The same with two cycles (zoo's CycledSchedule), as lenet5's recipe trains."""
    return _interrupted(tmp_path_factory, cycles=2)


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


def scheduler(**fields):
    return lambda meta, tensors: meta["scheduler"].update(fields)


def tensor(key, value):
    return lambda meta, tensors: tensors.__setitem__(key, value)


def drop_state(key):
    def edit(meta, tensors):
        for _, state in meta["optimizer"]["state"]["__items__"]:
            del state[key]
    return edit


def group(**fields):
    return lambda meta, tensors: meta["optimizer"]["param_groups"][0].update(fields)


def reorder_metrics(meta, tensors):
    meta["metrics"][0]["epoch"] = 2


def batch_after_the_end(meta, tensors):  # every epoch done, with rows for each, and yet part of one more
    meta["metrics"] = [dict(meta["metrics"][0], epoch=e) for e in range(1, EPOCHS + 1)]
    meta.update(epoch=EPOCHS, batch=2)


DAMAGE = {
    # the header's progress, each field valid alone
    "epoch past the run's end": (header(epoch=EPOCHS + 10), "field 'epoch' is 13, past the run's 3 epochs"),
    "metrics emptied": (header(metrics=[]), "field 'metrics' has 0 rows, but field 'epoch' says 1 epochs are done"),
    "metrics out of order": (reorder_metrics, "field 'metrics[0].epoch' is 2, expected 1"),
    "batch after the last epoch": (batch_after_the_end, "field 'batch' is 2, but all 3 epochs of the run are done"),
    "batch past the epoch": (header(batch=10**6), "it is 1000000 batches into epoch 2, which has 4"),
    "partial not sums": (header(batch=2, partial=[1, 2]), "field 'partial' must be an object, got a list"),
    # the scheduler: what the recipe lays out, and how far it has gone
    "scheduler total_steps": (scheduler(total_steps=5), "the scheduler's 'total_steps' is 5, where this run's"),
    "scheduler last_epoch": (scheduler(last_epoch=10**6), "the scheduler has taken 1000000 steps, but the run's "
                                                           "progress (epoch and batch) says 4"),
    "scheduler anneal function": (scheduler(_anneal_func_type="x"), "the scheduler's '_anneal_func_type' is \"x\""),
    "scheduler counter a string": (scheduler(_step_count="5"), "the scheduler's '_step_count' is \"5\", not a value"),
    "scheduler step count gone": (lambda meta, tensors: meta["scheduler"].pop("last_epoch"),
                                  "the scheduler state lacks 'last_epoch'"),
    "the data changed": (header(batches=5), "the training data changed since the checkpoint was saved (5 batches "
                                            "per epoch then, 4 now"),
    # the RNG
    "rng float": (tensor("rng.cpu", torch.zeros(5056)), "the RNG state 'cpu' is torch.float32 of shape [5056], "
                                                         "expected a 1-D uint8 tensor"),
    "rng too short": (tensor("rng.cpu", torch.zeros(10, dtype=torch.uint8)), "the RNG state 'cpu' is not a generator"),
    # the optimizer: its settings, and each parameter's state
    "optimizer step of 150": (tensor("optimizer.state.0.step", torch.zeros(150)),
                              "the optimizer's 'step' of parameter 0 is torch.float32 of shape [150], expected one"),
    "optimizer moment shape": (tensor("optimizer.state.1.exp_avg", torch.zeros(3)),
                               "the optimizer's 'exp_avg' of parameter 1 is torch.float32 of shape [3], expected"),
    "optimizer moment dropped": (drop_state("exp_avg_sq"), "the optimizer state of parameter 0 lacks 'exp_avg_sq'"),
    "optimizer eps a string": (group(eps="x"), "the optimizer's 'eps' is \"x\", where this run's optimizer has 1e-08"),
    "optimizer lr a string": (group(lr="x"), "the optimizer's 'lr' is \"x\", not a value like"),
}


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("name", DAMAGE)
def test_a_damaged_checkpoint_is_one_line_and_the_run_is_left_as_it_was(interrupted, tmp_path, name):
    _refused_as_damaged(interrupted, tmp_path, *DAMAGE[name])


@pytest.mark.parametrize("edit, needle", [
    (scheduler(bounds=[[0, 4], [4, 8]]), "the scheduler's 'bounds' is [[0, 4], [4, 8]], where this run's"),
    (scheduler(decay=2.0), "the scheduler's 'decay' is 2.0, where this run's"),
], ids=["cycle bounds", "cycle decay"])
def test_a_damaged_cycled_schedule_is_one_line(interrupted_cycled, tmp_path, edit, needle):
    _refused_as_damaged(interrupted_cycled, tmp_path, edit, needle)


def _refused_as_damaged(interrupted: Path, tmp_path: Path, edit, needle: str) -> None:
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


def other_torch(meta, tensors):
    """The scheduler state as torch 2.6 saved it: a 'verbose' flag, no '_is_initial' (and a
    stray key, which must not reach the scheduler's __dict__, where it would hide a method)."""
    meta["scheduler"].pop("_is_initial", None)
    meta["scheduler"] |= {"verbose": False, "step": "not a method"}


@pytest.mark.parametrize("edit", [lambda meta, tensors: None, other_torch], ids=["as saved", "another torch"])
def test_the_undamaged_checkpoint_resumes(interrupted, tmp_path, edit):
    """The checks accept what zoo itself saved (the rewrite alone changes nothing), also from
    a torch whose schedulers keep other bookkeeping."""
    folder = tmp_path / "run"
    shutil.copytree(interrupted, folder)
    damage(folder, edit)
    proc = subprocess.run([ZOO, "train", "lenet5", "--resume", "--out", str(folder), "--threads", "1"],
                          capture_output=True, text=True, timeout=240, env={**os.environ, "COLUMNS": "300"})
    assert proc.returncode == 0, proc.stderr
    assert (folder / "model.safetensors").is_file()
    assert [ln.split(",")[0] for ln in (folder / "metrics.csv").read_text().splitlines()[1:]] == ["1", "2", "3"]
