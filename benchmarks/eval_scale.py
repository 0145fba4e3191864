"""LLaMA-7B's shape scored under the book's perplexity protocol: the time of an evaluation at
the paper's scale, to set beside the time model of `slimllm.book.budget`.

A seeded random model with huggyllama/llama-7b's config (`prune_scale.SHAPES`) is built on the
device in the given dtype and `slimllm.measure.perplexity.perplexity` scores the first `--windows`
windows of WikiText-2's test set (lineage-128, batches of `--batch-size`), after a warm-up of
one batch. LLaMA's tokenizer is not offline, so the byte tokenizer cuts the windows: the time per
token is the model's, whatever the tokens. The "eval_scale" record holds the wall time, the
tokens scored, their rate and, on a GPU, the peak memory; the weights are random, so the
perplexity means nothing and is not kept.

    python benchmarks/eval_scale.py --device cuda
    python benchmarks/eval_scale.py --device cpu --layers 1 --windows 4   # a check of the code
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch
from prune_scale import add_model_arguments, code_version, model_from_arguments

from slimllm.experiments.store import Store
from slimllm.measure.perplexity import perplexity
from slimllm.models.loaders import byte_tokenizer


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_model_arguments(parser, "float16", "the paper preset's (default)")
    parser.add_argument(
        "--windows", type=int, default=2560, help="about WikiText-2 in LLaMA tokens"
    )
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()
    start = time.perf_counter()
    model, model_record, device = model_from_arguments(args)
    built = time.perf_counter() - start
    tok = byte_tokenizer()
    data_dir = os.environ.get("SLIMLLM_DATA_DIR")

    def score(windows: int) -> tuple[float, int]:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        res = perplexity(
            model,
            tok,
            "wikitext2",
            max_windows=windows,
            batch_size=args.batch_size,
            data_dir=data_dir,
            progress=False,
        )
        return res.seconds, res.n_tokens

    score(args.batch_size)  # warm-up: kernels, cuBLAS handles, the tokenised text
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    seconds, tokens = score(args.windows)
    result = {
        "seconds": seconds,
        "tokens": tokens,
        "tokens_per_second": tokens / seconds,
        "windows": args.windows,
        "build_seconds": built,
        "params": sum(p.numel() for p in model.parameters()),
        **code_version(),
    }
    if device.type == "cuda":
        result["peak_gpu_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    record_config = {
        "model": model_record,
        "shape": args.shape,
        "dtype": args.dtype,
        "device": args.device,
        "dataset": "wikitext2",
        "protocol": "lineage-128",
        "tokenizer": "byte",
        "windows": args.windows,
        "batch_size": args.batch_size,
    }
    rec = Store.book().put(
        "eval_scale",
        record_config,
        result,
        {"threads": args.threads},
        seconds=seconds,
        replace=args.replace,
    )
    print(json.dumps(result, indent=1), rec.path, flush=True)


if __name__ == "__main__":
    main()
