"""Multi-process training on torch.distributed: ``torchrun --nproc_per_node=N -m gankit
train CONFIG.toml``.

Each rank holds a DistributedDataParallel copy of both players and draws its own data and
noise (seed + rank · RANK_SEED_OFFSET); DDP averages the gradients, so a step equals a
single-process step on the ranks' batches combined. Only rank 0 writes. The helpers here
are no-ops in a single process.
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from gankit.errors import GankitError

__all__ = ["RANK_SEED_OFFSET", "World", "setup", "teardown", "wrap", "unwrap",
           "mean_over_ranks", "any_rank", "gather", "broadcast", "first_problem",
           "check_in_sync"]


RANK_SEED_OFFSET = 2**40  # rank r draws from seed + r·2⁴⁰: apart from seeds and eval offsets


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def setup(device: torch.device) -> tuple[World, torch.device]:
    """Join the process group torchrun describes in the environment (gloo on the CPU,
    NCCL on CUDA, where each rank takes GPU ``LOCAL_RANK``); (World(), device) otherwise."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size == 1:
        return World(), device
    world = World(int(os.environ["RANK"]), size, int(os.environ.get("LOCAL_RANK", "0")))
    if device.type == "cuda":
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
    elif device.type != "cpu":
        raise GankitError(f"train.device: {device.type!r} is not supported with torchrun; "
                          "allowed: auto, cpu, cuda")
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return world, device


def teardown(world: World, finished: bool) -> None:
    """Leave the process group. After a finished run every rank first waits for rank 0's
    evaluation, so no rank closes its connections while another still holds them; then
    the DDP wrappers (whose reducers hold the group, sometimes in reference cycles) are
    collected before the group is destroyed, not at interpreter exit, where gloo's
    threads can abort the process."""
    if not (world.distributed and dist.is_initialized()):
        return
    if finished:
        dist.barrier()
    gc.collect()
    dist.destroy_process_group()


def wrap(module: nn.Module, world: World, device: torch.device) -> nn.Module:
    """``module`` as DistributedDataParallel (rank 0's weights broadcast to all ranks)."""
    if not world.distributed or not list(module.parameters()):  # (gmmn's fixed D)
        return module
    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=ids)


def unwrap(module: nn.Module) -> nn.Module:
    """The network inside a DDP wrapper (itself otherwise). Used where a player is only
    read (D inside G's update, unrolling, the gradient penalty's input gradient), which
    DDP's gradient hooks must not see."""
    return module.module if isinstance(module, DistributedDataParallel) else module


def mean_over_ranks(stats: dict[str, torch.Tensor], world: World) -> dict[str, torch.Tensor]:
    """The logged figures averaged over ranks (at logging steps only)."""
    if not world.distributed or not stats:
        return stats
    keys = sorted(stats)
    flat = torch.stack([stats[k].detach().float().reshape(()) for k in keys])
    dist.all_reduce(flat)
    return {k: v / world.size for k, v in zip(keys, flat)}


def any_rank(flag: bool, world: World) -> bool:
    """True on every rank if ``flag`` is true on any (a stop request, a NaN)."""
    if not world.distributed:
        return flag
    t = torch.tensor([int(flag)])
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def gather(obj, world: World) -> list:
    """``obj`` of every rank, in rank order (e.g. each rank's generator state)."""
    if not world.distributed:
        return [obj]
    out = [None] * world.size
    dist.all_gather_object(out, obj)
    return out


def broadcast(obj, world: World):
    """Rank 0's ``obj`` on every rank (e.g. the checkpoint rank 0 read)."""
    if not world.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def first_problem(problem: str | None, world: World) -> str | None:
    """The first rank's problem, on every rank, so all ranks take the same branch."""
    return next((p for p in gather(problem, world) if p), None)


def check_in_sync(modules: list[nn.Module], world: World, step: int) -> None:
    """Raise if the ranks' parameters differ (DDP must keep them identical)."""
    if not world.distributed:
        return
    with torch.no_grad():
        local = torch.cat([p.detach().float().reshape(-1).cpu()
                           for m in modules for p in m.parameters()])
    copies = gather(local, world)
    if any(not torch.equal(c, copies[0]) for c in copies[1:]):
        raise GankitError(f"step {step}: the ranks' parameters differ; stopped")
