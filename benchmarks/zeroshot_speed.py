"""Zero-shot speed: the 7-task 500-item subset through the fast backend, and the fast backend
against lm-eval's own HFLM on a shorter subset (one "zeroshot_speed" record).

1. `zeroshot(..., backend="fast")` on SmolLM2, 500 seeded items per task (the whole task where
   smaller), in float32 and, where the precision probe picks it, bfloat16: wall and CPU time,
   items and scores (target: under 5 minutes).
2. 50 items per task through both backends, in the same process and threads, per dtype: the
   wall time of each `zeroshot` (and their ratio), whether accuracies and per-item verdicts are
   equal, and every request's log-likelihood and greedy flag as each backend answered lm-eval
   (the largest absolute difference, flags that differ; target in float32: within 1e-4).

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
from slimllm.measure.zeroshot import BACKENDS, zeroshot
from slimllm.models.loaders import load_model
from slimllm.models.precision import resolve_dtype
from slimllm.util.provenance import cpu_info

TARGET_SECONDS = 300


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


def compare(model: Any, tokenizer: Any, limit: int, seed: int) -> dict[str, Any]:
    """Both backends on `limit` items of each task: times, accuracies, per-request answers."""
    runs, times = {}, {}
    for backend in BACKENDS:
        runs[backend], times[backend] = timed(
            lambda b=backend: zeroshot(
                model,
                tokenizer,
                SEVEN_TASKS,
                limit=limit,
                seed=seed,
                backend=b,
                keep_loglikelihoods=True,
            )
        )
    fast, hflm = runs["fast"], runs["hflm"]
    verdicts = {
        t: sum(
            a != b
            for m in fast.correct[t]
            for a, b in zip(fast.correct[t][m], hflm.correct[t][m], strict=True)
        )
        for t in SEVEN_TASKS
    }
    pairs = [
        (a, b)
        for t in SEVEN_TASKS
        for x, y in zip(fast.loglikelihoods[t], hflm.loglikelihoods[t], strict=True)
        for a, b in zip(x, y, strict=True)
    ]
    out = {
        "limit": limit,
        "times": times,
        "speedup": times["hflm"]["seconds"] / times["fast"]["seconds"],
        "accuracy_equal": all(
            fast.tasks[t][m] == hflm.tasks[t][m] for t in SEVEN_TASKS for m in ("acc", "acc_norm")
        ),
        "verdicts_differ": verdicts,
        "means": {"fast": fast.mean, "hflm": hflm.mean},
        "requests": len(pairs),
        "max_abs_diff": max(abs(a[0] - b[0]) for a, b in pairs),
        "greedy_differ": sum(a[1] != b[1] for a, b in pairs),
    }
    print(
        f"  {limit} items: HFLM {times['hflm']['seconds']:.0f} s, fast "
        f"{times['fast']['seconds']:.0f} s ({out['speedup']:.2f}x); accuracies equal: "
        f"{out['accuracy_equal']}; {len(pairs)} requests, max |diff| "
        f"{out['max_abs_diff']:.2e}, greedy flags differing {out['greedy_differ']}"
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
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
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
            "compare": compare(model, tokenizer, args.compare_limit, args.seed),
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
