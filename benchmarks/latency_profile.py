"""Where prefill time goes: matmuls, attention, and everything else, dense vs pruned SmolLM2.

Pruning shrinks the projections but not the hidden size, the norms, the rotary embedding or
the per-operator framework cost, so the time cannot fall as fast as the FLOPs. This splits the
self time of a 256-token prefill (torch.profiler, operator level) into those parts and writes
one "latency_profile" record. Run under the shared lock:
`flock /tmp/slimllm-heavy.lock .venv/bin/python benchmarks/latency_profile.py`.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from typing import Any

import torch
from torch.profiler import ProfilerActivity, profile

from slimllm.experiments import recipes
from slimllm.experiments.store import Store
from slimllm.measure import flops
from slimllm.measure.latency import _prompt, greedy_generate, greedy_loop
from slimllm.method.config import PruneConfig
from slimllm.models.loaders import parse_dtype
from slimllm.models.precision import resolve_dtype

MATMUL = ("aten::mm", "aten::addmm", "aten::bmm", "aten::matmul", "aten::linear")
ATTENTION = ("scaled_dot_product", "flash_attention")


def category(name: str) -> str:
    if any(key in name for key in ATTENTION):
        return "attention"
    if name in MATMUL:
        return "matmul"
    return "other"


def profile_prefill(model: torch.nn.Module, ids: torch.Tensor, runs: int) -> dict[str, Any]:
    """Mean seconds per prefill by category (operator self time) and wall time, both drivers."""
    for _ in range(2):
        greedy_generate(model, ids, 1)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(runs):
            greedy_generate(model, ids, 1)
    split: dict[str, float] = defaultdict(float)
    for event in prof.key_averages():
        split[category(event.key)] += event.self_cpu_time_total / 1e6 / runs
    walls = {}
    for name, fn in (("generate", greedy_generate), ("loop", greedy_loop)):
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            fn(model, ids, 1)
            times.append(time.perf_counter() - start)
        walls[name] = sorted(times)[len(times) // 2]
    top = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)[:12]
    return {
        "by_category": dict(split),
        # Wall time the operators' self times do not cover: Python, dispatch, generate logic.
        "unaccounted_generate": walls["generate"] - sum(split.values()),
        "wall_median": walls,
        "top_ops": [
            {"op": e.key, "self_s": e.self_cpu_time_total / 1e6 / runs, "calls": e.count // runs}
            for e in top
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    dtype, _ = resolve_dtype("auto", "cpu")
    models = {
        "dense": recipes.dense(),
        "slimllm 50%": recipes.pruned(PruneConfig(ratio=0.5)),
        "slimllm 50% round 64": recipes.pruned(PruneConfig(ratio=0.5, round_channels_to=64)),
    }
    ids = _prompt(49152, 1, 256, 0)
    result = {}
    for label, recipe in models.items():
        model, _ = recipes.build(recipe, dtype=dtype)
        model = model.to(parse_dtype(dtype))
        entry = profile_prefill(model, ids, args.runs)
        entry["prefill_flops"] = flops.prefill_flops(model, 256)
        result[label] = entry
        parts = ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in sorted(entry["by_category"].items()))
        walls = ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in entry["wall_median"].items())
        print(f"{label:<22} {parts}; wall {walls}")
    config = {"models": models, "dtype": dtype, "prefill_len": 256, "runs": args.runs}
    record = Store.book().put(
        "latency_profile", config, result, settings={"device": "cpu"}, replace=True
    )
    print(record.where, "->", record.path)


if __name__ == "__main__":
    main()
