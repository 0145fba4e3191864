"""Which dtype to evaluate in: bfloat16 only where it is faster on the hardware at hand.

On a GPU and on CPUs with AMX (Sapphire Rapids and later) bfloat16 matmuls are several times
faster than float32; on CPUs with only AVX-512 BF16 they were measured slower. `auto` decides
from the device and the CPU's flags, so the choice is deterministic and can be recorded.
"""

from __future__ import annotations

import torch

from slimllm.store import cpu_info

DTYPE_CHOICES = ("auto", "float32", "bfloat16", "float16")


def resolve_dtype(requested: str, device: str = "cpu") -> tuple[str, str]:
    """(dtype name, reason). `auto`: bfloat16 on CUDA with bf16 support or on an AMX CPU."""
    if requested not in DTYPE_CHOICES:
        raise ValueError(f"dtype must be one of {DTYPE_CHOICES}, got {requested!r}")
    if requested != "auto":
        return requested, "asked for"
    if device.startswith("cuda"):
        if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return "bfloat16", f"auto: {torch.cuda.get_device_name(0)} supports bfloat16"
        return "float32", "auto: this GPU has no bfloat16 support"
    flags = cpu_info()["flags"]
    if "amx_bf16" in flags:
        return "bfloat16", "auto: the CPU has AMX (amx_bf16), where bfloat16 matmuls are faster"
    return "float32", "auto: the CPU has no AMX, where bfloat16 matmuls are not faster"
