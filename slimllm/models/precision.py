"""Which dtype to evaluate in: bfloat16 only where it is faster on the hardware at hand.

On a GPU with bfloat16 support it is. On a CPU it depends on the chip: with AMX (Sapphire
Rapids and later) bfloat16 matmuls were about 4x faster than float32; with only AVX-512 BF16
they were slower on one machine and 2.4x faster on another (an AMD EPYC). So on a CPU `auto`
times the matmuls of a SmolLM2-sized layer in both dtypes, once per process, and takes bfloat16
only when it is clearly faster; the reason string carries the measured ratio into records.
"""

from __future__ import annotations

import os
import time
from functools import lru_cache

import torch

from slimllm.util.provenance import cpu_info

DTYPE_CHOICES = ("auto", "float32", "bfloat16", "float16")


#: bfloat16 must beat float32 by this factor: a small gain is not worth its rounding.
MIN_SPEEDUP = 1.2


#: A layer-sized problem: 8 windows of 128 tokens through a 576 -> 1536 -> 576 MLP.
PROBE_SHAPE = (1024, 576, 1536)


PROBE_REPEATS = 5


#: A number here replaces the probe's measured speedup: pins `auto` without timing, and lets a
#: test suite run as it would on a CPU where bfloat16 is slow (e.g. 0.25) or fast (e.g. 4).
SPEEDUP_ENV = "SLIMLLM_CPU_BF16_SPEEDUP"


def matmul_seconds(dtype: torch.dtype, shape: tuple[int, int, int] = PROBE_SHAPE) -> float:
    """Best-of-PROBE_REPEATS wall time of one up and one down projection in `dtype`."""
    tokens, hidden, inner = shape
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(tokens, hidden, generator=gen).to(dtype)
    up = torch.randn(hidden, inner, generator=gen).to(dtype)
    down = torch.randn(inner, hidden, generator=gen).to(dtype)
    (x @ up) @ down
    best = float("inf")
    for _ in range(PROBE_REPEATS):
        start = time.perf_counter()
        (x @ up) @ down
        best = min(best, time.perf_counter() - start)
    return best


def given_speedup() -> float | None:
    """The speedup set in $SLIMLLM_CPU_BF16_SPEEDUP, or None; a bad value is one clear error."""
    text = os.environ.get(SPEEDUP_ENV)
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise ValueError(f"${SPEEDUP_ENV} must be a positive number, got {text!r}")
    return value


@lru_cache(maxsize=1)
def cpu_bf16_speedup() -> float:
    """float32 time over bfloat16 time of the probe matmuls on this CPU (>1: bf16 is faster)."""
    return matmul_seconds(torch.float32) / matmul_seconds(torch.bfloat16)


def resolve_dtype(requested: str, device: str = "cpu") -> tuple[str, str]:
    """(dtype name, reason). `auto`: bfloat16 on CUDA with bf16 support, or on a CPU where the
    probe matmuls run at least MIN_SPEEDUP times faster in bfloat16; float32 otherwise."""
    if requested not in DTYPE_CHOICES:
        raise ValueError(f"dtype must be one of {DTYPE_CHOICES}, got {requested!r}")
    if requested != "auto":
        return requested, "asked for"
    if device.startswith("cuda"):
        if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return "bfloat16", f"auto: {torch.cuda.get_device_name(0)} supports bfloat16"
        return "float32", "auto: this GPU has no bfloat16 support"
    given = given_speedup()
    speedup = cpu_bf16_speedup() if given is None else given
    flags = " ".join(f for f in ("amx_bf16", "avx512_bf16") if f in cpu_info()["flags"]) or "none"
    how = "measured" if given is None else f"set by ${SPEEDUP_ENV} to"
    measured = f"bfloat16 matmuls {how} {speedup:.2f}x the speed of float32 (bf16 flags: {flags})"
    if speedup >= MIN_SPEEDUP:
        return "bfloat16", f"auto: {measured}"
    return "float32", f"auto: {measured}, under the {MIN_SPEEDUP}x it takes to switch"
