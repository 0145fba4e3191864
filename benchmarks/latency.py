"""Table 3 on this machine: latency of dense and SlimLLM-pruned SmolLM2, and channel rounding.

Writes into the results store (`results/`): one "latency" record for all models measured in the
same run (interleaved), and one "perplexity" record per model on the first 256 WikiText-2
windows, to tell whether rounding the kept channels to a multiple of 8 or 64 costs quality.
Run under the shared lock: `flock /tmp/slimllm-heavy.lock .venv/bin/python benchmarks/latency.py`.
"""

from __future__ import annotations

import argparse
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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument(
        "--new-tokens",
        type=int,
        default=256,
        help="decode length (the paper's 256; shorter when the shared CPU is too busy for it)",
    )
    parser.add_argument("--driver", choices=DRIVERS, default="generate")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--no-rounding", action="store_true", help="dense, 20 %% and 50 %% only")
    parser.add_argument("--recompute", action="store_true")
    args = parser.parse_args()
    dtype, _ = resolve_dtype(args.dtype, "cpu")
    models = model_recipes((1,) if args.no_rounding else ROUNDINGS)
    for recipe in models.values():
        recipes.build(recipe, dtype=dtype, progress=True)  # prune once, outside the timing
    store = Store.book()
    config = {
        "models": models,
        "dtype": dtype,
        **vars(LatencySpec(repeats=args.repeats, driver=args.driver, new_tokens=args.new_tokens)),
    }
    record = store.run(
        "latency",
        config,
        lambda: run_latency(config, {"device": "cpu"}),
        settings={"device": "cpu"},
        recompute=args.recompute,
    )
    print(table(record.result))
    print(record.where, "->", record.path)
    ppl_records(store, models, dtype)


if __name__ == "__main__":
    main()
