"""Model adapters: where a family keeps its layers, their parameter counts, unknown families."""

from __future__ import annotations

import pytest
from torch import nn

from slimllm.models.adapters import UnsupportedArchitectureError, get_adapter
from slimllm.models.loaders import tiny_model


def test_adapter_paths_and_parameter_counts() -> None:
    model = tiny_model("tiny-gqa")
    adapter = get_adapter(model)
    layer = adapter.layers(model)[0]
    shape = adapter.attention_shape(layer)
    assert (shape.num_heads, shape.num_kv_heads, shape.head_dim, shape.group_size) == (6, 2, 16, 3)
    attn, mlp = adapter.layer_parameters(layer)
    hidden, ffn = 96, 96
    assert attn == 2 * hidden * 6 * 16 + 2 * hidden * 2 * 16
    assert mlp == 3 * hidden * ffn


def test_unknown_architecture_is_named() -> None:
    class Fake(nn.Module):
        config = type("C", (), {"model_type": "mamba"})()

    with pytest.raises(UnsupportedArchitectureError, match="'mamba'"):
        get_adapter(Fake())
