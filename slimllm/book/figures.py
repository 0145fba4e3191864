"""The notebooks' figures: one call each, glued into the page as a numbered MyST figure.

    fig = figures.layer_similarity(per_sample)
    figures.glue_figure("07_similarity", fig)   # then ```{glue:figure} 07_similarity``` in markdown

Each builder takes the numbers a notebook computed (or read from a record) and returns a
matplotlib figure in the book's style; :func:`glue_figure` stores it (figures/<name>.png, see
`report.save`) and glues the PNG for a `{glue:figure}` directive, which numbers and captions it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib as mpl
import pandas as pd
import torch
from IPython.display import Image
from matplotlib.figure import Figure
from myst_nb import glue

from slimllm.analysis import inspect
from slimllm.book import report
from slimllm.measure.perplexity import PerplexityResult
from slimllm.method.channels import eigen_weights


def glue_figure(name: str, fig: Figure) -> None:
    """Save `fig` as figures/<name>.png and glue it under `name` (shown where the page says)."""
    glue(name, Image(data=report.save(fig, name), format="png"), display=False)


def _layer_axis(ax: object, num_layers: int) -> None:
    ax.set_xticks(range(0, num_layers, 2), range(0, num_layers, 2))  # type: ignore[attr-defined]


def layer_similarity(per_sample: torch.Tensor) -> Figure:
    """Box per layer of cos(X_i, X_i+1) over calibration windows, with the mean on top."""
    num_layers, windows = per_sample.shape
    fig, ax = report.figure(width=8.0, height=3.4)
    ax.boxplot(per_sample.T.numpy(), positions=range(num_layers), widths=0.6, showfliers=False)
    ax.plot(
        range(num_layers),
        per_sample.mean(dim=1),
        marker="o",
        ms=3,
        lw=1,
        label="mean (the pruner's $s_i$)",
    )
    ax.set(
        xlabel="layer",
        ylabel="$\\cos(X_i, X_{i+1})$",
        title=f"input/output similarity per layer over {windows} calibration windows",
    )
    _layer_axis(ax, num_layers)
    ax.legend()
    return fig


def ratio_profiles(
    left: Mapping[str, torch.Tensor],
    right: Mapping[str, torch.Tensor],
    titles: tuple[str, str],
    cap: float,
) -> Figure:
    """Two panels of per-layer ratios (e.g. several alpha, several K), with the clamp dotted."""
    fig, axes = report.figure(ncols=2, width=10.0, height=3.4, sharey=True)
    for ax, curves, title in zip(axes, (left, right), titles, strict=True):
        for label, ratios in curves.items():
            ax.plot(range(ratios.numel()), ratios, marker="o", ms=3, label=label)
        ax.axhline(cap, color="gray", lw=0.8, ls=":")
        ax.set(xlabel="layer", title=title)
        ax.legend()
    axes[0].set_ylabel("layer ratio $r_i$")
    return fig


def target_gap(curve: pd.DataFrame, recorded: Mapping[float, float], tolerance: float) -> Figure:
    """Achieved minus target (points) of the solver over targets, and of recorded pruning runs."""
    fig, ax = report.figure(width=6.4, height=3.4)
    ax.plot(curve.index, (curve["achieved"] - curve.index) * 100, marker="o", label="solver")
    ax.plot(
        list(recorded),
        [(v - t) * 100 for t, v in recorded.items()],
        "x",
        ms=9,
        mew=2,
        label="recorded pruning runs",
    )
    ax.axhspan(-tolerance * 100, tolerance * 100, color="gray", alpha=0.15, label="tolerance")
    ax.set(xlabel="target ratio", ylabel="achieved - target (points)", title="meeting the target")
    ax.legend()
    return fig


def clamp_profiles(curves: Mapping[str, torch.Tensor], cap: float, title: str) -> Figure:
    """Per-layer ratios of several solutions (the first dashed), the clamp dotted."""
    fig, ax = report.figure(width=7.5, height=3.4)
    for i, (label, ratios) in enumerate(curves.items()):
        ax.plot(
            range(ratios.numel()),
            ratios,
            ls="--" if i == 0 else "-",
            marker="." if i == 0 else "os"[i % 2],
            ms=3,
            label=label,
        )
    ax.axhline(cap, color="gray", lw=0.8, ls=":")
    ax.set(xlabel="layer", ylabel="layer ratio", title=title)
    ax.legend()
    return fig


def per_layer_lines(
    frame: pd.DataFrame,
    columns: Mapping[str, str],
    ylabel: str,
    title: str,
    reference: float | None = None,
) -> Figure:
    """One line per column of a per-layer frame (index: layer), `columns` maps column -> label."""
    fig, ax = report.figure(width=7.0, height=3.4)
    for marker, (column, label) in zip("os^v", columns.items(), strict=False):
        ax.plot(frame.index, frame[column], marker=marker, ms=3, label=label)
    if reference is not None:
        ax.axhline(reference, color="gray", lw=0.8)
    ax.set(xlabel="layer", ylabel=ylabel, title=title)
    ax.legend()
    return fig


def quantile_bands(bands: Mapping[str, pd.DataFrame], references: Mapping[str, float]) -> Figure:
    """2 x 2 panels of per-layer quantile bands (5-95 %, 25-75 %, median) of four coefficients.

    `bands` maps a panel title to a frame indexed by layer with quantile columns 0.05 ... 0.95.
    """
    fig, axes = report.figure(ncols=2, nrows=2, width=9.5, height=5.6, sharex=True)
    for ax, (title, q) in zip(axes.flat, bands.items(), strict=True):
        ax.fill_between(q.index, q[0.05], q[0.95], alpha=0.25, label="5-95 %")
        ax.fill_between(q.index, q[0.25], q[0.75], alpha=0.45, label="25-75 %")
        ax.plot(q.index, q[0.5], lw=1.2, label="median")
        ax.axhline(references[title], color="gray", lw=0.8)
        ax.set(title=title)
    for ax in axes[1]:
        ax.set_xlabel("layer")
    axes[0, 0].legend(loc="lower left")
    return fig


def before_after(
    panels: Mapping[str, Mapping[str, tuple[pd.Series, pd.Series]]], ylabel: str
) -> Figure:
    """Panels (title -> label -> (before, after)), log scale: dashed before, solid after."""
    fig, axes = report.figure(ncols=len(panels), width=9.5, height=3.4, sharey=True)
    for ax, (title, series) in zip(axes, panels.items(), strict=True):
        for k, (label, (before, after)) in enumerate(series.items()):
            color = report.COLORS[k]
            ax.plot(
                before.index,
                before,
                marker="o",
                ms=3,
                color=color,
                ls="--",
                label=f"{label} before",
            )
            ax.plot(after.index, after, marker="o", ms=3, color=color, label=f"{label} after")
        ax.set(yscale="log", xlabel="layer", title=title)
    axes[0].set_ylabel(ylabel)
    axes[0].legend()
    return fig


def grouped_bars(
    frame: pd.DataFrame,
    columns: Sequence[str],
    baseline: str,
    ylabel: str,
    title: str,
    log: bool = False,
) -> Figure:
    """Bars of `columns` for every row but `baseline`, whose values are dotted lines."""
    fig, ax = report.figure(width=6.4, height=3.2)
    names = [n for n in frame.index if n != baseline]
    width = 0.8 / len(columns)
    for k, column in enumerate(columns):
        offset = (k - (len(columns) - 1) / 2) * width
        ax.bar(
            [i + offset for i in range(len(names))], frame.loc[names, column], width, label=column
        )
        ax.axhline(frame.loc[baseline, column], color=report.COLORS[k], lw=0.8, ls=":")
    ax.set_xticks(range(len(names)), names, rotation=10)
    ax.set(ylabel=ylabel, title=title, yscale="log" if log else "linear")
    # A baseline line does not widen the autoscaled range: when every bar is far above it (a log
    # axis), lower the axis so that the dotted line the caption promises is on the page.
    lowest = float(frame.loc[baseline, list(columns)].min())
    if lowest <= ax.get_ylim()[0]:
        ax.set_ylim(bottom=lowest / 1.5 if log else 0.0)
    ax.legend()
    return fig


def spectra(spectra_by_layer: Mapping[str, torch.Tensor]) -> Figure:
    """Left: eigenvalues over their mean (Eq. 2), log-log; right: the Eq. 6 weights C_i."""
    fig, axes = report.figure(ncols=2, width=9.0, height=3.4)
    for label, spectrum in spectra_by_layer.items():
        ranks = range(1, spectrum.numel() + 1)
        axes[0].plot(ranks, spectrum, label=label)
        axes[1].plot(ranks, eigen_weights(spectrum), label=label)
    axes[0].set(
        xscale="log",
        yscale="log",
        xlabel="principal direction i",
        ylabel="$M_i / \\bar M$",
        title="MLP output spectrum (Eq. 2)",
    )
    axes[1].set(
        xscale="log",
        xlabel="principal direction i",
        ylabel="$C_i$",
        title="Eq. 6 weights $C_i = \\mathrm{sigmoid}(M_i / \\bar M)$",
    )
    axes[1].axhline(0.5, color="gray", lw=0.8, ls=":")
    axes[0].legend()
    return fig


def per_layer_panels(
    panels: Mapping[str, Mapping[str, pd.Series]], ylabels: Sequence[str]
) -> Figure:
    """Side-by-side panels (title -> label -> per-layer series), one line per label."""
    fig, axes = report.figure(ncols=len(panels), width=9.0, height=3.4, sharex=True)
    for ax, (title, lines), ylabel in zip(axes, panels.items(), ylabels, strict=True):
        for label, series in lines.items():
            ax.plot(series.index, series, marker="o", ms=3, label=label)
        ax.set(xlabel="layer", ylabel=ylabel, title=title)
        if len(lines) > 1:
            ax.legend()
    return fig


def rank_scatter(reference: torch.Tensor, others: Mapping[str, torch.Tensor]) -> Figure:
    """Each channel's rank under the reference (x) against its rank under each other criterion
    (one panel each); dashed lines mark the half a 50 % cut keeps."""
    fig, axes = report.figure(ncols=len(others), width=10.5, height=3.4, sharey=True)
    half = reference.numel() / 2
    for ax, (title, ranks) in zip(axes, others.items(), strict=True):
        ax.scatter(reference, ranks, s=2, alpha=0.5)
        ax.axvline(half, color="gray", lw=0.8, ls="--")
        ax.axhline(half, color="gray", lw=0.8, ls="--")
        ax.set(xlabel="rank under Eq. 8", title=title)
    axes[0].set_ylabel("rank under the other criterion")
    return fig


def method_costs(costs: pd.DataFrame, target: float) -> Figure:
    """Seconds of pruning per method (rows of `slimllm.book.tables.method_costs`), one bar per
    ratio, the target dashed."""
    fig, ax = report.figure(width=7.0, height=3.4)
    names = list(dict.fromkeys(costs["method"]))
    groups = list(dict.fromkeys(costs["ratio"]))
    width = 0.8 / max(len(groups), 1)
    for k, ratio in enumerate(groups):
        seconds = costs[costs["ratio"] == ratio].set_index("method")["pruning s"].reindex(names)
        offset = (k - (len(groups) - 1) / 2) * width
        ax.bar([i + offset for i in range(len(names))], seconds, width, label=ratio)
    ax.axhline(target, color="gray", lw=0.8, ls="--", label=f"target ({target:g} s)")
    ax.set_xticks(range(len(names)), names, rotation=20)
    ax.set(ylabel="seconds of pruning", title="pruning time per method")
    ax.legend()
    return fig


def correlation_and_spectra(
    covariance: torch.Tensor, spectra: Mapping[str, torch.Tensor], shown: int = 96
) -> Figure:
    """Left: |correlation| between the first `shown` output dimensions of one layer's covariance;
    right: eigenvalues as shares of their sum (log scale), one line per labelled layer."""
    std = covariance.diagonal().sqrt().clamp_min(torch.finfo(covariance.dtype).tiny)
    corr = (covariance / torch.outer(std, std)).abs()
    n = min(shown, corr.shape[0])
    fig, (ax0, ax1) = report.figure(ncols=2, width=9.0, height=3.6)
    # Ten colour steps: float noise between runs must not change the stored PNG.
    steps = mpl.colors.BoundaryNorm([i / 10 for i in range(11)], ncolors=256)
    image = ax0.imshow(corr[:n, :n].numpy(), norm=steps)
    ax0.grid(False)
    ax0.set(title=f"|correlation| of the first {n} output dimensions", xlabel="dimension")
    fig.colorbar(image, ax=ax0, shrink=0.8)
    for label, m in spectra.items():
        ax1.semilogy(range(1, m.numel() + 1), (m / m.sum()).clamp_min(1e-12), label=label)
    ax1.set(xlabel="direction i (sorted)", ylabel="$M_i / \\sum M$", title="eigen-spectra")
    ax1.legend()
    return fig


def explained_variance(spectra: Sequence[torch.Tensor]) -> Figure:
    """Cumulative share of the variance over the number of principal directions (log scale),
    one curve per layer coloured by depth."""
    fig, ax = report.figure(width=6.4, height=3.8)
    cmap = mpl.colormaps["viridis"]
    last = max(1, len(spectra) - 1)
    for i, m in enumerate(spectra):
        ax.plot(range(1, m.numel() + 1), inspect.explained_variance(m), color=cmap(i / last), lw=1)
    ax.set(
        xscale="log",
        xlabel="number of principal directions k",
        ylabel="share of variance",
        title="explained variance of the FFN output, one curve per layer",
    )
    scale = mpl.cm.ScalarMappable(cmap=cmap, norm=mpl.colors.Normalize(0, last))
    fig.colorbar(scale, ax=ax, label="layer")
    return fig


def eigen_weight_curves(spectra: Mapping[str, torch.Tensor]) -> Figure:
    """Left: the Eq. 6 weights C_i of each labelled spectrum by direction; right: the sigmoid of
    M_i / mean M they come from."""
    fig, (ax0, ax1) = report.figure(ncols=2, width=9.0, height=3.4)
    for label, m in spectra.items():
        ax0.plot(range(1, m.numel() + 1), eigen_weights(m), label=label)
    ax0.set(xscale="log", xlabel="direction i (sorted)", ylabel="$C_i$", ylim=(0.45, 1.02))
    ax0.set_title("Eq. 6 weights per direction")
    ax0.legend()
    x = torch.linspace(0, 6, 200, dtype=torch.float64)
    ax1.plot(x, torch.sigmoid(x), color=report.COLORS[3])
    ax1.set(xlabel="$M_i / \\bar M$", ylabel="$C_i$", title="the squashing curve")
    return fig


def head_loss_map(lost: torch.Tensor, num_groups: int) -> Figure:
    """Heat map of log10 of the similarity lost by removing each head alone ([layers, heads]),
    white lines between the KV groups."""
    num_layers, num_heads = lost.shape
    fig, ax = report.figure(width=7.0, height=max(3.0, 0.16 * num_layers + 1.0))
    image = ax.imshow(lost.clamp_min(1e-6).log10().numpy(), aspect="auto", cmap="magma")
    ax.grid(False)
    ax.set_xticks(range(num_heads))
    ax.set(xlabel="head", ylabel="layer", title="similarity lost by removing one head")
    for g in range(1, num_groups):
        ax.axvline(g * num_heads // num_groups - 0.5, color="white", lw=1.5)
    fig.colorbar(image, ax=ax, label="$\\log_{10}(D - \\mathrm{sim})$")
    return fig


def reduction_agreement(agree: pd.DataFrame, num_prune: int) -> Figure:
    """Bars per layer of the rank correlation of the two reductions (`frames.reduction_agreement`),
    orange where their `num_prune` least important heads differ."""
    fig, ax = report.figure(width=7.0, height=3.0)
    colors = [report.COLORS[0] if same else report.COLORS[1] for same in agree["same set"]]
    ax.bar(agree.index, agree["spearman"], color=colors)
    ax.set(xlabel="layer", ylabel="Spearman rank correlation", ylim=(-1, 1.05))
    ax.set_title(f"per_dim vs whole (orange: the {num_prune} least important heads differ)")
    return fig


def search_gaps(search: pd.DataFrame, num_heads: int) -> Figure:
    """Per k (one panel each, `frames.search_vs_exhaustive`): how far the initial set and the swap
    search stay below the exhaustive optimum, per layer."""
    parts = list(search.groupby("k"))
    fig, axes = report.figure(ncols=len(parts), width=4.6 * len(parts), height=3.4, sharey=True)
    axes = [axes] if len(parts) == 1 else list(axes)
    for ax, (k, part) in zip(axes, parts, strict=True):
        gap_initial, gap_search = (
            part["optimum"] - part["initial"],
            part["optimum"] - part["search"],
        )
        ax.plot(part["layer"], gap_initial, "o-", ms=3, label="optimum - initial set")
        ax.plot(part["layer"], gap_search, "s-", ms=3, label="optimum - swap search")
        ax.set(title=f"k = {k} of {num_heads} heads", xlabel="layer")
    axes[0].set_ylabel("similarity below the optimum")
    axes[-1].legend()
    return fig


def gqa_modes(both: pd.DataFrame, hidden: int) -> Figure:
    """Per target (one panel each, `frames.gqa_similarity`): the similarity each GQA option loses,
    D - sim, per pruned layer."""
    targets = list(both.index.get_level_values("target").unique())
    fig, axes = report.figure(ncols=len(targets), width=5.0 * len(targets), height=3.2)
    axes = [axes] if len(targets) == 1 else list(axes)
    for ax, target in zip(axes, targets, strict=True):
        part = both.loc[target]
        ax.plot(
            part.index, hidden - part["heads"], marker="o", ms=3, label="heads from every group"
        )
        ax.plot(part.index, hidden - part["groups"], marker="s", ms=3, label="whole KV groups")
        ax.set(xlabel="layer", ylabel="similarity lost, D - sim", title=f"target {target:.0%}")
    axes[0].legend()
    return fig


def pipeline(shape: Mapping[str, int], calib_samples: int, calib_seq_len: int, seed: int) -> Figure:
    """The SlimLLM pipeline (after the paper's Figure 1), its boxes filled in with the model's
    shape (`describe_model`) and the calibration set; the per-layer steps loop."""
    heads_, groups, channels = shape["query_heads"], shape["kv_heads"], shape["intermediate_size"]
    stages = [
        (
            "Calibration set",
            f"{calib_samples} x {calib_seq_len} tokens, seed {seed}  ·  data/sources.py",
        ),
        (
            "Layer ratios: how much each layer loses",
            "cos(input, output) per layer -> softmax (Eq. 11)  ·  method/ratios.py",
        ),
        (
            f"Attention heads ({heads_} heads, {groups} KV groups)",
            "Pearson similarity (Eq. 4) + swap search (Alg. 1)  ·  method/heads.py",
        ),
        (
            "Output regression of o_proj",
            "least-squares scale and shift (Eq. 9-10)  ·  method/regression.py",
        ),
        (
            f"FFN channels ({channels} channels)",
            "PCA of the FFN output (Eq. 1-2), feature-space score (Eq. 5-8)  ·  method/channels.py",
        ),
        (
            "Output regression of down_proj",
            "least-squares scale and shift (Eq. 9-10)  ·  method/regression.py",
        ),
        ("Pruned model", "perplexity and zero-shot evaluation  ·  measure/perplexity.py"),
    ]
    return report.flow_diagram(
        stages, loop=(5, 2, "next layer"), width=7.2, title="SlimLLM, one pass per layer"
    )


def dense_perplexity(
    results: Mapping[str, PerplexityResult],
    names: Mapping[str, str],
    model: str,
    paper: Mapping[str, float],
) -> Figure:
    """Perplexity per dataset with its bootstrap interval (bars), the paper's dense numbers for
    the same datasets as diamonds (labelled as the paper's)."""
    fig, ax = report.figure(width=6.4, height=4.2)
    keys = list(results)
    ppl = [results[k].ppl for k in keys]
    err = [
        [results[k].ppl - results[k].ci_low for k in keys],
        [results[k].ci_high - results[k].ppl for k in keys],
    ]
    ax.bar([names[k] for k in keys], ppl, yerr=err, capsize=6, label=f"{model} dense, this book")
    for i, k in enumerate(keys):
        ax.text(i, results[k].ci_high, f"{results[k].ppl:.1f}", ha="center", va="bottom")
    shown = [(i, paper[k]) for i, k in enumerate(keys) if k in paper]
    if shown:
        ax.scatter(
            [i for i, _ in shown],
            [v for _, v in shown],
            marker="D",
            color=report.COLORS[1],
            zorder=3,
            label="LLaMA-7B dense, the paper's number",
        )
    top = max([results[k].ci_high for k in keys] + [v for _, v in shown])
    ax.set(ylabel="perplexity", title="dense perplexity", ylim=(0, top * 1.15))
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12))
    return fig
