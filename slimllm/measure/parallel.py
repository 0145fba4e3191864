"""Evaluation split across processes started by `accelerate launch` (data parallel).

Every process holds the whole model and scores a share of the work; the shares are gathered so
that every process ends with the same result as a one-process run. Perplexity splits its
batches (each batch is the one a single process would form, so every window's NLL is computed
alike); zero-shot gives lm-eval the rank and world size, and lm-eval's own data-parallel path
splits the documents and gathers the metrics.

    accelerate launch --multi_gpu --num_processes 4 -m slimllm.cli eval DIR --zeroshot  # 4 GPUs
    accelerate launch --multi_gpu --num_processes 2 -m slimllm.cli eval DIR --device cpu

On the CPU, accelerate's `--cpu` launcher starts several processes only through mpirun (with
`--mpirun_hostfile`); without it, it runs one. The `--multi_gpu` launcher (torchrun) starts
them anyway, and `--device cpu` makes them join over gloo instead of NCCL.
"""

from __future__ import annotations

from typing import Any, TypeVar

import torch
from accelerate import PartialState
from accelerate.utils import get_int_from_env

T = TypeVar("T")

#: Where launchers put the number of processes: torchrun (accelerate's own launchers), mpirun.
WORLD_ENV = ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")


def launched() -> bool:
    """Whether this process is one of several that a launcher started."""
    return get_int_from_env(list(WORLD_ENV), 1) > 1


def join(device: str) -> str:
    """Join the other processes when launched, and the device this one evaluates on: `device`
    on the CPU, else this process's own GPU (one per process, by local rank)."""
    if not launched():
        return device
    on_cpu = torch.device(device).type == "cpu"
    state = PartialState(cpu=on_cpu)
    return device if on_cpu else str(state.device)


def rank_and_world() -> tuple[int, int]:
    """This process's index and the number of processes (0, 1 outside a process group)."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return 0, 1
    return torch.distributed.get_rank(), torch.distributed.get_world_size()


def share(n: int) -> range:
    """This process's contiguous share of `n` pieces of work (sizes differ by at most one)."""
    rank, world = rank_and_world()
    return range(n * rank // world, n * (rank + 1) // world)


def gather(values: list[T]) -> list[T]:
    """Every process's `values` concatenated in rank order, on every process."""
    world = rank_and_world()[1]
    if world == 1:
        return values
    parts: list[Any] = [None] * world
    torch.distributed.all_gather_object(parts, values)
    return [v for part in parts for v in part]


def from_first(value: T | None) -> T:
    """Process 0's `value` on every process (the others pass None)."""
    if rank_and_world()[1] == 1:
        return value  # type: ignore[return-value]
    box: list[Any] = [value]
    torch.distributed.broadcast_object_list(box, src=0)
    return box[0]
