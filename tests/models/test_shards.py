"""Sharded checkpoints: written shard by shard, read tensor by tensor, and the meta skeleton."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import LlamaConfig

from slimllm.method.calibration import capture_layer_inputs
from slimllm.models.adapters import get_adapter
from slimllm.models.shards import (
    INDEX_FILE,
    ShardedCheckpoint,
    ShardWriter,
    module_name,
    shard_name,
    skeleton,
    write_random_checkpoint,
)


def tiny_config() -> LlamaConfig:
    return LlamaConfig(
        vocab_size=300,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
    )


def test_writer_and_reader_round_trip(tmp_path: Path) -> None:
    writer = ShardWriter(tmp_path, 2)
    a = {"x.weight": torch.arange(6.0).reshape(2, 3), "x.bias": torch.ones(2)}
    b = {"y.weight": torch.full((4,), 2.0, dtype=torch.bfloat16)}
    assert writer.add(a).name == shard_name(1, 2) == "model-00001-of-00002.safetensors"
    with pytest.raises(ValueError, match="1 of 2 shards"):
        writer.finish()
    writer.add(b)
    with pytest.raises(ValueError, match="all 2 shards"):
        writer.add(b)
    index = json.loads(writer.finish().read_text())
    assert index["metadata"]["total_size"] == 6 * 4 + 2 * 4 + 4 * 2
    read = ShardedCheckpoint(tmp_path)
    assert read.names() == ["x.bias", "x.weight", "y.weight"]
    assert read.names("x.") == ["x.bias", "x.weight"]
    got = read.tensors(read.names())
    for name, tensor in {**a, **b}.items():
        assert torch.equal(got[name], tensor) and got[name].dtype == tensor.dtype


def test_reader_without_a_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=INDEX_FILE):
        ShardedCheckpoint(tmp_path)


def test_skeleton_holds_the_embeddings_alone_and_captures_layer_inputs(tmp_path: Path) -> None:
    folder = write_random_checkpoint(tiny_config(), tmp_path, dtype=torch.float32, seed=5)
    model = skeleton(folder, torch.float32)
    adapter = get_adapter(model)
    real = {n for n, p in model.named_parameters() if p.device.type != "meta"}
    assert real == {module_name(model, adapter.embeddings(model)) + ".weight"}
    name = "model.embed_tokens.weight"
    assert torch.equal(model.state_dict()[name], ShardedCheckpoint(folder).tensors([name])[name])
    captured = capture_layer_inputs(model, torch.randint(0, 300, (3, 8)), batch_size=2)
    assert [h.shape for h in captured.hidden] == [(2, 8, 32), (1, 8, 32)]
    cos, _ = captured.kwargs[1][0]["position_embeddings"]
    assert cos.device.type == "cpu" and torch.isfinite(cos).all()
