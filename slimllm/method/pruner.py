"""SlimLLM end to end: layer ratios, then each layer's heads and channels, in order.

The model-walking glue lives here; the mathematics is in heads.py (Eq. 4, Algorithm 1),
channels.py (Eq. 1-2, 5-8), regression.py (Eq. 9-10) and ratios.py (Eq. 11).
Inside a layer attention is pruned first and the MLP is then calibrated on what the pruned
attention produces; layer i + 1 is calibrated on the output of the pruned layers before it.
Each layer's attention and MLP run once per walk: what a pruned sub-layer gives is computed
from its projection's stored inputs and replayed into the layer (see `_prune_layer`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from slimllm.method import channels, heads, regression
from slimllm.method.calibration import (
    LayerHome,
    LayerInputs,
    LayerStep,
    LayerWalker,
    replayed,
    run_layer,
)
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
from slimllm.models.precision import resolve_dtype

#: Tokens per chunk when turning stored activations into float64 statistics.
CHUNK_TOKENS = 1024


@contextmanager
def _threads(count: int) -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


#: Quantiles of the regression coefficients A and B kept in each LayerReport.
FIT_QUANTILES = (0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0)


@torch.no_grad()
def layer_similarities(
    model: nn.Module,
    input_ids: torch.Tensor,
    batch_size: int,
    device: torch.device,
    progress: bool = False,
    dtype: torch.dtype | None = None,
    home: LayerHome | None = None,
) -> torch.Tensor:
    """Eq. 11's E[cos(X_i, X_{i+1})] for every layer of the (unpruned) model, its forwards in
    `dtype` (default: the model's), its layers fetched from `home` (default: the model)."""
    return _dense_walk(model, input_ids, batch_size, device, progress, dtype, home)[0]


def _dense_walk(
    model: nn.Module,
    input_ids: torch.Tensor,
    batch_size: int,
    device: torch.device,
    progress: bool,
    dtype: torch.dtype | None,
    home: LayerHome | None,
) -> tuple[torch.Tensor, LayerInputs]:
    """`layer_similarities`, and the first layer's inputs it took (for the pruning walk)."""
    sims: list[float] = []
    walk = LayerWalker(model, input_ids, batch_size, device, progress, dtype=dtype, home=home)
    for step in walk:
        # Run on the step's copy in `dtype`: the walker need not make a second one.
        step.outputs = run_layer(step.work, step.inputs, step.kwargs)
        acc = CosineAccumulator()
        for x, y in zip(step.inputs, step.outputs, strict=True):
            acc.update(x.reshape(-1, x.size(-1)), y.reshape(-1, y.size(-1)))
        sims.append(acc.finalize())
    return torch.tensor(sims, dtype=torch.float64), walk.captured


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


def _apply(linear: nn.Linear, xs: Iterable[torch.Tensor]) -> list[torch.Tensor]:
    """`linear` on each of the activations `xs` in their dtype (the calibration dtype, which may
    not be the weights'): what the module gives in a layer run in that dtype. The weights are
    cast once for all of them."""
    xs = list(xs)
    dtype = xs[0].dtype
    weight = linear.weight.to(dtype)
    bias = None if linear.bias is None else linear.bias.to(dtype)
    return [F.linear(x, weight, bias) for x in xs]


def _fit_and_fold(
    linear: nn.Linear,
    pruned: list[torch.Tensor],
    full: list[torch.Tensor],
    report: LayerReport,
    part: str,
) -> list[torch.Tensor]:
    """Eq. 9-10 for an output projection whose input columns outside the kept ones were removed.

    `pruned` are `linear`'s outputs per calibration batch once sliced (before the fold) and
    `full` its outputs before surgery. Folds the fit into `linear`, records its summary as the
    report's `{part}_*` fields and returns the folded projection's outputs: A * pruned + B, the
    same affine map the fold puts into the weights, without a second product.
    """
    acc = regression.RegressionAccumulator()
    for x, y in zip(pruned, full, strict=True):
        for xc, yc in zip(_flat(x).split(CHUNK_TOKENS), _flat(y).split(CHUNK_TOKENS), strict=True):
            acc.update(xc, yc)
    a, b = acc.solve()
    weight, new_bias = regression.fold_regression(linear.weight.data, linear.bias, a, b)
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
    # In at least float32, whatever the calibration dtype, then back to it.
    work = torch.promote_types(pruned[0].dtype, torch.float32)
    scale, shift = a.to(pruned[0].device, work), b.to(pruned[0].device, work)
    return [(t.to(work) * scale + shift).to(t.dtype) for t in pruned]


def _attention_pass(
    step: LayerStep, adapter: ModelAdapter
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """o_proj's inputs and outputs on every calibration batch; the forwards stop at o_proj.

    o_proj's output is the attention's, which the rest of the layer is later run around.
    """
    o_proj = adapter.attention_projections(step.work).o
    inputs: list[torch.Tensor] = []
    outputs: list[torch.Tensor] = []

    def keep(_name: str, x: torch.Tensor, y: torch.Tensor) -> None:
        inputs.append(x)
        outputs.append(y)

    run_layer(
        step.work, step.inputs, step.kwargs, watch={"o": o_proj}, on_output=keep, stop_after=o_proj
    )
    return inputs, outputs


def _prune_attention(
    step: LayerStep,
    adapter: ModelAdapter,
    plans: list[AttentionPlan],
    config: PruneConfig,
    report: LayerReport,
    o_inputs: list[torch.Tensor],
    o_outputs: list[torch.Tensor],
) -> tuple[AttentionPlan, list[torch.Tensor]]:
    """Prune the heads of the plan whose search ends at the highest Eq. 4 similarity (the only
    plan, unless gqa_mode is "score"); returns the plan taken and the pruned attention's output
    on each batch (from o_proj's stored inputs: the kept heads' inputs are unchanged)."""
    layer = step.layer
    shape = adapter.attention_shape(layer)
    o_proj = adapter.attention_projections(layer).o
    x = torch.cat([_flat(t) for t in o_inputs])
    kv_groups = heads.kv_group_index(shape.num_heads, shape.num_kv_heads).to(x.device)
    acc = heads.InputMomentsAccumulator()
    for chunk in x.split(CHUNK_TOKENS):
        acc.update(chunk)
    head_stats = acc.finalize(o_proj.weight, shape.num_heads, config.head_reduction)
    options = []
    for plan in plans:
        if plan.mode == "heads":
            found = heads.greedy_head_search(
                head_stats, plan.heads, groups=kv_groups, search=config.greedy_search
            )
            keep_heads = found.kept
        else:
            # A KV group's statistics are sums of its heads': no second pass over the tokens.
            group_stats = heads.group_statistics(head_stats, kv_groups)
            found = heads.greedy_head_search(group_stats, plan.groups, search=config.greedy_search)
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
    ).to(x.device)
    surgery.prune_attention_heads(layer, adapter, keep_heads)
    report.heads_kept = list(layer.slimllm_layout.kept_heads)
    pruned = _apply(o_proj, (t[..., keep_cols] for t in o_inputs))
    if config.regression:
        pruned = _fit_and_fold(o_proj, pruned, o_outputs, report, "attn")
    return plan, pruned


def _prune_mlp(
    step: LayerStep,
    adapter: ModelAdapter,
    n_prune: int,
    config: PruneConfig,
    report: LayerReport,
    attention_outputs: list[torch.Tensor],
) -> list[torch.Tensor]:
    """Prune `n_prune` MLP channels, calibrated on the layer with its attention giving
    `attention_outputs` (replayed, not recomputed); returns the pruned MLP's output per batch."""
    layer = step.layer
    proj = adapter.mlp_projections(layer)
    cov, in_norm, down_norm = (
        channels.CovarianceAccumulator(),
        channels.FeatureNormAccumulator(),
        channels.FeatureNormAccumulator(),
    )
    down_inputs: list[torch.Tensor] = []
    down_outputs: list[torch.Tensor] = []

    def collect(name: str, x: torch.Tensor, y: torch.Tensor) -> None:
        if name == "gate":
            in_norm.update(_flat(x))
        else:
            down_norm.update(_flat(x))
            if config.feature_space:
                cov.update(_flat(y))
            down_inputs.append(x)
            down_outputs.append(y)

    work = adapter.mlp_projections(step.work)
    with replayed(
        adapter.attention(step.work), [adapter.attention_result(t) for t in attention_outputs]
    ):
        run_layer(
            step.work,
            step.inputs,
            step.kwargs,
            watch={"gate": work.gate, "down": work.down},
            on_output=collect,
            stop_after=work.down,
        )
    if config.feature_space:
        # One thread: its rounding does not depend on the thread count, and on the shared 2-core
        # CPU it was the faster (SmolLM2's 576-wide eigh 0.2 s against 0.8-1.2 s on two threads,
        # LLaMA-7B's 4096-wide one 103-120 s against 164 s) as threads wait on busy cores.
        with _threads(1):
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
    surgery.prune_mlp_channels(layer, adapter, keep)
    report.channels_kept = len(keep)
    down = adapter.mlp_projections(layer).down
    keep = keep.to(down_inputs[0].device)
    pruned = _apply(down, (t[..., keep] for t in down_inputs))
    if config.regression:
        pruned = _fit_and_fold(down, pruned, down_outputs, report, "mlp")
    return pruned


def _prune_layer(
    step: LayerStep,
    adapter: ModelAdapter,
    ratio: float,
    hidden: int,
    config: PruneConfig,
    report: LayerReport,
) -> None:
    """Prune one layer at `ratio` and set `step.outputs` to what the pruned layer gives.

    The layer's attention runs once, up to o_proj; the pruned attention's output follows from
    o_proj's stored inputs. The MLP then runs once, dense, on those outputs, and the pruned
    MLP's output follows likewise from down_proj's inputs. The layer's outputs are its residual
    stream around both replayed results: no pruned sub-layer runs again.
    """
    layer = step.layer
    shape = adapter.attention_shape(layer)
    bias = adapter.attention_projections(layer).q.bias is not None
    if config.gqa_mode == "score":
        plans = [plan_attention(shape, hidden, ratio, m, bias) for m in ("heads", "groups")]
        plans = [p for p in plans if p.heads > 0]
    else:
        plans = [plan_attention(shape, hidden, ratio, config.gqa_mode, bias)]
        plans = plans if plans[0].heads > 0 else []
    o_inputs, attention_out = _attention_pass(step, adapter)
    removed = 0
    if plans:
        plan, attention_out = _prune_attention(
            step, adapter, plans, config, report, o_inputs, attention_out
        )
        removed = plan.params
    del o_inputs
    n_prune = _mlp_count(
        layer, adapter, shape, hidden, ratio, config.gqa_mode, removed, config.round_channels_to
    )
    mlp_out = (
        _prune_mlp(step, adapter, n_prune, config, report, attention_out) if n_prune > 0 else None
    )
    with ExitStack() as replays:
        replays.enter_context(
            replayed(
                adapter.attention(step.work), [adapter.attention_result(t) for t in attention_out]
            )
        )
        if mlp_out is not None:
            replays.enter_context(replayed(adapter.mlp(step.work), mlp_out))
        step.outputs = run_layer(step.work, step.inputs, step.kwargs)


@torch.no_grad()
def prune(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    config: PruneConfig | None = None,
    device: torch.device | str | None = None,
    data_dir: str | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    home: LayerHome | None = None,
) -> PruneReport:
    """Prune `model` in place with SlimLLM and return the record of what was done.

    Gradient-free throughout: without `no_grad` the products with the layers' parameters (which
    require gradients) would keep their inputs and the replaced weights alive in autograd graphs.

    The model may stay on the CPU while each layer visits `device` in turn; with `home`, its
    layers live elsewhere (e.g. checkpoint shards, see method.streaming_prune) and are fetched
    one at a time.
    """
    run = PruneRun.begin(model, config or PruneConfig(), device, log)
    config, adapter, device, say = run.config, run.adapter, run.device, run.log
    if config.calib_dtype == "auto":
        name, reason = resolve_dtype("auto", device.type)
        say(f"calibration forwards in {name} ({reason})")
        # The report records the dtype that ran, not "auto", whose choice is the machine's.
        config = replace(config, calib_dtype=name)
        run.config = config
    dtype = None if config.calib_dtype is None else getattr(torch, config.calib_dtype)
    ids, origin = calibration_for(tokenizer, config, adapter, data_dir)
    say(f"calibration: {origin}")
    # One bar for the whole run (the pruning walk below); this pass is the shorter one.
    similarity, captured = _dense_walk(model, ids, config.batch_size, device, False, dtype, home)
    solution, alpha = solve_ratios(model, similarity, config)
    say(
        f"target {solution.target:.4f}, achieved {solution.achieved:.4f} "
        f"(base {solution.base:.4f}, alpha {alpha})"
    )
    hidden = adapter.embeddings(model).embedding_dim
    reports = []
    walk = LayerWalker(
        model,
        ids,
        config.batch_size,
        device,
        progress,
        adapter,
        dtype=dtype,
        home=home,
        final=True,
        captured=captured,
    )
    for step in walk:
        ratio = float(solution.ratios[step.index])
        report = LayerReport(step.index, float(similarity[step.index]), ratio)
        shape = adapter.attention_shape(step.layer)
        report.heads_before = shape.num_heads
        report.channels_before = report.channels_kept = adapter.intermediate_size(step.layer)
        report.heads_kept = list(range(shape.num_heads))
        if ratio > 0:
            _prune_layer(step, adapter, ratio, hidden, config, report)
        else:
            step.outputs = run_layer(step.work, step.inputs, step.kwargs)
        reports.append(report)
    return run.finish(reports, origin, solution.base, alpha, "slimllm")
