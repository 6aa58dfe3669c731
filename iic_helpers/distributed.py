"""Data-parallel training with ``torch.distributed`` (one process per GPU, started by torchrun).

``torchrun --nproc-per-node N -m iic_helpers pretrain ...`` sets ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK`` and the rendezvous variables; :func:`setup` reads them and joins the process
group (NCCL on CUDA, gloo on the CPU). What the training loops do with it:

* the global batch stays ``cfg.batch_size`` (the paper's 16): each rank takes
  ``batch_size / N`` clips (:func:`per_rank_batch`) from a ``DistributedSampler`` reseeded
  every epoch (``set_epoch``); the sampler pads the last round with repeated videos rather
  than dropping any;
* gradients are averaged by ``DistributedDataParallel``, so a step equals one step on the
  concatenated global batch (where BatchNorm, per rank by default, cannot differ);
* the memory banks stay identical on every rank: every rank draws the same intra-negative
  choices and the same ``k`` negative rows for the whole global batch from a generator
  seeded alike, scores its own slice, and updates the banks with the features and indices
  gathered from all ranks (:func:`gather`), a repeated index keeping its last occurrence;
* only rank 0 writes files; statistics are averaged over ranks before they are logged.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = [
    "DistContext",
    "setup",
    "per_rank_batch",
    "gather",
    "mean_over_ranks",
    "last_occurrence",
    "gather_objects",
    "barrier",
]

#: How long a rank waits in a collective before it gives up (a stuck peer).
TIMEOUT = datetime.timedelta(minutes=30)


@dataclass(frozen=True)
class DistContext:
    """This process's place in the job: ``rank`` of ``world_size``, on ``device``."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that writes files."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1 and dist.is_available() and dist.is_initialized()


def _device(device: str, local_rank: int) -> torch.device:
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    resolved = torch.device(device)
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} requested but no CUDA device is visible")
        resolved = torch.device("cuda", local_rank if resolved.index is None else resolved.index)
        torch.cuda.set_device(resolved)
    return resolved


def setup(device: str = "auto") -> DistContext | None:
    """Join the process group torchrun describes; ``None`` when not started by torchrun.

    An already initialised group (e.g. from a test) is used as it is.
    """
    if dist.is_available() and dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
        local = int(os.environ.get("LOCAL_RANK", rank))
    else:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return None
        rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
        resolved = _device(device, local)
        backend = "nccl" if resolved.type == "cuda" else "gloo"
        dist.init_process_group(backend, timeout=TIMEOUT)
    return DistContext(rank, world, local, _device(device, local))


def per_rank_batch(batch_size: int, world_size: int) -> int:
    """Clips per rank for a global batch of ``batch_size``; it must divide evenly."""
    if batch_size % world_size:
        raise ValueError(
            f"batch_size={batch_size} is the global batch and must be divisible by the "
            f"{world_size} processes (e.g. 16 on 1, 2, 4, 8 or 16 GPUs)"
        )
    return batch_size // world_size


def gather(tensor: torch.Tensor, ctx: DistContext | None) -> torch.Tensor:
    """Concatenate ``tensor`` ``(B, ...)`` from every rank in rank order: ``(N*B, ...)``.

    Every rank must pass the same shape. Without a process group: ``tensor`` itself.
    """
    if ctx is None or not ctx.distributed:
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(ctx.world_size)]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts)


def mean_over_ranks(values: dict[str, float], ctx: DistContext | None) -> dict[str, float]:
    """Average scalar statistics over ranks (same keys everywhere)."""
    if ctx is None or not ctx.distributed:
        return values
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=ctx.device)
    dist.all_reduce(t)
    return {k: float(v) / ctx.world_size for k, v in zip(keys, t.tolist(), strict=True)}


def gather_objects(obj: object, ctx: DistContext | None) -> list[object]:
    """Every rank's ``obj`` (picklable; e.g. CPU tensors), in rank order."""
    if ctx is None or not ctx.distributed:
        return [obj]
    out: list[object] = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def last_occurrence(index: torch.Tensor) -> torch.Tensor:
    """Positions ``(U,)`` of the last occurrence of each distinct value of ``index`` ``(B,)``.

    A memory row written twice in one update (the sampler's padding) then gets one
    well-defined value on every rank and device.
    """
    positions = torch.arange(index.numel(), device=index.device)
    unique, inverse = torch.unique(index, return_inverse=True)
    last = torch.full((unique.numel(),), -1, dtype=torch.long, device=index.device)
    return last.scatter_reduce(0, inverse, positions, reduce="amax")


def barrier(ctx: DistContext | None) -> None:
    if ctx is not None and ctx.distributed:
        dist.barrier()
