"""SlimLLM end to end: layer ratios, then each layer's heads and channels, in order.

The model-walking glue lives here; the mathematics is in heads.py (Eq. 4, Algorithm 1),
channels.py (Eq. 1-2, 5-8), regression.py (Eq. 9-10) and ratios.py (Eq. 11).
Inside a layer attention is pruned first and the MLP is then calibrated on what the pruned
attention produces; layer i + 1 is calibrated on the output of the pruned layers before it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from slimllm.method import channels, heads, regression
from slimllm.method.calibration import LayerStep, LayerWalker, run_layer
from slimllm.method.config import PruneConfig
from slimllm.method.harness import PruneRun, calibration_for, count_parameters
from slimllm.method.plan import (
    AttentionPlan,
    budget_channels,
    channel_params,
    plan_attention,
    plan_channels,
)
from slimllm.method.ratios import CosineAccumulator, RatioSolution, solve_base_ratio
from slimllm.method.report import LayerReport, PruneReport
from slimllm.models import surgery
from slimllm.models.adapters import AttentionShape, ModelAdapter, get_adapter

#: Tokens per chunk when turning stored activations into float64 statistics.
CHUNK_TOKENS = 1024


#: Quantiles of the regression coefficients A and B kept in each LayerReport.
FIT_QUANTILES = (0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0)


@torch.no_grad()
def layer_similarities(
    model: nn.Module,
    input_ids: torch.Tensor,
    batch_size: int,
    device: torch.device,
    progress: bool = False,
) -> torch.Tensor:
    """Eq. 11's E[cos(X_i, X_{i+1})] for every layer of the (unpruned) model."""
    sims: list[float] = []

    def record(step: LayerStep, outputs: list[torch.Tensor]) -> None:
        acc = CosineAccumulator()
        for x, y in zip(step.inputs, outputs, strict=True):
            acc.update(x.reshape(-1, x.size(-1)), y.reshape(-1, y.size(-1)))
        sims.append(acc.finalize())

    for _ in LayerWalker(model, input_ids, batch_size, device, progress, on_outputs=record):
        pass
    return torch.tensor(sims, dtype=torch.float64)


def achieved_fraction(
    model: nn.Module,
    ratios: torch.Tensor,
    gqa_mode: str,
    denominator: int,
    regression: bool = True,
    round_channels_to: int = 1,
) -> float:
    """Net fraction of `denominator` parameters the per-layer ratios remove, in whole units.

    With `regression`, the bias that Eq. 10 adds to each shrunken output projection counts back;
    channels are planned as the pruning will cut them (rounded to `round_channels_to`).
    """
    adapter = get_adapter(model)
    hidden = adapter.embeddings(model).embedding_dim
    removed = 0
    for layer, r in zip(adapter.layers(model), ratios.tolist(), strict=True):
        if r <= 0:
            continue
        attn = adapter.attention_projections(layer)
        plan = plan_attention(
            adapter.attention_shape(layer), hidden, r, gqa_mode, attn.q.bias is not None
        )
        mlp = adapter.mlp_projections(layer)
        shape = adapter.attention_shape(layer)
        n_channels = _mlp_count(
            layer, adapter, shape, hidden, r, gqa_mode, plan.params, round_channels_to
        )
        removed += plan.params + n_channels * channel_params(hidden, mlp.gate.bias is not None)
        if regression:
            removed -= hidden * (
                (plan.heads > 0 and attn.o.bias is None)
                + (n_channels > 0 and mlp.down.bias is None)
            )
    return removed / denominator


def _mlp_count(
    layer: nn.Module,
    adapter: ModelAdapter,
    shape: AttentionShape,
    hidden: int,
    ratio: float,
    gqa_mode: str,
    attention_removed: int,
    multiple: int = 1,
) -> int:
    """MLP channels a layer loses: the layer ratio of them, or (gqa_mode "score") the rest of
    the layer's budget after its attention, whose shape before pruning is `shape`; the kept
    width rounded to `multiple`."""
    width = adapter.intermediate_size(layer)
    if gqa_mode != "score":
        return plan_channels(width, ratio, multiple)
    bias = adapter.mlp_projections(layer).gate.bias is not None
    remove = budget_channels(shape, hidden, width, ratio, attention_removed, bias)
    return plan_channels(width, remove / width, multiple) if multiple > 1 else remove


def solve_ratios(
    model: nn.Module, similarity: torch.Tensor, config: PruneConfig
) -> tuple[RatioSolution, float]:
    """Per-layer ratios meeting the target within 0.5 points (Eq. 11; uniform for the ablation)."""
    adapter = get_adapter(model)
    total, decoder = count_parameters(model, adapter)
    denominator = total if config.ratio_of == "model" else decoder
    k = config.resolved_layers(similarity.numel())
    alpha = config.resolved_alpha()
    scores = similarity
    if config.uniform:
        # Equal scores over the same chosen layers make the softmax uniform across them.
        chosen = torch.topk(similarity, k).indices
        scores = torch.zeros_like(similarity)
        scores[chosen] = 1.0

    def achieved(ratios: torch.Tensor) -> float:
        return achieved_fraction(
            model,
            ratios,
            config.gqa_mode,
            denominator,
            config.regression,
            config.round_channels_to,
        )

    solution = solve_base_ratio(
        scores, config.ratio, alpha, achieved, num_pruned_layers=k, max_ratio=config.max_layer_ratio
    )
    return solution, alpha


def _flat(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(-1, x.size(-1))


def _fit_and_fold(
    linear: nn.Linear,
    x: torch.Tensor,
    w_full: torch.Tensor,
    keep_cols: torch.Tensor,
    report: LayerReport,
    part: str,
) -> None:
    """Eq. 9-10 for an output projection whose input columns outside keep_cols were removed.

    `x` holds the full inputs and `w_full` the weight before surgery; `linear` is already
    sliced to keep_cols. Records the fit's summary as the report's `{part}_*` fields.
    """
    acc = regression.RegressionAccumulator()
    bias = linear.bias
    for chunk in x.split(CHUNK_TOKENS):
        chunk = chunk.to(linear.weight.device, linear.weight.dtype)
        full = chunk @ w_full.T
        pruned = chunk[:, keep_cols] @ linear.weight.T
        if bias is not None:
            full, pruned = full + bias, pruned + bias
        acc.update(pruned, full)
    a, b = acc.solve()
    weight, new_bias = regression.fold_regression(linear.weight.data, bias, a, b)
    surgery.set_output_bias(linear, weight, new_bias)
    q = torch.tensor(FIT_QUANTILES, dtype=torch.float64)
    summary = {
        "a_mean": a.mean().item(),
        "b_mean": b.mean().item(),
        "error_before": acc.relative_error(),
        "error_after": acc.relative_error(a, b),
        "a_quantiles": torch.quantile(a.cpu(), q).tolist(),
        "b_quantiles": torch.quantile(b.cpu(), q).tolist(),
    }
    for name, value in summary.items():
        setattr(report, f"{part}_{name}", value)


def _prune_attention(
    step: LayerStep,
    adapter: ModelAdapter,
    plans: list[AttentionPlan],
    config: PruneConfig,
    report: LayerReport,
) -> AttentionPlan:
    """Prune the heads of the plan whose search ends at the highest Eq. 4 similarity (the only
    plan, unless gqa_mode is "score"); returns the plan taken."""
    layer = step.layer
    shape = adapter.attention_shape(layer)
    o_proj = adapter.attention_projections(layer).o
    stored: list[torch.Tensor] = []
    # Only o_proj's input is needed, so each batch stops there and skips the MLP.
    run_layer(
        layer,
        step.inputs,
        step.kwargs,
        watch={"o": o_proj},
        on_output=lambda _n, x, _y: stored.append(_flat(x)),
        stop_after=o_proj,
    )
    x = torch.cat(stored)
    kv_groups = heads.kv_group_index(shape.num_heads, shape.num_kv_heads).to(x.device)
    accs = {p.mode: heads.HeadStatsAccumulator() for p in plans}
    for chunk in x.split(CHUNK_TOKENS):
        contrib = heads.head_contributions(chunk, o_proj.weight, shape.num_heads)
        for mode, acc in accs.items():
            acc.update(
                contrib if mode == "heads" else heads.group_contributions(contrib, kv_groups)
            )
    options = []
    for plan in plans:
        stats = accs[plan.mode].finalize(config.head_reduction)
        if plan.mode == "heads":
            found = heads.greedy_head_search(
                stats, plan.heads, groups=kv_groups, search=config.greedy_search
            )
            keep_heads = found.kept
        else:
            found = heads.greedy_head_search(stats, plan.groups, search=config.greedy_search)
            keep_heads = [h for h in range(shape.num_heads) if kv_groups[h].item() in found.kept]
        options.append((found.score_final, plan, found, keep_heads))
    # Highest similarity wins; on a tie the earlier plan ("heads", which keeps every KV head).
    _, plan, found, keep_heads = max(options, key=lambda o: o[0])
    report.attention_mode = plan.mode
    report.search_initial, report.search_final, report.swaps = (
        found.score_initial,
        found.score_final,
        found.swaps,
    )
    keep_cols = torch.cat(
        [torch.arange(h * shape.head_dim, (h + 1) * shape.head_dim) for h in keep_heads]
    )
    w_full = o_proj.weight.data.clone()
    surgery.prune_attention_heads(layer, adapter, keep_heads)
    report.heads_kept = list(layer.slimllm_layout.kept_heads)
    if config.regression:
        _fit_and_fold(o_proj, x, w_full, keep_cols.to(x.device), report, "attn")
    return plan


def _prune_mlp(
    step: LayerStep, adapter: ModelAdapter, n_prune: int, config: PruneConfig, report: LayerReport
) -> None:
    layer = step.layer
    proj = adapter.mlp_projections(layer)
    cov, in_norm, down_norm = (
        channels.CovarianceAccumulator(),
        channels.FeatureNormAccumulator(),
        channels.FeatureNormAccumulator(),
    )
    stored: list[torch.Tensor] = []

    def collect(name: str, x: torch.Tensor, y: torch.Tensor) -> None:
        if name == "gate":
            in_norm.update(_flat(x))
        else:
            down_norm.update(_flat(x))
            if config.feature_space:
                cov.update(_flat(y))
            stored.append(_flat(x))

    run_layer(
        layer,
        step.inputs,
        step.kwargs,
        watch={"gate": proj.gate, "down": proj.down},
        on_output=collect,
    )
    if config.feature_space:
        eigenvalues, basis = channels.feature_space_basis(cov.finalize())
        projected = channels.project_down_proj(proj.down.weight, basis)
        feature = channels.feature_space_importance(projected, channels.eigen_weights(eigenvalues))
    else:
        feature = channels.down_proj_column_norms(proj.down.weight)
    importance = channels.channel_group_importance(
        feature, down_norm.finalize(), proj.gate.weight, proj.up.weight, in_norm.finalize()
    )
    width = proj.gate.out_features
    keep = channels.select_channels(importance, width - n_prune, config.keep_lowest_fraction)
    w_full = proj.down.weight.data.clone()
    surgery.prune_mlp_channels(layer, adapter, keep)
    report.channels_kept = len(keep)
    if config.regression:
        x = torch.cat(stored)
        down = adapter.mlp_projections(layer).down
        _fit_and_fold(down, x, w_full, keep.to(x.device), report, "mlp")


def prune(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    config: PruneConfig | None = None,
    device: torch.device | str | None = None,
    data_dir: str | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> PruneReport:
    """Prune `model` in place with SlimLLM and return the record of what was done.

    The model may stay on the CPU while each layer visits `device` in turn.
    """
    run = PruneRun.begin(model, config or PruneConfig(), device, log)
    config, adapter, device, say = run.config, run.adapter, run.device, run.log
    ids, origin = calibration_for(tokenizer, config, adapter, data_dir)
    say(f"calibration: {origin}")
    # One bar for the whole run (the pruning walk below); this pass is the shorter one.
    similarity = layer_similarities(model, ids, config.batch_size, device, progress=False)
    solution, alpha = solve_ratios(model, similarity, config)
    say(
        f"target {solution.target:.4f}, achieved {solution.achieved:.4f} "
        f"(base {solution.base:.4f}, alpha {alpha})"
    )
    hidden = adapter.embeddings(model).embedding_dim
    reports = []
    for step in LayerWalker(model, ids, config.batch_size, device, progress, adapter):
        ratio = float(solution.ratios[step.index])
        report = LayerReport(step.index, float(similarity[step.index]), ratio)
        shape = adapter.attention_shape(step.layer)
        report.heads_before = shape.num_heads
        report.channels_before = report.channels_kept = adapter.intermediate_size(step.layer)
        report.heads_kept = list(range(shape.num_heads))
        if ratio > 0:
            bias = adapter.attention_projections(step.layer).q.bias is not None
            if config.gqa_mode == "score":
                plans = [plan_attention(shape, hidden, ratio, m, bias) for m in ("heads", "groups")]
                plans = [p for p in plans if p.heads > 0]
            else:
                plans = [plan_attention(shape, hidden, ratio, config.gqa_mode, bias)]
                plans = plans if plans[0].heads > 0 else []
            removed = _prune_attention(step, adapter, plans, config, report).params if plans else 0
            n_prune = _mlp_count(
                step.layer,
                adapter,
                shape,
                hidden,
                ratio,
                config.gqa_mode,
                removed,
                config.round_channels_to,
            )
            if n_prune > 0:
                _prune_mlp(step, adapter, n_prune, config, report)
        reports.append(report)
    return run.finish(reports, origin, solution.base, alpha, "slimllm")
