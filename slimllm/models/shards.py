"""Checkpoints in sharded safetensors, read and written a few tensors at a time.

A model larger than the memory is pruned from its shards one decoder layer at a time
(`slimllm.method.streaming_prune`): `ShardedCheckpoint` gives any tensor by name from the
memory-mapped shards, `ShardWriter` writes the result shard by shard with the index that
`from_pretrained` reads, and `write_random_checkpoint` makes a seeded random model of any
LLaMA-family config without ever building it whole (the 7B and 13B benchmarks' inputs).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch
from accelerate import init_empty_weights
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn
from transformers import AutoConfig, AutoModelForCausalLM, PretrainedConfig, PreTrainedModel

from slimllm.models.adapters import get_adapter

INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"


def shard_name(number: int, total: int) -> str:
    """transformers' shard file name, e.g. model-00003-of-00034.safetensors (1-based)."""
    return f"model-{number:05d}-of-{total:05d}.safetensors"


class ShardedCheckpoint:
    """The tensors of a safetensors checkpoint folder (sharded with an index, or one file)."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        index = self.folder / INDEX_FILE
        if index.is_file():
            self.weight_map: dict[str, str] = json.loads(index.read_text())["weight_map"]
        elif (self.folder / SINGLE_FILE).is_file():
            with safe_open(self.folder / SINGLE_FILE, "pt") as f:
                self.weight_map = dict.fromkeys(f.keys(), SINGLE_FILE)
        else:
            raise FileNotFoundError(f"{folder} holds neither {INDEX_FILE} nor {SINGLE_FILE}")

    def names(self, prefix: str = "") -> list[str]:
        """Tensor names starting with `prefix`, sorted."""
        return sorted(n for n in self.weight_map if n.startswith(prefix))

    def tensors(
        self, names: Iterable[str], device: torch.device | str = "cpu"
    ) -> dict[str, torch.Tensor]:
        """The named tensors, copied out of the shards onto `device`.

        Each shard is mapped only while its tensors are copied, so what stays resident is the
        copies: reading layer after layer does not leave the checkpoint's pages in the process.
        """
        by_file: dict[str, list[str]] = {}
        for name in names:
            by_file.setdefault(self.weight_map[name], []).append(name)
        out = {}
        for file, wanted in by_file.items():
            with safe_open(self.folder / file, "pt") as f:
                for name in wanted:
                    out[name] = f.get_tensor(name).to(device, copy=True)
        return out


class ShardWriter:
    """Writes a checkpoint as numbered shards plus the index, one `add` per shard."""

    def __init__(self, folder: str | os.PathLike[str], total: int) -> None:
        self.folder = Path(folder)
        self.total = total
        self.weight_map: dict[str, str] = {}
        self.size = 0
        self._written = 0

    def add(self, tensors: Mapping[str, torch.Tensor]) -> Path:
        """Write `tensors` (on any device) as the next shard and return its path."""
        if self._written == self.total:
            raise ValueError(f"all {self.total} shards are written")
        self._written += 1
        name = shard_name(self._written, self.total)
        cpu = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
        path = self.folder / name
        save_file(cpu, path, metadata={"format": "pt"})
        for key, value in cpu.items():
            self.weight_map[key] = name
            self.size += value.numel() * value.element_size()
        return path

    def finish(self) -> Path:
        """Write the index once every shard is written, and return its path."""
        if self._written != self.total:
            raise ValueError(f"{self._written} of {self.total} shards written")
        index = {
            "metadata": {"total_size": self.size},
            "weight_map": dict(sorted(self.weight_map.items())),
        }
        path = self.folder / INDEX_FILE
        path.write_text(json.dumps(index, indent=2) + "\n")
        return path


def module_name(model: nn.Module, module: nn.Module) -> str:
    """The qualified name of `module` inside `model` (e.g. "model.layers")."""
    for name, candidate in model.named_modules():
        if candidate is module:
            return name
    raise ValueError("module is not part of the model")


def empty_model(config: PretrainedConfig, dtype: torch.dtype) -> PreTrainedModel:
    """`config`'s causal LM with every parameter on the meta device (no memory) and its
    buffers (the rotary tables) real, in eval mode."""
    with init_empty_weights(include_buffers=False):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    return model.eval()


def skeleton(folder: str | os.PathLike[str], dtype: torch.dtype) -> PreTrainedModel:
    """The model of a checkpoint folder with only its embeddings loaded (in `dtype`).

    Enough to turn token ids into the first layer's inputs; the decoder layers stay on the meta
    device until someone loads them (`slimllm.method.streaming_prune`).
    """
    model = empty_model(AutoConfig.from_pretrained(folder), dtype)
    embeddings = get_adapter(model).embeddings(model)
    name = module_name(model, embeddings) + ".weight"
    weight = ShardedCheckpoint(folder).tensors([name])[name]
    embeddings.weight = nn.Parameter(weight.to(dtype), requires_grad=False)
    return model


def write_random_checkpoint(
    config: PretrainedConfig,
    folder: str | os.PathLike[str],
    dtype: torch.dtype = torch.bfloat16,
    seed: int = 0,
) -> Path:
    """Write a seeded random model of `config` to `folder` as sharded safetensors.

    One shard holds the embeddings, one each decoder layer and the last the final norm and the
    output head, each generated and written in turn, so memory holds one layer at most. Matrices
    are N(0, initializer_range) (`config.initializer_range`, 0.02 for LLaMA), norms are ones;
    tensor k of the state dict is drawn from a generator seeded with seed + k. Returns the folder
    (its config.json written last, so a folder with one is complete).
    """
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    model = empty_model(config, dtype)
    adapter = get_adapter(model)
    prefix = module_name(model, adapter.layers(model)) + "."
    embeddings = module_name(model, adapter.embeddings(model)) + "."
    shapes = {
        name: tuple(tensor.shape)
        for name, tensor in model.state_dict().items()
        if not (config.tie_word_embeddings and name == "lm_head.weight")
    }
    order = list(shapes)
    num_layers = len(adapter.layers(model))
    groups: list[list[str]] = [[] for _ in range(num_layers + 2)]
    for name in order:
        if name.startswith(prefix):
            groups[1 + int(name[len(prefix) :].split(".")[0])].append(name)
        else:
            groups[0 if name.startswith(embeddings) else -1].append(name)
    std = float(getattr(config, "initializer_range", 0.02))
    writer = ShardWriter(out, len(groups))
    for names in groups:
        tensors = {}
        for name in names:
            gen = torch.Generator().manual_seed(seed + order.index(name))
            shape = shapes[name]
            if len(shape) == 1:
                tensors[name] = torch.ones(shape, dtype=dtype)
            else:
                tensors[name] = (torch.randn(shape, generator=gen) * std).to(dtype)
        writer.add(tensors)
    writer.finish()
    config.save_pretrained(out)
    return out
