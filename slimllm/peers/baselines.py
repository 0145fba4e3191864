"""The baseline pruners of Table 1, in SlimLLM's harness: a peer is a score and an allocation.

Everything else is shared with SlimLLM: the calibration corpus and walk (calibration.py), the
units and their parameter counts (plan.py: a KV group with its query heads, an MLP channel),
the target solver (ratios.py, with the same 0.5-point tolerance), surgery (surgery.py), the
saved model (io.py) and the report (pruner.PruneReport). Attention is pruned in whole KV
groups (one head each on multi-head models), because none of the originals prunes query heads
inside a group. See methods.py for what each method is, what it needs, and how it differs from
its original.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from slimllm.method.calibration import LayerWalker, run_layer
from slimllm.method.config import PruneConfig
from slimllm.method.harness import PruneRun, calibration_for
from slimllm.method.plan import _group_params, budget_channels, channel_params
from slimllm.method.ratios import solve_base_ratio
from slimllm.method.report import LayerReport, PruneReport
from slimllm.models import surgery
from slimllm.models.adapters import AttentionShape, ModelAdapter, get_adapter
from slimllm.peers import scores

#: on_scores(layer, kind, scores, removed): each layer's unit scores ("attention": one per KV
#: group, "mlp": one per channel) as the method ranks them, and the units it removed.
ScoreHook = Callable[[int, str, Tensor, list[int]], None]


@dataclass(frozen=True)
class Peer:
    """A baseline: what it scores with, on which statistics, and how it allocates."""

    score: str  # "taylor", "flap", "wanda", "magnitude", "random"
    #: "uniform": one ratio on every pruned layer; "global": one ranking across layers and kinds.
    allocation: str
    #: "none": weights only; "gradient": one LM-loss backward; "walk": statistics of each layer
    #: with the layers before it already pruned; "dense": statistics of the unpruned model.
    statistics: str
    #: Fraction (start, end) of the depth that is pruned; (0, 1) is every layer.
    depth: tuple[float, float] = (0.0, 1.0)
    #: FLAP's bias compensation on o_proj / down_proj.
    bias: bool = False


PEERS: dict[str, Peer] = {
    # LLM-Pruner's block-wise default prunes layers 4-30 of LLaMA-7B's 32 (end exclusive).
    "llm-pruner": Peer("taylor", "uniform", "gradient", depth=(4 / 32, 30 / 32)),
    "flap": Peer("flap", "global", "dense", bias=True),
    # FLAP's uniform variant (its paper's UL-UM): the same scores and bias, one ratio per layer.
    "flap-uniform": Peer("flap", "uniform", "dense", bias=True),
    "wanda-sp": Peer("wanda", "uniform", "walk"),
    "magnitude-sp": Peer("magnitude", "uniform", "none"),
    "random": Peer("random", "uniform", "none"),
}


def pruned_layers(peer: Peer, num_layers: int) -> list[int]:
    """The layers a peer prunes: its depth range scaled to the model (e.g. 4..27 of 30)."""
    start, end = (round(f * num_layers) for f in peer.depth)
    return list(range(start, max(end, start + 1)))


def _group_heads(shape: AttentionShape, groups: list[int]) -> list[int]:
    s = shape.group_size
    return [h for g in groups for h in range(g * s, (g + 1) * s)]


def _lowest(unit_scores: Tensor, n: int) -> list[int]:
    """The n lowest-scoring units, ties to the lower index."""
    return sorted(torch.argsort(unit_scores, stable=True)[:n].tolist())


@dataclass
class _LayerScores:
    attention: Tensor  # [G]
    mlp: Tensor  # [F]
    o_mean: Tensor | None = None  # mean input of o_proj / down_proj (FLAP's bias)
    down_mean: Tensor | None = None


def _column_scores(
    peer: Peer,
    adapter: ModelAdapter,
    layer: nn.Module,
    o: scores.ColumnStats | None,
    down: scores.ColumnStats | None,
) -> _LayerScores:
    """Unit scores of one layer from its weights and (for activation methods) its statistics."""
    shape = adapter.attention_shape(layer)
    w_o = adapter.attention_projections(layer).o.weight.detach()
    w_down = adapter.mlp_projections(layer).down.weight.detach()
    if peer.score == "magnitude":
        cols_o, cols_down = scores.magnitude_columns(w_o), scores.magnitude_columns(w_down)
    elif peer.score == "wanda":
        assert o is not None and down is not None
        cols_o = scores.wanda_columns(w_o, o.norm().to(w_o.device))
        cols_down = scores.wanda_columns(w_down, down.norm().to(w_down.device))
    elif peer.score == "flap":
        assert o is not None and down is not None
        cols_o = scores.flap_columns(w_o, o.variance().to(w_o.device))
        cols_down = scores.flap_columns(w_down, down.variance().to(w_down.device))
        unit = scores.unit_sums(cols_o.cpu(), shape.group_size * shape.head_dim)
        return _LayerScores(unit, cols_down.cpu(), o.mean().cpu(), down.mean().cpu())
    else:
        raise ValueError(f"score {peer.score!r} is not computed from columns")
    unit = scores.unit_sums(cols_o.cpu(), shape.group_size * shape.head_dim)
    return _LayerScores(unit, cols_down.cpu())


def _random_scores(adapter: ModelAdapter, layers: nn.ModuleList, seed: int) -> list[_LayerScores]:
    gen = torch.Generator().manual_seed(seed)
    out = []
    for layer in layers:
        g, f = adapter.attention_shape(layer).num_kv_heads, adapter.intermediate_size(layer)
        out.append(
            _LayerScores(
                torch.rand(g, generator=gen, dtype=torch.float64),
                torch.rand(f, generator=gen, dtype=torch.float64),
            )
        )
    return out


def _taylor_scores(
    model: nn.Module, adapter: ModelAdapter, ids: Tensor, device: torch.device
) -> list[_LayerScores]:
    """LLM-Pruner's importance: |w * dL/dw| of one LM-loss backward over all calibration
    samples, summed over each coupled structure (a KV group's q/k/v rows and o columns; a
    channel's gate and up rows and down column), its default "sum" reduction."""
    home = next(model.parameters()).device
    flags = [p.requires_grad for p in model.parameters()]
    model.to(device)
    try:
        for p in model.parameters():
            p.requires_grad_(True)
            p.grad = None
        batch = ids.to(device)
        with torch.enable_grad():
            model(input_ids=batch, labels=batch, use_cache=False).loss.backward()
        out = []
        for layer in adapter.layers(model):
            shape = adapter.attention_shape(layer)
            a, m = adapter.attention_projections(layer), adapter.mlp_projections(layer)

            def sal(lin: nn.Linear) -> Tensor:
                assert lin.weight.grad is not None
                return scores.taylor(lin.weight.detach(), lin.weight.grad).cpu()

            g, width = shape.num_kv_heads, shape.group_size * shape.head_dim
            attention = (
                sal(a.q).sum(1).reshape(g, width).sum(1)
                + sal(a.o).sum(0).reshape(g, width).sum(1)
                + sal(a.k).sum(1).reshape(g, shape.head_dim).sum(1)
                + sal(a.v).sum(1).reshape(g, shape.head_dim).sum(1)
            )
            mlp = sal(m.gate).sum(1) + sal(m.up).sum(1) + sal(m.down).sum(0)
            out.append(_LayerScores(attention, mlp))
    finally:
        for p, flag in zip(model.parameters(), flags, strict=True):
            p.grad = None
            p.requires_grad_(flag)
        model.to(home)
    return out


def _layer_stats(
    step_layer: nn.Module, adapter: ModelAdapter, inputs: list[Tensor], kwargs: list[dict]
) -> tuple[scores.ColumnStats, scores.ColumnStats]:
    """Input statistics of o_proj and down_proj over the calibration tokens, in one pass."""
    stats = {"o": scores.ColumnStats(), "down": scores.ColumnStats()}
    run_layer(
        step_layer,
        inputs,
        kwargs,
        watch={
            "o": adapter.attention_projections(step_layer).o,
            "down": adapter.mlp_projections(step_layer).down,
        },
        on_output=lambda name, x, _y: stats[name].update(x),
    )
    return stats["o"], stats["down"]


@torch.no_grad()
def _apply(
    layer: nn.Module,
    adapter: ModelAdapter,
    removed_groups: list[int],
    removed_channels: list[int],
    report: LayerReport,
    layer_scores: _LayerScores | None = None,
) -> None:
    """Remove the chosen units with the shared surgery; with FLAP's means, add its bias."""
    shape = adapter.attention_shape(layer)
    width = adapter.intermediate_size(layer)
    report.attention_mode = "groups"
    if removed_groups:
        o_proj = adapter.attention_projections(layer).o
        kept = [g for g in range(shape.num_kv_heads) if g not in removed_groups]
        gone_cols = torch.tensor(
            [
                c
                for h in _group_heads(shape, removed_groups)
                for c in range(h * shape.head_dim, (h + 1) * shape.head_dim)
            ]
        )
        bias = None
        if layer_scores is not None and layer_scores.o_mean is not None:
            bias = scores.flap_bias(o_proj.weight, layer_scores.o_mean, gone_cols)
        surgery.prune_attention_heads(layer, adapter, _group_heads(shape, kept))
        if bias is not None:
            _add_bias(o_proj, bias)
            report.attn_b_mean = float(bias.mean())
    if removed_channels:
        down = adapter.mlp_projections(layer).down
        bias = None
        if layer_scores is not None and layer_scores.down_mean is not None:
            bias = scores.flap_bias(
                down.weight, layer_scores.down_mean, torch.tensor(removed_channels)
            )
        keep = [c for c in range(width) if c not in set(removed_channels)]
        surgery.prune_mlp_channels(layer, adapter, keep)
        if bias is not None:
            _add_bias(down, bias)
            report.mlp_b_mean = float(bias.mean())
    layout = getattr(layer, "slimllm_layout", None)
    if layout is not None:
        report.heads_kept = list(layout.kept_heads)
    report.channels_kept = adapter.intermediate_size(layer)


def _add_bias(linear: nn.Linear, bias: Tensor) -> None:
    total = bias.to(linear.weight.device, torch.float64)
    if linear.bias is not None:
        total = total + linear.bias.detach().to(torch.float64)
    surgery.set_output_bias(linear, linear.weight.detach(), total)


def uniform_counts(model: nn.Module, chosen: list[int], ratio: float) -> dict[int, tuple[int, int]]:
    """KV groups and channels each chosen layer loses at one layer ratio.

    KV groups are few (3 per SmolLM2 layer), so a per-layer round would move every layer at
    once and jump over most targets: the running total round(ratio x groups so far) is taken,
    spreading the extra groups evenly over the layers, and the MLP removes the rest of the
    layer's share (:func:`slimllm.method.plan.budget_channels`), so every chosen layer loses
    `ratio` of its parameters up to one channel. Each layer keeps at least one group and one
    channel.
    """
    adapter = get_adapter(model)
    layers = adapter.layers(model)
    hidden = adapter.embeddings(model).embedding_dim
    counts, wanted, done = {}, 0.0, 0
    for i in chosen:
        layer = layers[i]
        shape = adapter.attention_shape(layer)
        wanted += ratio * shape.num_kv_heads
        n = max(0, min(int(wanted + 0.5) - done, shape.num_kv_heads - 1))
        done += n
        q_bias = adapter.attention_projections(layer).q.bias is not None
        gate_bias = adapter.mlp_projections(layer).gate.bias is not None
        attention = n * _group_params(shape, hidden, q_bias)
        width = adapter.intermediate_size(layer)
        counts[i] = (n, budget_channels(shape, hidden, width, ratio, attention, gate_bias))
    return counts


def _removed_params(model: nn.Module, counts: dict[int, tuple[int, int]], bias: bool) -> int:
    """Net parameters that `counts` removes (an added bias counts back)."""
    adapter = get_adapter(model)
    layers = adapter.layers(model)
    hidden = adapter.embeddings(model).embedding_dim
    removed = 0
    for i, (n_groups, n_channels) in counts.items():
        layer = layers[i]
        q_bias = adapter.attention_projections(layer).q.bias is not None
        gate_bias = adapter.mlp_projections(layer).gate.bias is not None
        removed += n_groups * _group_params(adapter.attention_shape(layer), hidden, q_bias)
        removed += n_channels * channel_params(hidden, gate_bias)
        if bias:
            removed -= hidden * ((n_groups > 0) + (n_channels > 0))
    return removed


def _uniform_ratio(
    model: nn.Module, chosen: list[int], config: PruneConfig, denominator: int, bias: bool
) -> float:
    """The one layer ratio on `chosen` that meets the target within 0.5 points."""
    num_layers = len(get_adapter(model).layers(model))
    indicator = torch.zeros(num_layers, dtype=torch.float64)
    indicator[chosen] = 1.0

    def achieved(ratios: Tensor) -> float:
        counts = uniform_counts(model, chosen, float(ratios.max()))
        return _removed_params(model, counts, bias) / denominator

    # Equal scores make Eq. 11's softmax uniform: every chosen layer gets the base ratio.
    solution = solve_base_ratio(
        indicator,
        config.ratio,
        1.0,
        achieved,
        num_pruned_layers=len(chosen),
        max_ratio=config.max_layer_ratio,
    )
    return solution.base


def _global_selection(
    model: nn.Module,
    adapter: ModelAdapter,
    layer_scores: list[_LayerScores],
    target: int,
    tol: int,
    bias: bool,
) -> tuple[list[list[int]], list[list[int]]]:
    """FLAP's global rule: standardise each layer's scores per kind, rank every unit of the
    model together, remove the lowest until `target` parameters are gone (net of the biases
    added) within `tol`. A unit that would overshoot by more than `tol` is passed over, so
    near the end smaller units (channels) finish the count; FLAP itself stops at the unit
    closest to the target. Each layer keeps at least one KV group and one channel."""
    hidden = adapter.embeddings(model).embedding_dim
    units: list[tuple[float, int, int, int, int]] = []  # score, layer, kind, index, params
    for i, (layer, ls) in enumerate(zip(adapter.layers(model), layer_scores, strict=True)):
        shape = adapter.attention_shape(layer)
        q_bias = adapter.attention_projections(layer).q.bias is not None
        gate_bias = adapter.mlp_projections(layer).gate.bias is not None
        g_params = _group_params(shape, hidden, q_bias)
        c_params = channel_params(hidden, gate_bias)
        units += [(float(s), i, 0, j, g_params) for j, s in enumerate(ls.attention.tolist())]
        units += [(float(s), i, 1, j, c_params) for j, s in enumerate(ls.mlp.tolist())]
    units.sort(key=lambda u: (u[0], u[1], u[2], u[3]))
    sizes = [(len(ls.attention), len(ls.mlp)) for ls in layer_scores]
    removed: list[tuple[list[int], list[int]]] = [([], []) for _ in layer_scores]
    net = 0
    for _score, i, kind, j, params in units:
        if net >= target - tol:
            break
        chosen = removed[i][kind]
        if len(chosen) + 1 >= sizes[i][kind]:
            continue  # the last unit of a kind stays
        step = params - (hidden if bias and not chosen else 0)
        if net + step > target + tol:
            continue  # too big to fit (a KV group near the end): smaller units go on
        chosen.append(j)
        net += step
    return [sorted(r[0]) for r in removed], [sorted(r[1]) for r in removed]


def _dense_scores(
    peer: Peer,
    model: nn.Module,
    adapter: ModelAdapter,
    ids: Tensor,
    config: PruneConfig,
    device: torch.device,
    progress: bool,
) -> list[_LayerScores]:
    """Every layer's unit scores from the statistics of the unpruned model (FLAP's order: all
    layers are scored before any is pruned)."""
    out = []
    for step in LayerWalker(model, ids, config.batch_size, device, progress, adapter):
        o, down = _layer_stats(step.layer, adapter, step.inputs, step.kwargs)
        out.append(_column_scores(peer, adapter, step.layer, o, down))
    return out


def prune_peer(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    method: str,
    config: PruneConfig,
    device: torch.device | str | None = None,
    data_dir: str | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    on_scores: ScoreHook | None = None,
) -> PruneReport:
    """Prune `model` in place with the baseline `method` (a key of PEERS) to config.ratio.

    Reads ratio, ratio_of, max_layer_ratio, calib_samples, calib_seq_len, seed and
    batch_size from `config`; SlimLLM's other fields do not apply to a peer.
    """
    if method not in PEERS:
        raise ValueError(f"unknown baseline method {method!r}; choose one of {sorted(PEERS)}")
    peer = PEERS[method]
    run = PruneRun.begin(model, config, device, log)
    adapter, device, say, denominator = run.adapter, run.device, run.log, run.denominator
    layers = adapter.layers(model)
    reports = []
    for i, layer in enumerate(layers):
        shape = adapter.attention_shape(layer)
        width = adapter.intermediate_size(layer)
        reports.append(
            LayerReport(
                i, None, 0.0, "none", list(range(shape.num_heads)), shape.num_heads, width, width
            )
        )
    ids, origin = None, "none (weights only)"
    if peer.statistics != "none":
        ids, origin = calibration_for(tokenizer, config, adapter, data_dir)
    say(f"calibration: {origin}")

    def report_scores(i: int, ls: _LayerScores, groups: list[int], chans: list[int]) -> None:
        if on_scores is not None:
            on_scores(i, "attention", ls.attention, groups)
            on_scores(i, "mlp", ls.mlp, chans)

    base = 0.0
    if peer.allocation == "uniform":
        chosen = pruned_layers(peer, len(layers))
        base = _uniform_ratio(model, chosen, config, denominator, peer.bias)
        say(f"uniform ratio {base:.4f} on layers {chosen[0]}..{chosen[-1]}")

        counts = uniform_counts(model, chosen, base)

        def prune_layer(i: int, layer: nn.Module, ls: _LayerScores) -> None:
            n_groups, n_channels = counts[i]
            groups, chans = _lowest(ls.attention, n_groups), _lowest(ls.mlp, n_channels)
            report_scores(i, ls, groups, chans)
            reports[i].ratio = base
            _apply(layer, adapter, groups, chans, reports[i], ls)

        if peer.statistics == "walk":
            assert ids is not None
            for step in LayerWalker(model, ids, config.batch_size, device, progress, adapter):
                if step.index in chosen:
                    o, down = _layer_stats(step.layer, adapter, step.inputs, step.kwargs)
                    prune_layer(
                        step.index, step.layer, _column_scores(peer, adapter, step.layer, o, down)
                    )
        else:
            if peer.statistics == "gradient":
                assert ids is not None
                all_scores = _taylor_scores(model, adapter, ids, device)
            elif peer.statistics == "dense":
                assert ids is not None
                all_scores = _dense_scores(peer, model, adapter, ids, config, device, progress)
            elif peer.score == "random":
                all_scores = _random_scores(adapter, layers, config.seed)
            else:
                all_scores = [_column_scores(peer, adapter, layer, None, None) for layer in layers]
            for i in chosen:
                prune_layer(i, layers[i], all_scores[i])
    else:
        assert ids is not None
        dense = _dense_scores(peer, model, adapter, ids, config, device, progress)
        ranked = [
            _LayerScores(
                scores.standardise(ls.attention),
                scores.standardise(ls.mlp),
                ls.o_mean,
                ls.down_mean,
            )
            for ls in dense
        ]
        # Units are taken in rank order until the target is met within a quarter point.
        groups, chans = _global_selection(
            model,
            adapter,
            ranked,
            round(config.ratio * denominator),
            round(0.0025 * denominator),
            peer.bias,
        )
        for i, layer in enumerate(layers):
            report_scores(i, ranked[i], groups[i], chans[i])
            before = sum(adapter.layer_parameters(layer))
            _apply(layer, adapter, groups[i], chans[i], reports[i], ranked[i])
            reports[i].ratio = 1 - sum(adapter.layer_parameters(layer)) / before
    achieved = run.achieved()
    if abs(achieved - config.ratio) > 0.005 + 1e-9:
        raise ValueError(
            f"{method} removed {achieved:.4f} of the {config.ratio_of}'s parameters, more than "
            f"0.5 points from the target {config.ratio:.4f}: its units are too coarse here"
        )
    return run.finish(reports, origin, base, 0.0, method)
