"""The frames the lecture notebooks (2-4) tabulate, plot and describe, one call each.

Each function takes what a notebook computed (eigenvalues, head statistics, search options) or a
results store, and returns a pandas frame; `slimllm.book.tables.compact` renders it and
`slimllm.book.figures` draws it, so the notebooks show only the `slimllm` calls a reader copies.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from math import comb
from typing import Any

import pandas as pd
import torch

from slimllm.analysis import inspect
from slimllm.analysis.rankings import spearman
from slimllm.book import prose
from slimllm.experiments import recipes
from slimllm.experiments.runners import perplexity_config
from slimllm.experiments.store import Record, Store
from slimllm.method import heads
from slimllm.method.channels import eigen_weights
from slimllm.method.config import PruneConfig
from slimllm.method.heads import HeadStats
from slimllm.method.plan import GQA_MODES

#: Fields of PruneConfig whose None means "derived from the ratio" (what the knobs table shows).
DERIVED = {"alpha": "resolved_alpha", "num_pruned_layers": "resolved_layers"}

#: Perplexity windows of the GQA-rule study (benchmarks/gqa_modes.py).
GQA_STUDY_WINDOWS = 512


def knobs(config: PruneConfig, num_layers: int) -> pd.DataFrame:
    """Every field of `config` (rows): its value, and what the method derives where it is None."""
    rows = {}
    for name, value in asdict(config).items():
        used = "" if value is not None or name not in DERIVED else DERIVED[name]
        if used == "resolved_layers":
            used = f"{config.resolved_layers(num_layers)} of {num_layers} layers"
        elif used == "resolved_alpha":
            used = f"{config.resolved_alpha():g}"
        rows[name] = {"value": repr(value), "derived": used or "\u2013"}
    return pd.DataFrame.from_dict(rows, orient="index")


def directions_needed(spectra: Sequence[torch.Tensor], fractions: Sequence[float]) -> pd.DataFrame:
    """Per layer (rows), the fewest principal directions that hold each fraction of the variance."""
    return pd.DataFrame(
        {f"{f:.0%}": [inspect.directions_for(m, f) for m in spectra] for f in fractions},
        index=pd.RangeIndex(len(spectra), name="layer"),
    )


def eigen_weight_summary(spectra: Mapping[str, torch.Tensor], top: float = 0.1) -> pd.DataFrame:
    """Per spectrum (rows): the top eigenvalue over the mean, the Eq. 6 weights of the first and
    last direction, the share of directions weighted above the midpoint 0.75, and the share of
    the total weight the top `top` of the directions get from C and from M itself."""
    rows = {}
    for label, m in spectra.items():
        c = eigen_weights(m)
        n = max(1, round(top * m.numel()))
        rows[label] = {
            "M_1 / mean M": float(m[0] / m.mean()),
            "C_1": float(c[0]),
            "C_D": float(c[-1]),
            "share with C > 0.75": float((c > 0.75).double().mean()),
            f"top {top:.0%}: share of C": float(c[:n].sum() / c.sum()),
            f"top {top:.0%}: share of M": float(m[:n].sum() / m.sum()),
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def head_extremes(lost: torch.Tensor) -> pd.DataFrame:
    """Per layer of `lost` ([layers, heads], similarity lost by removing each head alone): the
    least and most important head and the ratio of their losses."""
    return pd.DataFrame(
        {
            "least important": lost.argmin(1).tolist(),
            "most important": lost.argmax(1).tolist(),
            "max / min lost": (lost.max(1).values / lost.min(1).values.clamp_min(1e-12)).tolist(),
        },
        index=pd.RangeIndex(lost.shape[0], name="layer"),
    )


def reduction_agreement(
    per_dim: Sequence[HeadStats], whole: Sequence[HeadStats], num_prune: int
) -> pd.DataFrame:
    """Per layer: Spearman's correlation of the heads' single-removal similarity under the two
    reductions of Pearson's r, and whether their `num_prune` least important heads are the same."""
    rows = []
    for a, b in zip(per_dim, whole, strict=True):
        same = set(heads.initial_head_selection(a, num_prune)) == set(
            heads.initial_head_selection(b, num_prune)
        )
        rows.append(
            {
                "spearman": spearman(
                    heads.single_head_similarity(a), heads.single_head_similarity(b)
                ),
                "same set": same,
            }
        )
    return pd.DataFrame(rows, index=pd.RangeIndex(len(rows), name="layer"))


def search_vs_exhaustive(
    stats: Sequence[HeadStats], counts: Sequence[int], max_subsets: int
) -> pd.DataFrame:
    """Per number of removed heads k and layer: Eq. 4 similarity of the k individually least
    important heads ("initial"), of Algorithm 1's swap search and of the best of all subsets
    ("optimum", missing where C(H, k) exceeds `max_subsets`), with the swaps and moved heads."""
    rows = []
    for k in counts:
        for i, s in enumerate(stats):
            initial = heads.initial_head_selection(s, k)
            found = heads.greedy_head_search(s, k)
            row: dict[str, Any] = {
                "k": k,
                "layer": i,
                "initial": found.score_initial,
                "search": found.score_final,
                "optimum": float("nan"),
                "optimal": False,
                "swaps": found.swaps,
                "moved": ", ".join(str(h) for h in sorted(set(initial) ^ set(found.pruned)))
                or "none",
            }
            if comb(s.num_heads, k) <= max_subsets:
                best = inspect.exhaustive_head_search(s, k, max_subsets=max_subsets)
                row.update(optimum=best.score, optimal=best.pruned == found.pruned)
            rows.append(row)
    return pd.DataFrame(rows)


def search_summary(search: pd.DataFrame) -> pd.DataFrame:
    """Per k of `search_vs_exhaustive`: layers, layers with a swap, swaps, the mean gain of the
    search over the initial set, and the layers where it reached the optimum (if searched)."""
    rows = {}
    for k, part in search.groupby("k"):
        rows[f"k = {k}"] = {
            "layers": len(part),
            "layers with a swap": int((part["swaps"] > 0).sum()),
            "swaps": int(part["swaps"].sum()),
            "mean gain": float((part["search"] - part["initial"]).mean()),
            "at the optimum": int(part["optimal"].sum()) if part["optimum"].notna().all() else None,
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def gqa_frame(options: Mapping[float, Sequence[inspect.GqaOption]]) -> pd.DataFrame:
    """The options of `inspect.gqa_options` by target ratio, one row per target, layer and mode."""
    return pd.DataFrame([{"target": t, **asdict(o)} for t, found in options.items() for o in found])


def gqa_similarity(gqa: pd.DataFrame) -> pd.DataFrame:
    """Eq. 4 similarity of both modes per (target, layer), and the mode that keeps more of it."""
    both = gqa.pivot_table(index=["target", "layer"], columns="mode", values="similarity")
    both["better"] = [
        "heads" if h >= g else "groups" for h, g in zip(both["heads"], both["groups"], strict=True)
    ]
    return both


def gqa_summary(gqa: pd.DataFrame) -> pd.DataFrame:
    """Per target and mode: layers, heads removed per layer, candidates per swap, swaps, and the
    layers where the mode keeps more of the output (the one the "score" rule picks)."""
    wins = gqa_similarity(gqa)["better"]
    rows = {}
    for (target, mode), part in gqa.groupby(["target", "mode"]):
        rows[(prose.pct(target, 0), mode)] = {
            "layers": len(part),
            "heads removed": ", ".join(str(h) for h in sorted(set(part["heads"]))),
            "candidates per swap": ", ".join(str(c) for c in sorted(set(part["candidates"]))),
            "swaps": int(part["swaps"].sum()),
            "layers where it loses less": int((wins.loc[target] == mode).sum()),
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def gqa_study(
    store: Store,
    model: str,
    ratios: Sequence[float],
    dtype: str = "bfloat16",
    windows: int = GQA_STUDY_WINDOWS,
) -> tuple[pd.DataFrame, list[Record]]:
    """The records of `benchmarks/gqa_modes.py`: per target and GQA rule, the achieved ratio, how
    many layers removed heads from every group or whole groups, and WikiText-2 perplexity on the
    first `windows` windows with its bootstrap interval. Rules without both records are left out."""
    rows, used = {}, []
    for ratio in ratios:
        for mode in GQA_MODES:
            recipe = recipes.pruned(PruneConfig(ratio=ratio, gqa_mode=mode), base=model)
            config = perplexity_config(recipe, "wikitext2", dtype=dtype, max_windows=windows)
            ppl, pruning = store.get("perplexity", config), store.get("prune", {"model": recipe})
            if ppl is None or pruning is None:
                continue
            modes = [layer["attention_mode"] for layer in pruning.result["layers"]]
            rows[(prose.pct(ratio, 0), mode)] = {
                "achieved": float(pruning.result["achieved"]),
                "layers: heads": modes.count("heads"),
                "layers: groups": modes.count("groups"),
                "WikiText-2": float(ppl.result["ppl"]),
                "interval low": float(ppl.result["ci_low"]),
                "interval high": float(ppl.result["ci_high"]),
            }
            used += [pruning, ppl]
    return pd.DataFrame.from_dict(rows, orient="index"), used
