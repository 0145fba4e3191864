"""Architecture adapters: where each family keeps its layers, projections and norms.

Nothing else in the package hard-codes module paths, layer counts or head sizes; it asks an
adapter. Head counts are read off the weights (q_proj rows / head_dim), so they stay right
after heads have been removed from a layer.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn


class UnsupportedArchitectureError(ValueError):
    """The model's architecture has no adapter."""


@dataclass(frozen=True)
class AttentionShape:
    """Head layout of one attention block."""

    num_heads: int
    num_kv_heads: int
    head_dim: int

    @property
    def group_size(self) -> int:
        """Query heads per key/value head (1 for multi-head attention)."""
        return self.num_heads // self.num_kv_heads


@dataclass(frozen=True)
class AttentionProjections:
    q: nn.Linear
    k: nn.Linear
    v: nn.Linear
    o: nn.Linear


@dataclass(frozen=True)
class MlpProjections:
    gate: nn.Linear
    up: nn.Linear
    down: nn.Linear


class ModelAdapter:
    """Module paths of the LLaMA family (LLaMA 1-3, SmolLM2, TinyLlama, Mistral, Qwen2)."""

    name = "llama"
    model_types: tuple[str, ...] = ("llama", "mistral", "qwen2")
    #: Whether every perplexity window must start with BOS (Gemma degrades badly without it).
    bos_per_window = False

    def decoder(self, model: nn.Module) -> nn.Module:
        return model.model

    def layers(self, model: nn.Module) -> nn.ModuleList:
        return self.decoder(model).layers

    def embeddings(self, model: nn.Module) -> nn.Embedding:
        return self.decoder(model).embed_tokens

    def attention(self, layer: nn.Module) -> nn.Module:
        return layer.self_attn

    def mlp(self, layer: nn.Module) -> nn.Module:
        return layer.mlp

    def attention_projections(self, layer: nn.Module) -> AttentionProjections:
        attn = self.attention(layer)
        return AttentionProjections(attn.q_proj, attn.k_proj, attn.v_proj, attn.o_proj)

    def mlp_projections(self, layer: nn.Module) -> MlpProjections:
        mlp = self.mlp(layer)
        return MlpProjections(mlp.gate_proj, mlp.up_proj, mlp.down_proj)

    def attention_shape(self, layer: nn.Module) -> AttentionShape:
        attn = self.attention(layer)
        proj = self.attention_projections(layer)
        head_dim = attn.head_dim
        return AttentionShape(
            num_heads=proj.q.out_features // head_dim,
            num_kv_heads=proj.k.out_features // head_dim,
            head_dim=head_dim,
        )

    def set_attention_shape(self, layer: nn.Module, shape: AttentionShape) -> None:
        """Update the per-layer attributes the attention forward reads after surgery."""
        attn = self.attention(layer)
        attn.num_key_value_groups = shape.group_size
        for attr, value in (
            ("num_heads", shape.num_heads),
            ("num_key_value_heads", shape.num_kv_heads),
        ):
            if hasattr(attn, attr):
                setattr(attn, attr, value)

    def attention_result(self, output: Tensor) -> tuple[Tensor, None]:
        """What the attention module returns when its o_proj (its last step) gives `output`.

        A pruner that knows a layer's attention output replays it with this instead of running
        the attention again. The MLP module returns its down_proj's output as it is.
        """
        return output, None

    def intermediate_size(self, layer: nn.Module) -> int:
        return self.mlp_projections(layer).gate.out_features

    def set_intermediate_size(self, layer: nn.Module, size: int) -> None:
        mlp = self.mlp(layer)
        if hasattr(mlp, "intermediate_size"):
            mlp.intermediate_size = size

    def layer_parameters(self, layer: nn.Module) -> tuple[int, int]:
        """Parameters of (attention projections, MLP projections) in one layer, biases included."""

        def count(mods: tuple[nn.Linear, ...]) -> int:
            return sum(p.numel() for m in mods for p in m.parameters())

        a = self.attention_projections(layer)
        m = self.mlp_projections(layer)
        return count((a.q, a.k, a.v, a.o)), count((m.gate, m.up, m.down))


class Gemma3Adapter(ModelAdapter):
    """Gemma 3 text models: same projections, extra norms, BOS needed on every window."""

    name = "gemma3"
    model_types = ("gemma3_text", "gemma3")
    bos_per_window = True

    def decoder(self, model: nn.Module) -> nn.Module:
        inner = model.model
        # Gemma3ForConditionalGeneration nests the text model one level deeper.
        return getattr(inner, "language_model", inner)


ADAPTERS: tuple[ModelAdapter, ...] = (ModelAdapter(), Gemma3Adapter())


def get_adapter(model: nn.Module) -> ModelAdapter:
    """Return the adapter for a transformers model, or raise naming the architecture."""
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    for adapter in ADAPTERS:
        if model_type in adapter.model_types:
            return adapter
    known = sorted(t for a in ADAPTERS for t in a.model_types)
    raise UnsupportedArchitectureError(
        f"no adapter for model_type {model_type!r}; supported: {', '.join(known)}. "
        "Add a ModelAdapter subclass in slimllm/models/adapters.py for a new family."
    )
