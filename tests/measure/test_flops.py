"""Analytic FLOPs against a hand formula, torch's FLOP counter, and the shapes pruning removes."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode
from transformers import DynamicCache

from slimllm.measure import flops
from slimllm.models import surgery
from slimllm.models.adapters import get_adapter
from slimllm.models.loaders import tiny_model


def hand_prefill(n: int, hidden: int, heads: int, kv: int, hd: int, ch: int, layers: int) -> int:
    """tiny-* prefill of n tokens, written out from the architecture (one logit row)."""
    per_token = hidden * (2 * heads * hd + 2 * kv * hd) + 3 * hidden * ch
    attention = 2 * heads * hd * n * (n + 1) // 2
    return 2 * (layers * (per_token * n + attention) + hidden * 259)


@pytest.mark.parametrize(
    ("name", "heads", "kv", "hidden"), [("tiny-llama", 4, 4, 64), ("tiny-gqa", 6, 2, 96)]
)
def test_prefill_matches_the_hand_formula(name: str, heads: int, kv: int, hidden: int) -> None:
    model = tiny_model(name)
    hd = hidden // heads
    for n in (1, 7, 256):
        assert flops.prefill_flops(model, n) == hand_prefill(n, hidden, heads, kv, hd, 96, 3)


def _counted(model: torch.nn.Module, ids: torch.Tensor, past: int) -> int:
    """torch's own count of one decode step after `past` cached tokens (eager attention)."""
    cache = DynamicCache(config=model.config)
    with torch.no_grad():
        model(input_ids=torch.zeros(1, past, dtype=torch.long), past_key_values=cache)
        with FlopCounterMode(display=False) as counter:
            model(input_ids=ids, past_key_values=cache, logits_to_keep=1)
    return counter.get_total_flops()


@pytest.mark.parametrize("name", ["tiny-llama", "tiny-gqa"])
def test_decode_step_matches_torch_flop_counter(name: str) -> None:
    # One new token attends every cached key, so causal and full attention agree exactly.
    model = tiny_model(name, attn_implementation="eager")
    for past in (1, 10, 33):
        ids = torch.tensor([[5]])
        assert flops.forward_flops(model, 1, past, logits_tokens=1) == _counted(model, ids, past)


def test_pruned_model_loses_exactly_the_removed_shapes() -> None:
    model = tiny_model("tiny-gqa")
    before = flops.prefill_flops(model, 64)
    adapter = get_adapter(model)
    first, second, _ = adapter.layers(model)
    surgery.prune_attention_heads(first, adapter, [0, 2, 3, 5])  # one query head of each group
    surgery.prune_mlp_channels(second, adapter, range(43))  # 53 of 96 channels go
    hidden, hd, n = 96, 16, 64
    heads_removed = 2 * 2 * (2 * hidden * hd * n + 2 * hd * n * (n + 1) // 2)  # 2 heads
    channels_removed = 2 * 3 * hidden * 53 * n
    assert before - flops.prefill_flops(model, 64) == heads_removed + channels_removed
    assert [s.channels for s in flops.layer_shapes(model)] == [96, 43, 96]
    assert [s.num_heads for s in flops.layer_shapes(model)] == [4, 6, 6]


def test_decode_is_prefill_then_one_token_steps() -> None:
    model = tiny_model("tiny-llama")
    steps = sum(flops.forward_flops(model, 1, 8 + i, logits_tokens=1) for i in range(3))
    assert flops.decode_flops(model, 8, 4, batch=2) == 2 * (flops.prefill_flops(model, 8) + steps)


def test_parameter_counts() -> None:
    model = tiny_model("tiny-gqa")
    counts = flops.parameter_counts(model)
    assert counts["total"] == sum(p.numel() for p in model.parameters())
    assert counts["embedding"] == 259 * 96
    assert counts["decoder"] == sum(p.numel() for p in model.model.layers.parameters())


def test_bad_lengths_are_errors() -> None:
    model = tiny_model("tiny-llama")
    with pytest.raises(ValueError, match="n_new >= 1"):
        flops.forward_flops(model, 0)
    with pytest.raises(ValueError, match="new_tokens >= 1"):
        flops.decode_flops(model, 8, 0)
