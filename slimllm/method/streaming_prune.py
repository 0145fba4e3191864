"""SlimLLM on a checkpoint larger than memory: one decoder layer in memory at a time.

The model is built on the meta device with only its embeddings loaded
(`slimllm.models.shards.skeleton`). `prune` walks it as always, the dense similarity pass and
then the pruning walk, while a `ShardedHome` loads each layer from the input shards when a walk
reaches it and frees it after; the pruning walk first writes the pruned layer as the next output
shard. Embeddings, final norm and output head are copied shard to shard. With `device` "cuda"
the layer being visited and its calibration activations are on the GPU, everything else stays
on disk or, for the hidden states between layers, in CPU memory.

The per-layer code is `prune`'s own, so the result is the in-memory result, bit for bit.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from slimllm.method.calibration import LayerHome
from slimllm.method.config import PruneConfig
from slimllm.method.pruner import prune
from slimllm.method.report import PruneReport
from slimllm.models.adapters import get_adapter
from slimllm.models.io import write_pruned_files, writing_folder
from slimllm.models.shards import ShardedCheckpoint, ShardWriter, module_name, skeleton


def free_parameters(module: nn.Module) -> None:
    """Move `module`'s parameters to the meta device: their memory goes, their shapes stay."""
    for sub in module.modules():
        for name, param in list(sub.named_parameters(recurse=False)):
            setattr(sub, name, nn.Parameter(param.to("meta"), requires_grad=param.requires_grad))


class ShardedHome(LayerHome):
    """Decoder layers that live in checkpoint shards: loaded (in `dtype`) when a walk reaches
    them, freed after; a final (pruning) walk first hands each layer to `writer`."""

    def __init__(
        self,
        checkpoint: ShardedCheckpoint,
        prefix: str,
        dtype: torch.dtype,
        writer: ShardWriter | None = None,
    ) -> None:
        super().__init__()
        self.checkpoint = checkpoint
        self.prefix = prefix
        self.dtype = dtype
        self.writer = writer

    def fetch(self, index: int, layer: nn.Module, device: torch.device) -> None:
        head = f"{self.prefix}{index}."
        names = self.checkpoint.names(head)
        state = {
            name[len(head) :]: tensor.to(self.dtype)
            for name, tensor in self.checkpoint.tensors(names, device).items()
        }
        layer.load_state_dict(state, strict=True, assign=True)

    def release(self, index: int, layer: nn.Module, final: bool) -> None:
        if final and self.writer is not None:
            head = f"{self.prefix}{index}."
            self.writer.add({head + k: v for k, v in layer.state_dict().items()})
        free_parameters(layer)


def prune_checkpoint(
    source: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    tokenizer: PreTrainedTokenizerBase,
    config: PruneConfig | None = None,
    dtype: torch.dtype = torch.bfloat16,
    device: torch.device | str = "cpu",
    data_dir: str | None = None,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
    overwrite: bool = False,
) -> PruneReport:
    """Prune the safetensors checkpoint in folder `source` into the pruned-model folder
    `out_dir` (as `save_pruned` writes it, in shards), holding one decoder layer at a time.

    The weights are in `dtype` (the forwards too, unless `config.calib_dtype` says otherwise);
    `out_dir` appears only once complete. Returns the run's PruneReport, which is also the
    folder's record.
    """
    checkpoint = ShardedCheckpoint(source)
    model = skeleton(source, dtype)
    adapter = get_adapter(model)
    prefix = module_name(model, adapter.layers(model)) + "."
    embeddings = module_name(model, adapter.embeddings(model)) + "."
    rest = [n for n in checkpoint.names() if not n.startswith(prefix)]

    def copied(names: list[str]) -> dict[str, torch.Tensor]:
        return {n: t.to(dtype) for n, t in checkpoint.tensors(names).items()}

    with writing_folder(out_dir, overwrite) as tmp:
        writer = ShardWriter(tmp, len(adapter.layers(model)) + 2)
        writer.add(copied([n for n in rest if n.startswith(embeddings)]))
        home = ShardedHome(checkpoint, prefix, dtype, writer)
        report = prune(model, tokenizer, config, device, data_dir, progress, log, home=home)
        writer.add(copied([n for n in rest if not n.startswith(embeddings)]))
        writer.finish()
        model.config.dtype = dtype
        write_pruned_files(model, tokenizer, Path(tmp), report.to_dict())
    return report
