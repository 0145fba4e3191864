"""Turning a layer ratio into whole heads, KV groups and channels, and a layer's channel budget."""

from __future__ import annotations

import pytest

from slimllm.method.plan import budget_channels, channel_params, plan_attention, plan_channels
from slimllm.models.adapters import AttentionShape, get_adapter
from slimllm.models.loaders import tiny_model

SMOL = AttentionShape(num_heads=9, num_kv_heads=3, head_dim=64)
MHA = AttentionShape(num_heads=4, num_kv_heads=4, head_dim=16)


def test_gqa_prefers_heads_per_group_when_closer() -> None:
    plan = plan_attention(SMOL, hidden=576, ratio=0.2)
    assert (plan.mode, plan.heads, plan.groups) == ("heads", 3, 0)
    assert plan.params == 3 * 2 * 64 * 576


def test_gqa_takes_whole_groups_when_closer() -> None:
    # 40 %: one head per group removes 25 % of attention, one whole group 33 %, two heads per
    # group 50 %; the whole group is closest to 40 %.
    plan = plan_attention(SMOL, hidden=576, ratio=0.4)
    assert (plan.mode, plan.heads, plan.groups) == ("groups", 3, 1)
    assert plan.params == 3 * 2 * 64 * 576 + 2 * 64 * 576


def test_mha_prunes_single_heads_as_groups() -> None:
    plan = plan_attention(MHA, hidden=64, ratio=0.5)
    assert (plan.mode, plan.heads, plan.groups) == ("groups", 2, 2)
    assert plan.params == 2 * 4 * 16 * 64


def test_at_least_one_unit_stays() -> None:
    assert plan_attention(SMOL, 576, 0.99, "heads").heads == 6
    assert plan_attention(SMOL, 576, 0.99, "groups").groups == 2
    assert plan_channels(1536, 0.9999) == 1535
    assert plan_channels(1536, 0.0) == 0


def test_forced_modes_and_errors() -> None:
    assert plan_attention(SMOL, 576, 0.4, "heads").mode == "heads"
    with pytest.raises(ValueError, match="gqa_mode must be one of"):
        plan_attention(SMOL, 576, 0.4, "rows")


def test_channel_params() -> None:
    assert channel_params(576) == 3 * 576
    assert channel_params(576, bias=True) == 3 * 576 + 2


def test_budget_channels_fill_the_layer_share() -> None:
    model = tiny_model("tiny-gqa")
    adapter = get_adapter(model)
    shape = adapter.attention_shape(model.model.layers[0])
    per_layer = sum(adapter.layer_parameters(model.model.layers[0]))
    n = budget_channels(shape, 96, 96, 0.4, 12288)
    assert abs(12288 + n * 3 * 96 - 0.4 * per_layer) <= 3 * 96 / 2
