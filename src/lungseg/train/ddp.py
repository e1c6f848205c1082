"""Distributed data parallel helpers. Launch with torchrun; gloo on CPU, nccl on GPUs:

    torchrun --nproc_per_node=2 -m lungseg train configs/x.yaml            # one machine
    torchrun --nnodes=2 --node_rank=R --master_addr=HOST --master_port=29500 \
             --nproc_per_node=N -m lungseg train configs/x.yaml             # several machines

Every rank trains on its shard of each epoch's sample order; rank 0 validates, logs and writes
checkpoints, and broadcasts the validation metrics so all ranks take the same scheduler and
early-stopping decisions.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str = "auto") -> DistInfo:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and device in ("auto", "cuda")
    if device == "cuda" and not torch.cuda.is_available():
        from ..errors import LungsegError

        raise LungsegError("device cuda requested but no GPU is available")
    dev = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    rank = dist.get_rank() if world > 1 else 0
    return DistInfo(rank, world, local_rank, dev)


def wrap(model: torch.nn.Module, info: DistInfo) -> torch.nn.Module:
    """DDP wrapper over the parameters that currently require grad (re-wrap after unfreezing)."""
    if not info.enabled:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [info.device.index] if info.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def all_reduce_sum(t: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if info.enabled:
        t = t.to(info.device)
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.cpu()


def broadcast_values(values: list[float], info: DistInfo) -> list[float]:
    if not info.enabled:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=info.device)
    dist.broadcast(t, src=0)
    return t.cpu().tolist()


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def shutdown(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
