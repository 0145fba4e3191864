"""What the notebooks' observations say, computed from the results they read.

Each function takes what a notebook holds (a record's numbers, a table) and returns the strings
its markdown glues ({glue:text}`name`), so the sentence follows the numbers on any preset.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import torch

from slimllm.analysis.rankings import spearman
from slimllm.book.prose import compare, integers, num, pct, sig, span


def layer_similarity(per_sample: torch.Tensor, outliers: int = 3) -> dict[str, str]:
    """Notebook 7: which layers turn the hidden state most, and how stable the ranking is.

    `per_sample` is [layers, windows] of cos(X_i, X_i+1) (the nb_similarity record).
    """
    similarity = per_sample.mean(dim=1)
    order = torch.argsort(similarity)
    count = max(1, min(outliers, similarity.numel() - 2))  # a tiny model keeps two in the rest
    low = sorted(order[:count].tolist())
    rest = similarity[order[count:]]
    spread = per_sample.std(dim=1)
    per_window = torch.tensor(
        [spearman(per_sample[:, s], similarity) for s in range(per_sample.shape[1])]
    )
    depth = spearman(similarity, torch.arange(similarity.numel(), dtype=similarity.dtype))
    return {
        "sim_windows": str(per_sample.shape[1]),
        "sim_low_layers": integers(low),
        "sim_low_values": ", ".join(num(float(similarity[i]), 2) for i in low),
        "sim_rest_span": span(float(rest.min()), float(rest.max())),
        "sim_std_median": sig(float(spread.median()), 2),
        "sim_std_max": sig(float(spread.max()), 2),
        "sim_window_spearman_min": num(float(per_window.min()), 3),
        "sim_depth_spearman": num(depth, 2),
        "sim_depth_word": "rises" if depth > 0.8 else "does not rise steadily",
        "sim_spread_word": compare(
            float(spread.max()), float(rest.max() - rest.min()), more="large", less="small"
        ),
    }


def paired_effect(
    table: pd.DataFrame, pairs: Mapping[str, tuple[str, str]], datasets: list[str]
) -> dict[str, str]:
    """Notebooks 5 and 6: one variant against another, per pair and dataset.

    `pairs` maps a name prefix to (row, reference row) of `table` (rows: variants, columns:
    datasets). Per pair and dataset: both values, their ratio and the word for the direction.
    """
    out: dict[str, str] = {}
    for prefix, (row, reference) in pairs.items():
        for ds in datasets:
            value, ref = float(table.loc[row, ds]), float(table.loc[reference, ds])
            key = f"{prefix}_{ds}"
            out[f"{key}_value"] = sig(value, 4)
            out[f"{key}_reference"] = sig(ref, 4)
            out[f"{key}_ratio"] = sig(value / ref, 3)
            out[f"{key}_change"] = f"{num(abs(value / ref - 1) * 100, 1)} %"
            out[f"{key}_word"] = compare(value, ref)
    return out


def _english(items: Sequence[str]) -> str:
    """a, b and c (an English list of strings; "none" when empty)."""
    items = list(items)
    if not items:
        return "none"
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def ablation_order(
    table: pd.DataFrame, reference: str, rows: Sequence[str], datasets: Sequence[str]
) -> tuple[list[str], dict[str, list[float]]]:
    """`rows` of `table` ordered by what they cost against `reference` (the geometric mean of
    their perplexity ratios over `datasets`, costliest first), and those ratios per row."""
    ratios = {
        row: [float(table.loc[row, ds]) / float(table.loc[reference, ds]) for ds in datasets]
        for row in rows
    }
    order = sorted(rows, key=lambda row: -sum(math.log(r) for r in ratios[row]))
    return order, ratios


def ablation_effects(
    table: pd.DataFrame,
    reference: str,
    labels: Mapping[str, str],
    datasets: Mapping[str, str],
    seed_values: Mapping[str, Sequence[float]],
    paper: pd.DataFrame | None = None,
) -> dict[str, str]:
    """Notebook 8: what each ablation costs against the full method, whether it exceeds the
    full method's spread over calibration seeds, and whether the order is the paper's.

    `table` has rows of variants (`reference` among them) and a column per key of `datasets`
    (key -> printed name); `labels` maps the ablated rows to their names in the sentence;
    `seed_values` holds, per dataset, the full method's perplexity at every stored seed;
    `paper` is the paper's table with the same row and column names.
    """
    order, ratios = ablation_order(table, reference, list(labels), list(datasets))

    def effects(rows: Sequence[str], ratios: Mapping[str, list[float]]) -> str:
        times = {row: ", ".join("\u00d7" + sig(r, 3) for r in ratios[row]) for row in rows}
        return "; ".join(f"{labels[row]} ({times[row]})" for row in rows)

    seeds = min(len(v) for v in seed_values.values())
    if seeds < 2:
        noise = (
            "Only this calibration seed of the full method is stored, so how far another seed "
            "would move these numbers is not measured here"
        )
    else:
        top = {ds: max(seed_values[ds]) for ds in datasets}
        above = [r for r in order if all(table.loc[r, ds] > top[ds] for ds in datasets)]
        inside = [labels[r] for r in order if r not in above]
        ranges = " and ".join(
            f"{span(min(seed_values[ds]), max(seed_values[ds]), 1)} on {name}"
            for ds, name in datasets.items()
        )
        noise = (
            f"Over the {seeds} stored calibration seeds the full method spans {ranges}. "
            f"Above that range on every test set: {_english([labels[r] for r in above])}; "
            f"not above it: {_english(inside)}"
        )
        if inside:
            noise += ", an effect another calibration seed could produce on its own"
    out = {
        "ab_order": effects(order, ratios),
        "ab_costliest": labels[order[0]],
        "ab_datasets": " and ".join(datasets.values()),
        "ab_noise": noise,
    }
    out["ab_paper_order"] = "no ablations at this ratio"
    out["ab_paper_word"] = "not comparable with"
    if paper is not None and not paper.empty:
        paper_order, paper_ratios = ablation_order(paper, reference, list(labels), list(datasets))
        out["ab_paper_order"] = effects(paper_order, paper_ratios)
        out["ab_paper_word"] = (
            "the same order as" if paper_order == order else "a different order from"
        )
    return out


def layer_profile(layers: pd.DataFrame) -> dict[str, str]:
    """Notebook 8: which layers a SlimLLM prune record left whole or cut lightly, how its
    attention was cut, and how often the greedy search changed the initial choice.

    `layers` is the record's per-layer frame (index: layer) with similarity, ratio,
    attention_mode, heads_kept (lists), heads_before and swaps.
    """
    whole = layers.index[layers["ratio"] == 0].tolist()
    least = layers["similarity"].nsmallest(len(whole)).index.tolist()
    pruned = layers[layers["ratio"] > 0]
    median = float(pruned["ratio"].median())
    light = pruned.index[pruned["ratio"] < median / 2].tolist()
    rest = pruned.drop(index=light)
    # A rank correlation over fewer than three layers says nothing.
    depth = (
        spearman(
            torch.tensor(rest["similarity"].to_numpy(), dtype=torch.float64),
            torch.tensor(rest.index.to_numpy(), dtype=torch.float64),
        )
        if len(rest) >= 3
        else math.nan
    )
    modes = pruned["attention_mode"].value_counts()
    kept = pruned["heads_kept"].map(len).value_counts()
    swapped = int((pruned["swaps"] > 0).sum())
    return {
        "lp_whole": integers(whole),
        "lp_whole_word": "are" if sorted(least) == sorted(whole) else "are not all",
        "lp_light": integers(light),
        "lp_light_ratios": ", ".join(num(float(pruned.loc[i, "ratio"]), 2) for i in light),
        "lp_rest_span": span(float(rest["ratio"].min()), float(rest["ratio"].max())),
        "lp_depth_rho": num(depth, 2) if math.isfinite(depth) else "not defined",
        "lp_depth_word": "rises steadily" if depth > 0.8 else "does not rise steadily",
        "lp_pruned": str(len(pruned)),
        "lp_groups": str(int(modes.get("groups", 0))),
        "lp_heads": str(int(modes.get("heads", 0))),
        "lp_kept_common": str(int(kept.index[0])),
        "lp_kept_common_layers": str(int(kept.iloc[0])),
        "lp_heads_before": str(int(layers["heads_before"].max())),
        "lp_swapped": str(swapped),
        "lp_swaps": str(int(pruned["swaps"].sum())),
    }


def regression_scale(layers: pd.DataFrame, close: float = 0.1) -> dict[str, str]:
    """Notebook 8: how far the mean regression slope A strays from 1 and the mean offset B
    from 0 over the pruned layers of a prune record (columns attn_/mlp_a_mean, _b_mean), and
    whether every layer's mean slope is within `close` of one (the paper's Figure 2)."""
    out = {}
    for part in ("attn", "mlp"):
        a = layers[f"{part}_a_mean"].dropna()
        out[f"rs_{part}_span"] = span(float(a.min()), float(a.max()), 3)
        out[f"rs_{part}_off"] = num(float((a - 1).abs().max()), 3)
        out[f"rs_{part}_b"] = num(float(layers[f"{part}_b_mean"].abs().max()), 3)
    out["rs_layers"] = str(int(layers["attn_a_mean"].notna().sum()))
    # "Close to one": every pruned layer's mean slope within `close` of it.
    near = {
        part: float((layers[f"{part}_a_mean"].dropna() - 1).abs().max()) <= close
        for part in ("attn", "mlp")
    }
    out["rs_verdict"] = {
        (True, True): "carries over to both blocks",
        (False, True): "carries over to the MLP but not to attention",
        (True, False): "carries over to attention but not to the MLP",
        (False, False): "does not carry over",
    }[near["attn"], near["mlp"]]
    out["rs_close"] = num(close, 1)
    return out


def method_costs(costs: pd.DataFrame, method: str, target: float) -> dict[str, str]:
    """Notebook 8, `cost_text`: the seconds of pruning of `method` against `target` seconds and
    the other methods, and the memory each adds (rows of `slimllm.book.tables.method_costs`)."""
    if costs.empty:
        return {"cost_text": "no per-method cost records are stored for this model"}
    mine = costs[costs["method"] == method]
    others = costs[costs["method"] != method]
    times = " and ".join(
        f"{num(float(row['pruning s']), 1)} s at {row['ratio']}" for _, row in mine.iterrows()
    )
    word = compare(float(mine["pruning s"].max()), target, more="over", less="under")
    per_method = [
        f"{name} {span(float(g['pruning s'].min()), float(g['pruning s'].max()), 1)} s"
        for name, g in others.groupby("method", sort=False)
    ]
    heavy = costs.loc[costs["over loaded MiB"].idxmax()]
    light = costs[costs["method"] != heavy["method"]]["over loaded MiB"]
    tokenise = span(float(costs["tokenising s"].min()), float(costs["tokenising s"].max()), 1)
    return {
        "cost_text": (
            f"{method} prunes in {times}, {word} the {target:g} s target; the other methods take "
            f"{_english(per_method)}. {heavy['method']} adds the most memory over the loaded "
            f"model, {sig(float(heavy['over loaded MiB']), 3)} MiB; the others add "
            f"{span(float(light.min()), float(light.max()), 0)} MiB. Tokenising the calibration "
            f"corpus, once per process, takes {tokenise} s"
        )
    }


def prune_cases(cases: pd.DataFrame, today: str) -> dict[str, str]:
    """Notebook 8, `cases_text`: when and under which GQA rule the older whole-method timing
    cases (`slimllm.book.tables.prune_cases`) ran, and each one's peak over its loaded size.
    `today` is the GQA rule of today's PruneConfig."""
    if cases.empty:
        return {"cases_text": "No such records are stored"}
    rules = sorted(set(cases["GQA rule"]))
    verdict = "today's default" if rules == [today] else f"not today's default, {today}"
    peaks = [
        f"{case} {num(float(row['peak / loaded']), 2)} times" for case, row in cases.iterrows()
    ]
    return {
        "cases_text": (
            f"These records were measured {span_dates(cases['measured'])} with that code and the "
            f"{' and '.join(rules)} GQA rule ({verdict}): a study of the older code, not the "
            f"timing of today's. Peak memory over the process holding the loaded model: "
            f"{_english(peaks)}"
        )
    }


def span_dates(dates: pd.Series) -> str:
    """The dates of `dates` (ISO): "on D" when they agree, else "between FIRST and LAST"."""
    low, high = min(dates), max(dates)
    return f"on {low}" if low == high else f"between {low} and {high}"


def model_shape(shape: Mapping[str, Any], ratio: float) -> dict[str, str]:
    """Notebook 1: a model's shape in words (`slimllm.models.loaders.describe_model`), and what a
    ratio of the decoder's parameters is as a share of the whole model."""
    group = shape["query_heads"] // shape["kv_heads"]
    attention = (
        f"grouped-query attention: its {shape['query_heads']} query heads share "
        f"{shape['kv_heads']} key/value heads, {group} to a group"
        if group > 1
        else f"multi-head attention: each of its {shape['query_heads']} query heads has its own "
        "key/value head"
    )
    share = shape["decoder_layer_parameters"] / shape["parameters"]
    return {
        "shape_layers": str(shape["layers"]),
        "shape_attention": attention,
        "shape_ffn": f"{shape['intermediate_size']:,}",
        "shape_ffn_times": sig(shape["intermediate_size"] / shape["hidden_size"], 3),
        "shape_decoder_share": pct(share, 0),
        "shape_rest_share": pct(1 - share, 0),
        "shape_ratio": pct(ratio, 0),
        "shape_ratio_model": pct(ratio * share, 1),
    }
