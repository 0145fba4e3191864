"""Model classes that rebuild a slimllm-pruned checkpoint's per-layer shapes.

`slimllm.models.io.save_pruned` copies this file next to the weights and points the config's
`auto_map` at it, so `AutoModelForCausalLM.from_pretrained(dir, trust_remote_code=True)` builds
the pruned shapes before loading. It is therefore self-contained: it imports only torch and
transformers, and must keep working without slimllm installed.

The config carries `slimllm = {"format": 1, "layers": [...], "record": {...}}`; each layer entry
gives the original sizes (`num_heads`, `num_kv_heads`, `head_dim`, `intermediate_size`), the
original indices kept (`kept_heads`, `kept_kv_groups`, `kept_channels`) and whether o_proj /
down_proj carry a bias (added by the regression recovery).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn
from transformers import (
    Gemma3ForCausalLM,
    LlamaForCausalLM,
    MistralForCausalLM,
    PreTrainedConfig,
    PreTrainedModel,
    Qwen2ForCausalLM,
)

FORMAT = 1


def _linear(old: nn.Linear, in_features: int, out_features: int, bias: bool) -> nn.Linear:
    """`old` if it already has this shape, else an empty Linear on its device and dtype."""
    same = (old.in_features, old.out_features) == (in_features, out_features)
    if same and (old.bias is not None) == bias:
        return old
    return nn.Linear(
        in_features, out_features, bias=bias, device=old.weight.device, dtype=old.weight.dtype
    )


def _check_layout(index: int, layout: Mapping[str, Any]) -> tuple[int, int, int, int]:
    heads, kv = len(layout["kept_heads"]), len(layout["kept_kv_groups"])
    channels = len(layout["kept_channels"])
    if heads < 1 or kv < 1 or channels < 1 or heads % kv:
        raise ValueError(
            f"slimllm layout of layer {index} is invalid: {heads} query heads over {kv} KV "
            f"heads and {channels} channels (need one of each at least, and heads divisible by "
            "KV heads)"
        )
    return heads, kv, int(layout["head_dim"]), channels


def reshape_layers(model: nn.Module, layouts: Sequence[Mapping[str, Any]]) -> None:
    """Give each decoder layer of `model` the pruned shapes of `layouts` (one entry per layer).

    Projections whose shape changes are replaced by uninitialised Linear modules (weights come
    from the checkpoint); the attention's `num_key_value_groups` is set because both the eager
    and the sdpa attention read it to repeat K/V heads. Each layer keeps its layout as a dict in
    `layer.slimllm_layout`, so later surgery still speaks in original indices.
    """
    layers = model.model.layers
    if len(layouts) != len(layers):
        raise ValueError(f"slimllm layouts describe {len(layouts)} layers, model has {len(layers)}")
    for index, (layer, layout) in enumerate(zip(layers, layouts, strict=True)):
        heads, kv, head_dim, channels = _check_layout(index, layout)
        attn, mlp = layer.self_attn, layer.mlp
        if attn.head_dim != head_dim:
            raise ValueError(
                f"slimllm layout of layer {index} has head_dim {head_dim}, model {attn.head_dim}"
            )
        hidden = attn.q_proj.in_features
        attn.q_proj = _linear(attn.q_proj, hidden, heads * head_dim, attn.q_proj.bias is not None)
        attn.k_proj = _linear(attn.k_proj, hidden, kv * head_dim, attn.k_proj.bias is not None)
        attn.v_proj = _linear(attn.v_proj, hidden, kv * head_dim, attn.v_proj.bias is not None)
        attn.o_proj = _linear(attn.o_proj, heads * head_dim, hidden, bool(layout["o_proj_bias"]))
        mlp.gate_proj = _linear(mlp.gate_proj, hidden, channels, mlp.gate_proj.bias is not None)
        mlp.up_proj = _linear(mlp.up_proj, hidden, channels, mlp.up_proj.bias is not None)
        mlp.down_proj = _linear(mlp.down_proj, channels, hidden, bool(layout["down_proj_bias"]))
        attn.num_key_value_groups = heads // kv
        for attr, value in (("num_heads", heads), ("num_key_value_heads", kv)):
            if hasattr(attn, attr):
                setattr(attn, attr, value)
        if hasattr(mlp, "intermediate_size"):
            mlp.intermediate_size = channels
        layer.slimllm_layout = dict(layout)


def slimllm_entry(config: PreTrainedConfig) -> dict[str, Any]:
    """The config's `slimllm` entry, checked for a format this file understands."""
    entry = getattr(config, "slimllm", None)
    if not isinstance(entry, Mapping) or "layers" not in entry:
        raise ValueError(
            "config has no `slimllm` entry: not a slimllm pruned model; "
            "use transformers' from_pretrained for unpruned models"
        )
    if entry.get("format") != FORMAT:
        raise ValueError(
            f"slimllm format {entry.get('format')!r} is not supported by this loader "
            f"(expects {FORMAT}); update slimllm"
        )
    return dict(entry)


class _SlimMixin:
    """Builds the base architecture, then reshapes its layers per `config.slimllm`."""

    def __init__(self, config: PreTrainedConfig, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        reshape_layers(self, slimllm_entry(config)["layers"])


class SlimLlamaForCausalLM(_SlimMixin, LlamaForCausalLM):
    """LlamaForCausalLM with slimllm-pruned per-layer shapes."""


class SlimMistralForCausalLM(_SlimMixin, MistralForCausalLM):
    """MistralForCausalLM with slimllm-pruned per-layer shapes."""


class SlimQwen2ForCausalLM(_SlimMixin, Qwen2ForCausalLM):
    """Qwen2ForCausalLM with slimllm-pruned per-layer shapes."""


class SlimGemma3ForCausalLM(_SlimMixin, Gemma3ForCausalLM):
    """Gemma3ForCausalLM (text-only Gemma 3) with slimllm-pruned per-layer shapes."""


#: Pruned class per config `model_type`.
SLIM_CLASSES: dict[str, type[PreTrainedModel]] = {
    "llama": SlimLlamaForCausalLM,
    "mistral": SlimMistralForCausalLM,
    "qwen2": SlimQwen2ForCausalLM,
    "gemma3_text": SlimGemma3ForCausalLM,
}
