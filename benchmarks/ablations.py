"""Tables 4-7 for SmolLM2-135M: SlimLLM's ablations with today's defaults (`gqa_mode` score).

- Table 4 at 50 %: full SlimLLM, without the greedy head search, without the feature-space
  term, with uniform layer ratios.
- Table 5: alpha (Eq. 11's temperature) in {1, 4, 7, 10} at 50 % (the paper's table) and 20 %.
- Table 6: with and without the regression (bias) recovery, at 20 % and 50 %.
- Table 7: calibration samples in {1, 4, 8, 16, 32, 64, 128} at 50 %.

Each row is run with calibration seeds 42, 43 and 44; every cell is Table 1's (benchmarks/
_cells.py): full-set WikiText-2 and PTB perplexity, lineage-128, bfloat16, and for seed 42 the
7-task zero-shot accuracy on the seeded 500-item subset. A row whose recipe is another table's
is the same record, looked up rather than measured again: full SlimLLM at 50 % is Table 1's
row and the default row of Tables 5, 6 and 7; the default alpha (PruneConfig.alpha None: 10
below a 35 % target, else 7, the paper's 20 % / 50 % values) is that recipe, not a recipe with
alpha spelled out; "without the feature-space term" is Table 1's `lorap-ffn` (the registry
runs `slimllm` with feature_space=False under that name: the same pruning).

An interrupted run resumes from its records. Cells are measured seed by seed (all rows at
seed 42 first); `--tables`, `--ratios`, `--seeds` and `--measure` choose cells, `--only`
(or `--rows`) exact row labels, and `--part K/N` the K-th of N disjoint shares of the chosen
models (split by recipe key, so every process splits alike whatever is stored already), for N
processes (give each `--threads 1` on a 2-core machine). `--dry-run` lists the chosen cells,
"+" where a record exists. After measuring, one "ablation_table" record per chosen table is
written from whatever is stored: per row, each seed's value, interval and record key, the
spread over seeds, and the cells still missing.

    python benchmarks/ablations.py --tables 4 --measure ppl       # Table 4's perplexities
    python benchmarks/ablations.py --dry-run                      # what is stored, what is not
    python benchmarks/ablations.py --assemble                     # the four tables from records
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from _cells import (
    DTYPE,
    PPL_COLUMNS,
    SEEDS,
    Clock,
    achieved,
    cell_configs,
    cell_parser,
    entries,
    in_part,
    measure,
    measure_groups,
    only_labels,
    parse_part,
    spread,
    status,
)

from slimllm.experiments import recipes
from slimllm.experiments.store import Store, config_key
from slimllm.method.config import PruneConfig
from slimllm.peers.registry import method_config

TABLES = ("4", "5", "6", "7")
#: Zero-shot accuracy is measured for these calibration seeds only (the 7 tasks cost ~5x a
#: model's two perplexities here).
ZEROSHOT_SEEDS = (42,)
ALPHAS = (1.0, 4.0, 7.0, 10.0)
CALIB_SAMPLES = (1, 4, 8, 16, 32, 64, 128)
DEFAULT_ALPHA = (
    "PruneConfig.alpha is None: 10 below a 35 % target, else 7 (the paper's values at 20 % and "
    "50 %); the row of the default value is the default recipe (Table 1's)"
)


@dataclass(frozen=True)
class Variant:
    """One row of an ablation table: a setting of PruneConfig at one ratio."""

    table: str
    name: str
    #: The ablated setting's value as the table prints it (alpha, sample count, on/off).
    value: Any
    ratio: float
    options: dict[str, Any] = field(default_factory=dict)
    method: str = "slimllm"
    note: str = ""

    def label(self, seed: int) -> str:
        return f"table{self.table} {self.name} {self.ratio:.0%} seed {seed}"

    def recipe(self, model: str, seed: int) -> dict[str, Any]:
        config = method_config(self.method, ratio=self.ratio, seed=seed, **self.options)
        return recipes.pruned(config, base=model, method=self.method)


def alpha_variant(alpha: float, ratio: float) -> Variant:
    """Alpha at `ratio`: the default recipe where alpha is the value the default resolves to."""
    if PruneConfig(ratio=ratio).resolved_alpha() == alpha:
        return Variant("5", f"alpha {alpha:g}", alpha, ratio, note="the default alpha")
    return Variant("5", f"alpha {alpha:g}", alpha, ratio, {"alpha": alpha})


def variants(table: str) -> list[Variant]:
    """The rows of one table, in the order the paper prints them."""
    if table == "4":
        return [
            Variant("4", "SlimLLM", "full", 0.5),
            Variant("4", "w/o greedy search", "greedy_search=False", 0.5, {"greedy_search": False}),
            Variant(
                "4",
                "w/o feature space",
                "feature_space=False",
                0.5,
                {"feature_space": False},
                method="lorap-ffn",
                note="Table 1's lorap-ffn recipe: slimllm with feature_space=False",
            ),
            Variant("4", "uniform ratios", "uniform=True", 0.5, {"uniform": True}),
        ]
    if table == "5":
        return [alpha_variant(a, ratio) for ratio in (0.5, 0.2) for a in ALPHAS]
    if table == "6":
        return [
            Variant("6", name, value, ratio, {} if value else {"regression": False})
            for ratio in (0.2, 0.5)
            for name, value in (("with regression", True), ("w/o regression", False))
        ]
    return [
        Variant(
            "7",
            f"{n} samples",
            n,
            0.5,
            {"calib_samples": n},
            note="the default sample count" if n == PruneConfig().calib_samples else "",
        )
        for n in CALIB_SAMPLES
    ]


@dataclass(frozen=True)
class Cell:
    """One model to measure: a row at one seed, and which of its cells it has."""

    variant: Variant
    seed: int
    recipe: dict[str, Any]
    label: str

    def configs(self, max_windows: int | None, limit: int | None) -> dict[str, dict[str, Any]]:
        configs = cell_configs(self.recipe, max_windows, limit)
        if self.seed not in ZEROSHOT_SEEDS:
            del configs["zeroshot"]
        return configs


def cells_of(model: str, tables: list[str], seeds: list[int]) -> list[Cell]:
    """Every model of the chosen tables, seed by seed (all rows at the first seed first)."""
    return [
        Cell(v, seed, v.recipe(model, seed), v.label(seed))
        for seed in seeds
        for table in tables
        for v in variants(table)
    ]


def unique(cells: list[Cell]) -> dict[str, list[Cell]]:
    """Cells grouped by recipe, in first-seen order: a shared recipe is measured once."""
    found: dict[str, list[Cell]] = {}
    for cell in cells:
        found.setdefault(config_key("recipe", cell.recipe), []).append(cell)
    return found


def assemble(
    store: Store, model: str, table: str, max_windows: int | None, limit: int | None
) -> tuple[list[dict[str, Any]], list[str]]:
    """One table's rows read from the store, and the labels of the cells not measured yet."""
    out: list[dict[str, Any]] = []
    missing: list[str] = []
    for v in variants(table):
        per_seed = []
        for seed in SEEDS:
            cell = Cell(v, seed, v.recipe(model, seed), v.label(seed))
            per_seed.append(
                {
                    "seed": seed,
                    "recipe": cell.recipe,
                    "achieved": achieved(store, cell.recipe),
                    **entries(store, cell.configs(max_windows, limit), cell.label, missing),
                }
            )
        out.append(
            {
                "name": v.name,
                "value": v.value,
                "ratio": v.ratio,
                "method": v.method,
                "options": v.options,
                "note": v.note,
                "seeds": per_seed,
                "spread": {
                    ds: spread([s[ds]["ppl"] for s in per_seed if s[ds] is not None])
                    for ds in PPL_COLUMNS
                },
            }
        )
    return out, missing


def main() -> None:
    parser = cell_parser(__doc__, "smollm2-135m")
    parser.add_argument("--tables", default=",".join(TABLES), help="comma-separated, of 4,5,6,7")
    parser.add_argument("--ratios", default="0.2,0.5", help="rows at these ratios only")
    parser.add_argument("--seeds", default=",".join(map(str, SEEDS)), help="calibration seeds")
    args = parser.parse_args()
    tables = [t.strip().removeprefix("table") for t in args.tables.split(",") if t.strip()]
    if not tables or not set(tables) <= set(TABLES):
        parser.error(f"--tables takes some of {','.join(TABLES)}, got {args.tables!r}")
    seeds = [int(s) for s in args.seeds.split(",")]
    if not set(seeds) <= set(SEEDS):
        parser.error(f"--seeds takes some of {SEEDS}, got {args.seeds!r}")
    ratios = {float(r) for r in args.ratios.split(",")}
    what = measure_groups(parser, args.measure)
    k, n = parse_part(parser, args.part)
    if args.threads:
        torch.set_num_threads(args.threads)
    every = cells_of(args.model, tables, seeds)
    only = only_labels(parser, args.only, [c.label for c in every])
    chosen = [c for c in every if c.variant.ratio in ratios and (not only or c.label in only)]
    groups = [g for g in unique(chosen).values() if in_part(g[0].recipe, k, n)]
    store = Store.book()
    if args.dry_run:
        for group in groups:
            configs = group[0].configs(args.max_windows, args.limit)
            also = "".join(f"; = {c.label}" for c in group[1:])
            print(f"{group[0].label}: {status(store, configs, what)}{also}")
        return
    settings = {"device": args.device, "batch_size": args.batch_size, "progress": False}
    if not args.assemble:
        clock = Clock()
        for i, group in enumerate(groups, 1):
            head = group[0]
            configs = head.configs(args.max_windows, args.limit)
            measure(store, f"({i}/{len(groups)}) {head.label}", configs, what, settings, clock)
    for table in tables:
        rows, missing = assemble(store, args.model, table, args.max_windows, args.limit)
        config = {
            "table": f"table{table}",
            "model": args.model,
            "dtype": DTYPE,
            "max_windows": args.max_windows,
            "limit": args.limit,
            "seeds": list(SEEDS),
            "zeroshot_seeds": list(ZEROSHOT_SEEDS),
        }
        result = {"rows": rows, "missing": missing}
        if table == "5":
            result["default_alpha"] = DEFAULT_ALPHA
        record = store.put("ablation_table", config, result, settings, replace=True)
        print(f"table{table} record: {record.path}; {len(missing)} cells not measured yet")


if __name__ == "__main__":
    main()
