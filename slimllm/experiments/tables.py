"""Table 1 from its store records: rows, a Markdown table, and who beats SlimLLM where.

A "table1" record (benchmarks/table1.py) holds one row per model: method, ratio, tuned, seed,
achieved ratio, and for each column its value, interval and the record it came from (None
where that cell has not been measured yet). These functions only read rows; they never
measure, so the README and the book show exactly what the records hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from slimllm.measure.lm_eval_tasks import SEVEN_TASKS

PPL_COLUMNS = ("wikitext2", "ptb")


#: Values closer than this are a tie (accuracies of the same items are often exactly equal).
TIE = 1e-9


COLUMN_NAMES = {
    "wikitext2": "WikiText-2",
    "ptb": "PTB",
    "boolq": "BoolQ",
    "piqa": "PIQA",
    "hellaswag": "HellaSwag",
    "winogrande": "WinoGrande",
    "arc_easy": "ARC-e",
    "arc_challenge": "ARC-c",
    "openbookqa": "OBQA",
    "mean": "Mean",
}


def columns() -> list[str]:
    """Table 1's columns in the paper's order: two perplexities, seven tasks, their mean."""
    return [*PPL_COLUMNS, *SEVEN_TASKS, "mean"]


def lower_is_better(column: str) -> bool:
    return column in PPL_COLUMNS


def cell(row: dict[str, Any], column: str) -> tuple[float, float, float] | None:
    """(value, low, high) of one cell; accuracies in percent; None where not measured."""
    if column in PPL_COLUMNS:
        found = row.get(column)
        return None if found is None else (found["ppl"], *found["ci"])
    zeroshot = row.get("zeroshot")
    if zeroshot is None:
        return None
    if column == "mean":
        value = 100 * zeroshot["mean"]
        return value, value, value
    task = zeroshot["tasks"][column]
    value, err = 100 * task["value"], 100 * task["stderr"]
    return value, value - 1.96 * err, value + 1.96 * err


def row_name(row: dict[str, Any]) -> str:
    tune = " w/ tune" if row["tuned"] else ""
    seed = f" (seed {row['seed']})" if row.get("extra_seed") else ""
    return f"{row['method']}{tune}{seed}"


def markdown(rows: Sequence[dict[str, Any]]) -> str:
    """Table 1 as Markdown; ± is the half-width of the 95 % interval (perplexity: bootstrap over
    windows; accuracy: 1.96 standard errors); '-' marks a cell not measured yet."""
    cols = columns()
    head = ["Ratio", "Method", "Achieved", *(COLUMN_NAMES[c] for c in cols)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        values = []
        for column in cols:
            found = cell(row, column)
            if found is None:
                values.append("-")
            elif column == "mean":
                values.append(f"{found[0]:.2f}")
            else:
                values.append(f"{found[0]:.1f} ±{(found[2] - found[1]) / 2:.1f}")
        achieved = "-" if row.get("achieved") is None else f"{100 * row['achieved']:.1f} %"
        ratio = "0 %" if row["ratio"] == 0 else f"{row['ratio']:.0%}"
        lines.append("| " + " | ".join([ratio, row_name(row), achieved, *values]) + " |")
    return "\n".join(lines)


def _overlap(a: tuple[float, float, float], b: tuple[float, float, float]) -> bool:
    return a[1] <= b[2] and b[1] <= a[2]


def not_first(rows: Sequence[dict[str, Any]], reference: str = "slimllm") -> list[str]:
    """One sentence per (ratio, tuning, column) where `reference` is not the best method.

    Rows of extra calibration seeds are left out (they are compared by `seed_spread`); a group
    without a measured `reference` cell says nothing about that cell.
    """
    sentences = []
    groups: dict[tuple[float, bool], list[dict[str, Any]]] = {}
    for row in rows:
        if row["method"] != "dense" and not row.get("extra_seed"):
            groups.setdefault((row["ratio"], row["tuned"]), []).append(row)
    for (ratio, tuned), members in groups.items():
        ours = next((r for r in members if r["method"] == reference), None)
        if ours is None:
            continue
        others = [r for r in members if r["method"] != reference]
        where = f"At {ratio:.0%} {'with' if tuned else 'without'} tuning"
        for column in columns():
            mine = cell(ours, column)
            measured = [(r, cell(r, column)) for r in others]
            measured = [(r, c) for r, c in measured if c is not None]
            if mine is None or not measured:
                continue
            sign = 1 if lower_is_better(column) else -1
            best_row, best = min(measured, key=lambda rc: sign * rc[1][0])
            gap = sign * (mine[0] - best[0])
            if gap < -TIE:
                continue
            name = COLUMN_NAMES[column]
            unit = "perplexity" if lower_is_better(column) else "accuracy"
            within = (
                " (the 95 % intervals overlap)" if column != "mean" and _overlap(mine, best) else ""
            )
            verb = "ties with SlimLLM on" if gap <= TIE else "has the better"
            sentences.append(
                f"{where}, {best_row['method']} {verb} {name} {unit}: "
                f"{best[0]:.2f} against SlimLLM's {mine[0]:.2f}{within}."
            )
    return sentences


def seed_spread(rows: Sequence[dict[str, Any]], column: str) -> dict[str, list[float]]:
    """Values of `column` across calibration seeds at 50 % without tuning, per method."""
    spread: dict[str, list[float]] = {}
    for row in rows:
        if row["ratio"] == 0.5 and not row["tuned"] and row.get("seed") is not None:
            found = cell(row, column)
            if found is not None:
                spread.setdefault(row["method"], []).append(found[0])
    return {m: v for m, v in spread.items() if len(v) > 1}


def seed_sentences(
    rows: Sequence[dict[str, Any]], column: str, reference: str = "slimllm"
) -> list[str]:
    """Per method run with several seeds at 50 %, whether its order against `reference` on
    `column` survives seed noise: apart when every seed of one beats every seed of the other."""
    spread = seed_spread(rows, column)
    mine = spread.get(reference)
    if mine is None:
        return []
    name = COLUMN_NAMES[column]
    sign = 1 if lower_is_better(column) else -1

    def span(values: list[float]) -> str:
        mean = sum(values) / len(values)
        return f"{min(values):.2f} to {max(values):.2f} (mean {mean:.2f})"

    sentences = []
    for method, theirs in spread.items():
        if method == reference:
            continue
        # In `sign` units lower is better: compare one side's worst seed with the other's best.
        if max(sign * v for v in mine) < min(sign * v for v in theirs):
            verdict = "every SlimLLM seed is better, so SlimLLM is first beyond seed noise"
        elif max(sign * v for v in theirs) < min(sign * v for v in mine):
            verdict = f"every {method} seed is better, so {method} is first beyond seed noise"
        else:
            verdict = "the ranges overlap, so their order is within seed noise"
        sentences.append(
            f"At 50 % over {len(mine)} and {len(theirs)} calibration seeds, SlimLLM's {name} "
            f"spans {span(mine)} and {method}'s {span(theirs)}: {verdict}."
        )
    return sentences
