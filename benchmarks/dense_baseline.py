"""Dense perplexity of a model on full WikiText-2 / PTB sets: the record notebook 01 reads.

Writes results/dense_baseline.json in the `slimllm.results.cached_run` format, with the same
configuration notebook 01 asks for, so the notebook (and the book) reuse it instead of spending
an hour of CPU; `recompute=True` in the notebook measures it again.

    python benchmarks/dense_baseline.py [--device cuda]
"""

from __future__ import annotations

import argparse

import torch

from slimllm.evaluate import perplexity_table
from slimllm.models import load_model
from slimllm.results import DENSE_DATASETS, baseline_config, cached_run


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", default="results/dense_baseline.json")
    args = parser.parse_args()
    config = baseline_config(args.model, args.dtype, None, args.batch_size)

    def compute() -> dict[str, object]:
        model, tok = load_model(args.model, dtype=args.dtype, device=args.device)
        return perplexity_table(
            model, tok, DENSE_DATASETS, max_windows=None, batch_size=args.batch_size
        )

    result, _ = cached_run(args.out, config, compute, recompute=True)
    for name, res in result.items():
        print(f"{name:>10} {res['ppl']:9.3f} ({res['n_windows']} windows, {res['seconds']:.1f} s)")


if __name__ == "__main__":
    main()
