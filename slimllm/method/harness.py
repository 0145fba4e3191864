"""What SlimLLM and the peers share around their layer loops.

A pruning run starts the same way for every method (check the configuration, find the
adapter and the device, count the parameters, start the clock) and ends the same way (count
again, measure the achieved fraction against the configured denominator, write a PruneReport).
`PruneRun` holds that bookkeeping, so a method's own code is its scores and its allocation.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from slimllm.data.calibration import calibration_samples
from slimllm.method.config import PruneConfig
from slimllm.method.report import LayerReport, PruneReport
from slimllm.models.adapters import ModelAdapter, get_adapter
from slimllm.util.provenance import versions


def count_parameters(model: nn.Module, adapter: ModelAdapter) -> tuple[int, int]:
    """(all parameters, decoder-layer parameters) of `model`."""
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


@dataclass
class PruneRun:
    """One pruning run's shared bookkeeping: what was there before, and the clock."""

    model: PreTrainedModel
    config: PruneConfig
    adapter: ModelAdapter
    device: torch.device
    log: Callable[[str], None]
    params_before: int
    decoder_before: int
    start: float = field(default_factory=time.perf_counter)

    @classmethod
    def begin(
        cls,
        model: PreTrainedModel,
        config: PruneConfig,
        device: torch.device | str | None,
        log: Callable[[str], None] | None,
    ) -> PruneRun:
        """Check `config` and count `model` before anything is removed."""
        config.validate()
        adapter = get_adapter(model)
        device = torch.device(device) if device is not None else next(model.parameters()).device
        total, decoder = count_parameters(model, adapter)
        return cls(model, config, adapter, device, log or (lambda _msg: None), total, decoder)

    @property
    def denominator(self) -> int:
        """What a ratio is a fraction of: the whole model's or the decoder's parameters."""
        return self.decoder_before if self.config.ratio_of == "decoder" else self.params_before

    def achieved(self) -> float:
        """The fraction of the denominator removed so far."""
        total, _ = count_parameters(self.model, self.adapter)
        return (self.params_before - total) / self.denominator

    def finish(
        self,
        layers: list[LayerReport],
        calibration: str,
        base_ratio: float,
        alpha: float,
        method: str,
    ) -> PruneReport:
        """The PruneReport of the run, counted on the pruned model."""
        total, decoder = count_parameters(self.model, self.adapter)
        return PruneReport(
            config=asdict(self.config),
            target=self.config.ratio,
            achieved=(self.params_before - total) / self.denominator,
            base_ratio=base_ratio,
            alpha=alpha,
            params_before=self.params_before,
            params_after=total,
            decoder_params_before=self.decoder_before,
            decoder_params_after=decoder,
            calibration=calibration,
            seconds=time.perf_counter() - self.start,
            layers=layers,
            versions=versions(),
            method=method,
        )
