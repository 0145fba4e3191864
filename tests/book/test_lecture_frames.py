"""The lecture notebooks' frames and figures (notebooks 2-4), on tiny hand-made inputs."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import matplotlib
import pandas as pd
import pytest
import torch
from matplotlib.figure import Figure

from slimllm.analysis.inspect import GqaOption
from slimllm.book import figures, frames, prose
from slimllm.experiments import recipes
from slimllm.experiments.runners import perplexity_config
from slimllm.experiments.store import Store
from slimllm.method import heads
from slimllm.method.config import PruneConfig
from tests.helpers import randn

matplotlib.use("Agg")


def head_stats(seed: int, num_heads: int = 4) -> list[heads.HeadStats]:
    """Per-dim statistics of random head contributions [H, N, D], one layer per seed offset."""
    return [heads.head_statistics(randn(seed + i, num_heads, 64, 6)) for i in range(3)]


def test_knobs_show_derived_values_where_a_field_is_none() -> None:
    knobs = frames.knobs(PruneConfig(ratio=0.5), num_layers=30)
    assert knobs.loc["alpha", "value"] == "None"
    assert knobs.loc["alpha", "derived"] == "7"
    assert knobs.loc["num_pruned_layers", "derived"] == "28 of 30 layers"
    assert knobs.loc["ratio", "derived"] == "\u2013"
    assert frames.knobs(PruneConfig(alpha=3.0), 30).loc["alpha", "derived"] == "\u2013"


def test_directions_needed_counts_the_leading_directions() -> None:
    spectra = [torch.tensor([3.0, 1.0, 0.0, 0.0]), torch.tensor([1.0, 1.0, 1.0, 1.0])]
    needed = frames.directions_needed(spectra, [0.5, 0.9])
    assert needed.to_dict("list") == {"50%": [1, 2], "90%": [2, 4]}
    assert needed.index.name == "layer"


def test_eigen_weight_summary_of_a_flat_and_a_steep_spectrum() -> None:
    flat = torch.ones(10, dtype=torch.float64)
    steep = torch.tensor([100.0] + [1e-6] * 9, dtype=torch.float64)
    summary = frames.eigen_weight_summary({"flat": flat, "steep": steep})
    sigmoid_one = 1 / (1 + math.exp(-1))
    assert summary.loc["flat", "C_1"] == pytest.approx(sigmoid_one)
    assert summary.loc["flat", "share with C > 0.75"] == 0
    assert summary.loc["flat", "top 10%: share of M"] == pytest.approx(0.1)
    assert summary.loc["steep", "M_1 / mean M"] == pytest.approx(10, rel=1e-6)
    assert summary.loc["steep", "top 10%: share of M"] == pytest.approx(1, abs=1e-6)
    assert summary.loc["steep", "top 10%: share of C"] < 0.2


def test_head_extremes_per_layer() -> None:
    extremes = frames.head_extremes(torch.tensor([[1.0, 4.0, 2.0], [3.0, 0.5, 1.0]]))
    assert extremes["least important"].tolist() == [0, 1]
    assert extremes["most important"].tolist() == [1, 0]
    assert extremes["max / min lost"].tolist() == pytest.approx([4.0, 6.0])


def test_reduction_agreement_of_identical_statistics_is_perfect() -> None:
    stats = head_stats(0)
    agree = frames.reduction_agreement(stats, stats, num_prune=2)
    assert agree["spearman"].tolist() == pytest.approx([1.0] * 3)
    assert agree["same set"].all()


def test_search_never_ends_below_the_initial_set_or_above_the_optimum() -> None:
    search = frames.search_vs_exhaustive(head_stats(1), counts=[1, 2], max_subsets=100)
    assert len(search) == 6
    assert (search["search"] >= search["initial"] - 1e-12).all()
    assert (search["optimum"] >= search["search"] - 1e-9).all()
    assert (search.loc[search["k"] == 1, "swaps"] == 0).all()  # one head: nothing to swap
    summary = frames.search_summary(search)
    assert summary.loc["k = 2", "layers"] == 3
    assert summary.loc["k = 1", "at the optimum"] == 3


def test_search_without_exhaustive_optimum_leaves_it_missing() -> None:
    search = frames.search_vs_exhaustive(head_stats(2), counts=[2], max_subsets=5)  # C(4, 2) = 6
    assert search["optimum"].isna().all() and not search["optimal"].any()
    assert frames.search_summary(search).loc["k = 2", "at the optimum"] is None


def gqa_options() -> dict[float, list[GqaOption]]:
    return {
        0.2: [
            GqaOption(1, "heads", 2, 0, 1, 1, 50.0, 0.5),
            GqaOption(2, "heads", 2, 0, 1, 0, 40.0, 0.0),
            GqaOption(1, "groups", 2, 1, 1, 0, 45.0, 0.0),
            GqaOption(2, "groups", 2, 1, 1, 0, 42.0, 0.0),
        ]
    }


def test_gqa_frames_pick_the_mode_of_higher_similarity() -> None:
    gqa = frames.gqa_frame(gqa_options())
    assert len(gqa) == 4 and set(gqa["target"]) == {0.2}
    both = frames.gqa_similarity(gqa)
    assert both.loc[(0.2, 1), "better"] == "heads"
    assert both.loc[(0.2, 2), "better"] == "groups"
    summary = frames.gqa_summary(gqa)
    assert summary.loc[("20 %", "heads"), "swaps"] == 1
    assert summary.loc[("20 %", "groups"), "layers where it loses less"] == 1
    assert summary.loc[("20 %", "heads"), "heads removed"] == "2"


def test_gqa_study_reads_the_records_and_skips_missing_rules(tmp_path: Path) -> None:
    store = Store(tmp_path / "results")
    assert frames.gqa_study(store, "tiny-gqa", [0.2])[0].empty
    recipe = recipes.pruned(PruneConfig(ratio=0.2, gqa_mode="score"), base="tiny-gqa")
    layers = [{"attention_mode": m} for m in ("heads", "groups", "groups", None)]
    store.put("prune", {"model": recipe}, {"achieved": 0.201, "layers": layers})
    config = perplexity_config(recipe, "wikitext2", dtype="bfloat16", max_windows=512)
    store.put("perplexity", config, {"ppl": 12.5, "ci_low": 12.0, "ci_high": 13.0})
    study, records = frames.gqa_study(store, "tiny-gqa", [0.2])
    assert list(study.index) == [("20 %", "score")]
    row = study.loc[("20 %", "score")]
    assert (row["layers: heads"], row["layers: groups"], row["WikiText-2"]) == (1, 2, 12.5)
    assert len(records) == 2


def test_live_setting_states_the_run_date_and_the_records() -> None:
    params = {
        "model": "tiny-gqa",
        "dtype": "float32",
        "device": "cpu",
        "calib_samples": 4,
        "calib_seq_len": 32,
        "seed": 42,
    }
    sentence = prose.live_setting(params, "smoke")
    assert sentence.startswith("preset smoke: model tiny-gqa in float32 on cpu")
    assert dt.datetime.now(dt.timezone.utc).date().isoformat() in sentence


def panels(fig: Figure) -> int:
    """Axes that hold data (colour bars aside)."""
    return sum(1 for ax in fig.axes if ax.get_label() != "<colorbar>")


def test_lecture_figures_draw_one_panel_per_part() -> None:
    spectra = {"layer 0": torch.tensor([4.0, 2.0, 1.0]), "layer 1": torch.tensor([3.0, 3.0, 1.0])}
    cov = torch.tensor([[2.0, 0.5, 0.0], [0.5, 1.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    assert panels(figures.correlation_and_spectra(cov, spectra)) == 2
    assert panels(figures.explained_variance(list(spectra.values()))) == 1
    assert panels(figures.eigen_weight_curves(spectra)) == 2
    assert panels(figures.head_loss_map(torch.rand(3, 4), num_groups=2)) == 1
    stats = head_stats(3)
    assert panels(figures.reduction_agreement(frames.reduction_agreement(stats, stats, 2), 2)) == 1
    search = frames.search_vs_exhaustive(stats, [1, 2], 100)
    assert panels(figures.search_gaps(search, 4)) == 2
    assert panels(figures.gqa_modes(frames.gqa_similarity(frames.gqa_frame(gqa_options())), 6)) == 1
    shape = {"query_heads": 4, "kv_heads": 2, "intermediate_size": 64}
    assert panels(figures.pipeline(shape, 4, 32, 42)) == 1


def test_gqa_frame_of_no_options_is_empty() -> None:
    assert frames.gqa_frame({}).equals(pd.DataFrame())
