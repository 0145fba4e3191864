"""Dense perplexity of a model on the full WikiText-2 / PTB sets: the records notebook 01 reads.

Writes one "perplexity" record per dataset into the results store, under the configuration
notebook 01 asks for, so the notebook (and the book) read them instead of recomputing.

    python benchmarks/dense_baseline.py [--device cuda] [--dtype float32]
"""

from __future__ import annotations

import argparse

import torch

from slimllm.experiments import recipes
from slimllm.experiments.runners import measure_perplexity

DATASETS = ("wikitext2", "ptb", "ptb-valid")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    model, tok = recipes.build(recipes.dense(args.model), dtype=args.dtype, device=args.device)
    for name in DATASETS:
        rec = measure_perplexity(
            recipes.dense(args.model),
            name,
            dtype=args.dtype,
            batch_size=args.batch_size,
            device=args.device,
            recompute=True,
            model=model,
            tokenizer=tok,
        )
        res = rec.result
        print(f"{name:>10} {res['ppl']:9.3f} ({res['n_windows']} windows, {res['seconds']:.1f} s)")


if __name__ == "__main__":
    main()
