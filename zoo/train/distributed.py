"""Data-parallel training with torch.distributed: which process this is, the process
group, and the few collectives the training loop needs.

A run of N processes (started by torchrun, or by `zoo train --nproc`, which starts
torchrun's own launcher) is N copies of the same loop in lockstep, as in
torchvision's reference scripts: each process reads RANK, LOCAL_RANK, WORLD_SIZE,
MASTER_ADDR and MASTER_PORT from its environment, joins the group (nccl when every
local process has its own CUDA device, gloo on the CPU), and wraps its model in
DistributedDataParallel, which averages the gradients in backward. With one
process every helper here is a no-op, so the single-process loop is unchanged.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import timedelta

import torch

from ..errors import UsageError, ZooError, describe
from .augment import AugmentParams

# How long a collective waits for a process that stopped answering (killed, hung,
# out of memory) before the others give up with one line. torch's default is 30
# minutes; this is long enough for rank 0 to save a large checkpoint while the
# others wait at the next collective.
TIMEOUT_SECONDS = 120


class RankStopped(ZooError):
    """This process stops because another one failed and reports why: it says nothing
    itself, and exits with QUIET_EXIT so that zoo's launcher knows it said nothing."""

    quiet = True
    exit_code = 3


class RankLost(RankStopped):
    """This process stops because the run lost another one (killed, hung): nobody may be
    left to report, so it does not wait for a reporter (see linger)."""


QUIET_EXIT = RankStopped.exit_code

# How long a process that stops quietly waits for the one that reports (see linger).
LINGER_SECONDS = 10


class RankFailed(ZooError):
    """An error on one process of a distributed run, naming it; exits as the error would."""

    def __init__(self, world: "World", exc: BaseException):
        super().__init__(f"process {world.rank} of {world.size}: {describe(exc)}")
        self.exit_code = getattr(exc, "exit_code", 1)


def is_collective_failure(exc: BaseException) -> bool:
    """A collective that failed because another process went away or stopped answering."""
    import torch.distributed as dist

    if isinstance(exc, dist.DistError):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and any(
        word in text for word in ("gloo", "Gloo", "NCCL", "Connection", "connection", "timed out", "Timeout"))


@dataclass(frozen=True)
class World:
    """Where this process stands in the run. One process: rank 0 of 1, no backend."""

    rank: int = 0
    local_rank: int = 0
    size: int = 1
    local_size: int = 1
    backend: str | None = None  # "gloo" | "nccl" once the group is joined

    @property
    def main(self) -> bool:
        """Global rank 0: the one process that writes the run folder and talks to the user."""
        return self.rank == 0

    @property
    def many(self) -> bool:
        return self.size > 1


def from_env(environ=os.environ) -> World:
    """The World torchrun describes in the environment; one process when WORLD_SIZE is unset."""
    if "WORLD_SIZE" not in environ:
        return World()
    try:
        size = int(environ["WORLD_SIZE"])
        rank = int(environ.get("RANK", "0"))
        local_rank = int(environ.get("LOCAL_RANK", "0"))
        local_size = int(environ.get("LOCAL_WORLD_SIZE", str(size)))
    except ValueError as exc:
        raise UsageError("WORLD_SIZE, RANK, LOCAL_RANK and LOCAL_WORLD_SIZE must be whole numbers; "
                         "start distributed runs with torchrun or `zoo train --nproc N`") from exc
    if not (size >= 1 and 0 <= rank < size and 0 <= local_rank < local_size <= size):
        raise UsageError(f"inconsistent torch.distributed environment (RANK {rank}, LOCAL_RANK {local_rank}, "
                         f"WORLD_SIZE {size}); start distributed runs with torchrun or `zoo train --nproc N`")
    if size > 1 and not (environ.get("MASTER_ADDR") and environ.get("MASTER_PORT")):
        raise UsageError("WORLD_SIZE is set but MASTER_ADDR and MASTER_PORT are not; "
                         "start distributed runs with torchrun or `zoo train --nproc N`")
    return World(rank, local_rank, size, local_size)


def choose_device(world: World, name: str) -> tuple[torch.device, str]:
    """(this process's device, backend): nccl and cuda:LOCAL_RANK when every local
    process has its own GPU, else gloo on the CPU."""
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if name.startswith("cuda") and gpus < world.local_size:
        raise UsageError(f"--device {name}: {world.local_size} processes on this machine need a CUDA GPU each, "
                         f"{gpus} are visible; use --device cpu or fewer processes")
    if name not in ("auto", "cpu") and not name.startswith("cuda"):
        raise UsageError(f"unsupported device '{name}': use auto, cpu or cuda")
    if name != "cpu" and gpus >= world.local_size:
        return torch.device("cuda", world.local_rank), "nccl"
    return torch.device("cpu"), "gloo"


def join(world: World, device: torch.device, backend: str) -> World:
    import torch.distributed as dist

    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend, init_method="env://", rank=world.rank, world_size=world.size,
                            timeout=timedelta(seconds=TIMEOUT_SECONDS),
                            device_id=device if device.type == "cuda" else None)
    return World(world.rank, world.local_rank, world.size, world.local_size, backend)


def leave() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def linger() -> None:
    """Wait, briefly, before a quiet exit. When one worker exits, torchrun stops the others
    with SIGTERM: a quiet process that exited first would get the reporting one killed
    while it says what went wrong, and its exit code lost. The reporter's exit ends the
    wait (torchrun's SIGTERM); the bound is for a reporter that is itself gone."""
    time.sleep(LINGER_SECONDS)


# -- collectives (no-ops for one process) -----------------------------------------------------

def sum_(world: World, values: torch.Tensor) -> torch.Tensor:
    """The element-wise sum over all processes (in place)."""
    if world.many:
        import torch.distributed as dist

        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def any_(world: World, flag: bool, device: torch.device) -> bool:
    """True on every process when it is True on any: how the ranks agree to stop at the same step."""
    if not world.many:
        return flag
    return bool(sum_(world, torch.tensor([int(flag)], device=device)).item())


def lowest(world: World, failed: bool, device: torch.device) -> int | None:
    """The lowest rank for which `failed` holds (None when none): that one reports the error."""
    if not world.many:
        return 0 if failed else None
    import torch.distributed as dist

    t = torch.tensor([world.rank if failed else world.size], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return None if int(t) == world.size else int(t)


def broadcast_buffers(world: World, model: torch.nn.Module) -> None:
    """Rank 0's buffers (BatchNorm running statistics) on every process, so that the
    sharded evaluation and the saved weights see one model."""
    if world.many:
        import torch.distributed as dist

        for buffer in model.buffers():
            dist.broadcast(buffer.data, src=0)


def gather(world: World, t: torch.Tensor) -> list[torch.Tensor]:
    """Every process's copy of an equally shaped tensor, in rank order."""
    if not world.many:
        return [t]
    import torch.distributed as dist

    out = [torch.empty_like(t) for _ in range(world.size)]
    dist.all_gather(out, t)
    return out


# -- sharding ---------------------------------------------------------------------------------

def shard(world: World, n: int) -> slice:
    """This process's positions in an epoch's order of n samples: every size-th one from
    its rank, over the first n - n % size positions, so the shards are disjoint, equally
    long, and together cover all but fewer than `size` samples (like DistributedSampler
    with drop_last). Batch k of every rank together is the global batch k."""
    return slice(world.rank, n - n % world.size, world.size)


def shard_plan(world: World, order: torch.Tensor, params: AugmentParams) -> tuple[torch.Tensor, AugmentParams]:
    """This process's share of an epoch's order and of its per-sample augmentation draws."""
    if not world.many:
        return order, params
    s = shard(world, len(order))
    return order[s], AugmentParams(params.top[s], params.left[s], params.flip[s])


def wrap(world: World, model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """The module the training step calls: DistributedDataParallel around `model` when
    there are several processes (it broadcasts rank 0's parameters at construction and
    its buffers before each forward, and averages gradients in backward)."""
    if not world.many:
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


# -- random streams ---------------------------------------------------------------------------

def rng_state(world: World, device: torch.device) -> dict[str, torch.Tensor]:
    """The global RNG state dropout draws from: the CPU's, and this process's GPU's."""
    if not world.many:
        from .checkpoint import rng_state as all_states

        return all_states()
    states = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        states["cuda"] = torch.cuda.get_rng_state(device)
    return states


def set_rng_state(world: World, states: dict[str, torch.Tensor], device: torch.device) -> None:
    if not world.many:
        from .checkpoint import set_rng_state as set_all

        set_all(states)
        return
    torch.set_rng_state(states["cpu"])
    if device.type == "cuda" and "cuda" in states:
        torch.cuda.set_rng_state(states["cuda"], device)


def gather_rng(world: World, device: torch.device) -> list[dict[str, torch.Tensor]] | None:
    """Every process's RNG state (rank order), for rank 0 to save: a resumed run of the
    same size continues each process's dropout stream exactly. None for one process."""
    if not world.many:
        return None
    comm = device if world.backend == "nccl" else torch.device("cpu")
    mine = rng_state(world, device)
    gathered = {key: gather(world, t.to(comm)) for key, t in sorted(mine.items())}
    return [{key: gathered[key][r].cpu() for key in gathered} for r in range(world.size)]
