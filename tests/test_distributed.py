"""Data-parallel training: real processes on the CPU with gloo, small data (the bundled
MNIST sample with --limit), every test under a timeout so that a hang fails.

Runs go through the real launchers: `zoo train --nproc 2` and
`python -m torch.distributed.run ... --no-python zoo train` (= torchrun).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import assert_same_weights, weights

import zoo
from zoo.model_card import CARD_FILE
from zoo.runlock import LOCK_FILE, OWNER_FILE
from zoo.runs import CHECKPOINT_FILE, RUN_FILE, WEIGHTS_FILE
from zoo.train import TrainConfig, evaluate, train
from zoo.train.checkpoint import read_checkpoint
from zoo.train.data import load_run_data
from zoo.train.distributed import World, from_env, shard_plan
from zoo.train.augment import AugmentParams

ZOO = str(Path(sys.executable).parent / "zoo")
RUN_TIMEOUT = 150  # seconds for one launched run, on a loaded 2-core machine
# sgd with a constant rate: a step is plain gradient arithmetic, comparable across batch splits.
SMALL = ["--limit", "512", "--batch-size", "32", "--threads", "1", "--offline"]
# Long enough (4 x 128 steps) that a signal sent at the first epoch line lands before the end.
LONGER = ["--limit", "2048", "--batch-size", "8", "--epochs", "4", "--threads", "1", "--offline"]

BN_MODEL = '''
import zoo
from torch import nn

class Bn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)        # (b, 4, 26, 26)
        self.bn = nn.BatchNorm2d(4)
        self.pool = nn.MaxPool2d(2)           # (b, 4, 13, 13)
        self.flatten = nn.Flatten()           # (b, 676)
        self.fc = nn.Linear(4 * 13 * 13, 10)

    def forward(self, x):
        return self.fc(self.flatten(self.pool(self.bn(self.conv(x)).relu())))

@zoo.hookimpl
def register_models(register):
    t = zoo.Transforms(mean=(0.5,), std=(0.5,))
    register(zoo.ModelSpec(
        name="bntoy", summary="a toy with batch norm", builder=Bn, dataset="mnist", input_shape=(1, 28, 28),
        class_names=tuple("0123456789"),
        layer_shapes={"conv": (4, 26, 26), "bn": (4, 26, 26), "pool": (4, 13, 13), "flatten": (676,), "fc": (10,)},
        train_transforms=t, eval_transforms=t,
        recipe=zoo.Recipe(epochs=1, batch_size=32, optimizer="sgd", lr=0.05, schedule="constant"),
    ))
'''


def nproc_run(*args, env=None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([ZOO, "train", *map(str, args)], capture_output=True, text=True,
                          timeout=RUN_TIMEOUT, env=env, **kw)


def torchrun(*args, nproc: int = 2) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
           "--no-python", ZOO, "train", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT)


def processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line contains `text` (our unique run folder)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if text in cmdline and state != "Z" and int(entry.name) != os.getpid():
            found.append(int(entry.name))
    return found


def rank_of(pid: int) -> int | None:
    try:
        env = (Path("/proc") / str(pid) / "environ").read_bytes().split(b"\0")
    except OSError:
        return None
    for item in env:
        if item.startswith(b"RANK="):
            return int(item[5:])
    return None


def start(folder: Path, *args) -> subprocess.Popen:
    return subprocess.Popen([ZOO, "train", *map(str, args), "--out", str(folder)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for_line(proc: subprocess.Popen, needle: str, limit: float) -> None:
    deadline = time.monotonic() + limit
    for line in proc.stdout:
        if needle in line:
            return
        assert time.monotonic() < deadline, f"no '{needle}' line in {limit}s"
    raise AssertionError(f"the run ended before printing '{needle}': {proc.stderr.read()}")


# --- pure parts ----------------------------------------------------------------------------------

@pytest.mark.parametrize("n,size", [(10, 2), (11, 2), (1000, 3), (7, 4)])
def test_shards_are_disjoint_equal_and_cover_the_epoch(n, size):
    order = torch.randperm(n, generator=torch.Generator().manual_seed(n))
    params = AugmentParams(torch.arange(n), torch.arange(n) * 2, torch.arange(n) % 2 == 0)
    shards = [shard_plan(World(rank=r, size=size, local_rank=r, local_size=size), order, params) for r in range(size)]
    seen = torch.cat([s for s, _ in shards])
    assert len(set(seen.tolist())) == len(seen)  # disjoint
    assert len(seen) == n - n % size  # cover all but the ragged rest (fewer than `size`)
    assert len({len(s) for s, _ in shards}) == 1  # equally long: the ranks stay in lockstep
    for r, (s, p) in enumerate(shards):  # each sample keeps its own augmentation draw
        pos = torch.arange(r, n - n % size, size)
        assert torch.equal(p.top, params.top[pos]) and torch.equal(s, order[pos])


def test_the_environment_torchrun_sets_is_read_and_checked():
    env = {"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2",
           "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}
    assert from_env(env) == World(rank=3, local_rank=1, size=4, local_size=2)
    assert from_env({}) == World()
    with pytest.raises(zoo.errors.UsageError, match="MASTER_ADDR"):
        from_env({"WORLD_SIZE": "2", "RANK": "0"})
    with pytest.raises(zoo.errors.UsageError, match="inconsistent"):
        from_env(env | {"RANK": "4"})


# --- real processes --------------------------------------------------------------------------

@pytest.mark.timeout(300)
def test_two_processes_at_batch_b_step_like_one_process_at_2b(tmp_path):
    """One optimizer step: DDP's averaged gradient of two halves equals the gradient of the whole."""
    one_step = ["--limit", "64", "--epochs", "1", "--optimizer", "sgd", "--schedule", "constant", "--lr", "0.5",
                "--momentum", "0", "--threads", "1", "--offline", "--no-augment"]
    two = nproc_run("lenet5", *one_step, "--batch-size", "32", "--nproc", "2", "--out", tmp_path / "two")
    assert two.returncode == 0, two.stderr
    single = train(TrainConfig("lenet5", limit=64, epochs=1, optimizer="sgd", schedule="constant", lr=0.5,
                               momentum=0, threads=1, offline=True, augment=False, batch_size=64,
                               out=tmp_path / "one"))
    wa, wb = weights(tmp_path / "two"), weights(single.folder)
    for key in wa:
        torch.testing.assert_close(wa[key], wb[key], rtol=1e-5, atol=1e-6, msg=f"{key} differs")
    info = json.loads((tmp_path / "two" / RUN_FILE).read_text())
    assert info["processes"]["world_size"] == 2 and info["processes"]["global_batch_size"] == 64


@pytest.mark.timeout(300)
def test_sharded_evaluation_counts_every_image_once_and_one_run_folder(tmp_path, fake_dists):
    """A model with BatchNorm, an odd test set: the distributed run's test accuracy is
    exactly that of one process evaluating the saved weights (every image once, one set of
    BatchNorm statistics), and rank 0 alone wrote one run folder."""
    fake_dists.add("bn-toy", "bn_toy", BN_MODEL)
    work = tmp_path / "work"
    work.mkdir()
    result = nproc_run("bntoy", "--limit", "301", "--batch-size", "16", "--epochs", "2", "--ema", "0.5",
                       "--offline", "--nproc", "2", "--out", "run", cwd=work)  # the average's statistics too
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in work.iterdir()) == ["run"]  # one run folder, nothing else
    folder = work / "run"
    written = sorted(p.name for p in folder.iterdir() if p.name not in (LOCK_FILE, OWNER_FILE))  # rank 0's lock
    assert written == sorted(["checkpoint.json", CHECKPOINT_FILE, "curves.png", "metrics.csv", WEIGHTS_FILE, RUN_FILE,
                              CARD_FILE])
    info = json.loads((folder / RUN_FILE).read_text())
    assert info["status"] == "finished" and info["test_samples"] == 301
    assert info["threads"] == max(1, len(os.sched_getaffinity(0)) // 2)  # the cores split between the processes
    procs = info["processes"]
    assert procs == {"world_size": 2, "backend": "gloo", "batch_size_per_process": 16, "global_batch_size": 32,
                     "launch_command": procs["launch_command"]}
    assert "--nproc 2" in procs["launch_command"] and procs["launch_command"].startswith("zoo train bntoy")
    assert result.stdout.count("epoch 2/2") == 1  # progress from rank 0 only

    spec = zoo.get_spec("bntoy")
    model = spec.builder()
    model.load_state_dict(weights(folder))  # unwrapped: no "module." prefix
    data = load_run_data(spec, "mnist", None, True, 301, 0)
    ev = evaluate(model, data.test.images, data.test.labels, spec)
    assert ev.samples == 301 and int(ev.confusion.sum()) == 301
    assert ev.accuracy == info["test_accuracy"]
    assert ev.loss == pytest.approx(info["test_loss"], rel=1e-5)


@pytest.mark.timeout(400)
def test_nproc_and_torchrun_agree_bit_for_bit_and_ctrl_c_resumes_exactly(tmp_path):
    common = ["lenet5", *LONGER, "--ema", "0.9"]  # the weight average too: kept in lockstep and resumed exactly
    by_zoo = nproc_run(*common, "--nproc", "2", "--out", tmp_path / "zoo")
    by_torchrun = torchrun(*common, "--out", tmp_path / "torchrun")
    assert by_zoo.returncode == 0, by_zoo.stderr
    assert by_torchrun.returncode == 0, by_torchrun.stderr
    assert_same_weights(tmp_path / "zoo", tmp_path / "torchrun")

    # Ctrl-C in a terminal: SIGINT to the launcher only (torchrun's workers run in their own sessions).
    folder = tmp_path / "stopped"
    proc = start(folder, *common, "--nproc", "2")
    wait_for_line(proc, "epoch 1/4", RUN_TIMEOUT)
    proc.send_signal(signal.SIGINT)
    sent = time.monotonic()
    out, err = proc.communicate(timeout=60)
    assert time.monotonic() - sent < 30, "the run took longer than torchrun's grace period to stop"
    assert proc.returncode == 130, err
    assert "interrupted" in err and err.count("resume with") == 1, err
    assert processes_mentioning(str(folder)) == []  # no process left behind
    meta, _ = read_checkpoint(folder)
    assert meta["world_size"] == 2 and (meta["epoch"], meta["batch"]) != (4, 0)

    resumed = nproc_run(*common[:1], "--resume", "--nproc", "2", "--out", folder, "--offline")
    assert resumed.returncode == 0, resumed.stderr
    assert_same_weights(folder, tmp_path / "zoo")


@pytest.mark.timeout(300)
def test_a_killed_worker_ends_the_run_with_one_line_and_a_resumable_checkpoint(tmp_path):
    folder = tmp_path / "run"
    # a checkpoint after every epoch (the default is every 30 s), so that epoch 1's is there to resume from
    proc = start(folder, "lenet5", *LONGER, "--nproc", "2", "--checkpoint-every", "1")
    wait_for_line(proc, "epoch 1/4", RUN_TIMEOUT)
    victims = [pid for pid in processes_mentioning(str(folder)) if rank_of(pid) == 1]
    assert len(victims) == 1
    os.kill(victims[0], signal.SIGKILL)
    killed = time.monotonic()
    out, err = proc.communicate(timeout=90)
    assert time.monotonic() - killed < 60
    assert proc.returncode != 0
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "process 1 of the run was killed (SIGKILL)" in lines[0], err
    assert "continue with: zoo train lenet5 --resume --nproc 2" in err
    assert "Traceback" not in err
    assert processes_mentioning(str(folder)) == []
    meta, _ = read_checkpoint(folder)  # intact: the epoch 1 checkpoint at least
    assert meta["epoch"] >= 1
    resumed = nproc_run("lenet5", "--resume", "--nproc", "2", "--out", folder, "--offline")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((folder / RUN_FILE).read_text())["status"] == "finished"


@pytest.mark.timeout(200)
def test_resume_with_another_world_size_continues_from_the_epoch_boundary_and_says_so(tmp_path):
    folder2 = tmp_path / "run2"
    proc = start(folder2, "lenet5", *LONGER, "--nproc", "2")
    wait_for_line(proc, "epoch 1/4", RUN_TIMEOUT)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    single = subprocess.run([ZOO, "train", "lenet5", "--resume", "--out", str(folder2), "--offline"],
                            capture_output=True, text=True, timeout=RUN_TIMEOUT)
    assert single.returncode == 0, single.stderr
    assert "saved by 2 processes" in single.stderr and "start of epoch" in single.stderr
    info = json.loads((folder2 / RUN_FILE).read_text())
    assert info["status"] == "finished" and info["epochs_completed"] == 4


@pytest.mark.timeout(120)
def test_an_error_common_to_all_processes_is_reported_once(tmp_path):
    result = nproc_run("lenet5", "--limit", "64", "--batch-size", "64", "--threads", "1", "--offline",
                       "--nproc", "2", "--out", tmp_path / "run")
    assert result.returncode == 2
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "per process" in lines[0] and "process 0 of 2" in lines[0], result.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.timeout(240)
def test_a_folder_only_rank_0_refuses_stops_every_process_with_its_line(tmp_path):
    """Rank 0 alone applies the run-folder rule: the others must not wait for it in DDP's
    set-up (they did, until gloo's 120 s timeout, and the reason was never said)."""
    folder = tmp_path / "run"
    args = ("lenet5", "--limit", "256", "--batch-size", "64", "--epochs", "1", "--threads", "1", "--offline",
            "--out", folder)  # 2 batches per process: nothing but the folder is wrong
    first = nproc_run(*args)
    assert first.returncode == 0, first.stderr
    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    result = nproc_run(*args, "--nproc", "2")
    assert result.returncode == 2, result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "already holds a run" in lines[0], result.stderr
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()} == before


@pytest.mark.timeout(240)
def test_a_checkpoint_with_damaged_per_process_rng_states_is_one_line(tmp_path):
    from safetensors import safe_open
    from safetensors.torch import save_file

    from zoo.train.checkpoint import META_KEY

    folder = tmp_path / "run"
    done = nproc_run("lenet5", "--limit", "256", "--batch-size", "64", "--epochs", "1", "--threads", "1",
                     "--offline", "--nproc", "2", "--out", folder)
    assert done.returncode == 0, done.stderr
    path = folder / CHECKPOINT_FILE
    with safe_open(str(path), framework="pt") as f:
        meta = json.loads(f.metadata()[META_KEY])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    assert meta["world_size"] == 2 and len(meta["rank_rng"]) == 2
    meta["rank_rng"] = meta["rank_rng"][:1]  # one process's state lost
    save_file(tensors, str(path), metadata={META_KEY: json.dumps(meta)})
    before = path.read_bytes()
    result = nproc_run("lenet5", "--resume", "--nproc", "2", "--out", folder, "--offline")
    assert result.returncode == 1, result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "per-process RNG states are damaged" in lines[0] and "--force" in lines[0], result.stderr
    assert "Traceback" not in result.stderr and path.read_bytes() == before


@pytest.mark.parametrize("codes, expected", [
    ({1: 2, 0: -signal.SIGTERM}, (2, None)),  # rank 1 said its error; torchrun then SIGTERMed rank 0
    ({0: 3, 1: -signal.SIGKILL}, (1, "process 1 of the run was killed (SIGKILL) and the others stopped")),
    ({0: 130, 1: -signal.SIGTERM}, (130, None)),  # stopped together, the straggler cut short
    ({0: -signal.SIGTERM, 1: 3}, (1, "process 0 of the run was killed (SIGTERM) and the others stopped")),
    ({0: 3, 1: 3}, (1, "the processes of the run lost contact with each other (one stopped answering)")),
])
def test_the_launcher_reports_the_cause_not_torchruns_sigterm_to_the_survivors(codes, expected):
    from zoo.train.launch import outcome

    assert outcome(codes) == expected


@pytest.mark.skipif(not torch.cuda.is_available() or torch.cuda.device_count() < 2, reason="needs 2 CUDA GPUs")
@pytest.mark.timeout(300)
def test_two_gpus_train_with_nccl(tmp_path):
    result = nproc_run("lenet5", "--limit", "512", "--batch-size", "32", "--epochs", "1", "--offline",
                       "--device", "cuda", "--sync-bn", "--nproc", "2", "--out", tmp_path / "run")
    assert result.returncode == 0, result.stderr
    info = json.loads((tmp_path / "run" / RUN_FILE).read_text())
    assert info["processes"]["backend"] == "nccl" and info["device"] == "cuda:0"


@pytest.mark.timeout(120)
def test_nproc_under_torchrun_is_refused(tmp_path):
    env = os.environ | {"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1",
                        "MASTER_PORT": "29999"}
    result = nproc_run("lenet5", "--nproc", "2", "--out", tmp_path / "run", env=env)
    assert result.returncode == 2 and "--nproc starts its own processes" in result.stderr, result.stderr
    assert not (tmp_path / "run").exists()
