"""Table 1 for SmolLM2-135M: every method at 20 % and 50 % of the model's parameters.

For each cell: full-set WikiText-2 and PTB perplexity (128-token protocol) and the 7-task
zero-shot accuracy with intervals, without tuning; with the LoRA `cpu` preset for SlimLLM and
LLM-Pruner at both ratios; SlimLLM and `--seeds-method` at 50 % with three calibration seeds.
Every number is its own store record ("perplexity", "zeroshot"), so an interrupted run resumes;
the table itself is a "table1" record built from them.

    flock /tmp/slimllm-heavy.lock python benchmarks/table1.py               # everything
    python benchmarks/table1.py --max-windows 8 --limit 20 --no-tune       # a quick look

Zero-shot needs `slimllm.zeroshot` and tuning `slimllm.tune`; without them those columns are
skipped (and said so).
"""

from __future__ import annotations

import argparse
import importlib.util
from typing import Any

import torch

from slimllm.evaluate import perplexity
from slimllm.methods import METHODS, method_config
from slimllm.precision import resolve_dtype
from slimllm.recipes import build, dense, pruned
from slimllm.store import Store

RATIOS = (0.2, 0.5)
TUNED = ("slimllm", "llm-pruner")
SEEDS = (42, 43, 44)


def have(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def ppl_cell(
    store: Store,
    recipe: dict[str, Any],
    dataset: str,
    dtype: str,
    max_windows: int | None,
    device: str,
    batch_size: int,
) -> dict[str, Any]:
    """A "perplexity" record in the lead's config format (slimllm.evaluate.perplexity_config)."""
    config = {
        "model": recipe,
        "dataset": dataset,
        "protocol": "lineage-128",
        "dtype": dtype,
        "max_windows": max_windows,
    }

    def compute() -> dict[str, Any]:
        model, tok = build(recipe, dtype=dtype, device=device)
        return perplexity(
            model, tok, dataset, max_windows=max_windows, batch_size=batch_size, progress=False
        ).to_dict()

    result = store.run("perplexity", config, compute, {"device": device, "batch_size": batch_size})
    r = result.result
    return {"ppl": r["ppl"], "ci": [r["ci_low"], r["ci_high"]], "record": result.key}


def zeroshot_cell(
    store: Store, recipe: dict[str, Any], dtype: str, limit: int | None, device: str
) -> dict[str, Any] | None:
    if not have("slimllm.zeroshot"):
        return None
    from slimllm.zeroshot import SEVEN_TASKS, run_zeroshot

    config = {
        "model": recipe,
        "tasks": list(SEVEN_TASKS),
        "limit": limit,
        "seed": 0,
        "dtype": dtype,
    }
    settings = {"device": device}
    record = store.run("zeroshot", config, lambda: run_zeroshot(config, settings), settings)
    return {"result": record.result, "record": record.key}


def tuned_recipe(recipe: dict[str, Any]) -> dict[str, Any] | None:
    if not have("slimllm.tune"):
        return None
    from slimllm import recipes
    from slimllm.tune import preset

    return recipes.tuned(recipe, preset("cpu"))  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--max-windows", type=int, default=None, help="default: full sets")
    parser.add_argument("--limit", type=int, default=None, help="zero-shot items per task")
    parser.add_argument("--seeds-method", default="flap", help="the peer run with three seeds")
    parser.add_argument("--no-tune", action="store_true")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    store = Store()
    dtype_name, why = resolve_dtype("auto", args.device)
    print(f"dtype {dtype_name} ({why})")
    rows: list[dict[str, Any]] = []
    skipped: list[str] = []

    def cells(label: str, recipe: dict[str, Any], **keys: Any) -> None:
        row: dict[str, Any] = {"label": label, "recipe": recipe, **keys}
        for ds in ("wikitext2", "ptb"):
            row[ds] = ppl_cell(
                store, recipe, ds, dtype_name, args.max_windows, args.device, args.batch_size
            )
        row["zeroshot"] = zeroshot_cell(store, recipe, dtype_name, args.limit, args.device)
        if row["zeroshot"] is None and "zero-shot (no slimllm.zeroshot)" not in skipped:
            skipped.append("zero-shot (no slimllm.zeroshot)")
        rows.append(row)
        print(label, {ds: round(row[ds]["ppl"], 2) for ds in ("wikitext2", "ptb")}, flush=True)

    cells("dense", dense(args.model), method="dense", ratio=0.0, tuned=False, seed=None)
    for ratio in RATIOS:
        for method in args.methods.split(","):
            config = method_config(method, ratio=ratio)
            recipe = pruned(config, base=args.model, method=method)
            cells(
                f"{method} {ratio:.0%}",
                recipe,
                method=method,
                ratio=ratio,
                tuned=False,
                seed=config.seed,
            )
            if method in TUNED and not args.no_tune:
                tuned = tuned_recipe(recipe)
                if tuned is None:
                    skipped.append(f"{method} {ratio:.0%} w/ tune (no slimllm.tune)")
                else:
                    cells(
                        f"{method} {ratio:.0%} w/ tune",
                        tuned,
                        method=method,
                        ratio=ratio,
                        tuned=True,
                        seed=config.seed,
                    )
    for method in ("slimllm", args.seeds_method):
        for seed in SEEDS[1:]:
            config = method_config(method, ratio=0.5, seed=seed)
            recipe = pruned(config, base=args.model, method=method)
            cells(
                f"{method} 50% seed {seed}",
                recipe,
                method=method,
                ratio=0.5,
                tuned=False,
                seed=seed,
            )
    table_config = {
        "model": args.model,
        "methods": args.methods.split(","),
        "ratios": list(RATIOS),
        "dtype": dtype_name,
        "max_windows": args.max_windows,
        "limit": args.limit,
        "seeds": list(SEEDS),
        "seeds_method": args.seeds_method,
        "tune": not args.no_tune,
    }
    result = {"rows": rows, "skipped": skipped, "dtype_reason": why}
    store.put("table1", table_config, result, {"device": args.device})
    if skipped:
        print("skipped:", "; ".join(skipped))


if __name__ == "__main__":
    main()
