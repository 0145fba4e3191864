"""Perplexity of SmolLM2-135M pruned by SlimLLM at 20 % and 50 %, with the 50 % ablations.

Writes results/prune_quality.json: for every variant the pruning record (per-layer ratios,
heads and channels kept, regression coefficients) and full-set WikiText-2 / PTB perplexity
under the 128-token protocol, next to the dense model measured the same way.

    python benchmarks/prune_quality.py                      # full sets (slow on a CPU)
    python benchmarks/prune_quality.py --max-windows 8      # quick look
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import torch

from slimllm.evaluate import perplexity
from slimllm.models import load_model
from slimllm.provenance import versions
from slimllm.pruner import PruneConfig, prune
from slimllm.results import write_json

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
    parser.add_argument("--out", default="results/prune_quality.json")
    args = parser.parse_args()
    datasets = args.datasets.split(",")
    base = PruneConfig()
    rows = []
    for name in ["dense", *args.variants.split(",")]:
        model, tok = load_model(args.model, dtype=args.dtype, device=args.device)
        row: dict[str, object] = {"variant": name}
        if name != "dense":
            config = replace(base, **VARIANTS[name])
            report = prune(model, tok, config, device=args.device, progress=False)
            row["prune"] = report.to_dict()
        row["parameters"] = sum(p.numel() for p in model.parameters())
        row["ppl"] = {}
        for ds in datasets:
            res = perplexity(
                model,
                tok,
                ds,
                max_windows=args.max_windows,
                batch_size=args.batch_size,
                progress=False,
            )
            row["ppl"][ds] = res.to_dict()
            print(
                f"{name:>20} {ds:>10} {res.ppl:9.3f} "
                f"({res.n_windows} windows, {res.seconds:.1f} s)",
                flush=True,
            )
        rows.append(row)
    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    write_json(
        args.out,
        {
            "benchmark": "prune_quality",
            "model": args.model,
            "dtype": args.dtype,
            "device": device_name,
            "protocol": "lineage-128",
            "max_windows": args.max_windows,
            "date": time.strftime("%Y-%m-%d"),
            "versions": versions(),
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main()
