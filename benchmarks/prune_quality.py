"""Perplexity of SmolLM2-135M pruned by SlimLLM at 20 % and 50 %, with the 50 % ablations.

For every variant: a "prune" record (per-layer ratios, heads and channels kept, regression
coefficients) and full-set WikiText-2 / PTB "perplexity" records under the 128-token protocol,
all keyed by the variant's recipe in the results store.

    python benchmarks/prune_quality.py                      # full sets (slow on a CPU)
    python benchmarks/prune_quality.py --max-windows 8      # quick look
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import torch

from slimllm.experiments import recipes
from slimllm.experiments.runners import measure_perplexity
from slimllm.method.config import PruneConfig

VARIANTS: dict[str, dict[str, object]] = {
    "slimllm-20": {"ratio": 0.2},
    "slimllm-50": {"ratio": 0.5},
    "no-greedy-50": {"ratio": 0.5, "greedy_search": False},
    "no-feature-space-50": {"ratio": 0.5, "feature_space": False},
    "uniform-50": {"ratio": 0.5, "uniform": True},
    "no-regression-50": {"ratio": 0.5, "regression": False},
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--datasets", default="wikitext2,ptb")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--max-windows", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="float32")
    args = parser.parse_args()
    for name in ["dense", *args.variants.split(",")]:
        recipe = (
            recipes.dense(args.model)
            if name == "dense"
            else recipes.pruned(
                replace(PruneConfig(), **VARIANTS[name]), args.model, prune_dtype=args.dtype
            )
        )
        model, tok = recipes.build(recipe, dtype=args.dtype, device=args.device, use_cache=False)
        for ds in args.datasets.split(","):
            rec = measure_perplexity(
                recipe,
                ds,
                dtype=args.dtype,
                max_windows=args.max_windows,
                batch_size=args.batch_size,
                device=args.device,
                recompute=True,
                model=model,
                tokenizer=tok,
                progress=False,
            )
            res = rec.result
            print(
                f"{name:>20} {ds:>10} {res['ppl']:9.3f} "
                f"({res['n_windows']} windows, {res['seconds']:.1f} s)",
                flush=True,
            )


if __name__ == "__main__":
    main()
