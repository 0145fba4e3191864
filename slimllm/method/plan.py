"""How a layer ratio becomes whole heads, KV groups and channels, and what that removes.

Grouped-query attention (H query heads in G key/value groups of S = H/G) can shrink two ways:
- "heads": the same number of query heads leaves every group; k/v stay, each group keeps >= 1.
- "groups": whole KV groups leave with their k/v rows; at least one group stays.
Multi-head attention is the case S = 1, where only "groups" (one head each) can remove anything.
With mode "auto" each layer takes whichever of the two removes a parameter count closest to
ratio x (attention parameters), preferring "heads" on a tie because it keeps every KV head.
With mode "score" the pruner scores both options by their Eq. 4 similarity after the head
search and keeps the better one; the MLP then removes what the layer's budget has left
(:func:`budget_channels`), so either choice removes the same share of the layer.
"""

from __future__ import annotations

from dataclasses import dataclass

from slimllm.models.adapters import AttentionShape

GQA_MODES = ("auto", "heads", "groups", "score")


@dataclass(frozen=True)
class AttentionPlan:
    """What one layer's attention loses."""

    mode: str  # "heads" or "groups"
    heads: int  # query heads removed
    groups: int  # KV groups removed (0 in "heads" mode)
    params: int  # parameters removed


def _head_params(shape: AttentionShape, hidden: int, bias: bool) -> int:
    # One query head: its q rows and its o_proj input columns.
    return 2 * shape.head_dim * hidden + (shape.head_dim if bias else 0)


def _group_params(shape: AttentionShape, hidden: int, bias: bool) -> int:
    kv = 2 * (shape.head_dim * hidden + (shape.head_dim if bias else 0))
    return shape.group_size * _head_params(shape, hidden, bias) + kv


def plan_attention(
    shape: AttentionShape, hidden: int, ratio: float, mode: str = "auto", bias: bool = False
) -> AttentionPlan:
    """Whole heads or KV groups to remove for a layer ratio (see the module docstring).

    For "score" this is the option the parameter count is planned with: "heads" where it
    removes any head (so on multi-head attention always "groups").
    """
    if mode not in GQA_MODES:
        raise ValueError(f"gqa_mode must be one of {GQA_MODES}, got {mode!r}")
    s, g = shape.group_size, shape.num_kv_heads
    per_group = min(round(ratio * s), s - 1)
    by_heads = AttentionPlan(
        "heads", per_group * g, 0, per_group * g * _head_params(shape, hidden, bias)
    )
    groups = min(round(ratio * g), g - 1)
    by_groups = AttentionPlan(
        "groups", groups * s, groups, groups * _group_params(shape, hidden, bias)
    )
    if mode == "heads" or (mode == "score" and by_heads.heads > 0):
        return by_heads
    if mode == "score":
        return by_groups
    if mode == "groups":
        return by_groups
    total = g * _group_params(shape, hidden, bias)
    goal = ratio * total
    return min((by_heads, by_groups), key=lambda p: (abs(p.params - goal), p.mode != "heads"))


def plan_channels(intermediate: int, ratio: float, multiple: int = 1) -> int:
    """MLP channels to remove; at least one channel (`multiple` channels) always stays.

    With `multiple` > 1 the kept width is rounded to the nearest multiple of it (matmul kernels
    run full-width tiles), unless the layer keeps its full width; a layer narrower than
    `multiple` is left whole.
    """
    if multiple < 1:
        raise ValueError(f"multiple must be >= 1, got {multiple}")
    remove = min(round(ratio * intermediate), intermediate - 1)
    if multiple == 1 or remove == 0:
        return remove
    kept = max(multiple, round((intermediate - remove) / multiple) * multiple)
    return max(0, intermediate - kept)


def channel_params(hidden: int, bias: bool = False) -> int:
    """Parameters of one MLP channel: gate and up rows (with biases) and a down column."""
    return 3 * hidden + (2 if bias else 0)


def attention_params(shape: AttentionShape, hidden: int, bias: bool = False) -> int:
    """Parameters of a layer's q/k/v/o projections."""
    return shape.num_kv_heads * _group_params(shape, hidden, bias)


def budget_channels(
    shape: AttentionShape,
    hidden: int,
    intermediate: int,
    ratio: float,
    attention_removed: int,
    bias: bool = False,
) -> int:
    """MLP channels that bring a layer's removal to `ratio` of its projections' parameters,
    given what its attention already removed (at least one channel stays)."""
    per_channel = channel_params(hidden, bias)
    total = attention_params(shape, hidden, bias) + intermediate * per_channel
    wanted = round((ratio * total - attention_removed) / per_channel)
    return max(0, min(wanted, intermediate - 1))
