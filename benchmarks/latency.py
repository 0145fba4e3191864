"""Table 3 on this machine: latency of dense and SlimLLM-pruned SmolLM2, and channel rounding.

Writes into the results store (`results/`): one "latency" record for all models measured in the
same run (interleaved), and one "perplexity" record per model on the first 256 WikiText-2
windows, to tell whether rounding the kept channels to a multiple of 8 or 64 costs quality.
Run under the shared lock: `flock /tmp/slimllm-heavy.lock .venv/bin/python benchmarks/latency.py`.

`--preset table3` is the paper's Table 3 protocol: dense, 20 % and 50 % (no rounding), prefill
of 256 tokens, decoding of 256 new tokens at batch 8, 10 repeats, bfloat16 (Table 1's dtype),
one torch thread (other processes share this machine's 2 cores: one thread, with
OMP_WAIT_POLICY=PASSIVE, keeps an idle OpenMP worker from spinning on a core a neighbour
needs), and no perplexity records. The record's settings say how it ran: threads,
OMP_WAIT_POLICY, the process's nice value and the preset.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from slimllm.experiments import recipes
from slimllm.experiments.runners import run_latency
from slimllm.experiments.store import Store
from slimllm.measure.latency import DRIVERS, LatencySpec, table
from slimllm.measure.perplexity import perplexity
from slimllm.method.config import PruneConfig
from slimllm.models.loaders import parse_dtype
from slimllm.models.precision import resolve_dtype

RATIOS = (0.2, 0.5)
ROUNDINGS = (1, 8, 64)
PPL_WINDOWS = 256
#: Option values of each preset (explicit options on the command line still win).
PRESETS: dict[str, dict[str, Any]] = {
    "table3": {
        "no_rounding": True,
        "prefill_len": 256,
        "decode_batch": 8,
        "new_tokens": 256,
        "repeats": 10,
        "threads": 1,
        "dtype": "bfloat16",
        "no_ppl": True,
    },
}


def model_recipes(roundings: tuple[int, ...]) -> dict[str, dict[str, Any]]:
    models = {"dense": recipes.dense()}
    for ratio in RATIOS:
        for multiple in roundings:
            config = PruneConfig(ratio=ratio, round_channels_to=multiple)
            models[recipes.label(recipes.pruned(config)).removeprefix("smollm2-135m ")] = (
                recipes.pruned(config)
            )
    return models


def ppl_records(store: Store, models: dict[str, dict[str, Any]], dtype: str) -> None:
    for label, recipe in models.items():
        config = {
            "model": recipe,
            "dataset": "wikitext2",
            "protocol": "lineage-128",
            "dtype": dtype,
            "max_windows": PPL_WINDOWS,
        }

        def compute(recipe: dict[str, Any] = recipe) -> dict[str, Any]:
            model, tokenizer = recipes.build(recipe, dtype=dtype, progress=True)
            model = model.to(parse_dtype(dtype))
            return perplexity(model, tokenizer, max_windows=PPL_WINDOWS, progress=False).to_dict()

        record = store.run("perplexity", config, compute, settings={"batch_size": 8})
        print(f"{label:<24} ppl {record.result['ppl']:.3f} ({record.where})")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", choices=sorted(PRESETS), help="a protocol's option values")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--prefill-len", type=int, default=256, help="prefill prompt tokens")
    parser.add_argument("--decode-batch", type=int, default=8, help="decoding batch size")
    parser.add_argument(
        "--new-tokens",
        type=int,
        default=256,
        help="decode length (the paper's 256; shorter when the shared CPU is too busy for it)",
    )
    parser.add_argument("--driver", choices=DRIVERS, default="generate")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument("--no-rounding", action="store_true", help="dense, 20 %% and 50 %% only")
    parser.add_argument("--no-ppl", action="store_true", help="no perplexity records")
    parser.add_argument("--recompute", action="store_true")
    chosen, _ = parser.parse_known_args()
    if chosen.preset:
        parser.set_defaults(**PRESETS[chosen.preset])
    args = parser.parse_args()
    dtype, _ = resolve_dtype(args.dtype, "cpu")
    models = model_recipes((1,) if args.no_rounding else ROUNDINGS)
    store = Store.book()
    spec = LatencySpec(
        prefill_len=args.prefill_len,
        decode_batch=args.decode_batch,
        new_tokens=args.new_tokens,
        repeats=args.repeats,
        driver=args.driver,
    )
    config = {"models": models, "dtype": dtype, **vars(spec)}
    settings = {
        "device": "cpu",
        "threads": args.threads,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "nice": os.nice(0),
        "preset": args.preset,
    }
    if args.recompute or store.get("latency", config) is None:
        for recipe in models.values():
            recipes.build(recipe, dtype=dtype, progress=True)  # prune once, outside the timing
    record = store.run(
        "latency",
        config,
        lambda: run_latency(config, settings),
        settings=settings,
        recompute=args.recompute,
    )
    print(table(record.result))
    print(record.where, "->", record.path)
    if not args.no_ppl:
        ppl_records(store, models, dtype)


if __name__ == "__main__":
    main()
