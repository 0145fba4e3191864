"""The 7-task zero-shot table of dense SmolLM2-135M and SlimLLM 20 % / 50 %, into the results store.

One "zeroshot" record per model (500 seeded items per task, the whole task where smaller, the
same items for every model; dtype from `resolve_dtype("auto", device)`), then a bfloat16 vs
float32 check on a small subset of the dense model ("zeroshot_dtype_check" record). Run it under
the shared lock:

    flock /tmp/slimllm-heavy.lock .venv/bin/python benchmarks/zeroshot_table.py
    ... zeroshot_table.py --probe 4,16,32   # time batch sizes first, use the fastest
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import torch

from slimllm.experiments import recipes
from slimllm.experiments.runners import run_zeroshot, zeroshot_config
from slimllm.experiments.store import Record, Store
from slimllm.measure.lm_eval_tasks import SEVEN_TASKS
from slimllm.measure.zeroshot import DEFAULT_BATCH_SIZE, zeroshot
from slimllm.method.config import PruneConfig
from slimllm.models.loaders import load_model
from slimllm.models.precision import resolve_dtype

MODELS = {
    "dense": recipes.dense(),
    "slimllm-20": recipes.pruned(PruneConfig(ratio=0.2)),
    "slimllm-50": recipes.pruned(PruneConfig(ratio=0.5)),
}


def measure(
    store: Store, config: dict[str, Any], settings: dict[str, Any], recompute: bool
) -> Record:
    return store.run(
        "zeroshot", config, lambda: run_zeroshot(config, settings), settings, recompute
    )


def print_table(rows: dict[str, Record]) -> None:
    tasks = list(next(iter(rows.values())).result["tasks"])
    print(f"{'model':>12} " + " ".join(f"{t[:13]:>15}" for t in tasks) + f" {'mean':>7} {'s':>6}")
    for name, rec in rows.items():
        res = rec.result
        cells = [
            f"{100 * res['tasks'][t]['value']:5.1f} ±{100 * res['tasks'][t]['stderr']:4.1f}"
            for t in tasks
        ]
        cells = [f"{c:>15}" for c in cells]
        print(f"{name:>12} " + " ".join(cells) + f" {100 * res['mean']:7.2f} {rec.seconds:6.0f}")
    first = next(iter(rows.values())).result["tasks"]
    print("metric: " + ", ".join(f"{t} {first[t]['metric']}" for t in tasks))


def dtype_check(
    store: Store, tasks: list[str], limit: int, seed: int, settings: dict[str, Any], recompute: bool
) -> Record:
    """bf16 vs fp32 on the dense model: both scores and the share of items judged the same."""
    runs = {
        dtype: measure(
            store, zeroshot_config(recipes.dense(), tasks, limit, seed, dtype), settings, recompute
        )
        for dtype in ("bfloat16", "float32")
    }
    bf, fp = runs["bfloat16"].result, runs["float32"].result
    check: dict[str, Any] = {}
    for task in tasks:
        row: dict[str, Any] = {}
        for metric in ("acc", "acc_norm"):
            a, b = bf["correct"][task][metric], fp["correct"][task][metric]
            row[metric] = {
                "bfloat16": bf["tasks"][task][metric],
                "float32": fp["tasks"][task][metric],
                "same_items": sum(x == y for x, y in zip(a, b, strict=True)) / len(a),
            }
        check[task] = row
    check["seconds"] = {d: r.seconds for d, r in runs.items()}
    config = {"model": recipes.dense(), "tasks": tasks, "limit": limit, "seed": seed}
    return store.put("zeroshot_dtype_check", config, check, settings, replace=True)


def probe_batch_sizes(sizes: list[int], dtype: str, limit: int) -> dict[str, Any]:
    """Seconds of the same small dense run (3 tasks, `limit` items) at each batch size."""
    model, tokenizer = load_model("smollm2-135m", dtype=dtype)
    tasks = ["boolq", "hellaswag", "arc_easy"]
    seconds = {}
    for size in sizes:
        res = zeroshot(model, tokenizer, tasks, limit=limit, batch_size=size)
        seconds[str(size)] = res.seconds
        print(f"batch {size:>3}: {res.seconds:6.1f} s, mean {res.mean:.4f}", flush=True)
    best = min(sizes, key=lambda s: seconds[str(s)])
    return {"tasks": tasks, "limit": limit, "dtype": dtype, "seconds": seconds, "chosen": best}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated")
    parser.add_argument("--limit", type=int, default=500, help="items per task")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--check-tasks", default="hellaswag,arc_easy")
    parser.add_argument("--check-limit", type=int, default=100)
    parser.add_argument("--no-check", action="store_true", help="skip the bf16/fp32 check")
    parser.add_argument(
        "--probe", default=None, help="first time these batch sizes (e.g. 4,16,32), use the fastest"
    )
    parser.add_argument("--recompute", action="store_true")
    args = parser.parse_args()
    dtype, reason = resolve_dtype("auto", args.device)
    settings: dict[str, Any] = {"device": args.device, "dtype_reason": reason}
    if args.probe:
        probe = probe_batch_sizes([int(s) for s in args.probe.split(",")], dtype, 20)
        args.batch_size = probe["chosen"]
        settings["batch_probe"] = probe
    settings["batch_size"] = args.batch_size
    store = Store.book()
    print(f"dtype {dtype} ({reason}); batch {args.batch_size}; {args.limit} items per task")
    rows = {}
    for name in args.models.split(","):
        start = time.perf_counter()
        config = zeroshot_config(MODELS[name], list(SEVEN_TASKS), args.limit, args.seed, dtype)
        rows[name] = measure(store, config, settings, args.recompute)
        state = "stored" if rows[name].loaded else f"{time.perf_counter() - start:.0f} s"
        print(f"{name}: mean {rows[name].result['mean']:.4f} ({state}) {rows[name].path}")
    print_table(rows)
    if not args.no_check:
        tasks = args.check_tasks.split(",")
        check = dtype_check(store, tasks, args.check_limit, args.seed, settings, args.recompute)
        for task in tasks:
            for metric, row in check.result[task].items():
                print(
                    f"{task} {metric}: bf16 {row['bfloat16']:.4f} fp32 {row['float32']:.4f}, "
                    f"same verdict on {row['same_items']:.1%} of items"
                )
        print(f"check record: {check.path}")


if __name__ == "__main__":
    main()
