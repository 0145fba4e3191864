"""The Results pages' tables, figures and sentences, one call each, all read from the store.

Every number a page shows comes from a record (its key is kept with it, `numbers` lists them)
or, labelled as such, from the paper (`slimllm.experiments.paper`). A cell whose record is not
in the store yet reads "not run yet" and the page lists the command that measures it. The
pages call these with the store of their `results_dir` parameter (None: the book's results/,
or $SLIMLLM_RESULTS_DIR, which the smoke preset points at an empty scratch folder).

    python -m slimllm.book.results --readme     # the README's headline table, from the records
"""

from __future__ import annotations

import argparse
import html
import math
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from IPython.display import HTML, Markdown, display
from transformers import AutoConfig

from slimllm.book import budget, presets, report, run_notebooks
from slimllm.experiments import claims, paper, recompute, tables
from slimllm.experiments.paper import PaperRow
from slimllm.experiments.store import CHECKOUT_RESULTS, Record, Store, config_key
from slimllm.experiments.tables import COLUMN_NAMES, Cell, Evidence, Spec
from slimllm.measure.perplexity import PROTOCOLS
from slimllm.method.config import PruneConfig
from slimllm.method.memory import CUDA_CONTEXT_BYTES, streaming_peak_bytes
from slimllm.models.reference_configs import REFERENCE_CONFIGS

NOT_RUN = "not run yet"


def evidence(results_dir: str | None = None) -> Evidence:
    """The book's store (or `results_dir`), read once per kind."""
    return Evidence(Store.book(results_dir))


@dataclass
class Row:
    """One table row as read: the spec, our cells, the dense row's cells, each seed's cell."""

    spec: Spec
    cells: dict[str, Cell | None]
    dense: dict[str, Cell | None]
    seeds: dict[str, list[Cell]]
    refusal: Record | None


def read(ev: Evidence, specs: Sequence[Spec], columns: Sequence[str]) -> list[Row]:
    """Each spec's cells, its model's dense cells, and the seed runs of its columns."""
    out = []
    for spec in specs:
        dense = ev.row(tables.recipe("dense", base=spec.recipe["base"]))
        seeds = {c: ev.seeds(spec.recipe, c) for c in columns}
        out.append(Row(spec, ev.row(spec.recipe), dense, seeds, ev.refusal(spec.recipe)))
    return out


def numbers(rows: Sequence[Row]) -> list[tuple[str, str, float, str]]:
    """Every number of our side of a table: (row, column, value, record key)."""
    found = []
    for row in rows:
        for column, cell in row.cells.items():
            if cell is not None:
                found.append((row.spec.label, column, cell.value, cell.record))
        for column, seeds in row.seeds.items():
            found += [(row.spec.label, f"{column} seed", c.value, c.record) for c in seeds]
    return found


def _value(cell: Cell | None, column: str) -> str:
    if cell is None:
        return NOT_RUN
    if column == "achieved":
        return f"{cell.value:.1f} %"
    digits = 1 if tables.lower_is_better(column) else 2
    return f"{cell.value:.{digits}f} ±{cell.half:.{digits}f}"


def _change(value: float | None, base: float | None) -> str:
    if value is None or base is None:
        return ""
    return f"{value / base - 1:+.0%}"


def _seeds(cells: list[Cell], column: str) -> str:
    if len(cells) < 2:
        return ""
    digits = 1 if tables.lower_is_better(column) else 2
    values = [c.value for c in cells]
    return f"{min(values):.{digits}f}–{max(values):.{digits}f} ({len(cells)})"


def frame(rows: Sequence[Row], columns: Sequence[str], model: str = "SmolLM2-135M") -> pd.DataFrame:
    """Per column: ours (± the 95 % interval), the range over seeds where run, the change
    relative to our dense model, and beside them the paper's value and its change relative to
    the paper's dense model (`model`: how the header names our side)."""
    with_paper = any(r.spec.paper for r in rows)
    with_seeds = {c: any(len(r.seeds.get(c, [])) > 1 for r in rows) for c in columns}
    records = []
    for row in rows:
        entry: dict[tuple[str, str], str] = {}
        if any("prune" in r.spec.recipe for r in rows):
            entry[("", "achieved")] = (
                _value(row.cells["achieved"], "achieved") if "prune" in row.spec.recipe else ""
            )
        for column in columns:
            name = COLUMN_NAMES[column]
            cell, base = row.cells[column], row.dense[column]
            if row.refusal is not None:
                entry[(name, model)] = f"refused ({row.refusal.result.get('error', '?')})"
            else:
                entry[(name, model)] = _value(cell, column)
            if with_seeds[column]:
                entry[(name, "seeds")] = _seeds(row.seeds.get(column, []), column)
            entry[(name, "Δ dense")] = _change(
                None if cell is None else cell.value, None if base is None else base.value
            )
            if with_paper:
                found = None if row.spec.paper is None else row.spec.paper.values.get(column)
                entry[(name, "paper")] = "" if found is None else f"{found:g}"
                entry[(name, "paper Δ")] = (
                    ""
                    if row.spec.paper is None
                    else _change(found, _paper_base(row.spec.paper, column))
                )
        if with_paper:
            entry[("", "paper's row")] = "" if row.spec.paper is None else _short(row.spec.paper)
        records.append(entry)
    out = pd.DataFrame.from_records(records)
    out.columns = pd.MultiIndex.from_tuples(out.columns)
    out.index = pd.MultiIndex.from_tuples(
        [(r.spec.group, r.spec.label) for r in rows], names=["", "row"]
    )
    return out


def _short(row: PaperRow) -> str:
    """Where a paper value comes from, e.g. "Table 4, LLaMA-7B" (its row is the one of the
    same method, setting, ratio and tuning)."""
    where = f"Table {row.table}" if isinstance(row.table, int) else f"{row.source}'s README"
    return f"{where}, {row.model}"


def frames(rows: Sequence[Row], columns: Sequence[str], model: str = "SmolLM2-135M") -> None:
    """`frame` for one column at a time, each under its name (narrow enough for the page)."""
    for column in columns:
        display(Markdown(f"**{COLUMN_NAMES[column]}**"))
        display(frame(rows, [column], model))


def _paper_base(row: PaperRow, column: str) -> float | None:
    return paper.dense(row.table).values.get(column)


def task_frame(rows: Sequence[Row]) -> pd.DataFrame:
    """The seven tasks and their mean (ours, ± 1.96 standard errors) of each row."""
    columns = [c for c in tables.columns() if c not in tables.PPL_COLUMNS]
    records = []
    for row in rows:
        entry = {"": row.spec.group, "row": row.spec.label}
        for column in columns:
            entry[COLUMN_NAMES[column]] = _value(row.cells[column], column)
        records.append(entry)
    return pd.DataFrame.from_records(records).set_index(["", "row"])


def missing(rows: Sequence[Row], columns: Sequence[str]) -> Markdown:
    """Which rows lack which cells, and the command that measures them."""
    by_command: dict[str, list[str]] = {}
    for row in rows:
        if row.refusal is not None:
            continue
        lacking = [COLUMN_NAMES[c] for c in columns if row.cells[c] is None]
        if lacking:
            by_command.setdefault(tables.COMMANDS[row.spec.command], []).append(
                f"{row.spec.group} {row.spec.label} ({', '.join(lacking)})"
            )
    if not by_command:
        return Markdown("Every cell of this table has its record.")
    lines = [
        f"- {NOT_RUN}: {'; '.join(labels)}. Command: `{command}`"
        for command, labels in by_command.items()
    ]
    return Markdown("**Cells not run yet**\n\n" + "\n".join(lines))


def refusals(rows: Sequence[Row]) -> Markdown:
    """The methods that refused a model, with the stored error."""
    lines = [
        f"- {row.spec.group} {row.spec.label}: {row.refusal.result.get('error', '?')}: "
        f"{row.refusal.result.get('message', '')} (record `{row.refusal.key}`)"
        for row in rows
        if row.refusal is not None
    ]
    return Markdown("\n".join(lines) if lines else "No method refused a model.")


# --- figures --------------------------------------------------------------------------------


def _empty(ax: Any, what: str) -> None:
    ax.text(0.5, 0.5, f"{what}: {NOT_RUN}", ha="center", va="center", transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def relative_figure(rows: Sequence[Row], title: str, model: str = "SmolLM2-135M") -> None:
    """WikiText-2 perplexity and zero-shot mean relative to dense: ours beside the paper's."""
    fig, axes = report.figure(ncols=2, width=11, height=0.45 * max(len(rows), 4) + 1.2)
    for ax, column, label in (
        (axes[0], "wikitext2", "WikiText-2 perplexity / dense (log scale)"),
        (axes[1], "mean", "zero-shot mean / dense"),
    ):
        names, ours, theirs = [], [], []
        for row in rows:
            cell, base = row.cells[column], row.dense[column]
            if cell is None or base is None or "prune" not in row.spec.recipe:
                continue
            names.append(f"{row.spec.group} {row.spec.label}")
            ours.append(cell.value / base.value)
            found = None if row.spec.paper is None else row.spec.paper.values.get(column)
            base_paper = None if row.spec.paper is None else _paper_base(row.spec.paper, column)
            theirs.append(math.nan if found is None or base_paper is None else found / base_paper)
        if not names:
            _empty(ax, label)
            continue
        y = range(len(names))
        ax.barh([i - 0.2 for i in y], ours, 0.4, label=model)
        ax.barh([i + 0.2 for i in y], theirs, 0.4, label="the paper (LLaMA-7B etc.)")
        ax.set_yticks(list(y), names)
        ax.invert_yaxis()
        ax.axvline(1.0, color="gray", lw=0.8)
        if column == "wikitext2":
            ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.legend(loc="lower right")
    fig.suptitle(title)
    report.show(fig)


# --- verdicts -------------------------------------------------------------------------------


def verdict_lines(results_dir: str | None, keys: Sequence[str]) -> Markdown:
    """The verdicts of the named claims, as sentences computed from the store."""
    ev = evidence(results_dir)
    chosen = [claim(ev) for claim in claims.CLAIMS]
    lines = [
        f"- **{v.claim}** Verdict: **{v.verdict}**. {v.sentence} (records: "
        f"{', '.join(f'`{k}`' for k in v.records) or 'none'})"
        for v in chosen
        if v.key in keys
    ]
    return Markdown("\n".join(lines))


# --- the pages ------------------------------------------------------------------------------

TABLE1_COLUMNS = ("wikitext2", "ptb", "mean")
ABLATION_COLUMNS = ("wikitext2", "ptb", "mean")


def table1_rows(results_dir: str | None = None) -> list[Row]:
    """Table 1: dense and every method at 20 % and 50 %, SlimLLM and LLM-Pruner tuned."""
    return read(evidence(results_dir), tables.table1_specs(), tables.columns())


def first_sentences(results_dir: str | None = None) -> Markdown:
    """Where SlimLLM is not first, and whether seed noise could change the 50 % order: the
    `table1` record's rows, in sentences written by `slimllm.experiments.tables`."""
    store = Store.book(results_dir)
    found = sorted(store.records("table1"), key=lambda r: r.environment.get("measured_at", ""))
    if not found:
        return Markdown(f"The `table1` record is {NOT_RUN} (`{tables.COMMANDS['table1']}`).")
    rows = found[-1].result["rows"]
    lines = [f"- {s}" for s in tables.not_first(rows)]
    for column in TABLE1_COLUMNS:
        lines += [f"- {s}" for s in tables.seed_sentences(rows, column)]
    return Markdown(f"From the `table1` record `{found[-1].key}`:\n\n" + "\n".join(lines))


def flap_rows(results_dir: str | None = None) -> list[Row]:
    """FLAP at 50 % in our harness and closer to its authors' set-up."""
    return read(evidence(results_dir), tables.flap_specs(), TABLE1_COLUMNS)


def ablation_rows(table: int, results_dir: str | None = None) -> list[Row]:
    """The rows of Table 4, 5, 6 or 7 (SmolLM2, seeds 42-44 where run)."""
    specs = {
        4: tables.table4_specs,
        5: tables.table5_specs,
        6: tables.table6_specs,
        7: tables.table7_specs,
    }[table]()
    return read(evidence(results_dir), specs, ABLATION_COLUMNS)


def other_model_rows(results_dir: str | None = None) -> list[Row]:
    """Tables 2, 8 and 9: Gemma-3-270M and SmolLM2 at fractions of the decoder."""
    return read(evidence(results_dir), tables.other_model_specs(), TABLE1_COLUMNS)


#: The peers SlimLLM is weighed against on the other models (Table 2: LoRAP; Table 1: LLM-Pruner).
OTHER_MODEL_PEERS = ("lorap-ffn", "llm-pruner")


def other_model_lines(rows: Sequence[Row]) -> Markdown:
    """SlimLLM against each peer on each other model and ratio (untuned, both perplexities),
    the words chosen from the intervals (`claims.compare`)."""
    found: dict[tuple[str, float, str], Row] = {}
    for row in rows:
        prune = row.spec.recipe.get("prune")
        if prune is not None and "tune" not in row.spec.recipe:
            found[(row.spec.recipe["base"], prune["ratio"], prune["method"])] = row
    lines = []
    for (base, ratio, method), ours in sorted(found.items()):
        if method != "slimllm":
            continue
        for peer in OTHER_MODEL_PEERS:
            theirs = found.get((base, ratio, peer))
            if theirs is None:
                continue
            parts = [
                f"{COLUMN_NAMES[c]} {a.value:.1f} against {b.value:.1f} "
                f"({claims.compare([a], [b], c)})"
                for c in ("wikitext2", "ptb")
                if (a := ours.cells[c]) is not None and (b := theirs.cells[c]) is not None
            ]
            if parts:
                lines.append(
                    f"- {model_name(base)} at {ratio:.0%} of the decoder, SlimLLM against "
                    f"`{peer}`: " + "; ".join(parts) + "."
                )
    if not lines:
        return Markdown(f"SlimLLM against its peers on the other models: {NOT_RUN}.")
    return Markdown(
        "SlimLLM against its peers here (better or worse where the 95 % intervals part, tie "
        "where they overlap; lower perplexity is better). The paper finds SlimLLM ahead of "
        "LoRAP on most datasets of LLaMA2-7B (its Table 2) and of LLM-Pruner on LLaMA-7B (its "
        "Table 1):\n\n" + "\n".join(lines)
    )


def paper_frame(table: int) -> pd.DataFrame:
    """One of the paper's tables as printed there (the paper's numbers, not ours)."""
    rows = paper.TABLES[table]
    return pd.DataFrame.from_records(
        [
            {
                "model": r.model,
                "ratio": f"{r.ratio:.0%}",
                "row": f"{r.method} {r.setting}".strip() + (" w/ tune" if r.tuned else ""),
                **{COLUMN_NAMES.get(k, k): v for k, v in r.values.items()},
            }
            for r in rows
        ]
    ).set_index(["model", "ratio", "row"])


def calibration_figure(rows: Sequence[Row]) -> None:
    """Table 7: perplexity relative to the 32-sample default against the number of calibration
    samples, ours (each seed and their mean) beside the paper's."""
    fig, axes = report.figure(ncols=2, width=11, height=3.6)
    counts = {row.spec.label: row.spec.recipe["prune"]["calib_samples"] for row in rows}
    default = next(r for r in rows if counts[r.spec.label] == 32)
    for ax, column in zip(axes, ("wikitext2", "ptb"), strict=True):
        base = default.seeds[column] or [c for c in [default.cells[column]] if c is not None]
        ours = [(counts[r.spec.label], r.seeds[column] or [r.cells[column]]) for r in rows]
        ours = [(n, [c for c in cells if c is not None]) for n, cells in ours]
        ours = [(n, cells) for n, cells in ours if cells]
        if not base or len(ours) < 2:
            _empty(ax, f"{COLUMN_NAMES[column]} against the calibration size")
            continue
        ref = sum(c.value for c in base) / len(base)
        for n, cells in ours:
            ax.scatter([n] * len(cells), [c.value / ref for c in cells], color="C0", s=12)
        means = [sum(c.value for c in cells) / len(cells) / ref for _, cells in ours]
        ax.plot([n for n, _ in ours], means, color="C0", label="SmolLM2-135M (seeds, mean)")
        theirs = [(counts[r.spec.label], r.spec.paper.values[column]) for r in rows if r.spec.paper]
        paper_ref = default.spec.paper.values[column] if default.spec.paper else math.nan
        ax.plot(
            [n for n, _ in theirs],
            [v / paper_ref for _, v in theirs],
            color="C1",
            marker="s",
            label="the paper (LLaMA-7B)",
        )
        ax.set_xscale("log", base=2)
        ax.axhline(1.0, color="gray", lw=0.8)
        ax.set_xlabel("calibration samples of 128 tokens")
        ax.set_ylabel(f"{COLUMN_NAMES[column]} perplexity / at 32 samples")
        ax.legend()
    fig.suptitle("Table 7: perplexity against the calibration size")
    report.show(fig)


def retention_figure(rows: Sequence[Row]) -> None:
    """Tables 2/8/9: WikiText-2 perplexity relative to each model's dense, per model."""
    fig, ax = report.figure(width=9, height=3.8)
    bases = sorted({r.spec.group for r in rows})
    names = sorted({r.spec.label for r in rows if "prune" in r.spec.recipe})
    plotted = False
    for j, base in enumerate(bases):
        values = []
        for name in names:
            row = next((r for r in rows if r.spec.group == base and r.spec.label == name), None)
            cell = None if row is None else row.cells["wikitext2"]
            dense = None if row is None else row.dense["wikitext2"]
            values.append(math.nan if cell is None or dense is None else cell.value / dense.value)
        plotted |= any(not math.isnan(v) for v in values)
        width = 0.8 / len(bases)
        ax.bar(
            [i + (j - (len(bases) - 1) / 2) * width for i in range(len(names))],
            values,
            width,
            label=base,
        )
    if not plotted:
        _empty(ax, "WikiText-2 relative to dense")
    else:
        ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
        ax.set_yscale("log")
        ax.set_ylabel("WikiText-2 perplexity / dense")
        ax.legend()
    ax.set_title("Loss relative to each model's dense (ratios of the decoder)")
    report.show(fig)


def coefficients_figure(results_dir: str | None = None) -> None:
    """Figure 2: the mean regression scale A of o_proj and down_proj per layer, SlimLLM 50 %."""
    rec = evidence(results_dir).find("prune", tables.recipe())
    fig, ax = report.figure(width=8, height=3.4)
    if rec is None:
        _empty(ax, "the SlimLLM 50 % prune record")
    else:
        layers = [lay for lay in rec.result["layers"] if lay.get("attn_a_mean") is not None]
        index = [lay["index"] for lay in layers]
        ax.plot(
            index,
            [lay["attn_a_mean"] for lay in layers],
            marker="o",
            ms=3,
            label="attention (o_proj)",
        )
        ax.plot(
            index, [lay["mlp_a_mean"] for lay in layers], marker="s", ms=3, label="MLP (down_proj)"
        )
        band = claims.A_TOLERANCE
        ax.axhspan(1 - band, 1 + band, color="gray", alpha=0.15, label=f"1 ± {band}")
        ax.set_xlabel("layer")
        ax.set_ylabel("mean of A")
        ax.legend()
        ax.set_title(f"Mean regression scale per layer, SmolLM2 at 50 % (record {rec.key})")
    report.show(fig)


# --- Table 3 --------------------------------------------------------------------------------


def _quartiles(timing: dict[str, float], scale: float, digits: int) -> str:
    """ "median (q1-q3)" of a latency entry, scaled (1e3: milliseconds)."""
    median, q1, q3 = (scale * timing[k] for k in ("median", "q1", "q3"))
    return f"{median:.{digits}f} ({q1:.{digits}f}-{q3:.{digits}f})"


def latency_frame(results_dir: str | None = None) -> pd.DataFrame:
    """Table 3: prefill and decode medians (quartiles) and ratios to dense, beside the paper's."""
    ev = evidence(results_dir)
    found = [r for r in ev.records("latency") if "dense" in r.result.get("models", {})]
    if not found:
        return pd.DataFrame({"latency": [f"{NOT_RUN} (`{tables.COMMANDS['table3']}`)"]})
    rec = max(found, key=lambda r: r.result["spec"]["new_tokens"])
    models = rec.result["models"]
    tokens = rec.result["spec"]["new_tokens"]
    theirs = {r.ratio: r.values for r in paper.TABLE3}
    records = []
    for name, m in models.items():
        ratio = 0.0 if name == "dense" else float(name.split()[1].rstrip("%")) / 100
        p = theirs.get(ratio) if "round" not in name else None
        records.append(
            {
                "model": name,
                "GQA rule": rec.config["models"].get(name, {}).get("prune", {}).get("gqa_mode", ""),
                "params (M)": f"{m['parameters']['total'] / 1e6:.1f}",
                "prefill (ms)": _quartiles(m["prefill"], 1e3, 0),
                f"decode {tokens} tok (s)": _quartiles(m["decode"], 1.0, 2),
                "prefill / dense": f"{m['ratios']['prefill_time']:.3f}",
                "decode / dense": f"{m['ratios']['decode_time']:.3f}",
                "FLOPs prefill / dense": f"{m['ratios']['prefill_flops']:.3f}",
                "paper params (B)": "" if p is None else f"{p['params_b']:g}",
                "paper prefill (s)": "" if p is None else f"{p['prefill_s']:g}",
                "paper decode 256 tok (s)": "" if p is None else f"{p['decode_s']:g}",
                "paper prefill / dense": ""
                if p is None
                else f"{p['prefill_s'] / theirs[0.0]['prefill_s']:.3f}",
                "paper decode / dense": ""
                if p is None
                else f"{p['decode_s'] / theirs[0.0]['decode_s']:.3f}",
                "record": rec.key,
            }
        )
    return pd.DataFrame.from_records(records).set_index("model")


def latency_figure(results_dir: str | None = None) -> None:
    """Time ratios to dense of prefill and decode, ours beside the paper's, and the FLOP ratio."""
    ev = evidence(results_dir)
    found = [r for r in ev.records("latency") if "dense" in r.result.get("models", {})]
    fig, ax = report.figure(width=8, height=3.6)
    if not found:
        _empty(ax, "latency")
    else:
        rec = max(found, key=lambda r: r.result["spec"]["new_tokens"])
        models = {k: v for k, v in rec.result["models"].items() if "round" not in k}
        theirs = {r.ratio: r.values for r in paper.TABLE3}
        names = list(models)
        x = range(len(names))
        ax.bar(
            [i - 0.3 for i in x],
            [models[n]["ratios"]["prefill_time"] for n in names],
            0.2,
            label="prefill, ours",
        )
        ax.bar(
            [i - 0.1 for i in x],
            [models[n]["ratios"]["decode_time"] for n in names],
            0.2,
            label="decode, ours",
        )
        ax.bar(
            [i + 0.1 for i in x],
            [models[n]["ratios"]["prefill_flops"] for n in names],
            0.2,
            label="prefill FLOPs, ours",
        )
        paper_prefill = [
            theirs[0.0 if n == "dense" else float(n.split()[1].rstrip("%")) / 100]["prefill_s"]
            / theirs[0.0]["prefill_s"]
            for n in names
        ]
        ax.bar(
            [i + 0.3 for i in x], paper_prefill, 0.2, label="prefill, the paper (LLaMA-7B, V100)"
        )
        ax.set_xticks(list(x), names)
        ax.set_ylabel("relative to dense")
        ax.legend(fontsize=7)
    ax.set_title("Table 3: time and FLOPs relative to dense")
    report.show(fig)


# --- claims and cost ------------------------------------------------------------------------


def _code(text: str) -> str:
    """HTML-escaped text with `backticks` as <code>."""
    parts = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def _link(page: str) -> str:
    return f'<a href="{page}.html">{html.escape(page.removeprefix("../"))}</a>'


def claims_table(results_dir: str | None = None) -> HTML:
    """Every claim with its verdict and a link to the page its numbers come from."""
    found = claims.verdicts(Store.book(results_dir))
    body = "".join(
        f"<tr><td>{_code(v.claim)}</td><td><b>{v.verdict}</b></td><td>{_link(v.page)}</td></tr>"
        for v in found
    )
    head = "<tr><th>claim</th><th>verdict</th><th>page</th></tr>"
    return HTML(f"<table><thead>{head}</thead><tbody>{body}</tbody></table>")


def claims_details(results_dir: str | None = None) -> HTML:
    """Each claim's verdict, the numbers behind it, the command and the records it read."""
    found = claims.verdicts(Store.book(results_dir))
    blocks = []
    for v in found:
        keys = ", ".join(f"<code>{k}</code>" for k in v.records) or "none yet"
        blocks.append(
            f"<p><b>{_code(v.claim)}</b> Verdict: <b>{v.verdict}</b> ({_link(v.page)}).</p>"
            f"<p>{_code(v.sentence)}</p>"
            f"<p>Command: <code>{html.escape(v.command)}</code></p>"
            f"<details><summary>{len(v.records)} records</summary><p>{keys}</p></details><hr>"
        )
    return HTML("".join(blocks))


#: The book's names of the models of `config["model"]["base"]`.
MODEL_NAMES = {"smollm2-135m": "SmolLM2-135M", "gemma3-270m": "Gemma-3-270M"}


def model_name(base: str) -> str:
    """The book's name of a model ("smollm2-135m": "SmolLM2-135M"); others as given."""
    return MODEL_NAMES.get(base, base)


def models_of(records: Iterable[Record]) -> str:
    """The names of the records' models (config["model"]["base"]), most records first."""
    bases = Counter(
        r.config["model"].get("base") for r in records if isinstance(r.config.get("model"), dict)
    )
    return " and ".join(model_name(b) for b, _ in bases.most_common() if b)


def claims_figure(results_dir: str | None = None) -> None:
    """How many claims have each verdict."""
    store = Store.book(results_dir)
    found = claims.verdicts(store)
    cited = {key for v in found for key in v.records}
    models = models_of(r for r in store.records() if r.key in cited)
    counts = [sum(v.verdict == name for v in found) for name in claims.VERDICTS]
    fig, ax = report.figure(width=7, height=2.8)
    ax.barh(list(claims.VERDICTS), counts)
    ax.invert_yaxis()
    ax.set_xlabel("claims")
    ax.set_title(
        f"Verdicts of the paper's {len(found)} claims" + (f" on {models}" if models else "")
    )
    report.show(fig)


def cost_frame(results_dir: str | None = None) -> pd.DataFrame:
    """Pruning time and memory of every method (`prune_cost` records with a method field)."""
    ev = evidence(results_dir)
    records = [
        {
            "method": r.result["method"],
            "ratio": f"{r.result['target']:.0%}",
            "achieved": f"{100 * r.result['achieved']:.1f} %",
            "pruning (s)": f"{r.result['seconds']:.1f}",
            "tokenising (s)": f"{r.result['calibration_tokenize_seconds']:.1f}",
            "peak RSS (MiB)": f"{r.result['peak_rss_mib']:.0f}",
            "over loaded (MiB)": f"{r.result['peak_over_loaded_mib']:+.0f}",
            "threads": r.result["threads"],
            "record": r.key,
        }
        for r in ev.records("prune_cost")
        if "method" in r.result
    ]
    if not records:
        return pd.DataFrame(
            {"prune_cost": [f"{NOT_RUN} (`python benchmarks/prune_cost_methods.py`)"]}
        )
    order = {m: i for i, m in enumerate(tables.TABLE1_METHODS)}
    records.sort(key=lambda e: (e["ratio"], order.get(e["method"], 99)))
    return pd.DataFrame.from_records(records).set_index(["ratio", "method"])


def cost_figure(results_dir: str | None = None) -> None:
    """Pruning seconds and peak memory over the loaded model, per method and ratio."""
    frame_ = cost_frame(results_dir)
    fig, axes = report.figure(ncols=2, width=10, height=3.4)
    if "pruning (s)" not in frame_:
        _empty(axes[0], "prune_cost")
        _empty(axes[1], "prune_cost")
    else:
        for ax, column in zip(axes, ("pruning (s)", "over loaded (MiB)"), strict=True):
            for ratio, part in frame_.groupby(level="ratio"):
                values = part[column].astype(float)
                ax.plot(part.index.get_level_values("method"), values, marker="o", label=str(ratio))
            ax.set_ylabel(column)
            ax.tick_params(axis="x", rotation=30)
            ax.legend(title="ratio")
    timed = [r for r in evidence(results_dir).records("prune_cost") if "method" in r.result]
    models = models_of(timed)
    fig.suptitle(f"Cost of pruning {models + ' ' if models else ''}on this CPU")
    report.show(fig)


def eval_speed_lines(results_dir: str | None = None) -> Markdown:
    """What the `eval_speed` record says about the cost of scoring and the dtype."""
    ev = evidence(results_dir)
    found = ev.records("eval_speed")
    if not found:
        return Markdown(
            f"The `eval_speed` record is {NOT_RUN} (`python benchmarks/eval_speed.py`)."
        )
    rec = found[-1]
    lines = []
    for dtype, entry in rec.result["dtypes"].items():
        lines.append(
            f"- {dtype}: `perplexity` {entry['perplexity']['ms_per_token']:.3f} ms per token "
            f"against a bare forward's {entry['bare_forward']['ms_per_token']:.3f} "
            f"({entry['perplexity_over_bare']:.2f} of its speed)"
        )
    cpu = rec.result["cpu"]["model"]
    return Markdown(
        f"Record `{rec.key}` ({cpu}, {rec.result['threads']} threads):\n\n" + "\n".join(lines)
    )


def scale_frame(results_dir: str | None = None) -> pd.DataFrame:
    """LLaMA-7B and -13B shapes pruned from their shards (`prune_scale` records): time and
    peak memory against the model's bfloat16 size."""
    ev = evidence(results_dir)
    rows = []
    for r in ev.records("prune_scale"):
        res, prune_ = r.result, r.config["prune"]
        row = {
            "shape": r.config["shape"],
            "calibration": f"{prune_['calib_samples']}x{prune_['calib_seq_len']}",
            "device": r.config["device"],
            "achieved": f"{100 * res['achieved']:.1f} % of {prune_['ratio']:.0%}",
            "pruning (min)": f"{res['seconds'] / 60:.1f}",
            "CPU (min)": f"{res['cpu_seconds'] / 60:.1f}",
            "bf16 model (GiB)": f"{res['model_bf16_mib'] / 1024:.1f}",
            "peak RSS (GiB)": f"{res['peak_rss_mib'] / 1024:.2f}",
            "peak RSS / model": f"{res['peak_rss_over_model']:.2f}",
            "load (1 min)": f"{res['load_average_1min']:.1f} to {res['load_average_1min_end']:.1f}",
            "record": r.key,
        }
        if "peak_gpu_mib" in res:
            row["peak GPU (GiB)"] = f"{res['peak_gpu_mib'] / 1024:.2f}"
        rows.append(row)
    if not rows:
        return pd.DataFrame(
            {"prune_scale": [f"{NOT_RUN} (`python benchmarks/prune_scale.py --shape llama-7b`)"]}
        )
    rows.sort(key=lambda e: (e["shape"], e["device"], int(e["calibration"].split("x")[0])))
    frame = pd.DataFrame.from_records(rows).set_index(["shape", "calibration"])
    if "peak GPU (GiB)" in frame:
        frame["peak GPU (GiB)"] = frame["peak GPU (GiB)"].fillna("CPU run")
    return frame


#: The GQA rules of `--gqa-mode` compared on 512 WikiText-2 windows (benchmarks/gqa_modes.py).
GQA_MODES = ("score", "heads", "groups", "auto")
GQA_WINDOWS = 512


def gqa_frame(results_dir: str | None = None) -> pd.DataFrame:
    """SlimLLM under each GQA rule at 20 % and 50 %: WikiText-2 on its first 512 windows."""
    ev = evidence(results_dir)
    records = []
    for ratio in (0.2, 0.5):
        for mode in GQA_MODES:
            spec = tables.recipe(ratio=ratio, gqa_mode=mode)
            rec = ev.find(
                "perplexity", spec, dataset="wikitext2", max_windows=GQA_WINDOWS, dtype=tables.DTYPE
            )
            cell = (
                None
                if rec is None
                else Cell(
                    rec.result["ppl"],
                    rec.result["ci_low"],
                    rec.result["ci_high"],
                    "perplexity",
                    rec.key,
                )
            )
            records.append(
                {
                    "ratio": f"{ratio:.0%}",
                    "gqa_mode": mode + (" (default)" if mode == "score" else ""),
                    "achieved": _value(ev.achieved(spec), "achieved"),
                    f"WikiText-2, first {GQA_WINDOWS} windows": _value(cell, "wikitext2"),
                    "record": "" if rec is None else rec.key,
                }
            )
    return pd.DataFrame.from_records(records).set_index(["ratio", "gqa_mode"])


def tuning_frame(results_dir: str | None = None) -> pd.DataFrame:
    """The LoRA recovery runs: examples seen, validation loss before and after, time."""
    ev = evidence(results_dir)
    records = []
    for rec in ev.records("tune"):
        prune = rec.config["model"].get("prune", {})
        tune = rec.result["tune"]
        (_, before), *_, (_, after) = tune["val_loss"]
        records.append(
            {
                "model": f"{prune.get('method', 'dense')} {prune.get('ratio', 0):.0%}",
                "gqa_mode": prune.get("gqa_mode", ""),
                "examples": tune["examples_seen"],
                "epochs": f"{tune['epochs_seen']:.4f}",
                "val. loss": f"{before:.3f} -> {after:.3f}",
                "tuning (s)": f"{tune['seconds']:.0f}",
                "record": rec.key,
            }
        )
    if not records:
        return pd.DataFrame({"tune": [f"{NOT_RUN} (`{tables.COMMANDS['table1']}`)"]})
    return pd.DataFrame.from_records(records).set_index("model")


# --- the speed work: pruning before and after, zero-shot speed, two processes ---------------

PRUNE_SPEED_COMMAND = (
    "python benchmarks/prune_cost.py --cases smollm2-135m@20,smollm2-135m@50,"
    "smollm2-135m@20-bf16,smollm2-135m@50-bf16 --code OLDER,checkout --repeats 2 --quality "
    "--ppl-once"
)
#: The speed work's quality gate: WikiText-2 on the first 256 windows within 0.5 % of the
#: float32 forwards' (relative change of the perplexity, either way).
PPL_GATE = 0.005
#: The speed work's time target: pruning at this ratio in under this many seconds (wall).
PRUNE_TARGET_RATIO = 0.2
PRUNE_TARGET_SECONDS = 10.0
#: benchmarks/zeroshot_speed.py's target in float32: the fast backend's log-likelihoods within
#: this of HFLM's.
FLOAT32_LOGLIK_TARGET = 1e-4
#: The command README.md and book/protocol.md give for evaluating across processes.
ACCELERATE_EVAL = "accelerate launch --multi_gpu --num_processes 4 -m slimllm.cli eval DIR"
COMMIT = re.compile(r"[0-9a-f]{7,40}")


def _commit_time(commit: str) -> int:
    """The commit's date (Unix seconds) in this checkout's git; 0 where git cannot tell."""
    if not COMMIT.fullmatch(commit):
        return 0
    try:
        done = subprocess.run(
            ["git", "-C", str(CHECKOUT_RESULTS.parent), "show", "-s", "--format=%ct", commit],
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        return 0
    return int(done.stdout.strip()) if done.returncode == 0 and done.stdout.strip() else 0


def _calib_dtype(config: dict[str, Any]) -> str:
    """The dtype of the calibration forwards (unset: the dtype the model was pruned in)."""
    model = config["model"]
    return model["prune"].get("calib_dtype") or model.get("prune_dtype", "float32")


def _faster(old: float, new: float) -> str:
    return f"{old / new:.2f}x faster" if new <= old else f"{new / old:.2f}x slower"


def prune_speed_cases(results_dir: str | None = None) -> dict[str, list[Record]]:
    """The `prune_cost` records of benchmarks/prune_cost.py (their config names a `code`) by
    case, each case's codes oldest first: by measured_at, then by the commit's date in git (the
    codes of one run are written in the same second)."""
    by_case: dict[str, list[Record]] = {}
    for r in evidence(results_dir).records("prune_cost"):
        if "code" in r.config:
            by_case.setdefault(r.config["case"], []).append(r)
    for found in by_case.values():
        found.sort(
            key=lambda r: (
                r.environment.get("measured_at", ""),
                _commit_time(r.config["code"]),
                r.config["code"],
            )
        )

    def order(item: tuple[str, list[Record]]) -> tuple[str, float, bool, str]:
        model = item[1][0].config["model"]
        dtype = _calib_dtype(item[1][0].config)
        return model["base"], model["prune"]["ratio"], dtype != "float32", item[0]

    return dict(sorted(by_case.items(), key=order))


def _load_span(loads: Sequence[float]) -> str:
    """The 1-minute load averages the runs started at, as "low-high"."""
    return f"{min(loads):.1f}-{max(loads):.1f}" if loads else ""


def _as_first(record: Record, found: Sequence[Record], field: str) -> str:
    """Whether `record`'s digest `field` equals the case's first (oldest) code's: "yes", "no",
    "" for the first code itself or where a digest is not recorded."""
    first = found[0]
    mine, theirs = record.result.get(field), first.result.get(field)
    if record is first or mine is None or theirs is None:
        return ""
    return "yes" if mine == theirs else "no"


def prune_speed_frame(results_dir: str | None = None) -> pd.DataFrame:
    """One row per (case, code): wall and CPU seconds of the fastest run, the load the runs
    started at, WikiText-2 (first 256 windows) where measured, and whether the heads and
    channels kept ("choices") and the weights equal those of the case's first (oldest) code."""
    rows = []
    for case, found in prune_speed_cases(results_dir).items():
        for r in found:
            res = r.result
            ppl = res.get("wikitext2_ppl_256_windows")
            rows.append(
                {
                    "case": case,
                    "code": r.config["code"][:8],
                    "calib": _calib_dtype(r.config),
                    "wall (s)": f"{res['seconds']:.1f}",
                    "CPU (s)": f"{res['cpu_seconds']:.1f}",
                    "load": _load_span(res.get("load_average_runs", [])),
                    "WikiText-2": "" if ppl is None else f"{ppl:.2f}",
                    "choices as first": _as_first(r, found, "layouts_sha256"),
                    "weights as first": _as_first(r, found, "weights_sha256"),
                    "record": r.key,
                }
            )
    if not rows:
        return pd.DataFrame({"prune_cost": [f"{NOT_RUN} (`{PRUNE_SPEED_COMMAND}`)"]})
    return pd.DataFrame.from_records(rows).set_index(["case", "code"])


def _gate(record: Record, reference: Record | None) -> str:
    """WikiText-2 of a record against the float32 forwards' record of its ratio and code."""
    code = record.config["code"][:8]
    ppl = record.result.get("wikitext2_ppl_256_windows")
    ref = None if reference is None else reference.result.get("wikitext2_ppl_256_windows")
    if ppl is None or ref is None:
        lacking = "" if ppl is None else " of the float32 case"
        return f"with {code} WikiText-2{lacking} was not measured"
    change = ppl / ref - 1
    verdict = "passes" if abs(change) <= PPL_GATE else "**fails**"
    return (
        f"with {code} WikiText-2 (256 windows) is {ppl:.2f} against {ref:.2f} with float32 "
        f"forwards ({100 * change:+.2f} %): {verdict} the {100 * PPL_GATE:g} % gate"
    )


def prune_speed_lines(results_dir: str | None = None) -> Markdown:
    """Per case: the CPU-time speed-up from the oldest code to the newest, what the newest kept
    of the oldest's result (weights, or heads and channels), the wall time against the target
    at its ratio, and for calibration below float32 the perplexity gate of both codes."""
    cases = prune_speed_cases(results_dir)
    if not cases:
        return Markdown(
            f"The speed work's `prune_cost` records are {NOT_RUN} (`{PRUNE_SPEED_COMMAND}`)."
        )
    float32 = {
        (
            r.config["model"]["base"],
            r.config["model"]["prune"]["ratio"],
            r.config["code"],
        ): r
        for found in cases.values()
        for r in found
        if _calib_dtype(r.config) == "float32"
    }
    lines = []
    for case, found in cases.items():
        old, new = found[0], found[-1]
        if old is new:
            parts = [f"one code only ({old.config['code'][:8]})"]
        else:
            a, b = old.result["cpu_seconds"], new.result["cpu_seconds"]
            parts = [
                f"CPU seconds from {a:.1f} with {old.config['code'][:8]} to {b:.1f} with "
                f"{new.config['code'][:8]}: {_faster(a, b)}",
                _same_as_first(new, found),
            ]
        if new.config["model"]["prune"]["ratio"] == PRUNE_TARGET_RATIO:
            wall = new.result["seconds"]
            verdict = "under" if wall < PRUNE_TARGET_SECONDS else "**not under**"
            parts.append(
                f"the fastest run with {new.config['code'][:8]} took {wall:.1f} s wall, {verdict} "
                f"the {PRUNE_TARGET_SECONDS:g} s target"
            )
        if _calib_dtype(new.config) != "float32":
            for r in [old] if old is new else [old, new]:
                model = r.config["model"]
                key = (model["base"], model["prune"]["ratio"], r.config["code"])
                parts.append(_gate(r, float32.get(key)))
        lines.append(f"- `{case}`: " + "; ".join(parts) + ".")
    return Markdown("\n".join(lines))


def _same_as_first(new: Record, found: Sequence[Record]) -> str:
    """What the newest code kept of the first code's result: the weights, or at least the
    heads and channels chosen."""
    first = found[0].config["code"][:8]
    if _as_first(new, found, "weights_sha256") == "yes":
        return f"the same weights as {first} (equal digests)"
    if _as_first(new, found, "layouts_sha256") == "yes":
        return f"the same heads and channels as {first}, weights that differ in rounding"
    if "" in (_as_first(new, found, "weights_sha256"), _as_first(new, found, "layouts_sha256")):
        return "a digest is not recorded for every code"
    return f"**other heads or channels than {first}**"


def _newest(found: Sequence[Record]) -> tuple[Record | None, str]:
    """The newest record by measured_at, and its line: where it was measured, how many older."""
    if not found:
        return None, ""
    rec = max(found, key=lambda r: r.environment.get("measured_at", ""))
    older = len(found) - 1
    env = rec.environment
    threads = env.get("torch_threads", "?")
    line = (
        f"Record `{rec.key}`, measured {env.get('measured_at', '?')} on "
        f"{env.get('cpu', {}).get('model', '?')} with {threads} thread{'' if threads == 1 else 's'}"
        + (f" ({older} older record{'s' if older > 1 else ''} not shown)" if older else "")
    )
    return rec, line


def _differing(line: dict[str, Any]) -> str:
    return (
        f"{sum(line['verdicts_differ'].values())} verdicts, {line['greedy_differ']} of "
        f"{line['requests']} greedy flags"
    )


def zeroshot_speed_frame(results_dir: str | None = None) -> pd.DataFrame:
    """The newest `zeroshot_speed` record, one column per dtype: the 7-task subset through the
    fast backend (time, items, mean, load, target) and the fast backend against lm-eval's HFLM
    on the shorter subset (times, speed-up, how far apart)."""
    rec, _ = _newest(evidence(results_dir).records("zeroshot_speed"))
    if rec is None:
        return pd.DataFrame(
            {"zeroshot_speed": [f"{NOT_RUN} (`python benchmarks/zeroshot_speed.py`)"]}
        )
    res, limit = rec.result, rec.config["limit"]
    columns = {}
    for dtype in rec.config["dtypes"]:
        sub, versus = res[dtype]["subset"], res[dtype]["compare"]
        times, fast = versus["times"], versus["fast_vs_hflm"]
        other = versus.get("hflm_vs_hflm_other_batch")
        n = versus["limit"]
        columns[dtype] = {
            f"{limit} per task: items": str(sum(sub["items"].values())),
            f"{limit} per task: wall / CPU (s)": f"{sub['seconds']:.0f} / {sub['cpu_seconds']:.0f}",
            f"{limit} per task: under {res['target_seconds']} s": "yes"
            if sub["seconds"] <= res["target_seconds"]
            else "no",
            f"{limit} per task: load average before, after": (
                f"{sub['load_before']:.1f}, {sub['load_after']:.1f}"
            ),
            f"{limit} per task: mean accuracy": f"{sub['mean']:.4f}",
            f"{n} per task: fast / HFLM (s)": (
                f"{times['fast']['seconds']:.0f} / {times['hflm']['seconds']:.0f}"
            ),
            f"{n} per task: speed-up": f"{versus['speedup']:.2f}x",
            f"{n} per task: mean, fast / HFLM": f"{fast['means'][0]:.4f} / {fast['means'][1]:.4f}",
            "fast vs HFLM: max |Δ log-lik.|": f"{fast['max_abs_diff']:.2g}",
            "fast vs HFLM: differing": _differing(fast),
            "HFLM vs HFLM, other batch: max |Δ log-lik.|": ""
            if other is None
            else f"{other['max_abs_diff']:.2g}",
            "HFLM vs HFLM, other batch: differing": "" if other is None else _differing(other),
        }
    out = pd.DataFrame(columns)
    out.index.name = f"record {rec.key}"
    return out


def zeroshot_speed_lines(results_dir: str | None = None) -> Markdown:
    """What the newest `zeroshot_speed` record says: target met or not, the speed-up over
    HFLM, and how far the fast backend is from HFLM against HFLM's own rounding."""
    rec, head = _newest(evidence(results_dir).records("zeroshot_speed"))
    if rec is None:
        return Markdown(
            f"The `zeroshot_speed` record is {NOT_RUN} (`python benchmarks/zeroshot_speed.py`)."
        )
    res, target = rec.result, rec.result["target_seconds"]
    lines = []
    for dtype in rec.config["dtypes"]:
        sub, versus = res[dtype]["subset"], res[dtype]["compare"]
        fast, other = versus["fast_vs_hflm"], versus.get("hflm_vs_hflm_other_batch")
        met = "met" if sub["seconds"] <= target else "**not met**"
        line = (
            f"- {dtype}: the subset took {sub['seconds']:.0f} s against the {target} s target "
            f"({met}); on {versus['limit']} items per task the fast backend was "
            f"{versus['speedup']:.2f}x as fast as HFLM, its log-likelihoods within "
            f"{fast['max_abs_diff']:.2g} of HFLM's ({_differing(fast)} differing)"
        )
        if dtype == "float32":
            within = fast["max_abs_diff"] <= FLOAT32_LOGLIK_TARGET
            line += (
                f": the float32 target of {FLOAT32_LOGLIK_TARGET:.0e} is "
                f"{'met' if within else '**not met**'}"
            )
        if other is not None:
            scale = other["max_abs_diff"]
            line += (
                f"; HFLM at another batch size moves its own by up to {scale:.2g} "
                f"({_differing(other)} differing), so the fast backend's distance is "
                f"{fast['max_abs_diff'] / scale:.2f}x HFLM's own rounding"
            )
        lines.append(line + ".")
    return Markdown(f"{head}:\n\n" + "\n".join(lines))


def eval_processes_frame(results_dir: str | None = None) -> pd.DataFrame:
    """The newest `eval_processes` record: perplexity, zero-shot and seconds in one process
    and in several under `accelerate launch`, and how far apart they are."""
    rec, _ = _newest(evidence(results_dir).records("eval_processes"))
    if rec is None:
        return pd.DataFrame(
            {"eval_processes": [f"{NOT_RUN} (`python benchmarks/eval_processes.py`)"]}
        )
    one, two, agree = rec.result["one"], rec.result["two"], rec.result["agreement"]
    zs, config = agree["zeroshot"], rec.config
    several = f"{two['processes']} processes"
    nll = (
        "equal"
        if agree["window_nll_equal"]
        else f"differ by up to {agree['window_nll_max_abs_diff']:.2g}"
    )
    rows = {
        f"WikiText-2, first {config['windows']} windows": (
            f"{one['ppl']:.4f}",
            f"{two['ppl']:.4f}",
            f"{'equal' if agree['ppl_equal'] else 'differs'}; each window's NLL {nll}",
        ),
        f"zero-shot mean, {config['limit']} items per task": (
            f"{one['mean']:.4f}",
            f"{two['mean']:.4f}",
            f"accuracies {'equal' if zs['accuracy_equal'] else 'differ'}; "
            f"max |Δ log-lik.| {zs['max_abs_diff']:.2g}",
        ),
        "measuring (s)": (
            f"{one['seconds']:.0f}",
            f"{two['seconds']:.0f}",
            f"{one['seconds'] / two['seconds']:.2f}x as fast (shared cores)",
        ),
        "of which perplexity (s)": (
            f"{one['perplexity_seconds']:.0f}",
            f"{two['perplexity_seconds']:.0f}",
            "",
        ),
        "of which zero-shot (s)": (
            f"{one['zeroshot_seconds']:.0f}",
            f"{two['zeroshot_seconds']:.0f}",
            "",
        ),
        "launch to exit (s)": ("", f"{two['launch_seconds']:.0f}", ""),
    }
    out = pd.DataFrame.from_dict(
        rows, orient="index", columns=["1 process", several, "1 against " + several]
    )
    out.index.name = f"record {rec.key}"
    return out


def eval_processes_lines(results_dir: str | None = None) -> Markdown:
    """Whether several processes give one process's numbers, and the commands."""
    rec, head = _newest(evidence(results_dir).records("eval_processes"))
    commands = (
        "The benchmark: `python benchmarks/eval_processes.py`. On your own pruned model, as the "
        f"README gives it: `{ACCELERATE_EVAL}`."
    )
    if rec is None:
        return Markdown(f"The `eval_processes` record is {NOT_RUN}. {commands}")
    agree = rec.result["agreement"]
    zs, processes = agree["zeroshot"], rec.result["two"]["processes"]
    same = agree["ppl_equal"] and agree["window_nll_equal"] and zs["accuracy_equal"]
    verdict = (
        f"{processes} processes give one process's perplexity, every window's NLL and every "
        "zero-shot accuracy"
        if same
        else f"{processes} processes do **not** give one process's numbers"
    )
    return Markdown(
        f"{head} (launcher: {rec.settings.get('launcher', '?')}): {verdict}; the "
        f"log-likelihoods of the {zs['requests']} zero-shot requests differ by up to "
        f"{zs['max_abs_diff']:.2g}, with {_differing(zs)} differing. {commands}"
    )


# --- Device memory of the streaming prune --------------------------------------------------

#: The rows of the streaming-memory table: label, `REFERENCE_CONFIGS` name, `prune_scale` shape.
MEMORY_MODELS = (
    ("LLaMA-7B", "huggyllama/llama-7b", "llama-7b"),
    ("LLaMA-13B", "huggyllama/llama-13b", "llama-13b"),
    ("LLaMA-2-70B", "meta-llama/Llama-2-70b-hf", None),
)
#: The GPU size the table asks about (a 24 GiB consumer card).
MEMORY_GPU_GIB = 24
_MEASURED_RSS = "CPU peak RSS, whole process (GiB)"


def streaming_estimate(name: str) -> tuple[int, dict[str, int]]:
    """Parameters of the model `name` of `REFERENCE_CONFIGS` and the device peak of its
    streaming prune (`method.memory`) at the paper's calibration, in bfloat16."""
    config = AutoConfig.for_model(**REFERENCE_CONFIGS[name])
    params = sum(p.numel() for p in budget.meta_model(config).parameters())
    return params, streaming_peak_bytes(config, PruneConfig(), torch.bfloat16, None)


def _scale_at_paper_calibration(ev: Evidence, shape: str, device: str) -> Record | None:
    found = [
        r
        for r in ev.records("prune_scale")
        if r.config.get("shape") == shape
        and r.config.get("device") == device
        and (r.config["prune"]["calib_samples"], r.config["prune"]["calib_seq_len"]) == (32, 128)
    ]
    return _newest(found)[0]


def streaming_memory_frame(results_dir: str | None = None) -> pd.DataFrame:
    """LLaMA-7B, -13B and Llama-2-70B: bfloat16 sizes, the estimated device peak of the
    streaming prune at 32x128 (whether it fits a 24 GiB GPU) and, for 7B and 13B, the peak RSS
    of the whole process that pruned their shapes on CPU (`prune_scale`)."""
    ev = evidence(results_dir)
    rows = []
    for label, name, shape in MEMORY_MODELS:
        params, peak = streaming_estimate(name)
        cpu = gpu = None
        if shape is not None:
            cpu = _scale_at_paper_calibration(ev, shape, "cpu")
            gpu = _scale_at_paper_calibration(ev, shape, "cuda")
        rows.append(
            {
                "model": label,
                "bf16 model (GiB)": f"{2 * params / 2**30:.1f}",
                "one layer (GiB)": f"{peak['layer_weights'] / 2**30:.2f}",
                "device peak, estimate (GiB)": f"{peak['total'] / 2**30:.2f}",
                f"fits {MEMORY_GPU_GIB} GiB": (
                    "yes" if peak["total"] <= MEMORY_GPU_GIB * 2**30 else "no"
                ),
                _MEASURED_RSS: (
                    "no such benchmark shape"
                    if shape is None
                    else NOT_RUN
                    if cpu is None
                    else f"{cpu.result['peak_rss_mib'] / 1024:.2f}"
                ),
                "GPU peak, measured (GiB)": (
                    "no GPU run" if gpu is None else f"{gpu.result['peak_gpu_mib'] / 1024:.2f}"
                ),
                "record": ", ".join(r.key for r in (cpu, gpu) if r is not None),
            }
        )
    return pd.DataFrame.from_records(rows).set_index("model")


def streaming_memory_lines(results_dir: str | None = None) -> Markdown:
    """What the estimate of `streaming_memory_frame` counts, and what was measured."""
    _, seven = streaming_estimate(MEMORY_MODELS[0][1])
    terms = [k for k in seven if k not in ("total", "cuda_context")]
    largest = sorted(terms, key=lambda k: seven[k], reverse=True)[:3]
    largest_text = ", ".join(f"`{k}` {seven[k] / 2**30:.2f}" for k in largest)
    ev = evidence(results_dir)
    against = []
    for label, name, shape in MEMORY_MODELS:
        gpu = None if shape is None else _scale_at_paper_calibration(ev, shape, "cuda")
        if gpu is not None:
            tensors = streaming_estimate(name)[1]["total"] - CUDA_CONTEXT_BYTES
            against.append(
                f"{label} {tensors / 2**30:.2f} estimated against "
                f"{gpu.result['peak_gpu_mib'] / 1024:.2f} measured"
            )
    measured = (
        "The GPU column is `torch.cuda.max_memory_allocated` of a `prune_scale` run on CUDA, "
        "which counts tensors only: without the assumed CUDA context the estimate is "
        f"{'; '.join(against)} (GiB)."
        if against
        else "No GPU was available to this project's runs: no device peak is measured, and "
        "the estimate is checked only against tensors measured alive on the CPU."
    )
    return Markdown(
        "The estimate (`slimllm.method.memory.streaming_peak_bytes`) is computed from the "
        "model's shapes, for the paper's calibration (32 windows of 128 tokens, batches of 8) "
        "with weights and forwards in bfloat16: the bytes of the tensors alive on the device "
        "at the largest moment of one layer's pruning (the layers share one shape). It counts "
        "the layer's weights, the activations stored for every window (o_proj's and "
        "down_proj's inputs and outputs), the float64 statistics (Gram matrices, eigenvectors, "
        "W_down^T Q, the regression fold) and an assumed "
        f"{CUDA_CONTEXT_BYTES / 2**30:.1f} GiB CUDA context; the hidden states between layers "
        "stay in CPU memory, and the allocator's rounding and fragmentation are not counted. "
        f"The largest terms at LLaMA-7B (GiB): {largest_text}. "
        "`tests/method/test_memory.py` holds the estimate within 15 % of the tensor bytes "
        "measured alive while a small LLaMA (hidden 256) is pruned on the CPU. "
        f"{measured} The CPU column is the peak resident memory of the whole benchmark "
        "process (Python and torch, embeddings, hidden states, the checkpoint pages it reads), "
        "measured on CPU: not the device's share."
    )


# --- Recomputing the book -----------------------------------------------------------------

#: The one-night budget for recomputing everything the book shows on the 2-core CPU.
RECOMPUTE_TARGET_HOURS = 8.0
RECOMPUTE_COMMAND = "make results"
PAPER_RUN_COMMAND = "python -m slimllm.book.run_notebooks --preset paper --output-dir paper-run"
PAPER_TABLES_COMMAND = (
    "python benchmarks/table1.py --model huggyllama/llama-7b --device cuda; "
    "python benchmarks/ablations.py --model huggyllama/llama-7b --device cuda"
)
MEASURE_NAMES = {"wikitext2": "WikiText-2", "ptb": "PTB", "zeroshot": "zero-shot"}
TABLE_RECORDS = {
    "table1": "Table 1 (`benchmarks/table1.py`)",
    "ablation_table": "Tables 4-7 (`benchmarks/ablations.py`)",
    "other_models_table": "Tables 2, 8 and 9 (`benchmarks/other_models.py`)",
}


def recompute_frame(results_dir: str | None = None) -> pd.DataFrame:
    """The store's records by kind: how many, the hours their measurements took, and where."""
    found = recompute.time_by_kind(Store.book(results_dir))
    if not found:
        return pd.DataFrame({"records": [f"{NOT_RUN} (`{RECOMPUTE_COMMAND}`)"]})
    rows = {
        k.kind: {
            "records": k.records,
            "timed": k.timed,
            "hours": round(k.hours, 2),
            "measured on (records)": "; ".join(f"{m} ({n})" for m, n in k.machines.items()),
        }
        for k in found
    }
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "record kind"
    return out


def recompute_lines(results_dir: str | None = None) -> Markdown:
    """How long the store's records took on this CPU, the estimate for the cells still
    missing, and the one-night target."""
    store = Store.book(results_dir)
    spent = recompute.measured_hours(store)
    if not spent.records:
        return Markdown(f"The store is empty: `{RECOMPUTE_COMMAND}` measures every record.")
    todo = recompute.missing_cells(store)
    later = todo.estimated_hours()
    tables_time = recompute.table_time(store)
    total = tables_time.hours + later
    parts = [
        f"The {spent.records} records in the store took **{spent.cpu:.1f} h** of measurement "
        f"on this project's 2-core CPUs, summed over records (each record times its own "
        f"measurement; {spent.one_thread / spent.cpu if spent.cpu else 0:.0%} of these hours on "
        "one thread, the benchmarks often two at a time: process time, not one night's wall "
        "clock)"
    ]
    if spent.gpu_records:
        parts.append(
            f"{spent.gpu_records} records ({spent.gpu:.2f} h) were measured on "
            f"{', '.join(sorted(spent.gpus))}: their time on the CPU is not known and not counted"
        )
    if tables_time.cells:
        parts.append(
            f"Of these, the {tables_time.cells} cells the Results tables show (each once, however "
            f"many tables show it) took **{tables_time.cell_hours:.1f} h** and the "
            f"{tables_time.prunes} pruning runs of their models {tables_time.prune_hours:.1f} h: "
            "the work `make results` redoes from an empty store, besides the LoRA tuning and "
            "Table 3's latency, which are not counted here"
        )
    cells = sum(todo.cells.values())
    if cells:
        medians = ", ".join(
            f"{model_name(m)} {MEASURE_NAMES[n]} {s / 60:.1f} min"
            for (m, n), s in sorted(todo.seconds.items())
        )
        prunes = sum(todo.prunes.values())
        parts.append(
            f"The table records still lack {cells} cells; at the median time of the measured "
            f"cells of the same model and measure ({medians}), plus {prunes} pruning runs, they "
            f"need about **{later:.1f} h** more"
            + (
                f" ({todo.unestimated()} cells of a model with no measured cell of that kind "
                "are not estimated)"
                if todo.unestimated()
                else ""
            )
        )
    absent = [name for kind, name in TABLE_RECORDS.items() if not any(store.find(kind))]
    if absent:
        parts.append(
            f"No table record exists yet for {', '.join(absent)}: their cells are not counted"
        )
    verdict = "within" if total / 2 <= RECOMPUTE_TARGET_HOURS else "beyond"
    parts.append(
        f"A recompute of the tables from an empty store is therefore about **{total:.1f} h** "
        f"of process time on this CPU, roughly {total / 2:.1f} h in the two lanes of "
        f"`{RECOMPUTE_COMMAND}`: {verdict} the one-night target of "
        f"{RECOMPUTE_TARGET_HOURS:.0f} h. This is a sum of recorded times, many of them measured "
        "while other jobs shared the two cores, not one timed run; the other kinds of record "
        "come from the benchmarks this page names and from the stage notebooks"
    )
    return Markdown(". ".join(parts) + ".")


TIMED_RECOMPUTE_COMMAND = (
    "python benchmarks/recompute_book.py --store DIR --cache-dir DIR --summary"
)


def _short_duration(seconds: float) -> str:
    """Seconds under two minutes, whole minutes above: "2 s", "8 min"."""
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def recompute_run_lines(results_dir: str | None = None) -> Markdown:
    """The newest timed recompute from an empty store (a "recompute_run" record): its wall
    time against the one-night target, how busy the cores were, and how its numbers agree with
    the book's records of the same configuration."""
    runs = [r for r in Store.book(results_dir).find("recompute_run") if r.result["empty_at_start"]]
    if not runs:
        return Markdown(
            f"No timed recompute from an empty store is recorded yet (`{TIMED_RECOMPUTE_COMMAND}`"
            " measures every record again into an empty folder and writes one)."
        )
    run = max(runs, key=lambda r: r.environment.get("measured_at", ""))
    res, cfg = run.result, run.config
    wall = res["wall_seconds"]
    margin = abs(wall - RECOMPUTE_TARGET_HOURS * 3600)
    # Minutes hide a near miss: a run 2 s over the target must not read as "8.0 h, beyond 8 h".
    by = _short_duration(margin)
    verdict = (
        f"within the one-night target of {RECOMPUTE_TARGET_HOURS:.0f} h, with {by} to spare"
        if wall <= RECOMPUTE_TARGET_HOURS * 3600
        else f"beyond the one-night target of {RECOMPUTE_TARGET_HOURS:.0f} h by {by}"
    )
    phases = res["phase_seconds"]
    made = sum(res["records_made"].values())
    load = res["load"]
    unsampled = load.get("unsampled_seconds", 0.0) / 3600 if load else 0.0
    busy = (
        f"the 1-minute load average, sampled {load['samples']} times, averaged {load['mean']:.1f}"
        f" (at most {load['max']:.1f}) against {cfg['lanes']} lanes"
        + (f", and was not sampled for {unsampled:.1f} h" if unsampled >= 0.05 else "")
        + (": other work shared the cores part of the time" if load["mean"] > cfg["lanes"] else "")
        if load
        else "the load was not sampled"
    )
    segments = res.get("segments", [])
    resumed = (
        f" It ran in {len(segments)} segments (a session on this machine ends after about 3 h;"
        " the same command resumed the run from its records, and the cells in flight at each stop"
        " were measured again, so the sum of the segments is a little above an unbroken run)."
        if len(segments) > 1
        else ""
    )
    commits = list(dict.fromkeys(s["commit"][:8] for s in segments))
    if len(commits) > 1:
        resumed += (
            f" The code changed between sessions: its segments ran at commits"
            f" {', '.join(f'`{c}`' for c in commits)}, and each record names its own."
        )
    reconstructed = [s for s in segments if s.get("source", "").startswith("file times")]
    if reconstructed:
        resumed += (
            f" The times of {len(reconstructed)} segment(s) come from their log's file times:"
            " they ran before the script kept segments."
        )
    agree = res["agreement"]
    cpu = (run.environment.get("cpu") or {}).get("model", "an unrecorded CPU")
    parts = [
        f"A recompute from an empty store (record `{run.key}`, commit `{cfg['commit'][:8]}`, "
        f"{cpu}, {cfg['lanes']} lanes of one thread) took **{wall // 3600:.0f} h "
        f"{wall % 3600 // 60:.0f} min** ({wall:,.0f} s) of wall clock: {verdict}. The lanes took "
        f"{phases['lanes'] / 3600:.1f} h, Table 3's latency alone "
        f"{_short_duration(phases['alone'])} and writing the tables "
        f"{_short_duration(phases['assemble'])}; "
        f"{busy}. It made {made} records.{resumed}",
        f"Measured again from scratch, {agree['ppl_inside']} of {agree['perplexity']} "
        "perplexities fall inside the book's record's bootstrap interval (the largest change "
        f"{100 * agree['ppl_worst']:.2f} %), {agree['zeroshot_equal']} of {agree['zeroshot']} "
        "zero-shot records give every task the same accuracy (the mean moves by at most "
        f"{agree['zeroshot_worst']:.2f} points), and {agree['prune_same_structure']} of "
        f"{agree['prune']} pruning runs keep the same heads, channel counts and parameter count "
        f"({agree['prune_equal']} equal in every recorded number).",
    ]
    return Markdown(" ".join(parts))


def paper_gpu_frame(results_dir: str | None = None) -> pd.DataFrame:
    """What the `paper` preset needs on one GPU (`slimllm.book.budget`: estimated from
    LLaMA-7B's config, no weights read): the stage notebooks, and Tables 1 and 4-7's cells."""
    root = CHECKOUT_RESULTS.parent / "notebooks"
    plan = {
        path: run_notebooks.preset_parameters(path, "paper")
        for path in sorted(root.glob("[0-9]*.ipynb"))
    }
    found = run_notebooks.dry_run(plan)["notebooks"]
    rows = {
        Path(path).stem: (n["needs"]["minutes"], n["needs"]["peak_gib"], PAPER_RUN_COMMAND)
        for path, n in found.items()
        if n["needs"] is not None
    }
    values = presets.resolve("paper")
    cell = budget.estimate_work(budget.TABLE_CELL, values)
    store = Store.book(results_dir)
    recipes = {
        config_key("recipe", c["recipe"])
        for kind in ("table1", "ablation_table")
        for rec in store.find(kind)
        for c in recompute.table_cells(rec.result)
        if "wikitext2" in c
    }
    rows[f"Tables 1, 4-7: {len(recipes)} recipes x (prune + WikiText-2 + PTB)"] = (
        round(cell["minutes"] * len(recipes), 1),
        cell["peak_gib"],
        PAPER_TABLES_COMMAND,
    )
    out = pd.DataFrame.from_dict(
        rows, orient="index", columns=["minutes (estimate)", "peak GiB (estimate)", "command"]
    )
    out.index.name = f"{values['model']}, {values['dtype']}, on {budget.GPU['name']}"
    return out


#: Dense FP16/BF16 tensor-core peaks by GPU name (vendors' datasheets), what a measured rate on
#: that GPU is set against.
DENSE_PEAK_FLOPS = {"NVIDIA H200": 989e12, "NVIDIA H100 80GB HBM3": 989e12}


def _forward_flops_per_token(rec: Record) -> float:
    """The time model's operations per scored token (`budget`'s forward count: 2 N plus the
    attention's 2 n_layer n_ctx d_model) for an `eval_scale` record's model."""
    shape = rec.config["model"]["random_llama"]
    body = rec.result["params"] - shape["vocab_size"] * shape["hidden_size"]
    window = PROTOCOLS[budget.PROTOCOL].seq_len
    return 2 * body + 2 * shape["num_hidden_layers"] * window * shape["hidden_size"]


def _time_model_eval_lines(ev: Evidence) -> str:
    """The `eval_scale` records (LLaMA-7B's shape scored on a GPU) set against the time model's
    count of the same forwards."""
    runs = [r for r in ev.records("eval_scale") if str(r.config["device"]).startswith("cuda")]
    if not runs:
        return (
            "No GPU has timed an evaluation at this scale "
            "(`python benchmarks/eval_scale.py --device cuda`): how far off the table's "
            "evaluations are is not measured."
        )
    parts, shares = [], []
    for rec in sorted(runs, key=lambda r: r.config["dtype"]):
        res, cfg = rec.result, rec.config
        flops = res["tokens"] * _forward_flops_per_token(rec)
        rate = flops / res["seconds"]
        modelled = flops / (budget.PEAK_FLOPS[torch.bfloat16] * budget.UTILISATION)
        peak = DENSE_PEAK_FLOPS.get(rec.environment.get("gpu") or "")
        share = "" if peak is None else f", {rate / peak:.0%} of its dense peak"
        if peak is not None:
            shares.append(rate / peak)
        parts.append(
            f"in {cfg['dtype']} (record `{rec.key}`) {res['tokens']:,} tokens took "
            f"**{res['seconds']:.1f} s** on {rec.environment.get('gpu')}, "
            f"{rate / 1e12:.0f} TFLOP/s by the model's count{share} (the model's time on its "
            f"A100: {modelled:.0f} s)"
        )
    full = budget.full_set_tokens("wikitext2", None)
    ran = (
        f"; the measured forwards ran at {min(shares):.0%} to {max(shares):.0%} of their GPU's"
        if shares
        else ""
    )
    return (
        f"Scoring LLaMA-7B's shape on the first {runs[0].config['windows']:,} WikiText-2 "
        f"windows (batches of {runs[0].config['batch_size']}; the model counts {full:,} "
        "tokens in the full test set): "
        + "; ".join(parts)
        + f". The model assumes {budget.UTILISATION:.0%} of its A100's peak{ran}."
    )


def time_model_lines(results_dir: str | None = None) -> Markdown:
    """The runs a GPU measured at the paper's scale beside the time model of `budget`: the
    streaming prunes (`prune_scale` on CUDA, with the CPU run of the same shape) and the
    evaluations (`eval_scale`)."""
    ev = evidence(results_dir)
    found = [
        (label, name, gpu, _scale_at_paper_calibration(ev, shape, "cpu"))
        for label, name, shape in MEMORY_MODELS
        if shape is not None and (gpu := _scale_at_paper_calibration(ev, shape, "cuda")) is not None
    ]
    if not found:
        return Markdown(
            "No GPU has run the streaming prune yet: every pruning time in this section is the "
            "estimate (`python benchmarks/prune_scale.py --shape llama-7b --device cuda`). "
            + _time_model_eval_lines(ev)
        )
    rate = budget.PEAK_FLOPS[torch.bfloat16] * budget.UTILISATION
    parts = []
    for label, name, gpu, cpu in found:
        values = {**presets.resolve("paper"), "model": name, "dtype": "bfloat16"}
        estimate = budget.estimate_work(budget.Work(prunes=1), values)["tflop"] * 1e12 / rate
        res = gpu.result
        same = ""
        if cpu is not None and cpu.result["params_after"] != res["params_after"]:
            more = res["params_after"] - cpu.result["params_after"]
            same = (
                f"; it kept {abs(more):,} parameters {'more' if more > 0 else 'fewer'} than the "
                f"CPU run ({cpu.result['params_after']:,}), a different choice somewhere in "
                "its layers, where the CUDA tests on small models keep the CPU's heads and "
                "channels exactly"
            )
        elif cpu is not None:
            same = "; it kept the CPU run's parameter count exactly"
        cpu_text = (
            "" if cpu is None else f", against {cpu.result['seconds'] / 60:.0f} min on this CPU"
        )
        parts.append(
            f"{label}'s shape took **{res['seconds']:.0f} s** on {gpu.environment.get('gpu')} "
            f"(record `{gpu.key}`){cpu_text}; the time model gives {estimate:.1f} s on the "
            f"table's {budget.GPU['name']}. It removed {100 * res['achieved']:.1f} % of the "
            f"parameters{same}. Its device peak was {res['peak_gpu_mib'] / 1024:.2f} GiB "
            f"allocated ({res['peak_gpu_reserved_mib'] / 1024:.2f} GiB reserved)."
        )
    return Markdown(
        "How the time model fares: a GPU machine lent to one session pruned the LLaMA shapes "
        "of the next section from their shards at the paper's calibration (32 x 128, "
        "bfloat16, random weights). "
        + " ".join(parts)
        + " The time model counts three forwards over the calibration tokens and a hidden x "
        f"hidden eigendecomposition per layer at an assumed {budget.UTILISATION:.0%} of the "
        "tensor-core peak; it leaves out reading the shards and writing the pruned ones, the "
        "head search and the float64 statistics, all of which the measured runs include: the "
        "pruning share of the table above is too low. " + _time_model_eval_lines(ev)
    )


# --- README ---------------------------------------------------------------------------------

#: The README's five headline rows: (label, method, ratio, tuned).
HEADLINE = (
    ("dense SmolLM2-135M", "dense", 0.0, False),
    ("SlimLLM 20 %", "slimllm", 0.2, False),
    ("SlimLLM 20 %, LoRA `cpu`", "slimllm", 0.2, True),
    ("SlimLLM 50 %", "slimllm", 0.5, False),
    ("LLM-Pruner 50 %", "llm-pruner", 0.5, False),
)


def readme_table(store: Store) -> str:
    """The README's headline table (Markdown), computed from `store`."""
    ev = Evidence(store)
    lines = [
        "| model | WikiText-2 | PTB | zero-shot mean | the paper's LLaMA-7B (WikiText-2, mean) |",
        "|---|---|---|---|---|",
    ]
    for label, method, ratio, tuned in HEADLINE:
        row = ev.row(tables.recipe(method, ratio, tuned))
        values = [_value(row[c], c) for c in TABLE1_COLUMNS]
        name = {"slimllm": "SlimLLM", "llm-pruner": "LLM-Pruner", "dense": "dense"}[method]
        try:
            theirs = paper.find(1, name, ratio, tuned).values
            quoted = f"{theirs['wikitext2']:g}, {theirs['mean']:g}"
        except KeyError:
            quoted = ""
        lines.append(f"| {label} | {' | '.join(values)} | {quoted} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readme", action="store_true", help="print the README's headline table")
    parser.add_argument("--results-dir", default=None, help="default: the book's results/")
    args = parser.parse_args(argv)
    if not args.readme:
        parser.error("nothing to do: pass --readme")
    print(readme_table(Store.book(args.results_dir)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
