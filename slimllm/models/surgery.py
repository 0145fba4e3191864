"""Physical removal of attention heads and MLP channels, in place.

Projection modules keep their identity (callers hold references to o_proj / down_proj across
surgery); only their Parameters and size attributes change. Each layer records the ORIGINAL
heads, KV groups and channels it still holds in `layer.slimllm_layout`, so successive calls
compose and a saved model can be rebuilt with the same shapes (`slimllm.models.io`).

Index arguments (`keep_heads`, `keep`, `prune_heads`, ...) are positions in the layer as it is
when the function is called, which are the original indices on an unpruned layer.
"""

from __future__ import annotations

import operator
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import torch
from torch import Tensor, nn

from slimllm.models.adapters import AttentionShape, ModelAdapter

Indices = Sequence[int] | Tensor


@dataclass(frozen=True)
class LayerLayout:
    """Which parts of a layer's original attention and MLP it still holds.

    `num_heads`, `num_kv_heads` and `intermediate_size` are the ORIGINAL (unpruned) sizes;
    `kept_*` are ascending original indices, so the current sizes are their lengths.
    `o_proj_bias` / `down_proj_bias`: whether those projections carry a bias (the regression
    recovery adds one), which the loader must create before loading the weights.
    """

    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    kept_heads: list[int]
    kept_kv_groups: list[int]
    kept_channels: list[int]
    o_proj_bias: bool
    down_proj_bias: bool

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (lists copied)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LayerLayout:
        """Inverse of :meth:`to_dict`; raises ValueError naming any missing field."""
        names = [f.name for f in fields(cls)]
        missing = [n for n in names if n not in data]
        if missing:
            raise ValueError(f"layer layout is missing {missing}")
        values = {n: [int(i) for i in data[n]] if n.startswith("kept_") else data[n] for n in names}
        return cls(**values)


def _indices(
    name: str, values: Indices, size: int, what: str, allow_empty: bool = False
) -> list[int]:
    """Validated, sorted list of distinct indices in [0, size)."""
    if isinstance(values, Tensor):
        if values.ndim != 1 or values.is_floating_point() or values.dtype == torch.bool:
            raise ValueError(f"{name} must be a 1-D integer tensor or a sequence of ints")
        items = values.tolist()
    else:
        try:
            items = [operator.index(v) for v in values]
        except TypeError as err:
            raise ValueError(f"{name} must hold integer indices of {what}s: {err}") from err
    if not items and not allow_empty:
        raise ValueError(f"{name} is empty: at least one {what} must remain")
    outside = sorted({i for i in items if not 0 <= i < size})
    if outside:
        raise ValueError(f"{name} has {what} indices outside [0, {size}): {outside}")
    repeated = sorted(i for i, n in Counter(items).items() if n > 1)
    if repeated:
        raise ValueError(f"{name} repeats {what} indices {repeated}")
    return sorted(items)


def _check_keep_heads(
    name: str, keep: Indices, shape: AttentionShape
) -> tuple[list[int], list[int]]:
    """Sorted kept query heads and kept KV groups, for a legal grouped-query selection.

    Query heads are grouped consecutively per KV head. Every KV group that keeps any head must
    keep the same number of them, so the pruned layer is again uniform grouped-query attention.
    """
    heads = _indices(name, keep, shape.num_heads, "query head")
    per_group = Counter(h // shape.group_size for h in heads)
    if len(set(per_group.values())) > 1:
        raise ValueError(
            f"{name} must keep the same number of query heads in every KV group it keeps "
            f"({shape.num_kv_heads} KV groups of {shape.group_size} consecutive query heads); "
            f"got heads per kept group {dict(sorted(per_group.items()))}"
        )
    return heads, sorted(per_group)


def _identity_layout(layer: nn.Module, adapter: ModelAdapter) -> LayerLayout:
    shape = adapter.attention_shape(layer)
    size = adapter.intermediate_size(layer)
    return LayerLayout(
        num_heads=shape.num_heads,
        num_kv_heads=shape.num_kv_heads,
        head_dim=shape.head_dim,
        intermediate_size=size,
        kept_heads=list(range(shape.num_heads)),
        kept_kv_groups=list(range(shape.num_kv_heads)),
        kept_channels=list(range(size)),
        o_proj_bias=False,
        down_proj_bias=False,
    )


def layer_layout(
    layer: nn.Module,
    adapter: ModelAdapter,
    kept_heads: Indices | None = None,
    kept_channels: Indices | None = None,
) -> LayerLayout:
    """The layout of `layer`, synced with its modules (bias flags read off o_proj / down_proj).

    Starts from the stored `layer.slimllm_layout` (a LayerLayout, or the dict a loaded model
    carries), else the identity over the current shapes. `kept_heads` / `kept_channels`, if given,
    are positions among the layer's current heads / channels: the result is then the layout the
    layer will have once only those are kept, still in original indices.
    """
    stored = getattr(layer, "slimllm_layout", None)
    if stored is None:
        layout = _identity_layout(layer, adapter)
    elif isinstance(stored, LayerLayout):
        layout = stored
    else:
        layout = LayerLayout.from_dict(stored)
    shape = adapter.attention_shape(layer)
    held = (len(layout.kept_heads), len(layout.kept_kv_groups), layout.head_dim)
    size = adapter.intermediate_size(layer)
    if held != (shape.num_heads, shape.num_kv_heads, shape.head_dim) or (
        len(layout.kept_channels) != size
    ):
        raise ValueError(
            f"layer.slimllm_layout holds {held[0]} heads / {held[1]} KV heads / head_dim {held[2]}"
            f" / {len(layout.kept_channels)} channels but the layer has {shape.num_heads} / "
            f"{shape.num_kv_heads} / {shape.head_dim} / {size}: it was resized outside "
            "slimllm.models.surgery"
        )
    proj_o = adapter.attention_projections(layer).o
    proj_down = adapter.mlp_projections(layer).down
    layout = replace(
        layout, o_proj_bias=proj_o.bias is not None, down_proj_bias=proj_down.bias is not None
    )
    if kept_heads is not None:
        heads, groups = _check_keep_heads("kept_heads", kept_heads, shape)
        layout = replace(
            layout,
            kept_heads=[layout.kept_heads[h] for h in heads],
            kept_kv_groups=[layout.kept_kv_groups[g] for g in groups],
        )
    if kept_channels is not None:
        channels = _indices("kept_channels", kept_channels, size, "channel")
        layout = replace(layout, kept_channels=[layout.kept_channels[c] for c in channels])
    return layout


def _spans(blocks: Sequence[int], width: int, device: torch.device) -> Tensor:
    """Flat indices of the `width`-wide blocks `blocks` (e.g. the rows of some heads)."""
    starts = torch.tensor(blocks, dtype=torch.long, device=device)[:, None] * width
    return (starts + torch.arange(width, device=device)).flatten()


def _parameter(data: Tensor, like: Tensor) -> nn.Parameter:
    return nn.Parameter(data.contiguous(), requires_grad=like.requires_grad)


@torch.no_grad()
def _keep_rows(linear: nn.Linear, rows: Tensor) -> None:
    linear.weight = _parameter(linear.weight.index_select(0, rows), linear.weight)
    if linear.bias is not None:
        linear.bias = _parameter(linear.bias.index_select(0, rows), linear.bias)
    linear.out_features = rows.numel()


@torch.no_grad()
def _keep_columns(linear: nn.Linear, columns: Tensor) -> None:
    linear.weight = _parameter(linear.weight.index_select(1, columns), linear.weight)
    linear.in_features = columns.numel()


def prune_attention_heads(layer: nn.Module, adapter: ModelAdapter, keep_heads: Indices) -> None:
    """Keep only the query heads `keep_heads` of `layer`, removing the others' weights.

    Grouped-query attention allows (a) every KV group keeping the same number of query heads
    (k/v untouched, fewer heads per group) and (b) whole KV groups dropped (their k/v rows go)
    with the remaining groups keeping all or equally many heads. Anything else raises
    ValueError. The result equals the original layer with the removed heads' o_proj input
    columns zeroed (:func:`mask_attention_heads`).
    """
    shape = adapter.attention_shape(layer)
    heads, groups = _check_keep_heads("keep_heads", keep_heads, shape)
    layout = layer_layout(layer, adapter, kept_heads=heads)
    proj = adapter.attention_projections(layer)
    device = proj.q.weight.device
    q_rows = _spans(heads, shape.head_dim, device)
    _keep_rows(proj.q, q_rows)
    if len(groups) < shape.num_kv_heads:
        kv_rows = _spans(groups, shape.head_dim, device)
        _keep_rows(proj.k, kv_rows)
        _keep_rows(proj.v, kv_rows)
    _keep_columns(proj.o, q_rows)
    adapter.set_attention_shape(layer, AttentionShape(len(heads), len(groups), shape.head_dim))
    layer.slimllm_layout = layout


def prune_mlp_channels(layer: nn.Module, adapter: ModelAdapter, keep: Indices) -> None:
    """Keep only the intermediate channels `keep`: gate/up rows and down_proj columns."""
    size = adapter.intermediate_size(layer)
    channels = _indices("keep", keep, size, "channel")
    layout = layer_layout(layer, adapter, kept_channels=channels)
    proj = adapter.mlp_projections(layer)
    index = torch.tensor(channels, dtype=torch.long, device=proj.gate.weight.device)
    _keep_rows(proj.gate, index)
    _keep_rows(proj.up, index)
    _keep_columns(proj.down, index)
    adapter.set_intermediate_size(layer, len(channels))
    layer.slimllm_layout = layout


@torch.no_grad()
def mask_attention_heads(layer: nn.Module, adapter: ModelAdapter, prune_heads: Indices) -> None:
    """Zero the o_proj input columns of `prune_heads`: the reference a pruned layer must match."""
    shape = adapter.attention_shape(layer)
    heads = _indices("prune_heads", prune_heads, shape.num_heads, "query head", allow_empty=True)
    o_proj = adapter.attention_projections(layer).o
    o_proj.weight[:, _spans(heads, shape.head_dim, o_proj.weight.device)] = 0


@torch.no_grad()
def mask_mlp_channels(layer: nn.Module, adapter: ModelAdapter, prune: Indices) -> None:
    """Zero the down_proj input columns of the channels `prune`."""
    down = adapter.mlp_projections(layer).down
    channels = _indices("prune", prune, down.in_features, "channel", allow_empty=True)
    down.weight[:, torch.tensor(channels, dtype=torch.long, device=down.weight.device)] = 0


def set_output_bias(linear: nn.Linear, weight: Tensor, bias: Tensor) -> None:
    """Install a refitted weight and bias (Eq. 10, see `fold_regression`) on `linear`.

    Both are cast to the module's current dtype and device; `linear.bias` is created if absent.
    """
    current = linear.weight
    if tuple(weight.shape) != tuple(current.shape):
        raise ValueError(
            f"weight must have the module's shape {tuple(current.shape)}, got {tuple(weight.shape)}"
        )
    if tuple(bias.shape) != (current.shape[0],):
        raise ValueError(f"bias must have shape ({current.shape[0]},), got {tuple(bias.shape)}")
    cast = {"device": current.device, "dtype": current.dtype}
    linear.weight = _parameter(weight.detach().to(**cast), current)
    linear.bias = _parameter(bias.detach().to(**cast), current)
