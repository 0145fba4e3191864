"""Analytic FLOPs and parameter counts of a (possibly pruned) LLaMA-family model.

Shapes are read off the modules, so every layer counts with its own pruned width. Only matrix
products are counted (2 FLOPs per multiply-accumulate): the seven projections of each layer,
the attention scores Q K^T and the weighted values A V (causal: a token at position t attends
t + 1 keys), and the LM head on the tokens whose logits are computed. Norms, rotary, SiLU,
softmax and bias adds are linear in the width and left out; for SmolLM2 at 256 tokens they are
well under 1 % of the total.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from slimllm.models.adapters import get_adapter


@dataclass(frozen=True)
class LayerShape:
    """What one decoder layer multiplies, per token."""

    hidden: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    channels: int

    @property
    def linear_macs(self) -> int:
        """Multiply-accumulates of q/k/v/o and gate/up/down for one token."""
        q = self.num_heads * self.head_dim
        kv = self.num_kv_heads * self.head_dim
        return self.hidden * (2 * q + 2 * kv) + 3 * self.hidden * self.channels

    def attention_macs(self, n_new: int, n_past: int = 0) -> int:
        """Q K^T plus A V for `n_new` tokens after `n_past` cached ones (causal)."""
        # Token i (0-based, absolute) sees i + 1 keys; sum over i in [n_past, n_past + n_new).
        keys = n_new * n_past + n_new * (n_new + 1) // 2
        return 2 * self.num_heads * self.head_dim * keys


def layer_shapes(model: nn.Module) -> list[LayerShape]:
    """Each decoder layer's widths, read from its projections (pruned or not)."""
    adapter = get_adapter(model)
    hidden = adapter.embeddings(model).embedding_dim
    shapes = []
    for layer in adapter.layers(model):
        shape = adapter.attention_shape(layer)
        shapes.append(
            LayerShape(
                hidden,
                shape.num_heads,
                shape.num_kv_heads,
                shape.head_dim,
                adapter.intermediate_size(layer),
            )
        )
    return shapes


def _head(model: nn.Module) -> nn.Linear:
    head = model.get_output_embeddings()
    if not isinstance(head, nn.Linear):
        raise ValueError(f"{type(model).__name__} has no linear LM head")
    return head


def forward_flops(
    model: nn.Module, n_new: int, n_past: int = 0, logits_tokens: int | None = None
) -> int:
    """FLOPs of one forward over `n_new` tokens after `n_past` cached ones, for one sequence.

    `logits_tokens` is how many positions go through the LM head (default all `n_new`;
    generation computes the last one only).
    """
    if n_new < 1 or n_past < 0:
        raise ValueError(f"need n_new >= 1 and n_past >= 0, got {n_new}, {n_past}")
    logits = n_new if logits_tokens is None else logits_tokens
    head = _head(model)
    macs = sum(s.linear_macs * n_new + s.attention_macs(n_new, n_past) for s in layer_shapes(model))
    macs += logits * head.in_features * head.out_features
    return 2 * macs


def prefill_flops(model: nn.Module, prompt_len: int) -> int:
    """Time-to-first-token work: the prompt through the model, logits of its last token."""
    return forward_flops(model, prompt_len, 0, logits_tokens=1)


def decode_flops(model: nn.Module, prompt_len: int, new_tokens: int, batch: int = 1) -> int:
    """Greedy generation of `new_tokens` with a KV cache: the prefill, then one token a step."""
    if new_tokens < 1 or batch < 1:
        raise ValueError(f"need new_tokens >= 1 and batch >= 1, got {new_tokens}, {batch}")
    total = prefill_flops(model, prompt_len)
    total += sum(
        forward_flops(model, 1, prompt_len + step, logits_tokens=1)
        for step in range(new_tokens - 1)
    )
    return batch * total


def parameter_counts(model: nn.Module) -> dict[str, int]:
    """Unique parameters (tied weights once), of the decoder layers and of the embeddings."""
    adapter = get_adapter(model)
    return {
        "total": sum(p.numel() for p in model.parameters()),
        "decoder": sum(p.numel() for p in adapter.layers(model).parameters()),
        "embedding": adapter.embeddings(model).weight.numel(),
    }
