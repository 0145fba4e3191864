"""Zero-shot speed: the 7-task 500-item subset through the fast backend, and the fast backend
against lm-eval's own HFLM on a shorter subset (one "zeroshot_speed" record).

1. `zeroshot(..., backend="fast")` on SmolLM2, 500 seeded items per task (the whole task where
   smaller), in float32 and, where the precision probe picks it, bfloat16: wall and CPU time,
   items and scores (target: under 5 minutes).
2. 50 items per task through both backends, in the same process and threads, per dtype: the
   wall time of each `zeroshot` (and their ratio), whether accuracies and per-item verdicts are
   equal, and every request's log-likelihood and greedy flag as each backend answered lm-eval
   (the largest absolute difference, flags that differ; target in float32: within 1e-4). Below
   float32, HFLM at another batch size gives the scale of rounding to compare with.

The machine's load average is recorded beside each time: other work on the cores slows a run.

    flock /tmp/slimllm-heavy.lock .venv/bin/python benchmarks/zeroshot_speed.py
    ... zeroshot_speed.py --limit 20 --compare-limit 5 --results-dir /tmp/zs   # a quick look
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import torch

from slimllm.experiments import recipes
from slimllm.experiments.store import Store
from slimllm.measure.lm_eval_tasks import SEVEN_TASKS
from slimllm.measure.zeroshot import DEFAULT_BATCH_SIZE, ZeroShotResult, zeroshot
from slimllm.models.loaders import load_model
from slimllm.models.precision import resolve_dtype
from slimllm.util.provenance import cpu_info

TARGET_SECONDS = 300

#: HFLM's reference batch size below float32 (its default is DEFAULT_BATCH_SIZE).
OTHER_BATCH_SIZE = 4


def timed(run: Any) -> tuple[Any, dict[str, float]]:
    """`run()` and its wall seconds, CPU seconds and the 1-minute load average before and after."""
    load, wall, cpu = os.getloadavg()[0], time.perf_counter(), time.process_time()
    out = run()
    return out, {
        "seconds": time.perf_counter() - wall,
        "cpu_seconds": time.process_time() - cpu,
        "load_before": load,
        "load_after": os.getloadavg()[0],
    }


def full_subset(model: Any, tokenizer: Any, limit: int, seed: int) -> dict[str, Any]:
    """The fast backend on `limit` items of each task: times, items and scores."""
    res, times = timed(lambda: zeroshot(model, tokenizer, SEVEN_TASKS, limit=limit, seed=seed))
    items = {t: row["n"] for t, row in res.tasks.items()}
    print(f"  fast, {sum(items.values())} items: {times['seconds']:.0f} s, mean {res.mean:.4f}")
    return {
        **times,
        "items": items,
        "mean": res.mean,
        "tasks": {t: row["value"] for t, row in res.tasks.items()},
        "settings": res.settings,
    }


def agreement(a: ZeroShotResult, b: ZeroShotResult) -> dict[str, Any]:
    """How far two runs on the same items are apart: accuracies, verdicts, every request."""
    pairs = [
        (x, y)
        for t in SEVEN_TASKS
        for item_a, item_b in zip(a.loglikelihoods[t], b.loglikelihoods[t], strict=True)
        for x, y in zip(item_a, item_b, strict=True)
    ]
    return {
        "accuracy_equal": all(
            a.tasks[t][m] == b.tasks[t][m] for t in SEVEN_TASKS for m in ("acc", "acc_norm")
        ),
        "verdicts_differ": {
            t: sum(
                x != y
                for m in a.correct[t]
                for x, y in zip(a.correct[t][m], b.correct[t][m], strict=True)
            )
            for t in SEVEN_TASKS
        },
        "means": [a.mean, b.mean],
        "requests": len(pairs),
        "max_abs_diff": max(abs(x[0] - y[0]) for x, y in pairs),
        "greedy_differ": sum(x[1] != y[1] for x, y in pairs),
    }


def compare(model: Any, tokenizer: Any, limit: int, seed: int, dtype: str) -> dict[str, Any]:
    """Both backends on `limit` items of each task: times and agreement. Below float32, HFLM at
    another batch size too: rounding that depends on the matrix shapes moves HFLM's own numbers,
    which sizes the fast backend's distance from HFLM."""
    kinds = {"fast": ("fast", DEFAULT_BATCH_SIZE), "hflm": ("hflm", DEFAULT_BATCH_SIZE)}
    if dtype != "float32":
        kinds["hflm_other_batch"] = ("hflm", OTHER_BATCH_SIZE)
    runs, times = {}, {}
    for kind, (backend, batch) in kinds.items():
        runs[kind], times[kind] = timed(
            lambda b=backend, n=batch: zeroshot(
                model,
                tokenizer,
                SEVEN_TASKS,
                limit=limit,
                seed=seed,
                batch_size=n,
                backend=b,
                keep_loglikelihoods=True,
            )
        )
    out = {
        "limit": limit,
        "times": times,
        "speedup": times["hflm"]["seconds"] / times["fast"]["seconds"],
        "fast_vs_hflm": agreement(runs["fast"], runs["hflm"]),
    }
    line = out["fast_vs_hflm"]
    print(
        f"  {limit} items: HFLM {times['hflm']['seconds']:.0f} s, fast "
        f"{times['fast']['seconds']:.0f} s ({out['speedup']:.2f}x); accuracies equal: "
        f"{line['accuracy_equal']}; {line['requests']} requests, max |diff| "
        f"{line['max_abs_diff']:.2e}, greedy flags differing {line['greedy_differ']}"
    )
    if "hflm_other_batch" in runs:
        out["hflm_vs_hflm_other_batch"] = ref = agreement(runs["hflm"], runs["hflm_other_batch"])
        print(
            f"  HFLM batch {DEFAULT_BATCH_SIZE} vs {OTHER_BATCH_SIZE}: accuracies equal: "
            f"{ref['accuracy_equal']}, max |diff| {ref['max_abs_diff']:.2e}"
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--limit", type=int, default=500, help="items per task, fast backend")
    parser.add_argument("--compare-limit", type=int, default=50, help="items per task, both")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads",
        type=int,
        default=torch.get_num_threads(),
        help="1 where other work shares the cores: threads then wait on each other",
    )
    parser.add_argument("--results-dir", default=None, help="default: the checkout's results/")
    parser.add_argument("--replace", action="store_true", help="replace differing numbers")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    auto, reason = resolve_dtype("auto", "cpu")
    dtypes = ([auto] if auto != "float32" else []) + ["float32"]
    print(f"CPU {cpu_info()}, {args.threads} threads; dtypes {dtypes} (auto: {reason})")
    result: dict[str, Any] = {"target_seconds": TARGET_SECONDS, "dtype_reason": reason}
    start = time.perf_counter()
    for dtype in dtypes:
        print(f"{dtype}:")
        model, tokenizer = load_model(args.model, dtype=dtype)
        result[dtype] = {
            "subset": full_subset(model, tokenizer, args.limit, args.seed),
            "compare": compare(model, tokenizer, args.compare_limit, args.seed, dtype),
        }
    config = {
        "model": recipes.dense(args.model),
        "tasks": list(SEVEN_TASKS),
        "limit": args.limit,
        "compare_limit": args.compare_limit,
        "seed": args.seed,
        "dtypes": dtypes,
        "threads": args.threads,
    }
    record = Store.book(args.results_dir).put(
        "zeroshot_speed",
        config,
        result,
        {"device": "cpu"},
        seconds=time.perf_counter() - start,
        replace=args.replace,
    )
    print(f"record: {record.path}")


if __name__ == "__main__":
    main()
