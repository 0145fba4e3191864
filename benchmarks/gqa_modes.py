"""SlimLLM's GQA rule compared at equal achieved ratios: which default prunes SmolLM2 best.

For every `--gqa-mode` and ratio, SmolLM2-135M is pruned (float32, the recipe default) and its
perplexity measured in bfloat16 on the first 512 WikiText-2 windows of the 128-token protocol.
Each measurement is a "perplexity" record in the results store, keyed by the full recipe, and
the pruning report (achieved ratio, modes chosen per layer) is a "prune" record.

    flock /tmp/slimllm-heavy.lock python benchmarks/gqa_modes.py
"""

from __future__ import annotations

import argparse

import torch

from slimllm.experiments.recipes import pruned
from slimllm.experiments.store import Store
from slimllm.measure.perplexity import perplexity
from slimllm.method.config import PruneConfig
from slimllm.method.pruner import prune
from slimllm.models.loaders import load_model

DTYPE = "bfloat16"
MAX_WINDOWS = 512


def perplexity_config(recipe: dict[str, object]) -> dict[str, object]:
    """The fields of `slimllm.experiments.runners.perplexity_config`, so `rerun` can redo it."""
    return {
        "model": recipe,
        "dataset": "wikitext2",
        "protocol": "lineage-128",
        "dtype": DTYPE,
        "max_windows": MAX_WINDOWS,
    }


def measure(mode: str, ratio: float, store: Store, batch_size: int) -> tuple[float, float]:
    config = PruneConfig(ratio=ratio, gqa_mode=mode)
    recipe = pruned(config)
    key = perplexity_config(recipe)
    found = store.get("perplexity", key)
    prune_found = store.get("prune", {"model": recipe})
    if found is not None and prune_found is not None:
        return prune_found.result["achieved"], found.result["ppl"]
    model, tok = load_model("smollm2-135m", dtype="float32")
    report = prune(model, tok, config, progress=False)
    store.put(
        "prune",
        {"model": recipe},
        report.to_dict(),
        {"device": "cpu"},
        report.seconds,
        replace=True,
    )
    model.to(torch.bfloat16)
    res = perplexity(
        model, tok, "wikitext2", max_windows=MAX_WINDOWS, batch_size=batch_size, progress=False
    )
    settings = {"device": "cpu", "batch_size": batch_size}
    store.put("perplexity", key, res.to_dict(), settings, res.seconds, replace=True)
    return report.achieved, res.ppl


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--modes", default="auto,heads,groups,score")
    parser.add_argument("--ratios", default="0.2,0.5")
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    store = Store.book()
    for ratio in (float(r) for r in args.ratios.split(",")):
        for mode in args.modes.split(","):
            achieved, ppl = measure(mode, ratio, store, args.batch_size)
            print(
                f"ratio {ratio:.2f} mode {mode:>6}: achieved {achieved:.4f} ppl {ppl:.2f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
