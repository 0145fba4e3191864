"""Layer-at-a-time pruning on a GPU while the model stays on the CPU or on disk (skipped
without CUDA)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from slimllm.method.config import PruneConfig
from slimllm.method.pruner import prune
from slimllm.method.streaming_prune import prune_checkpoint
from slimllm.models.loaders import byte_tokenizer, tiny_model
from slimllm.models.shards import write_random_checkpoint
from tests.helpers import write_novels
from tests.method.test_streaming_prune import CONFIG, small_llama

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def test_cpu_model_pruned_on_cuda_matches_cpu_pruning(tmp_path: Path) -> None:
    write_novels(tmp_path, "Rain on the quay at dawn. " * 300)
    config = PruneConfig(
        ratio=0.3, ratio_of="decoder", num_pruned_layers=3, calib_samples=8, calib_seq_len=32
    )
    on_cpu = tiny_model("tiny-gqa")
    on_gpu = copy.deepcopy(on_cpu)
    a = prune(
        on_cpu, byte_tokenizer(), config, device="cpu", data_dir=str(tmp_path), progress=False
    )
    b = prune(
        on_gpu, byte_tokenizer(), config, device="cuda", data_dir=str(tmp_path), progress=False
    )
    assert all(p.device.type == "cpu" for p in on_gpu.parameters())
    assert [r.heads_kept for r in a.layers] == [r.heads_kept for r in b.layers]
    assert [r.channels_kept for r in a.layers] == [r.channels_kept for r in b.layers]
    ids = torch.randint(0, 256, (2, 16), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(
            on_gpu(input_ids=ids).logits, on_cpu(input_ids=ids).logits, rtol=1e-3, atol=1e-4
        )


def test_checkpoint_streamed_through_cuda_keeps_what_cpu_keeps(tmp_path: Path) -> None:
    data_dir = str(write_novels(tmp_path / "data", "Gulls over the harbour at noon. " * 300))
    source = write_random_checkpoint(small_llama(), tmp_path / "dense", seed=3)
    reports = [
        prune_checkpoint(
            source, tmp_path / device, byte_tokenizer(), CONFIG, device=device, data_dir=data_dir
        )
        for device in ("cpu", "cuda")
    ]
    assert [r.heads_kept for r in reports[0].layers] == [r.heads_kept for r in reports[1].layers]
    assert [r.channels_kept for r in reports[0].layers] == [
        r.channels_kept for r in reports[1].layers
    ]
    assert reports[0].params_after == reports[1].params_after
