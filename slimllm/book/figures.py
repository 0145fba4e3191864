"""The notebooks' figures: one call each, glued into the page as a numbered MyST figure.

    fig = figures.layer_similarity(per_sample)
    figures.glue_figure("07_similarity", fig)   # then ```{glue:figure} 07_similarity``` in markdown

Each builder takes the numbers a notebook computed (or read from a record) and returns a
matplotlib figure in the book's style; :func:`glue_figure` stores it (figures/<name>.png, see
`report.save`) and glues the PNG for a `{glue:figure}` directive, which numbers and captions it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
import torch
from IPython.display import Image
from matplotlib.figure import Figure
from myst_nb import glue

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
