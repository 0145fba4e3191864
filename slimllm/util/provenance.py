"""What every result records: software versions and a fingerprint of the model."""

from __future__ import annotations

import os
import platform
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from torch import nn

PACKAGES = ("torch", "transformers", "lm_eval", "peft", "numpy", "slimllm-companion")


def versions() -> dict[str, str]:
    """Python, platform and the versions of the packages results depend on."""
    out = {"python": platform.python_version(), "platform": platform.platform()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def model_record(model: nn.Module) -> dict[str, Any]:
    """Name, dtype, device and parameter count of a model, plus its pruning record if any."""
    config = getattr(model, "config", None)
    param = next(model.parameters())
    record: dict[str, Any] = {
        "name": getattr(config, "_name_or_path", type(model).__name__) or type(model).__name__,
        "model_type": getattr(config, "model_type", None),
        "dtype": str(param.dtype).removeprefix("torch."),
        "device": str(param.device),
        "parameters": sum(p.numel() for p in model.parameters()),
        "torch_threads": torch.get_num_threads(),
    }
    pruning = getattr(config, "slimllm", None)
    if pruning:
        record["pruning"] = pruning.get("record", {})
    return record


@lru_cache(maxsize=1)
def cpu_info() -> dict[str, Any]:
    """CPU model, core count and the flags that decide matmul speed (AMX, AVX-512 BF16)."""
    name, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and ":" in line:
                name = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and ":" in line:
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    wanted = ("amx_bf16", "amx_tile", "amx_int8", "avx512_bf16", "avx512f", "avx2", "fma")
    return {"model": name, "cores": os.cpu_count(), "flags": [f for f in wanted if f in flags]}
