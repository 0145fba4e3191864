"""The book helpers behind notebooks 1 and 8, on tiny hand-made inputs: the sentences follow
the numbers, the tables stay compact, the figures draw."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
import pytest
from matplotlib.figure import Figure

from slimllm.book import figures, observations, tables
from slimllm.experiments.store import Store
from slimllm.measure.perplexity import PerplexityResult

FULL = "SlimLLM 50%"
LABELS = {"w/o greedy search": "without the greedy search", "w/o regression": "without it"}
DATASETS = {"wikitext2": "WikiText-2", "ptb": "PTB"}


def ablations(greedy: float) -> pd.DataFrame:
    return pd.DataFrame.from_dict(
        {
            FULL: {"wikitext2": 100.0, "ptb": 200.0},
            "w/o greedy search": {"wikitext2": greedy, "ptb": 2 * greedy},
            "w/o regression": {"wikitext2": 300.0, "ptb": 400.0},
        },
        orient="index",
    )


def test_ablation_effects_order_and_seed_noise() -> None:
    seeds = {"wikitext2": [95.0, 100.0, 105.0], "ptb": [190.0, 200.0, 210.0]}
    small = observations.ablation_effects(ablations(104.0), FULL, LABELS, DATASETS, seeds)
    assert (
        small["ab_order"]
        == "without it (\u00d73.00, \u00d72.00); without the greedy search (\u00d71.04, \u00d71.04)"
    )
    assert small["ab_costliest"] == "without it"
    assert "Above that range on every test set: without it;" in small["ab_noise"]
    assert "not above it: without the greedy search" in small["ab_noise"]
    large = observations.ablation_effects(ablations(500.0), FULL, LABELS, DATASETS, seeds)
    assert large["ab_costliest"] == "without the greedy search"
    assert "not above it: none" in large["ab_noise"]
    alone = observations.ablation_effects(
        ablations(104.0), FULL, LABELS, DATASETS, {"wikitext2": [1.0], "ptb": [1.0]}
    )
    assert alone["ab_noise"].startswith("Only this calibration seed")


def test_ablation_effects_against_the_paper() -> None:
    seeds = {"wikitext2": [100.0], "ptb": [200.0]}
    same = observations.ablation_effects(
        ablations(104.0), FULL, LABELS, DATASETS, seeds, ablations(110.0)
    )
    assert same["ab_paper_word"] == "the same order as"
    flipped = observations.ablation_effects(
        ablations(104.0), FULL, LABELS, DATASETS, seeds, ablations(900.0)
    )
    assert flipped["ab_paper_word"] == "a different order from"
    paper = tables.paper_ablations(0.5, FULL)
    assert paper.loc[FULL, "wikitext2"] == 37.89 and paper.loc["w/o regression", "ptb"] == 81.64
    assert set(paper.index) == {
        FULL,
        "w/o greedy search",
        "w/o feature space",
        "uniform ratios",
        "w/o regression",
    }
    assert tables.paper_ablations(0.3, FULL).empty


def layers() -> pd.DataFrame:
    """Six layers: 0 and 5 left whole, 1 pruned lightly, 2-4 by groups or heads."""
    return pd.DataFrame(
        {
            "similarity": [0.1, 0.8, 0.95, 0.96, 0.97, 0.5],
            "ratio": [0.0, 0.1, 0.6, 0.7, 0.8, 0.0],
            "attention_mode": ["none", "heads", "groups", "groups", "heads", "none"],
            "heads_kept": [[0, 1, 2, 3]] * 2 + [[0, 1]] * 3 + [[0, 1, 2, 3]],
            "heads_before": [4] * 6,
            "channels_kept": [8, 7, 4, 3, 2, 8],
            "swaps": [0, 1, 0, 2, 0, 0],
            "attn_a_mean": [None, 0.9, 1.0, 1.1, 1.05, None],
            "mlp_a_mean": [None, 1.0, 1.01, 0.99, 1.0, None],
            "attn_b_mean": [None, -0.2, 0.0, 0.1, 0.0, None],
            "mlp_b_mean": [None, 0.01, 0.0, -0.03, 0.0, None],
        },
        index=pd.RangeIndex(6, name="index"),
    )


def test_layer_profile() -> None:
    out = observations.layer_profile(layers())
    assert out["lp_whole"] == "0 and 5" and out["lp_whole_word"] == "are"
    assert out["lp_light"] == "1" and out["lp_light_ratios"] == "0.10"
    assert out["lp_rest_span"] == "0.60 to 0.80" and out["lp_depth_word"] == "rises steadily"
    assert (out["lp_groups"], out["lp_heads"], out["lp_pruned"]) == ("2", "2", "4")
    assert (out["lp_kept_common"], out["lp_kept_common_layers"], out["lp_heads_before"]) == (
        "2",
        "3",
        "4",
    )
    assert (out["lp_swapped"], out["lp_swaps"]) == ("2", "3")
    few = layers().iloc[[0, 2, 5]]
    assert observations.layer_profile(few)["lp_depth_rho"] == "not defined"
    table = tables.kept_per_layer(layers())
    assert list(table["heads kept"]) == [4, 4, 2, 2, 2, 4] and table.shape[1] <= tables.MAX_COLUMNS


def test_regression_scale() -> None:
    out = observations.regression_scale(layers())
    assert out["rs_attn_span"] == "0.900 to 1.100" and out["rs_attn_off"] == "0.100"
    assert out["rs_mlp_b"] == "0.030" and out["rs_layers"] == "4"
    assert out["rs_verdict"] == "carries over to the MLP but not to attention"  # 1.1 - 1 > 0.1
    assert observations.regression_scale(layers(), close=0.2)["rs_verdict"] == (
        "carries over to both blocks"
    )
    assert observations.regression_scale(layers(), close=0.001)["rs_verdict"] == (
        "does not carry over"
    )


def record(store: Store, method: str, ratio: float, seconds: float, over: float) -> Any:
    recipe = {"base": "m", "prune": {"method": method, "ratio": ratio, "gqa_mode": "score"}}
    result = {
        "seconds": seconds,
        "calibration_tokenize_seconds": 3.0,
        "peak_rss_mib": 1000.0 + over,
        "peak_over_loaded_mib": over,
        "achieved": ratio,
    }
    return store.put("prune_cost", {"model": recipe}, result)


def test_method_costs_table_figure_and_sentence(tmp_path: Path) -> None:
    store = Store(tmp_path)
    records = [
        record(store, "flap", 0.5, 12.0, 200.0),
        record(store, "slimllm", 0.5, 27.0, 300.0),
        record(store, "slimllm", 0.2, 31.0, 400.0),
        record(store, "llm-pruner", 0.2, 7.0, 1300.0),
    ]
    costs = tables.method_costs(records, ["slimllm", "llm-pruner", "flap"])
    assert list(zip(costs["ratio"], costs["method"], strict=True)) == [
        ("20%", "slimllm"),
        ("20%", "llm-pruner"),
        ("50%", "slimllm"),
        ("50%", "flap"),
    ]
    text = observations.method_costs(costs, "slimllm", target=30)["cost_text"]
    assert text.startswith(
        "slimllm prunes in 31.0 s at 20% and 27.0 s at 50%, over the 30 s target"
    )
    assert "llm-pruner adds the most memory over the loaded model, 1,300 MiB" in text
    assert isinstance(figures.method_costs(costs, target=30), Figure)
    empty = observations.method_costs(costs.iloc[:0], "slimllm", 30)["cost_text"]
    assert empty == "no per-method cost records are stored for this model"


def test_prune_cases_label_the_older_rule(tmp_path: Path) -> None:
    store = Store(tmp_path)
    result = {
        "parameters": 2e6,
        "calibration_tokens": 64,
        "seconds": 5.0,
        "model_mib": 10.0,
        "peak_rss_mib": 30.0,
        "peak_over_loaded": 1.3,
    }
    recipe = {"base": "m", "prune": {"method": "slimllm", "ratio": 0.5, "gqa_mode": "auto"}}
    rec = store.put("prune_cost", {"case": "m@50", "model": recipe}, result)
    cases = tables.prune_cases([rec])
    assert cases.loc["m@50", "GQA rule"] == "auto" and cases.shape[1] <= tables.MAX_COLUMNS
    text = observations.prune_cases(cases, "score")["cases_text"]
    assert "the auto GQA rule (not today's default, score)" in text and "m@50 1.30 times" in text
    assert "today's default)" in observations.prune_cases(cases, "auto")["cases_text"]


def result(ppl: float) -> PerplexityResult:
    return PerplexityResult(ppl, 0.0, 1000, 10, ppl - 1, ppl + 2, 1.0, "lineage-128", "d")


def test_dense_summary_figure_and_shape() -> None:
    results = {"wikitext2": result(50.0), "ptb": result(80.0)}
    names = {"wikitext2": "WikiText-2 test", "ptb": "PTB test"}
    summary = tables.perplexity_summary(results, names)
    assert summary.loc["PTB test", "interval"] == "79.00 \u2013 82.00"
    assert isinstance(figures.dense_perplexity(results, names, "m", {"wikitext2": 12.62}), Figure)
    shape = {
        "layers": 30,
        "query_heads": 9,
        "kv_heads": 3,
        "intermediate_size": 1536,
        "hidden_size": 576,
        "parameters": 1000,
        "decoder_layer_parameters": 800,
    }
    out = observations.model_shape(shape, 0.2)
    assert out["shape_attention"].startswith("grouped-query attention: its 9 query heads share 3")
    assert (out["shape_decoder_share"], out["shape_ratio_model"]) == ("80 %", "16.0 %")
    mha = observations.model_shape({**shape, "kv_heads": 9}, 0.2)["shape_attention"]
    assert mha.startswith("multi-head attention")


@pytest.mark.parametrize("digits", [3, 4])
def test_perplexity_summary_is_compact(digits: int) -> None:
    summary = tables.perplexity_summary({"ptb": result(80.123456)}, {"ptb": "PTB"})
    html = tables.compact(summary, digits=digits).to_html()
    assert "80.123456" not in html and "nan" not in html.lower()


@pytest.mark.parametrize("log", [True, False])
def test_grouped_bars_keep_the_baseline_on_the_axis(log: bool) -> None:
    frame = pd.DataFrame(
        {"a": [50.0, 500.0, 900.0], "b": [80.0, 600.0, 1e5]}, index=["dense", "x", "y"]
    )
    fig = figures.grouped_bars(frame, ["a", "b"], "dense", "ppl", "t", log=log)
    bottom, top = fig.axes[0].get_ylim()
    assert bottom < 50.0 and top > 1e5
    plt.close(fig)


def test_prune_cases_refuse_two_records_of_one_case(tmp_path: Path) -> None:
    store = Store(tmp_path)
    result = {"parameters": 2e6, "calibration_tokens": 64, "seconds": 5.0, "model_mib": 10.0}
    result |= {"peak_rss_mib": 30.0, "peak_over_loaded": 1.3}
    recipe = {"base": "m", "prune": {"method": "slimllm", "ratio": 0.5, "gqa_mode": "auto"}}
    old = store.put("prune_cost", {"case": "m@50", "model": recipe}, result)
    new = store.put("prune_cost", {"case": "m@50", "model": recipe, "code": "abc"}, result)
    with pytest.raises(ValueError, match="two prune_cost records of case 'm@50'"):
        tables.prune_cases([old, new])


def test_prune_cases_without_records_keep_their_columns() -> None:
    # The smoke preset's store holds no timing cases; the notebook still drops a column.
    cases = tables.prune_cases([])
    assert cases.empty and "measured" in cases.columns and "GQA rule" in cases.columns
    assert observations.prune_cases(cases, "auto") == {"cases_text": "No such records are stored"}
