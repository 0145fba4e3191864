"""Results tables from store records: Table 1's rows, a Markdown table, who beats SlimLLM where,
and the cells of any other table looked up by model recipe (`Evidence`).

A "table1" record (benchmarks/table1.py) holds one row per model: method, ratio, tuned, seed,
achieved ratio, and for each column its value, interval and the record it came from (None
where that cell has not been measured yet). `Evidence` finds the perplexity, zero-shot and
prune records of any recipe, so the ablation tables need no assembled record. These functions
only read; they never measure, so the README and the book show exactly what the records hold.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from slimllm.experiments.paper import PaperRow, samples
from slimllm.experiments.paper import dense as paper_dense
from slimllm.experiments.paper import find as paper_find
from slimllm.experiments.recipes import LATER_DEFAULTS, dense, pruned, untuned
from slimllm.experiments.recipes import tuned as tuned_recipe
from slimllm.experiments.store import Record, Store
from slimllm.measure.lm_eval_tasks import SEVEN_TASKS
from slimllm.method.config import PruneConfig
from slimllm.peers.registry import method_config
from slimllm.tuning.lora import preset

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


# --- Cells of any results table, read from the store by recipe ------------------------------

#: The book's evidence is measured in bfloat16 on full test sets and the 500-item zero-shot
#: subset (benchmarks/table1.py); a cell is looked up under these settings.
DTYPE = "bfloat16"
LIMIT = 500
PROTOCOL = "lineage-128"
#: Calibration seeds of the seed-noise runs; the first is every method's default.
SEEDS = (42, 43, 44)


@dataclass(frozen=True)
class Cell:
    """One number of a results table, its 95 % interval and the record it was read from.

    Perplexity: the window bootstrap interval stored in the record; accuracy (percent): 1.96
    standard errors; the 7-task mean: 1.96 x sqrt(sum of squared task stderrs) / 7.
    """

    value: float
    low: float
    high: float
    kind: str
    record: str

    @property
    def half(self) -> float:
        """Half the width of the interval (the "±")."""
        return (self.high - self.low) / 2

    def overlaps(self, other: Cell) -> bool:
        return self.low <= other.high and other.low <= self.high


def mean_interval(tasks: dict[str, Any], mean: float) -> tuple[float, float]:
    """95 % interval (percent) of the 7-task mean from the tasks' standard errors."""
    se = math.sqrt(sum(t["stderr"] ** 2 for t in tasks.values())) / max(len(tasks), 1)
    return 100 * (mean - 1.96 * se), 100 * (mean + 1.96 * se)


def canonical(recipe: dict[str, Any]) -> dict[str, Any]:
    """`recipe` with the options that do not change the pruned model resolved: Eq. 11's alpha
    (None is 10 below a 35 % target, else 7), options added later at their defaults, and
    `lorap-ffn` as what it is, SlimLLM without the feature-space term (the same code path:
    `slimllm.peers.registry.METHOD_DEFAULTS`)."""
    if "prune" not in recipe:
        return recipe
    prune = {**LATER_DEFAULTS, **recipe["prune"]}
    if prune["method"] == "lorap-ffn":
        prune["method"] = "slimllm"
    if prune["method"] == "slimllm" and prune.get("alpha") is None:
        prune["alpha"] = PruneConfig(ratio=prune["ratio"]).resolved_alpha()
    return {**recipe, "prune": prune}


class Evidence:
    """A results store read once per kind, with the book's cell lookups by recipe."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._kinds: dict[str, list[Record]] = {}

    def records(self, kind: str) -> list[Record]:
        if kind not in self._kinds:
            folder = self.store.root / kind
            self._kinds[kind] = list(self.store.records(kind)) if folder.is_dir() else []
        return self._kinds[kind]

    def find(self, kind: str, recipe: dict[str, Any], **match: Any) -> Record | None:
        """The record of `kind` for `recipe` (or an equivalent one) with these config values;
        the exact recipe first, then one in bfloat16."""
        want = canonical(recipe)
        found = [
            r
            for r in self.records(kind)
            if all(r.config.get(k) == v for k, v in match.items())
            and canonical(r.config.get("model", {})) == want
        ]
        found.sort(key=lambda r: (r.config.get("model") != recipe, r.config.get("dtype") != DTYPE))
        return found[0] if found else None

    def refusal(self, recipe: dict[str, Any]) -> Record | None:
        """The "refusal" record of a recipe (or of the untuned model it starts from): the
        method refused the model or failed on it, and the record holds the error."""
        return self.find("refusal", recipe) or self.find("refusal", untuned(recipe))

    def perplexity(self, recipe: dict[str, Any], dataset: str) -> Cell | None:
        """Full-set perplexity of `recipe` on `dataset` under the lineage protocol."""
        rec = self.find("perplexity", recipe, dataset=dataset, protocol=PROTOCOL, max_windows=None)
        if rec is None:
            return None
        res = rec.result
        return Cell(res["ppl"], res["ci_low"], res["ci_high"], "perplexity", rec.key)

    def zeroshot(self, recipe: dict[str, Any]) -> dict[str, Cell]:
        """The seven accuracies and their mean (percent) on the seeded 500-item subset."""
        rec = self.find("zeroshot", recipe, tasks=list(SEVEN_TASKS), limit=LIMIT, num_fewshot=0)
        if rec is None:
            return {}
        tasks = rec.result["tasks"]
        cells = {}
        for task in SEVEN_TASKS:
            value, err = 100 * tasks[task]["value"], 100 * tasks[task]["stderr"]
            cells[task] = Cell(value, value - 1.96 * err, value + 1.96 * err, "zeroshot", rec.key)
        seven = {t: tasks[t] for t in SEVEN_TASKS}
        cells["mean"] = Cell(
            100 * rec.result["mean"], *mean_interval(seven, rec.result["mean"]), "zeroshot", rec.key
        )
        return cells

    def achieved(self, recipe: dict[str, Any]) -> Cell | None:
        """The fraction of parameters the pruning removed (percent), from its prune record."""
        if "prune" not in recipe:
            return None
        rec = self.find("prune", untuned(recipe))
        if rec is None:
            return None
        value = 100 * rec.result["achieved"]
        return Cell(value, value, value, "prune", rec.key)

    def row(self, recipe: dict[str, Any]) -> dict[str, Cell | None]:
        """Every column of a Table-1-style row: achieved ratio, perplexities, accuracies."""
        cells: dict[str, Cell | None] = {"achieved": self.achieved(recipe)}
        for dataset in PPL_COLUMNS:
            cells[dataset] = self.perplexity(recipe, dataset)
        found = self.zeroshot(recipe)
        for column in (*SEVEN_TASKS, "mean"):
            cells[column] = found.get(column)
        return cells

    def seeds(self, recipe: dict[str, Any], column: str) -> list[Cell]:
        """`column` of `recipe` under each calibration seed of SEEDS that has a record."""
        if "prune" not in recipe:
            return []
        out = []
        for seed in SEEDS:
            other = {**recipe, "prune": {**recipe["prune"], "seed": seed}}
            found = (
                self.perplexity(other, column)
                if column in PPL_COLUMNS
                else self.zeroshot(other).get(column)
            )
            if found is not None:
                out.append(found)
        return out


# --- The rows of each results table, as recipes, with the paper's row beside them -----------

#: The model every table is measured on, and the larger one of Tables 2, 8 and 9.
BASE = "smollm2-135m"
LARGER = "gemma3-270m"
TUNE_PRESET = "cpu"

#: The command that writes each table's records into results/ (resumable; skips stored cells).
COMMANDS = {
    "table1": "python benchmarks/table1.py",
    "table3": "OMP_WAIT_POLICY=PASSIVE python benchmarks/latency.py --preset table3",
    "ablations": "python benchmarks/ablations.py",
    "table4": "python benchmarks/ablations.py --tables 4",
    "table5": "python benchmarks/ablations.py --tables 5",
    "table6": "python benchmarks/ablations.py --tables 6",
    "table7": "python benchmarks/ablations.py --tables 7",
    "other_models": "python benchmarks/other_models.py",
    "other_models_smollm2": (
        "python benchmarks/other_models.py --model smollm2-135m --methods slimllm"
    ),
    "flap_harness": "python benchmarks/flap_harness.py",
    "similarity": "python -m slimllm.book.run_notebooks notebooks/07_layer_ratios.ipynb",
}


def recipe(
    method: str = "slimllm",
    ratio: float = 0.5,
    tuned: bool = False,
    base: str = BASE,
    **options: Any,
) -> dict[str, Any]:
    """The recipe of one table row: `method` at `ratio` with `options`, LoRA `cpu` if `tuned`."""
    if method == "dense":
        return dense(base)
    found = pruned(method_config(method, ratio=ratio, **options), base=base, method=method)
    return tuned_recipe(found, preset(TUNE_PRESET)) if tuned else found


@dataclass(frozen=True)
class Spec:
    """One row of a results table: a label, its recipe, the paper's row beside it (if any),
    the group it belongs to (a ratio or a model) and the command that measures it."""

    label: str
    recipe: dict[str, Any]
    paper: PaperRow | None
    group: str
    command: str


#: The paper's name for each method of Table 1, and the table its row is in ("FLAP": FLAP's
#: README). `lorap-ffn` is LoRAP's FFN half (SlimLLM without the feature-space term); the paper
#: compares full LoRAP, whose attention is a low-rank factorisation.
PAPER_NAMES = {
    "slimllm": ("SlimLLM", 1),
    "lorap-ffn": ("LoRAP", 1),
    "llm-pruner": ("LLM-Pruner", 1),
    "flap": ("FLAP", "FLAP"),
    "wanda-sp": ("Wanda-sp", "FLAP"),
}
TABLE1_METHODS = (
    "slimllm",
    "lorap-ffn",
    "llm-pruner",
    "flap",
    "wanda-sp",
    "magnitude-sp",
    "random",
)
TABLE1_TUNED = ("slimllm", "llm-pruner")


def _paper_row(method: str, ratio: float, tuned: bool) -> PaperRow | None:
    if method == "dense":
        return paper_dense(1)
    name, table = PAPER_NAMES.get(method, ("", 0))
    try:
        return paper_find(table, name, ratio, tuned) if name else None
    except KeyError:
        return None


def table1_specs() -> list[Spec]:
    """Table 1's rows: dense, every method at 20 % and 50 %, two of them tuned."""
    specs = [Spec("dense", recipe("dense"), _paper_row("dense", 0, False), "0 %", "table1")]
    for ratio in (0.2, 0.5):
        for method in TABLE1_METHODS:
            for tuned in (False, True) if method in TABLE1_TUNED else (False,):
                label = f"{method}{' w/ tune' if tuned else ''}"
                specs.append(
                    Spec(
                        label,
                        recipe(method, ratio, tuned),
                        _paper_row(method, ratio, tuned),
                        f"{ratio:.0%}",
                        "table1",
                    )
                )
    return specs


#: FLAP's harness rows after Table 1's: its authors' calibration size, in-domain text (the
#: WikiText-2 validation split stands in for the train split they sampled, which is not in the
#: offline data folder), and its uniform variant to separate allocation from score.
FLAP_HARNESS = {
    "1024 x 128 BookCorpus": ("flap", {"calib_samples": 1024}),
    "1024 x 128 WikiText-2 validation": (
        "flap",
        {"calib_samples": 1024, "calib_dataset": "wikitext2-valid"},
    ),
    "uniform allocation (32 x 128 BookCorpus)": ("flap-uniform", {}),
}


def flap_specs() -> list[Spec]:
    """FLAP at 50 % under our harness (Table 1's row) and closer to its authors' set-up."""
    row = _paper_row("flap", 0.5, False)
    return [
        Spec("32 x 128 BookCorpus (Table 1)", recipe("flap"), row, "50 %", "table1"),
        *(
            Spec(label, recipe(method, **options), row, "50 %", "flap_harness")
            for label, (method, options) in FLAP_HARNESS.items()
        ),
    ]


def table4_specs() -> list[Spec]:
    """Table 4 at 50 %: SlimLLM and each strategy removed."""
    variants = {
        "": {},
        "w/o greedy search": {"greedy_search": False},
        "w/o feature space": {"feature_space": False},
        "uniform ratios": {"uniform": True},
    }
    return [
        Spec(
            label or "SlimLLM",
            recipe(**options),
            paper_find(4, "SlimLLM", 0.5, setting=label),
            "50 %",
            "table4",
        )
        for label, options in variants.items()
    ]


def table5_specs() -> list[Spec]:
    """Table 5: Eq. 11's alpha at 50 % (the paper's table) and at 20 %."""
    return [
        Spec(
            f"alpha={alpha}",
            recipe(ratio=ratio, alpha=float(alpha)),
            paper_find(5, "SlimLLM", 0.5, setting=f"alpha={alpha}") if ratio == 0.5 else None,
            f"{ratio:.0%}",
            "table5",
        )
        for ratio in (0.5, 0.2)
        for alpha in (1, 4, 7, 10)
    ]


def table6_specs() -> list[Spec]:
    """Table 6: with and without the regression step, at 20 % and 50 %."""
    return [
        Spec(
            setting,
            recipe(ratio=ratio, regression=setting == "w/ regression"),
            paper_find(6, "SlimLLM", ratio, setting=setting),
            f"{ratio:.0%}",
            "table6",
        )
        for ratio in (0.2, 0.5)
        for setting in ("w/ regression", "w/o regression")
    ]


def table7_specs() -> list[Spec]:
    """Table 7 at 50 %: 1 to 64 calibration samples of 128 tokens (and 128 samples)."""
    return [
        Spec(
            samples(n),
            recipe(calib_samples=n),
            paper_find(7, "SlimLLM", 0.5, setting=samples(n)) if n <= 64 else None,
            "50 %",
            "table7",
        )
        for n in (1, 4, 8, 16, 32, 64, 128)
    ]


def other_model_specs() -> list[Spec]:
    """Tables 2, 8 and 9 on Gemma-3-270M (SlimLLM, `lorap-ffn`, LLM-Pruner) and SlimLLM on
    SmolLM2 at the same fractions of the decoder, each without and with the LoRA `cpu` preset.

    Gemma's embedding is most of its parameters, so ratios are of the decoder (`ratio_of`).
    """
    specs = []
    for base, methods, command in (
        (LARGER, ("slimllm", "lorap-ffn", "llm-pruner"), "other_models"),
        (BASE, ("slimllm",), "other_models_smollm2"),
    ):
        specs.append(Spec("dense", recipe("dense", base=base), None, base, command))
        for tuned in (False, True):
            for method in methods:
                for ratio in (0.2, 0.5):
                    specs.append(
                        Spec(
                            f"{method} {ratio:.0%}{' w/ tune' if tuned else ''}",
                            recipe(method, ratio, tuned, base, ratio_of="decoder"),
                            None,
                            base,
                            command,
                        )
                    )
    return specs
