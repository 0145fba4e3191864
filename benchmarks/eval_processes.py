"""Evaluation across processes: 2 CPU processes under `accelerate launch` against one process,
on SmolLM2 (one "eval_processes" record).

The same measurements run twice, in float32 with one thread per process: here, in one process,
and in 2 processes started by `accelerate launch --multi_gpu --num_processes 2` (torchrun;
accelerate's `--cpu` launcher starts more than one only through mpirun), which join over gloo
(`slimllm.measure.parallel`). Measured: WikiText-2 perplexity on the first windows (each
window's NLL) and zero-shot on a seeded subset of the 7 tasks (every verdict and every
request's log-likelihood, as the fast backend answered lm-eval). The record holds both results,
whether they are equal and the largest differences, and the wall times; on the 2 shared cores
the 2-process time says nothing about the speed-up on separate GPUs.

    flock /tmp/slimllm-heavy.lock .venv/bin/python benchmarks/eval_processes.py
    ... eval_processes.py --windows 8 --limit 3 --results-dir /tmp/ep      # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from zeroshot_speed import agreement

from slimllm.experiments import recipes
from slimllm.experiments.store import Store
from slimllm.measure import parallel
from slimllm.measure.lm_eval_tasks import SEVEN_TASKS
from slimllm.measure.perplexity import perplexity
from slimllm.measure.zeroshot import zeroshot
from slimllm.models.loaders import load_model
from slimllm.util.provenance import cpu_info

ROOT = Path(__file__).resolve().parents[1]
PROCESSES = 2
BATCH_SIZE = 8


def measure(model_name: str, windows: int, limit: int, seed: int) -> dict[str, Any]:
    """Perplexity and zero-shot of `model_name` in float32 on the CPU, split across the
    processes this one belongs to (alone: all of it here)."""
    model, tokenizer = load_model(model_name, dtype="float32")
    start = time.perf_counter()
    ppl = perplexity(model, tokenizer, "wikitext2", max_windows=windows, batch_size=BATCH_SIZE)
    zs = zeroshot(model, tokenizer, SEVEN_TASKS, limit=limit, seed=seed, keep_loglikelihoods=True)
    return {
        "seconds": time.perf_counter() - start,
        "perplexity_seconds": ppl.seconds,
        "zeroshot_seconds": zs.seconds,
        "ppl": ppl.ppl,
        "window_nll": ppl.window_nll,
        "zeroshot": zs.to_dict(),
    }


def launched_run(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """`measure` in PROCESSES processes started by accelerate; process 0 writes `out`."""
    command = [str(Path(sys.executable).with_name("accelerate")), "launch", "--multi_gpu"]
    command += ["--num_processes", str(PROCESSES), "--num_machines", "1"]
    command += ["--mixed_precision", "no", "--dynamo_backend", "no", __file__]
    command += ["--model", args.model, "--windows", str(args.windows), "--limit", str(args.limit)]
    command += ["--seed", str(args.seed), "--worker", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True)
    return {**json.loads(out.read_text()), "launch_seconds": time.perf_counter() - start}


def compare(one: dict[str, Any], two: dict[str, Any]) -> dict[str, Any]:
    """How far the 2-process run is from the 1-process run."""
    nll_one, nll_two = one["window_nll"], two["window_nll"]
    zs_one, zs_two = (argparse.Namespace(**run["zeroshot"]) for run in (one, two))
    return {
        "windows": len(nll_one),
        "ppl_equal": one["ppl"] == two["ppl"],
        "window_nll_equal": nll_one == nll_two,
        "window_nll_max_abs_diff": max(abs(a - b) for a, b in zip(nll_one, nll_two, strict=True)),
        "zeroshot": agreement(zs_one, zs_two),
    }


def worker(args: argparse.Namespace) -> None:
    parallel.join("cpu")
    result = measure(args.model, args.windows, args.limit, args.seed)
    rank, world = parallel.rank_and_world()
    if rank == 0:
        Path(args.worker).write_text(json.dumps({**result, "processes": world}))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--windows", type=int, default=64, help="WikiText-2 windows (first)")
    parser.add_argument("--limit", type=int, default=20, help="items per task (seeded subset)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results-dir", default=None, help="default: the checkout's results/")
    parser.add_argument("--replace", action="store_true", help="replace differing numbers")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.worker is not None:
        worker(args)
        return
    print(f"CPU {cpu_info()}; 1 process, then {PROCESSES} under accelerate, 1 thread each")
    start = time.perf_counter()
    one = measure(args.model, args.windows, args.limit, args.seed)
    print(f"  1 process: ppl {one['ppl']:.4f}, {one['seconds']:.0f} s", flush=True)
    with tempfile.TemporaryDirectory(prefix="eval-processes-") as folder:
        two = launched_run(args, Path(folder) / "two.json")
    print(f"  {PROCESSES} processes: ppl {two['ppl']:.4f}, {two['seconds']:.0f} s")
    agree = compare(one, two)
    zs = agree["zeroshot"]
    print(
        f"  perplexity equal: {agree['ppl_equal']} (windows: {agree['window_nll_equal']}); "
        f"zero-shot accuracies equal: {zs['accuracy_equal']}, {zs['requests']} requests, "
        f"max |diff| {zs['max_abs_diff']:.2e}"
    )
    times = ("seconds", "perplexity_seconds", "zeroshot_seconds")
    result = {
        "agreement": agree,
        "one": {k: one[k] for k in (*times, "ppl")} | {"mean": one["zeroshot"]["mean"]},
        "two": {k: two[k] for k in (*times, "ppl", "launch_seconds", "processes")}
        | {"mean": two["zeroshot"]["mean"]},
    }
    config = {
        "model": recipes.dense(args.model),
        "dtype": "float32",
        "windows": args.windows,
        "batch_size": BATCH_SIZE,
        "tasks": list(SEVEN_TASKS),
        "limit": args.limit,
        "seed": args.seed,
        "processes": PROCESSES,
        "threads_per_process": 1,
    }
    record = Store.book(args.results_dir).put(
        "eval_processes",
        config,
        result,
        {"device": "cpu", "launcher": "accelerate launch --multi_gpu (torchrun), gloo"},
        seconds=time.perf_counter() - start,
        replace=args.replace,
    )
    print(f"record: {record.path}")


if __name__ == "__main__":
    main()
