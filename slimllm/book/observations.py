"""What the notebooks' observations say, computed from the results they read.

Each function takes what a notebook holds (a record's numbers, a table) and returns the strings
its markdown glues ({glue:text}`name`), so the sentence follows the numbers on any preset.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import torch

from slimllm.analysis.rankings import spearman
from slimllm.book.prose import compare, integers, num, sig, span


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
