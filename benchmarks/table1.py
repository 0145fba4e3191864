"""Table 1 for SmolLM2-135M: every method at 20 % and 50 % of the model's parameters.

Each cell is its own store record, keyed exactly as `slimllm eval` and `slimllm rerun` key
them: full-set WikiText-2 and PTB perplexity ("perplexity", lineage-128) and the 7-task
zero-shot accuracy on the seeded 500-item subset ("zeroshot"). Rows: dense; every method
without tuning; SlimLLM and LLM-Pruner with the LoRA `cpu` preset; SlimLLM and `--seeds-method`
at 50 % with calibration seeds 43 and 44 besides the default 42. Everything is measured in
bfloat16, fixed rather than `auto` so that records made on different machines are one table
(on SmolLM2 it moves perplexity by under 0.2 %, see the README).

An interrupted run resumes from its records; `--only` picks rows and `--part K/N` the K-th of
N disjoint shares of them, to split the work between processes (give each `--threads 1` on a
2-core machine; `make results` does), `--dry-run` lists the cells and which have records, and
`--assemble` measures nothing and writes the "table1" record from whatever is stored, with the
cells still missing listed. The cells' helpers are benchmarks/_cells.py.

    python benchmarks/table1.py --only "slimllm 20%" --measure ppl   # one model's perplexity
    python benchmarks/table1.py --assemble --markdown                # the table from records
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from _cells import (
    DTYPE,
    SEEDS,
    TUNE_PRESET,
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
    status,
)

from slimllm.experiments import recipes, tables
from slimllm.experiments.store import Store
from slimllm.peers.registry import METHODS, method_config
from slimllm.tuning.lora import preset

RATIOS = (0.2, 0.5)
TUNED = ("slimllm", "llm-pruner")


@dataclass(frozen=True)
class Row:
    label: str
    recipe: dict[str, Any]
    method: str
    ratio: float
    tuned: bool
    seed: int | None
    extra_seed: bool = False


def table_rows(model: str, methods: list[str], seeds_method: str) -> list[Row]:
    """Every row of Table 1, in the order the table prints them."""
    rows = [Row("dense", recipes.dense(model), "dense", 0.0, False, None)]
    for ratio in RATIOS:
        for method in methods:
            config = method_config(method, ratio=ratio)
            recipe = recipes.pruned(config, base=model, method=method)
            rows.append(Row(f"{method} {ratio:.0%}", recipe, method, ratio, False, config.seed))
            if method in TUNED:
                tuned = recipes.tuned(recipe, preset(TUNE_PRESET))
                rows.append(
                    Row(f"{method} {ratio:.0%} w/ tune", tuned, method, ratio, True, config.seed)
                )
    for method in dict.fromkeys(("slimllm", seeds_method)):
        for seed in SEEDS[1:]:
            recipe = recipes.pruned(method_config(method, ratio=0.5, seed=seed), model, method)
            rows.append(Row(f"{method} 50% seed {seed}", recipe, method, 0.5, False, seed, True))
    return rows


def assemble(
    store: Store, rows: list[Row], max_windows: int | None, limit: int | None
) -> tuple[list[dict[str, Any]], list[str]]:
    """Table rows read from the store, and the labels of the cells not measured yet."""
    out: list[dict[str, Any]] = []
    missing: list[str] = []
    for row in rows:
        cells = entries(store, cell_configs(row.recipe, max_windows, limit), row.label, missing)
        out.append(
            {
                "label": row.label,
                "method": row.method,
                "ratio": row.ratio,
                "tuned": row.tuned,
                "seed": row.seed,
                "extra_seed": row.extra_seed,
                "recipe": row.recipe,
                "achieved": achieved(store, row.recipe),
                **cells,
            }
        )
    return out, missing


def main() -> None:
    parser = cell_parser(__doc__, "smollm2-135m")
    parser.add_argument(
        "--methods", default=",".join(tables.TABLE1_METHODS), help="comma-separated"
    )
    # lorap-ffn: the peer closest to SlimLLM at 50 % (WikiText-2 497.7 against 484.5; the next,
    # LLM-Pruner, is at 1280), so the one whose order seed noise could change.
    parser.add_argument("--seeds-method", default="lorap-ffn", help="the peer run with three seeds")
    parser.add_argument("--markdown", action="store_true", help="print the table and sentences")
    args = parser.parse_args()
    methods = [m.strip() for m in args.methods.split(",")]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        parser.error(f"--methods: unknown {unknown}; choose from {', '.join(METHODS)}")
    what = measure_groups(parser, args.measure)
    k, n = parse_part(parser, args.part)
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = table_rows(args.model, methods, args.seeds_method)
    only = only_labels(parser, args.only, [r.label for r in rows])
    store = Store.book()
    chosen = [r for r in rows if (not only or r.label in only) and in_part(r.recipe, k, n)]
    if args.dry_run:
        for row in chosen:
            configs = cell_configs(row.recipe, args.max_windows, args.limit)
            print(f"{row.label}: {status(store, configs, what)}")
        return
    settings = {"device": args.device, "batch_size": args.batch_size, "progress": False}
    if not args.assemble:
        clock = Clock()
        for row in chosen:
            configs = cell_configs(row.recipe, args.max_windows, args.limit)
            measure(store, row.label, configs, what, settings, clock)
    rows_found, missing = assemble(store, rows, args.max_windows, args.limit)
    table_config = {
        "model": args.model,
        "methods": methods,
        "ratios": list(RATIOS),
        "dtype": DTYPE,
        "max_windows": args.max_windows,
        "limit": args.limit,
        "seeds": list(SEEDS),
        "seeds_method": args.seeds_method,
        "tune_preset": TUNE_PRESET,
    }
    record = store.put(
        "table1", table_config, {"rows": rows_found, "missing": missing}, settings, replace=True
    )
    print(f"table1 record: {record.path}; {len(missing)} cells not measured yet")
    if args.markdown:
        print(tables.markdown(rows_found))
        print()
        for sentence in tables.not_first(rows_found):
            print("-", sentence)
        for column in ("wikitext2", "ptb", "mean"):
            for sentence in tables.seed_sentences(rows_found, column):
                print("-", sentence)


if __name__ == "__main__":
    main()
