"""Wall time and peak memory of SlimLLM pruning on this machine's CPU.

Each case runs in a fresh subprocess, so its peak resident memory (ru_maxrss) is its own:
SmolLM2-135M at 20 % and 50 %, and a seeded random LLaMA of about 1B parameters, whose peak
should stay near the model plus one layer's calibration activations. Each case is a
"prune_cost" record in the results store; peak memory is compared as a ratio to the same
process once the dense model is loaded and resident (Python, torch and the weights).

    python benchmarks/prune_cost.py
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch

from slimllm.experiments import recipes
from slimllm.experiments.store import Store
from slimllm.method.config import PruneConfig

CASES = {
    "smollm2-135m@20": {"model": "smollm2-135m", "ratio": 0.2, "samples": 32},
    "smollm2-135m@50": {"model": "smollm2-135m", "ratio": 0.5, "samples": 32},
    # Random weights: only time and memory mean anything here; fewer samples keep it short.
    "random-llama-1b@50": {"model": "random-llama-1b", "ratio": 0.5, "samples": 8},
}
RANDOM_1B = {
    "hidden_size": 2048,
    "intermediate_size": 5632,
    "num_hidden_layers": 16,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "vocab_size": 32000,
}


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_case(spec: dict[str, object]) -> dict[str, object]:
    from transformers import LlamaConfig, LlamaForCausalLM

    from slimllm.method.config import PruneConfig
    from slimllm.method.pruner import prune
    from slimllm.models.loaders import load_model

    torch.manual_seed(0)
    base_rss = peak_mib()
    if spec["model"] == "random-llama-1b":
        from slimllm.models.loaders import byte_tokenizer

        model = LlamaForCausalLM(LlamaConfig(**RANDOM_1B)).eval()
        tok = byte_tokenizer()
    else:
        model, tok = load_model(str(spec["model"]))
    params = sum(p.numel() for p in model.parameters())
    model_mib = params * 4 / 2**20
    # Safetensors are memory-mapped: touch every weight so "loaded" means resident.
    with torch.no_grad():
        for p in model.parameters():
            p.sum()
    loaded_rss = peak_mib()
    start = time.perf_counter()
    report = prune(
        model,
        tok,
        PruneConfig(ratio=float(spec["ratio"]), calib_samples=int(spec["samples"])),
        progress=False,
    )
    return {
        "parameters": params,
        "parameters_after": report.params_after,
        "achieved": report.achieved,
        "seconds": time.perf_counter() - start,
        "model_mib": model_mib,
        "rss_before_load_mib": base_rss,
        "rss_after_load_mib": loaded_rss,
        "peak_rss_mib": peak_mib(),
        "peak_over_loaded": peak_mib() / loaded_rss,
        "calibration_tokens": int(spec["samples"]) * 128,
        "threads": torch.get_num_threads(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(CASES[args.case])))
        return
    store = Store()
    for name in args.cases.split(","):
        spec = CASES[name]
        done = subprocess.run(
            [sys.executable, __file__, "--case", name], capture_output=True, text=True, check=True
        )
        row = json.loads(done.stdout.strip().splitlines()[-1])
        config = PruneConfig(ratio=float(spec["ratio"]), calib_samples=int(spec["samples"]))
        recipe = recipes.pruned(config, base=str(spec["model"]))
        rec = store.put(
            "prune_cost",
            {"model": recipe, "case": name},
            row,
            {"device": "cpu", "subprocess": True},
            seconds=row["seconds"],
        )
        print(name, row, rec.path, flush=True)


if __name__ == "__main__":
    main()
