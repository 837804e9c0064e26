"""Running under torchrun: one process per device, DistributedDataParallel, collective decisions.

`lenet train` needs no flag: torchrun sets RANK, WORLD_SIZE and LOCAL_RANK, and `join_cluster` reads them.
Without them, `Cluster()` is a single process and every collective here is a no-op.
"""

from __future__ import annotations

import gc
import os
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from lenet_cli.core.device import resolve_device
from lenet_cli.core.errors import LenetError


@dataclass(frozen=True)
class Cluster:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    def shard(self, indices: torch.Tensor) -> torch.Tensor:
        """This rank's disjoint share of a global batch (every world_size-th image)."""
        return indices[self.rank :: self.world_size] if self.active else indices

    def sum_(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.active:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def max_(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.active:
            dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
        return tensor

    def gather(self, values: list[int]) -> list[list[int]]:
        """Every rank's `values`, in rank order, on every rank."""
        if not self.active:
            return [values]
        gathered: list[Any] = [None] * self.world_size
        dist.all_gather_object(gathered, values)
        return gathered

    def share(self, value: Any) -> Any:
        """Rank 0's `value`, on every rank."""
        if not self.active:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        if self.active:
            dist.barrier()


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1


def join_cluster(device_choice: str) -> tuple[Cluster, torch.device]:
    """Join torchrun's process group if launched by it (NCCL on CUDA, Gloo on CPU); pick the device."""
    if not launched_by_torchrun():
        return Cluster(), resolve_device(device_choice)
    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if device_choice == "mps":
        raise LenetError("torchrun training runs on cuda or cpu; MPS has no distributed backend")
    use_cuda = device_choice in ("auto", "cuda") and torch.cuda.is_available()
    if device_choice == "cuda" and not use_cuda:
        resolve_device("cuda")  # raises the usual error
    if use_cuda:
        if local_rank >= torch.cuda.device_count():
            raise LenetError(
                f"local rank {local_rank} has no GPU (this machine has {torch.cuda.device_count()}); "
                "use --nproc-per-node up to the GPU count"
            )
        torch.cuda.set_device(local_rank)
        device, backend = torch.device("cuda", local_rank), "nccl"
    else:
        device, backend = torch.device("cpu"), "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size)
    return Cluster(rank, world_size, local_rank, backend), device


def leave_cluster(cluster: Cluster) -> None:
    if cluster.active and dist.is_initialized():
        dist.destroy_process_group()


@contextmanager
def distributed_model(model: nn.Module, cluster: Cluster, device: torch.device) -> Iterator[nn.Module]:
    """`model` wrapped in DistributedDataParallel under torchrun (else itself).

    Only this context holds the wrapper; callers get a weak proxy. So leaving the context frees it and
    its hooks into the process group at once, before the group is destroyed, whatever still refers to
    the proxy (a traceback's frames, say)."""
    if not cluster.active:
        yield model
        return
    device_ids = [device.index] if device.type == "cuda" else None
    wrapped = torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
    try:
        yield weakref.proxy(wrapped)
    finally:
        del wrapped
        gc.collect()  # the wrapper's hooks hold reference cycles
