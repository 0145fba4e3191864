"""The notebooks' tables: compact (rounded, no NaN, no hashes), narrow enough for the page.

    tables.compact(frame, digits=3)            # a Styler: rounded, missing cells as "-"
    tables.compact(frame.T, digits=3)          # a wide frame transposed

Record hashes and paths never enter a table: the page states its setting in one sentence
(`slimllm.book.prose.setting`), and `report.provenance` lines stay in the cell output.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from pandas.io.formats.style import Styler

from slimllm.book import prose, report
from slimllm.experiments import paper
from slimllm.experiments.store import Record
from slimllm.measure.perplexity import PerplexityResult
from slimllm.method.ratios import RatioSolution

#: Wider than this many columns a table is cut off in the page: transpose or split it.
MAX_COLUMNS = 8


def cell(value: Any, digits: int) -> str:
    """One cell: numbers to `digits` significant figures, missing values as a dash."""
    if value is None or (isinstance(value, numbers.Real) and math.isnan(value)):
        return "\u2013"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}"
    if isinstance(value, numbers.Real):
        value = float(value)
        if value != 0 and abs(value) < 1e-3:
            return f"{value:.1e}"
        return prose.sig(value, digits) if abs(value) < 10**digits else f"{value:,.0f}"
    return str(value)


def compact(
    frame: pd.DataFrame, digits: int = 3, caption: str | None = None, hide_index: bool = False
) -> Styler:
    """`frame` as a page table: rounded cells, dashes for missing values, at most MAX_COLUMNS."""
    if frame.shape[1] > MAX_COLUMNS:
        raise ValueError(
            f"{frame.shape[1]} columns would be cut off in the page (at most {MAX_COLUMNS}): "
            "transpose or split the table"
        )
    shown = frame.map(lambda v: cell(v, digits))
    return report.table(shown, caption=caption, hide_index=hide_index)


def from_rows(
    rows: Mapping[str, Mapping[str, Any]], digits: int = 3, caption: str | None = None
) -> Styler:
    """A compact table from {row name: {column: value}}."""
    return compact(pd.DataFrame.from_dict(dict(rows), orient="index"), digits, caption)


def solution_row(solution: RatioSolution, cap: float) -> dict[str, Any]:
    """The numbers of a layer-ratio solution a table shows: base, achieved, spread, clamp."""
    pruned = solution.ratios[solution.ratios > 0]
    return {
        "base": solution.base,
        "achieved": solution.achieved,
        "layers pruned": int(pruned.numel()),
        "min ratio": float(pruned.min()) if pruned.numel() else 0.0,
        "max ratio": float(solution.ratios.max()),
        "at the clamp": int((solution.ratios >= cap - 1e-9).sum()),
    }


def quantile_spread(bands: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Per coefficient (frames of per-layer quantiles, columns 0.0 ... 1.0): median of the
    medians, the widest 5-95 % band over layers, and the extremes."""
    return pd.DataFrame.from_dict(
        {
            name: {
                "median of medians": float(q[0.5].median()),
                "widest 5-95 % band": float((q[0.95] - q[0.05]).max()),
                "min": float(q[0.0].min()),
                "max": float(q[1.0].max()),
            }
            for name, q in bands.items()
        },
        orient="index",
    )


def error_removed(layers: Mapping[float, pd.DataFrame]) -> pd.DataFrame:
    """Per ratio and block (attn, mlp) of pruner layer records: layers fitted, the median
    relative output error before and after the regression, and the median share removed."""
    rows = {}
    for ratio, frame in layers.items():
        for part in ("attn", "mlp"):
            fitted = frame.dropna(subset=[f"{part}_error_after"])
            before, after = fitted[f"{part}_error_before"], fitted[f"{part}_error_after"]
            rows[f"{ratio:.0%} {part}"] = {
                "layers fitted": len(fitted),
                "median before": float(before.median()),
                "median after": float(after.median()),
                "median share removed": float((1 - after / before).median()),
            }
    return pd.DataFrame.from_dict(rows, orient="index")


def perplexity(measured: Mapping[tuple[str, str], Record]) -> pd.DataFrame:
    """Perplexity records by (variant, dataset) as rows of variants: per dataset the value and
    its bootstrap interval over windows."""
    rows: dict[str, dict[str, Any]] = {}
    for (name, ds), record in measured.items():
        result = record.result
        rows.setdefault(name, {})[ds] = float(result["ppl"])
        rows[name][f"{ds} interval"] = (
            f"{prose.sig(result['ci_low'], 4)} \u2013 {prose.sig(result['ci_high'], 4)}"
        )
    return pd.DataFrame.from_dict(rows, orient="index")


def kept_per_layer(layers: pd.DataFrame) -> pd.DataFrame:
    """Per layer of a prune record (index: layer): similarity, ratio, how attention was cut,
    heads and channels kept, and the swaps of the greedy head search."""
    return pd.DataFrame(
        {
            "similarity": layers["similarity"],
            "ratio": layers["ratio"],
            "attention cut": layers["attention_mode"],
            "heads kept": layers["heads_kept"].map(len),
            "channels kept": layers["channels_kept"],
            "swaps": layers["swaps"],
        }
    ).rename_axis("layer")


def method_costs(records: Sequence[Record], order: Sequence[str]) -> pd.DataFrame:
    """Per-method "prune_cost" records as rows in `order` of methods, the lower ratio first:
    seconds of pruning and of tokenising the calibration corpus, peak memory and what it adds
    over the loaded model (MiB), and the achieved ratio."""
    rows = []
    for record in records:
        prune, result = record.config["model"]["prune"], record.result
        rows.append(
            {
                "method": prune["method"],
                "ratio": f"{prune['ratio']:.0%}",
                "pruning s": result["seconds"],
                "tokenising s": result["calibration_tokenize_seconds"],
                "peak MiB": result["peak_rss_mib"],
                "over loaded MiB": result["peak_over_loaded_mib"],
                "achieved": result["achieved"],
            }
        )
    columns = ["method", "ratio", "pruning s", "tokenising s", "peak MiB", "over loaded MiB"]
    frame = pd.DataFrame(rows, columns=[*columns, "achieved"])
    rank = frame["method"].map({m: i for i, m in enumerate(order)})
    return frame.assign(rank=rank).sort_values(["ratio", "rank"]).drop(columns="rank")


def prune_cases(records: Sequence[Record]) -> pd.DataFrame:
    """Whole-method timing cases ("prune_cost" records with a case name) as rows: parameters
    (millions), calibration tokens, seconds, model and peak memory (MiB), the peak over the
    loaded process, the GQA rule and the date it was measured. No records: no rows, the same
    columns (the smoke preset's store holds none)."""
    columns = [
        "parameters (M)",
        "calibration tokens",
        "seconds",
        "model MiB",
        "peak MiB",
        "peak / loaded",
        "GQA rule",
        "measured",
    ]
    rows = {}
    for record in records:
        result = record.result
        if record.config["case"] in rows:
            # A row per case name: a second record of it (another commit's run) would silently
            # replace the first, so the caller picks which records the table compares.
            raise ValueError(f"two prune_cost records of case {record.config['case']!r}")
        rows[record.config["case"]] = {
            "parameters (M)": result["parameters"] / 1e6,
            "calibration tokens": int(result["calibration_tokens"]),
            "seconds": result["seconds"],
            "model MiB": result["model_mib"],
            "peak MiB": result["peak_rss_mib"],
            "peak / loaded": result["peak_over_loaded"],
            "GQA rule": record.config["model"]["prune"]["gqa_mode"],
            "measured": str(record.environment.get("measured_at", "?"))[:10],
        }
    return pd.DataFrame.from_dict(rows, orient="index", columns=columns)


def paper_ablations(ratio: float, reference: str) -> pd.DataFrame:
    """The paper's Tables 4 and 6 at `ratio` (LLaMA-7B, its numbers): the full method as row
    `reference` and each ablation under its setting name, perplexity columns only."""
    rows = {}
    for row in (*paper.TABLE4, *paper.TABLE6):
        if row.ratio == ratio and row.setting != "w/ regression":
            rows[row.setting or reference] = {ds: row.values[ds] for ds in ("wikitext2", "ptb")}
    return pd.DataFrame.from_dict(rows, orient="index")


def perplexity_summary(
    results: Mapping[str, PerplexityResult], names: Mapping[str, str]
) -> pd.DataFrame:
    """One row per dataset (printed under `names`): perplexity, its bootstrap interval, and the
    tokens and windows it was measured on."""
    return pd.DataFrame.from_dict(
        {
            names[ds]: {
                "perplexity": r.ppl,
                "interval": f"{prose.sig(r.ci_low, 4)} \u2013 {prose.sig(r.ci_high, 4)}",
                "tokens": r.n_tokens,
                "windows": r.n_windows,
            }
            for ds, r in results.items()
        },
        orient="index",
    ).rename_axis("split")
