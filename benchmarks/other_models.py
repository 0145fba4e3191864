"""Tables 2, 8 and 9 on another model: Gemma-3-270M, dense and pruned by SlimLLM, `lorap-ffn`
(Table 2's LoRAP comparison) and LLM-Pruner at 20 % and 50 %, without and with the LoRA `cpu`
preset.

The ratio is a fraction of the decoder layers' parameters (`ratio_of="decoder"`): Gemma-3-270M's
embedding (262k tokens x 640) is most of its parameters, so a fraction of the whole model would
ask the layers for more than they hold. The paper's "larger models lose less" (its Table 9) is
read as the retention of SmolLM2-135M against Gemma-3-270M at the same decoder fraction:
`--model smollm2-135m --methods slimllm` measures SmolLM2's rows with `ratio_of="decoder"`
(its dense row is Table 1's).

Each cell is Table 1's (benchmarks/_cells.py): full-set WikiText-2 and PTB perplexity
(lineage-128, bfloat16) and the 7-task zero-shot accuracy on the seeded 500-item subset, all
with calibration seed 42. A method that refuses the model (or fails on it) is stored as a
"refusal" record of its recipe, with the error, instead of numbers; delete that record to try
again. An interrupted run resumes from its records; `--only` picks rows, `--part K/N` the K-th
of N disjoint shares, `--dry-run` lists the cells ("+": a record exists), `--assemble` measures
nothing; every run ends by writing the "other_models_table" record of the model.

    python benchmarks/other_models.py --only "dense,slimllm 20%,slimllm 50%" --measure ppl
    python benchmarks/other_models.py --dry-run
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from _cells import (
    DTYPE,
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

from slimllm.experiments import recipes
from slimllm.experiments.store import Record, Store
from slimllm.peers.registry import method_config
from slimllm.tuning.lora import preset

METHODS = ("slimllm", "lorap-ffn", "llm-pruner")
RATIOS = (0.2, 0.5)
RATIO_OF = "decoder"
SEED = 42


@dataclass(frozen=True)
class Row:
    label: str
    recipe: dict[str, Any]
    method: str
    ratio: float
    tuned: bool


def table_rows(model: str, methods: list[str]) -> list[Row]:
    """Dense, every method at each ratio, then the same tuned (the order they are measured in)."""
    rows = [Row("dense", recipes.dense(model), "dense", 0.0, False)]
    pruned = []
    for method in methods:
        for ratio in RATIOS:
            config = method_config(method, ratio=ratio, ratio_of=RATIO_OF, seed=SEED)
            recipe = recipes.pruned(config, base=model, method=method)
            pruned.append(Row(f"{method} {ratio:.0%}", recipe, method, ratio, False))
    rows += pruned
    for row in pruned:
        tuned = recipes.tuned(row.recipe, preset(TUNE_PRESET))
        rows.append(Row(f"{row.label} w/ tune", tuned, row.method, row.ratio, True))
    return rows


def stored_refusal(store: Store, recipe: dict[str, Any]) -> Record | None:
    """The "refusal" record of a recipe, or of the untuned recipe a tuned one starts from."""
    return store.get("refusal", {"model": recipe}) or store.get(
        "refusal", {"model": recipes.untuned(recipe)}
    )


def builds(store: Store, recipe: dict[str, Any], log: Callable[[str], None]) -> bool:
    """Whether the recipe's model builds (pruned, tuned: cached for the cells), storing a
    "refusal" record with the error where it does not."""
    if "prune" not in recipe:
        return True
    if stored_refusal(store, recipe) is not None:
        return False
    if "tune" in recipe and not builds(store, recipes.untuned(recipe), log):
        return False
    try:
        recipes.build(recipe, dtype=DTYPE)
    except Exception as error:  # a refusal or a failure on this model: stored, not hidden
        result = {"error": type(error).__name__, "message": str(error)}
        store.put("refusal", {"model": recipe}, result, {"device": "cpu"})
        log(f"{recipes.label(recipe)}: refused ({result['error']}: {result['message']})")
        return False
    return True


def assemble(
    store: Store, rows: list[Row], max_windows: int | None, limit: int | None
) -> tuple[list[dict[str, Any]], list[str]]:
    """The table's rows read from the store, and the labels of the cells not measured yet."""
    out: list[dict[str, Any]] = []
    missing: list[str] = []
    for row in rows:
        found = stored_refusal(store, row.recipe)
        entry: dict[str, Any] = {
            "label": row.label,
            "method": row.method,
            "ratio": row.ratio,
            "tuned": row.tuned,
            "seed": SEED if "prune" in row.recipe else None,
            "recipe": row.recipe,
            "achieved": achieved(store, row.recipe),
            "refused": None if found is None else {**found.result, "record": found.key},
        }
        configs = cell_configs(row.recipe, max_windows, limit)
        entry.update(entries(store, configs, row.label, [] if found else missing))
        out.append(entry)
    return out, missing


def main() -> None:
    parser = cell_parser(__doc__, "gemma3-270m")
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated")
    args = parser.parse_args()
    methods = [m.strip() for m in args.methods.split(",")]
    if not set(methods) <= set(METHODS):
        parser.error(f"--methods takes some of {', '.join(METHODS)}, got {args.methods!r}")
    what = measure_groups(parser, args.measure)
    k, n = parse_part(parser, args.part)
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = table_rows(args.model, methods)
    only = only_labels(parser, args.only, [r.label for r in rows])
    chosen = [r for r in rows if (not only or r.label in only) and in_part(r.recipe, k, n)]
    store = Store.book()
    if args.dry_run:
        for row in chosen:
            found = stored_refusal(store, row.recipe)
            configs = cell_configs(row.recipe, args.max_windows, args.limit)
            state = f"refused: {found.result['message']}" if found else status(store, configs, what)
            print(f"{row.label}: {state}")
        return
    settings = {"device": args.device, "batch_size": args.batch_size, "progress": False}
    if not args.assemble:
        clock = Clock()
        for i, row in enumerate(chosen, 1):
            label = f"({i}/{len(chosen)}) {args.model} {row.label}"
            configs = cell_configs(row.recipe, args.max_windows, args.limit)
            if builds(store, row.recipe, clock):
                measure(store, label, configs, what, settings, clock)
    found, missing = assemble(store, rows, args.max_windows, args.limit)
    config = {
        "model": args.model,
        "methods": methods,
        "ratios": list(RATIOS),
        "ratio_of": RATIO_OF,
        "dtype": DTYPE,
        "max_windows": args.max_windows,
        "limit": args.limit,
        "seed": SEED,
        "tune_preset": TUNE_PRESET,
    }
    result = {"rows": found, "missing": missing}
    record = store.put("other_models_table", config, result, settings, replace=True)
    print(f"{args.model} record: {record.path}; {len(missing)} cells not measured yet")


if __name__ == "__main__":
    main()
