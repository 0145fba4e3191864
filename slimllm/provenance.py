"""What every result records: software versions and a fingerprint of the model."""

from __future__ import annotations

import platform
from importlib import metadata
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
