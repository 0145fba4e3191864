"""What SlimLLM and the peers share around their layer loops: parameter counts and the
calibration windows of a configuration.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from slimllm.data.calibration import calibration_samples
from slimllm.method.config import PruneConfig
from slimllm.models.adapters import ModelAdapter


def _count(model: nn.Module, adapter: ModelAdapter) -> tuple[int, int]:
    total = sum(p.numel() for p in model.parameters())
    decoder = sum(p.numel() for p in adapter.layers(model).parameters())
    return total, decoder


def calibration_for(
    tokenizer: PreTrainedTokenizerBase,
    config: PruneConfig,
    adapter: ModelAdapter,
    data_dir: str | None,
) -> tuple[torch.Tensor, str]:
    """The calibration windows `config` asks for (BOS on each where the family needs it)."""
    return calibration_samples(
        tokenizer,
        config.calib_samples,
        config.calib_seq_len,
        config.seed,
        adapter.bos_per_window,
        data_dir,
        config.calib_dataset,
    )
