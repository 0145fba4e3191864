"""Looking inside the method on a dense model: the statistics the stage notebooks plot.

The pruner (`slimllm.method.pruner`) computes each layer's statistics on the outputs of the
layers it has already pruned; the functions here compute them on the *dense* model in one
forward pass, every layer at once, to show what each equation sees. The mathematics stays in
`slimllm.method.heads` and `slimllm.method.channels`; this module walks the model and adds the
few derived quantities the notebooks plot (explained variance, exhaustive head search,
per-layer attention plans).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

import torch
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from slimllm.method import heads
from slimllm.method.channels import CovarianceAccumulator
from slimllm.method.heads import HeadStats, HeadStatsAccumulator
from slimllm.method.plan import AttentionPlan, plan_attention
from slimllm.models.adapters import get_adapter


def _batches(input_ids: Tensor, batch_size: int) -> list[Tensor]:
    if input_ids.ndim != 2 or input_ids.shape[0] < 1:
        raise ValueError(f"input_ids must be [samples, tokens], got {tuple(input_ids.shape)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    return list(input_ids.split(batch_size))


def _forward_hooked(
    model: nn.Module, input_ids: Tensor, batch_size: int, handles: list[RemovableHandle]
) -> None:
    """One forward pass over `input_ids` for the hooks in `handles`, removed afterwards."""
    try:
        device = next(model.parameters()).device
        for batch in _batches(input_ids, batch_size):
            model(batch.to(device))
    finally:
        for handle in handles:
            handle.remove()


@torch.no_grad()
def mlp_output_covariances(
    model: nn.Module, input_ids: Tensor, batch_size: int = 8
) -> list[Tensor]:
    """Eq. 1 for every layer of the dense model: the centred scatter matrix of its MLP output.

    Returns one float64 [D, D] matrix per layer (not divided by the token count, as in the
    paper), from one forward pass over `input_ids` [samples, tokens].
    """
    adapter = get_adapter(model)
    layers = adapter.layers(model)
    accs = [CovarianceAccumulator() for _ in layers]

    def hook(i: int):
        def record(_m: nn.Module, _inp: tuple[Tensor, ...], out: Tensor) -> None:
            accs[i].update(out.reshape(-1, out.shape[-1]))

        return record

    handles = [adapter.mlp(layer).register_forward_hook(hook(i)) for i, layer in enumerate(layers)]
    _forward_hooked(model, input_ids, batch_size, handles)
    return [acc.finalize() for acc in accs]


@torch.no_grad()
def head_statistics_per_layer(
    model: nn.Module, input_ids: Tensor, batch_size: int = 8
) -> list[HeadStatsAccumulator]:
    """Per-head contribution statistics (Eq. 4's inputs) of every layer of the dense model.

    One forward pass; each layer's o_proj input is split into head contributions and streamed
    into an accumulator. Call `.finalize("per_dim")` or `.finalize("whole")` on an entry.
    """
    adapter = get_adapter(model)
    layers = adapter.layers(model)
    accs = [HeadStatsAccumulator() for _ in layers]

    def hook(i: int, o_proj: nn.Linear, num_heads: int):
        def record(_m: nn.Module, inp: tuple[Tensor, ...]) -> None:
            x = inp[0].reshape(-1, inp[0].shape[-1])
            accs[i].update(heads.head_contributions(x, o_proj.weight, num_heads))

        return record

    handles = []
    for i, layer in enumerate(layers):
        o_proj = adapter.attention_projections(layer).o
        num_heads = adapter.attention_shape(layer).num_heads
        handles.append(o_proj.register_forward_pre_hook(hook(i, o_proj, num_heads)))
    _forward_hooked(model, input_ids, batch_size, handles)
    return accs


def explained_variance(eigenvalues: Tensor) -> Tensor:
    """Cumulative fraction of the total variance held by the first k directions, k = 1..D.

    `eigenvalues` are Eq. 2's M in descending order (as `feature_space_basis` returns them).
    """
    if eigenvalues.ndim != 1 or eigenvalues.numel() == 0:
        raise ValueError(f"eigenvalues must be a non-empty 1-D tensor, got {eigenvalues.shape}")
    m = eigenvalues.to(torch.float64).clamp_min(0.0)
    total = m.sum()
    if total <= 0:
        raise ValueError("eigenvalues sum to 0: the output has no variance")
    return m.cumsum(0) / total


def directions_for(eigenvalues: Tensor, fraction: float) -> int:
    """The fewest principal directions holding at least `fraction` of the variance."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    curve = explained_variance(eigenvalues)
    # A tolerance so that fraction = 1 is met despite rounding of the cumulative sum.
    return int((curve < fraction - 1e-12).sum()) + 1


def group_statistics(stats: HeadStats, groups: Tensor) -> HeadStats:
    """The statistics of whole KV groups: the group's contribution is the sum of its heads'.

    Equal to `head_statistics(group_contributions(contrib, groups))`, without the tokens.
    """
    g = heads._check_groups(groups, stats.num_heads).to(stats.cov.device)
    num_groups = int(g.max()) + 1
    member = torch.zeros(num_groups, stats.num_heads, dtype=stats.cov.dtype, device=g.device)
    member[g, torch.arange(stats.num_heads, device=g.device)] = 1.0
    cov = torch.einsum("ah,hgk,bg->abk", member, stats.cov, member)
    return HeadStats(stats.reduction, cov, member @ stats.mean, stats.count)


def head_scores(stats: Sequence[HeadStats]) -> Tensor:
    """Eq. 4's Score = -similarity after removing each head alone, one row per layer [L, H]."""
    if not stats:
        raise ValueError("stats must hold at least one layer")
    return -torch.stack([heads.single_head_similarity(s).cpu() for s in stats])


@dataclass(frozen=True)
class ExhaustiveResult:
    """The best removal set over every allowed subset, and how many subsets were scored."""

    pruned: list[int]
    kept: list[int]
    score: float
    subsets: int


def _subsets(num_heads: int, num_prune: int, groups: Tensor | None) -> list[tuple[int, ...]]:
    if groups is None:
        return list(combinations(range(num_heads), num_prune))
    g = heads._check_groups(groups, num_heads).cpu()
    num_groups = int(g.max()) + 1
    if num_prune % num_groups:
        raise ValueError(f"num_prune={num_prune} must be divisible by {num_groups} groups")
    per_group = num_prune // num_groups
    members = [(g == j).nonzero().squeeze(1).tolist() for j in range(num_groups)]
    chosen: list[tuple[int, ...]] = [()]
    for group in members:
        chosen = [c + extra for c in chosen for extra in combinations(group, per_group)]
    return [tuple(sorted(c)) for c in chosen]


def exhaustive_head_search(
    stats: HeadStats, num_prune: int, groups: Tensor | None = None, max_subsets: int = 100_000
) -> ExhaustiveResult:
    """The removal set of `num_prune` heads with the highest Eq. 4 similarity, by trying all.

    With `groups`, only sets taking num_prune / G heads from every group are allowed (the same
    constraint as `greedy_head_search`). Ties go to the first set in lexicographic order.
    Refuses more than `max_subsets` candidates (C(32, 16) is 6e8 for LLaMA-7B).
    """
    heads._check_num_prune(num_prune, stats.num_heads)
    candidates = _subsets(stats.num_heads, num_prune, groups)
    if len(candidates) > max_subsets:
        raise ValueError(
            f"{len(candidates)} subsets exceed max_subsets={max_subsets}; raise it or prune fewer"
        )
    best: tuple[int, ...] = ()
    best_score = float("-inf")
    for subset in candidates:
        score = heads.removal_similarity(stats, list(subset))
        if score > best_score:
            best, best_score = subset, score
    pruned = sorted(best)
    kept = [h for h in range(stats.num_heads) if h not in best]
    return ExhaustiveResult(pruned, kept, best_score, len(candidates))


def attention_plans(
    model: nn.Module, layer_ratios: Sequence[float], gqa_mode: str = "auto"
) -> list[AttentionPlan | None]:
    """What each layer's attention loses at its ratio (None where the ratio is 0)."""
    adapter = get_adapter(model)
    layers = adapter.layers(model)
    if len(layer_ratios) != len(layers):
        raise ValueError(f"layer_ratios must have {len(layers)} entries, got {len(layer_ratios)}")
    hidden = adapter.embeddings(model).embedding_dim
    plans: list[AttentionPlan | None] = []
    for layer, ratio in zip(layers, layer_ratios, strict=True):
        if ratio <= 0:
            plans.append(None)
            continue
        bias = adapter.attention_projections(layer).q.bias is not None
        plans.append(plan_attention(adapter.attention_shape(layer), hidden, ratio, gqa_mode, bias))
    return plans


@dataclass(frozen=True)
class GqaOption:
    """One way a layer's grouped-query attention can shrink, after the greedy head search."""

    layer: int
    mode: str  # "heads" or "groups"
    heads: int  # query heads removed
    groups: int  # KV groups removed
    candidates: int  # units each swap of the search can choose from
    swaps: int
    similarity: float  # Eq. 4 similarity of the output after removal (higher: less lost)
    gain: float  # what the swap search added to the initial choice


def gqa_options(
    model: nn.Module, per_dim: Sequence[HeadStats], layer_ratios: Sequence[float]
) -> list[GqaOption]:
    """Both options ("heads" from every group, whole "groups") of every pruned layer, searched on
    the dense model's per-layer statistics (`head_statistics_per_layer`). The pruner's "score"
    mode takes, per layer, the option of higher `similarity`; here both are kept to compare."""
    shape = get_adapter(model).attention_shape(get_adapter(model).layers(model)[0])
    h, g = shape.num_heads, shape.num_kv_heads
    kv = heads.kv_group_index(h, g)
    options = []
    for mode in ("heads", "groups"):
        for i, plan in enumerate(attention_plans(model, layer_ratios, mode)):
            if plan is None or plan.heads == 0:
                continue
            if mode == "groups":
                found = heads.greedy_head_search(group_statistics(per_dim[i], kv), plan.groups)
                candidates = g - plan.groups
            else:
                found = heads.greedy_head_search(per_dim[i], plan.heads, groups=kv)
                candidates = h // g - plan.heads // g
            options.append(
                GqaOption(
                    i,
                    mode,
                    plan.heads,
                    plan.groups,
                    candidates,
                    found.swaps,
                    found.score_final,
                    found.score_final - found.score_initial,
                )
            )
    return options
