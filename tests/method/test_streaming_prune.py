"""Pruning a checkpoint from its shards, one layer at a time, gives the in-memory result exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, LlamaConfig

from slimllm.method.config import PruneConfig
from slimllm.method.pruner import prune
from slimllm.method.streaming_prune import prune_checkpoint
from slimllm.models.adapters import get_adapter
from slimllm.models.io import load_pruned
from slimllm.models.loaders import byte_tokenizer
from slimllm.models.shards import ShardedCheckpoint, write_random_checkpoint
from slimllm.models.surgery import layer_layout
from tests.helpers import write_novels

CONFIG = PruneConfig(
    ratio=0.3, ratio_of="decoder", num_pruned_layers=3, calib_samples=8, calib_seq_len=32
)


def small_llama() -> LlamaConfig:
    return LlamaConfig(
        vocab_size=259,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        bos_token_id=256,
        eos_token_id=257,
        pad_token_id=258,
        initializer_range=0.08,
    )


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    words = "a lantern swung over the harbour while gulls argued about bread " * 80
    return str(write_novels(tmp_path_factory.mktemp("data"), words))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_streamed_pruning_equals_in_memory_pruning(
    dtype: torch.dtype, data_dir: str, tmp_path: Path
) -> None:
    source = write_random_checkpoint(small_llama(), tmp_path / "dense", dtype=dtype, seed=3)
    assert len(list(source.glob("model-*.safetensors"))) == 4 + 2
    tok = byte_tokenizer()
    in_memory = AutoModelForCausalLM.from_pretrained(source, dtype=dtype).eval()
    expected = prune(in_memory, tok, CONFIG, data_dir=data_dir, progress=False)
    report = prune_checkpoint(
        source, tmp_path / "pruned", tok, CONFIG, dtype=dtype, data_dir=data_dir
    )
    assert [r.heads_kept for r in report.layers] == [r.heads_kept for r in expected.layers]
    assert (report.params_after, report.achieved) == (expected.params_after, expected.achieved)
    written = ShardedCheckpoint(tmp_path / "pruned")
    state = in_memory.state_dict()
    assert written.names() == sorted(state)
    for name, tensor in written.tensors(written.names()).items():
        assert torch.equal(tensor, state[name]), name
    loaded, _ = load_pruned(tmp_path / "pruned")
    adapter = get_adapter(loaded)
    assert [layer_layout(layer, adapter) for layer in adapter.layers(loaded)] == [
        layer_layout(layer, adapter) for layer in adapter.layers(in_memory)
    ]
    ids = torch.randint(0, 256, (2, 16), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(loaded(input_ids=ids).logits, in_memory(input_ids=ids).logits)


def test_random_checkpoint_is_seeded_and_complete(tmp_path: Path) -> None:
    a = write_random_checkpoint(small_llama(), tmp_path / "a", seed=1)
    b = write_random_checkpoint(small_llama(), tmp_path / "b", seed=1)
    ta, tb = ShardedCheckpoint(a), ShardedCheckpoint(b)
    model = AutoModelForCausalLM.from_pretrained(a, dtype=torch.bfloat16)
    assert ta.names() == sorted(model.state_dict())
    for name, tensor in ta.tensors(ta.names()).items():
        assert tensor.dtype == torch.bfloat16
        assert torch.equal(tensor, tb.tensors([name])[name]), name
        assert torch.equal(tensor, model.state_dict()[name]), name
