"""Per-layer measurements behind the stage notebooks 5-7, and their stored records.

Each function walks the dense model layer by layer on calibration windows (the walk of
`slimllm.method.calibration`) and returns what one equation sees on real activations: the MLP output
spectrum and the channel rankings of Eq. 5-8, the per-sample layer similarities of Eq. 11.
The `run_nb_*` functions are the results-store runners of these measurements (kinds
"nb_channels" and "nb_similarity"); `prune_record` reads or makes the "prune" record of a
model recipe.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from transformers import PreTrainedTokenizerBase

from slimllm.analysis import inspect, rankings
from slimllm.data.calibration import calibration_samples
from slimllm.method import channels
from slimllm.method.calibration import LayerStep, LayerWalker, run_layer
from slimllm.method.ratios import layer_cosine_similarity
from slimllm.models.adapters import ModelAdapter, get_adapter

#: The channel criteria compared in notebook 5, in the order they are shown.
CRITERIA = ("feature_space", "no_feature_space", "magnitude", "activation")


CRITERIA_LABELS = {
    "feature_space": "SlimLLM, Eq. 8 (feature space)",
    "no_feature_space": "Eq. 8 with plain down_proj norms",
    "magnitude": "weight magnitude only",
    "activation": "activation norm only",
}


#: Numbers of principal directions at which the explained variance is kept for every layer.
EXPLAINED_AT = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


@dataclass
class MlpStatistics:
    """What Eq. 5-8 need from one MLP, over calibration tokens (all float64)."""

    #: Eigenvalues M [D] of the MLP output's scatter matrix, descending (Eq. 1-2).
    eigenvalues: Tensor
    #: Eigenvectors Q [D, D], one per column.
    basis: Tensor
    #: L2 norm over tokens of each MLP input feature [D] (scales the gate and up rows).
    in_norm: Tensor
    #: L2 norm over tokens of each down_proj input, i.e. of each channel's activation [F].
    down_norm: Tensor


@torch.no_grad()
def mlp_statistics(step: LayerStep, adapter: ModelAdapter) -> MlpStatistics:
    """Run the calibration batches of one walk step through its layer and gather MLP statistics.

    ``adapter`` is the model's (`slimllm.models.adapters.get_adapter(model)`).
    """
    proj = adapter.mlp_projections(step.layer)
    cov = channels.CovarianceAccumulator()
    in_norm = channels.FeatureNormAccumulator()
    down_norm = channels.FeatureNormAccumulator()

    def collect(name: str, x: Tensor, y: Tensor) -> None:
        if name == "gate":
            in_norm.update(x.reshape(-1, x.size(-1)))
        else:
            down_norm.update(x.reshape(-1, x.size(-1)))
            cov.update(y.reshape(-1, y.size(-1)))

    run_layer(
        step.layer,
        step.inputs,
        step.kwargs,
        watch={"gate": proj.gate, "down": proj.down},
        on_output=collect,
    )
    eigenvalues, basis = channels.feature_space_basis(cov.finalize())
    return MlpStatistics(eigenvalues, basis, in_norm.finalize(), down_norm.finalize())


@torch.no_grad()
def channel_scores(
    layer: nn.Module, stats: MlpStatistics, adapter: ModelAdapter
) -> dict[str, Tensor]:
    """The score [F] of every MLP channel under each of :data:`CRITERIA` (higher = keep).

    ``feature_space`` is Eq. 8 as the pruner uses it; ``no_feature_space`` replaces I^d by the
    down_proj column norm (the paper's ablation); ``magnitude`` uses the weights only and
    ``activation`` the channel's activation norm only.
    """
    proj = adapter.mlp_projections(layer)
    w_gate, w_up, w_down = proj.gate.weight, proj.up.weight, proj.down.weight
    projected = channels.project_down_proj(w_down, stats.basis)
    feature = channels.feature_space_importance(
        projected, channels.eigen_weights(stats.eigenvalues)
    )

    def eq8(down_term: Tensor) -> Tensor:
        return channels.channel_group_importance(
            down_term, stats.down_norm, w_gate, w_up, stats.in_norm
        )

    return {
        "feature_space": eq8(feature),
        "no_feature_space": eq8(channels.down_proj_column_norms(w_down)),
        "magnitude": channels.weight_magnitude_importance(w_gate, w_up, w_down),
        "activation": stats.down_norm.clone(),
    }


def compare_rankings(
    scores: dict[str, Tensor], keep_fractions: tuple[float, ...], reference: str = "feature_space"
) -> dict[str, dict[str, float]]:
    """Spearman correlation and kept-set overlap of each criterion with ``reference``.

    Returns {criterion: {"spearman": rho, "overlap@<fraction>": share, ...}} for every other
    criterion; the kept set at a fraction f is the round(f * F) best-scored channels.
    """
    if reference not in scores:
        raise ValueError(f"reference {reference!r} is not one of the scores {sorted(scores)}")
    ref = scores[reference]
    n = ref.numel()
    out: dict[str, dict[str, float]] = {}
    for name, other in scores.items():
        if name == reference:
            continue
        row = {"spearman": rankings.spearman(ref, other)}
        for fraction in keep_fractions:
            if not 0 < fraction <= 1:
                raise ValueError(f"keep fractions must be in (0, 1], got {fraction}")
            row[f"overlap@{fraction:g}"] = rankings.top_k_overlap(
                ref, other, max(1, round(fraction * n))
            )
        out[name] = row
    return out


def channel_study(
    model: nn.Module,
    input_ids: Tensor,
    keep_fractions: tuple[float, ...] = (0.8, 0.5),
    spectrum_layers: tuple[int, ...] = (),
    batch_size: int = 8,
    device: torch.device | str | None = None,
) -> dict[str, Any]:
    """Eq. 5-8 on every MLP of the dense ``model``: spectra and how the rankings agree.

    Per layer: the explained variance at :data:`EXPLAINED_AT` directions, the number of
    directions holding 90 % of the variance, the share of directions weighted above
    sigmoid(1) (eigenvalue above the mean), and :func:`compare_rankings`; for the layers in
    ``spectrum_layers`` also the whole spectrum M / mean(M). JSON-ready.
    """
    adapter = get_adapter(model)
    layers: list[dict[str, Any]] = []
    for step in LayerWalker(model, input_ids, batch_size, device, progress=False, adapter=adapter):
        stats = mlp_statistics(step, adapter)
        explained = inspect.explained_variance(stats.eigenvalues)
        m = stats.eigenvalues
        mean = float(m.mean())
        entry: dict[str, Any] = {
            "index": step.index,
            "explained_at": {
                str(k): float(explained[k - 1]) for k in EXPLAINED_AT if k <= m.numel()
            },
            "directions_90": inspect.directions_for(m, 0.9),
            "share_above_mean": float((m > mean).double().mean()),
            "top_eigenvalue_over_mean": float(m[0]) / mean if mean > 0 else 0.0,
            "rankings": compare_rankings(
                channel_scores(step.layer, stats, adapter), keep_fractions
            ),
        }
        if step.index in spectrum_layers:
            entry["spectrum_over_mean"] = (m / mean if mean > 0 else m).tolist()
        layers.append(entry)
    return {"criteria": list(CRITERIA), "keep_fractions": list(keep_fractions), "layers": layers}


@torch.no_grad()
def layer_similarity_samples(
    model: nn.Module,
    input_ids: Tensor,
    batch_size: int = 8,
    device: torch.device | str | None = None,
) -> Tensor:
    """Eq. 11's cosine similarity of each layer's input and output, per calibration sample.

    Returns float64 [L, S]: entry (i, s) is the mean over the tokens of window s of
    cos(X_i, X_{i+1}). With windows of equal length, the mean over s is the layer score the
    pruner uses (`slimllm.method.pruner.layer_similarities`).
    """
    rows: list[list[float]] = []

    def record(step: LayerStep, outputs: list[Tensor]) -> None:
        per_sample = []
        for x, y in zip(step.inputs, outputs, strict=True):
            per_sample.extend(layer_cosine_similarity(x[s], y[s]) for s in range(x.size(0)))
        rows.append(per_sample)

    for _ in LayerWalker(model, input_ids, batch_size, device, progress=False, on_outputs=record):
        pass
    return torch.tensor(rows, dtype=torch.float64)


def calibration_ids(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    samples: int = 32,
    seq_len: int = 128,
    seed: int = 42,
    data_dir: str | os.PathLike[str] | None = None,
) -> Tensor:
    """The pruner's calibration windows [samples, seq_len] for ``model`` (BOS if it needs one)."""
    ids, _ = calibration_samples(
        tokenizer, samples, seq_len, seed, get_adapter(model).bos_per_window, data_dir
    )
    return ids


def layer_mlp_statistics(
    model: nn.Module,
    input_ids: Tensor,
    layer_index: int,
    batch_size: int = 8,
    device: torch.device | str | None = None,
) -> MlpStatistics:
    """:func:`mlp_statistics` of one layer of the dense ``model`` (the walk stops there)."""
    adapter = get_adapter(model)
    num_layers = len(adapter.layers(model))
    if not 0 <= layer_index < num_layers:
        raise ValueError(f"layer_index must be in [0, {num_layers}), got {layer_index}")
    for step in LayerWalker(model, input_ids, batch_size, device, progress=False, adapter=adapter):
        if step.index == layer_index:
            return mlp_statistics(step, adapter)
    raise AssertionError("unreachable: the walk visits every layer")


def layer_channel_scores(
    model: nn.Module,
    input_ids: Tensor,
    layer_index: int,
    batch_size: int = 8,
    device: torch.device | str | None = None,
) -> dict[str, Tensor]:
    """:func:`channel_scores` of one layer of the dense ``model``."""
    stats = layer_mlp_statistics(model, input_ids, layer_index, batch_size, device)
    adapter = get_adapter(model)
    return channel_scores(adapter.layers(model)[layer_index], stats, adapter)
