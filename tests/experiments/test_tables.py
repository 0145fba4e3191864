"""Table 1 from rows: cells, the Markdown table, and the sentences where SlimLLM is not first."""

from __future__ import annotations

from typing import Any

import pytest

from slimllm.experiments import tables
from slimllm.measure.lm_eval_tasks import SEVEN_TASKS


def row(method: str, wt2: float, acc: float, ratio: float = 0.2, **extra: Any) -> dict[str, Any]:
    tasks = {t: {"value": acc, "stderr": 0.01, "metric": "acc"} for t in SEVEN_TASKS}
    return {
        "method": method,
        "ratio": ratio,
        "tuned": False,
        "seed": 42,
        "achieved": ratio,
        "wikitext2": {"ppl": wt2, "ci": [wt2 - 1, wt2 + 1]},
        "ptb": {"ppl": 2 * wt2, "ci": [2 * wt2 - 30, 2 * wt2 + 30]},
        "zeroshot": {"tasks": tasks, "mean": acc},
        **extra,
    }


def test_cells_are_percent_with_normal_intervals() -> None:
    value, low, high = tables.cell(row("slimllm", 100.0, 0.5), "piqa")
    assert (value, round(low, 4), round(high, 4)) == (50.0, 48.04, 51.96)
    assert tables.cell(row("slimllm", 100.0, 0.5), "wikitext2") == (100.0, 99.0, 101.0)
    assert tables.cell({**row("x", 1.0, 0.1), "zeroshot": None}, "mean") is None


def test_markdown_marks_missing_cells() -> None:
    text = tables.markdown([row("slimllm", 100.0, 0.5), {**row("flap", 90.0, 0.4), "ptb": None}])
    lines = text.splitlines()
    assert len(lines) == 4 and lines[0].count("|") == len(tables.columns()) + 4
    assert "| 100.0 ±1.0 |" in lines[2] and "| - |" in lines[3]


def test_not_first_names_every_column_a_peer_wins() -> None:
    rows = [row("slimllm", 100.0, 0.5), row("flap", 99.5, 0.4), row("random", 300.0, 0.45)]
    sentences = tables.not_first(rows)
    # flap wins both perplexities (lower is better), no accuracy: SlimLLM's 50 % is the best.
    assert len(sentences) == 2
    assert sentences[0].startswith("At 20% without tuning, flap has the better WikiText-2")
    assert "intervals overlap" in sentences[0]
    assert "PTB" in sentences[1]


def test_not_first_reports_ties_and_skips_extra_seeds() -> None:
    rows = [
        row("slimllm", 100.0, 0.5),
        row("flap", 120.0, 0.5),
        row("flap", 50.0, 0.9, extra_seed=True, seed=43),
    ]
    sentences = tables.not_first(rows)
    assert len(sentences) == len(SEVEN_TASKS) + 1
    assert all("ties with SlimLLM" in s for s in sentences)


def test_seed_spread_lists_methods_with_several_seeds() -> None:
    rows = [
        row("slimllm", 100.0, 0.5, ratio=0.5),
        row("slimllm", 110.0, 0.5, ratio=0.5, seed=43, extra_seed=True),
        row("flap", 120.0, 0.5, ratio=0.5),
    ]
    assert tables.seed_spread(rows, "wikitext2") == {"slimllm": [100.0, 110.0]}


@pytest.mark.parametrize(
    ("theirs", "verdict"),
    [
        ((120.0, 130.0), "SlimLLM is first beyond seed noise"),
        ((90.0, 95.0), "flap is first beyond seed noise"),
        ((105.0, 125.0), "within seed noise"),
    ],
)
def test_seed_sentences_judge_the_order_against_seed_noise(
    theirs: tuple[float, float], verdict: str
) -> None:
    rows = [
        row("slimllm", 100.0, 0.5, ratio=0.5),
        row("slimllm", 110.0, 0.5, ratio=0.5, seed=43, extra_seed=True),
        row("flap", theirs[0], 0.5, ratio=0.5),
        row("flap", theirs[1], 0.5, ratio=0.5, seed=43, extra_seed=True),
    ]
    (sentence,) = tables.seed_sentences(rows, "wikitext2")
    assert verdict in sentence
    assert "SlimLLM's WikiText-2 spans 100.00 to 110.00 (mean 105.00)" in sentence
    assert tables.seed_sentences(rows[2:], "wikitext2") == []
    # Accuracy: higher is better, so the verdicts swap with the same numbers.
    accuracy = [{**r, "zeroshot": {"tasks": {}, "mean": r["wikitext2"]["ppl"] / 100}} for r in rows]
    (sentence,) = tables.seed_sentences(accuracy, "mean")
    swapped = {"SlimLLM is first": "flap is first", "flap is first": "SlimLLM is first"}
    assert swapped.get(verdict.split(" beyond")[0], "within seed noise") in sentence
