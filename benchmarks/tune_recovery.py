"""LoRA recovery of SmolLM2-135M pruned by SlimLLM: perplexity before and after the `cpu` preset.

For each ratio, the pruned recipe `recipes.pruned(PruneConfig(ratio=R))` is tuned with the
`cpu` preset (`recipes.tuned`), and WikiText-2 / PTB perplexity (full test sets, lineage-128) is
measured on both, in the dtype `resolve_dtype("auto")` picks. Every measurement is a store
record ("perplexity", "tune"); a "tune_recovery" record gathers them. `--check-autocast N` first
runs N steps in float32 and in bf16 autocast on the first ratio's model ("tune_autocast"), the
measurement behind the preset's autocast choice. Run it under the shared lock:

    flock /tmp/slimllm-heavy.lock .venv/bin/python benchmarks/tune_recovery.py --check-autocast 3
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict, replace
from typing import Any

import torch

from slimllm.experiments import recipes
from slimllm.experiments.runners import run_tune, tune_record_config
from slimllm.experiments.store import Record, Store
from slimllm.measure.perplexity import perplexity
from slimllm.method.config import PruneConfig
from slimllm.models.precision import resolve_dtype
from slimllm.tuning.lora import preset, tune


def perplexity_record(
    store: Store,
    recipe: dict[str, Any],
    dataset: str,
    dtype: str,
    settings: dict[str, Any],
    max_windows: int | None = None,
) -> Record:
    """A "perplexity" record, keyed as `slimllm.experiments.runners.perplexity_config` keys them."""
    config = {
        "model": recipe,
        "dataset": dataset,
        "protocol": "lineage-128",
        "dtype": dtype,
        "max_windows": max_windows,
    }

    def compute() -> dict[str, Any]:
        model, tok = recipes.build(recipe, dtype=dtype, device=settings["device"])
        return perplexity(
            model, tok, dataset, "lineage-128", max_windows, settings["batch_size"], progress=False
        ).to_dict()

    return store.run("perplexity", config, compute, settings)


def check_autocast(store: Store, recipe: dict[str, Any], steps: int, device: str) -> Record:
    """The cpu preset's first `steps` steps in float32 and in bf16 autocast, side by side."""
    base = replace(preset("cpu"), max_steps=steps, eval_every=steps)
    config = {"model": recipe, "tune": {**asdict(base), "autocast": None}, "steps": steps}

    def compute() -> dict[str, Any]:
        runs = {}
        for autocast in ("none", "bfloat16"):
            model, tok = recipes.build(recipe, dtype="float32", device=device)
            _, report = tune(model, tok, replace(base, autocast=autocast), device=device)
            runs[autocast] = report.to_dict()
        pairs = zip(runs["none"]["train_loss"], runs["bfloat16"]["train_loss"], strict=True)
        gaps = [abs(b - a) / a for (_, a), (_, b) in pairs]
        return {
            "float32": runs["none"],
            "bfloat16": runs["bfloat16"],
            "max_relative_gap": max(gaps),
            "speedup": runs["none"]["seconds"] / runs["bfloat16"]["seconds"],
        }

    return store.run("tune_autocast", config, compute, {"device": device})


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ratios", default="0.2,0.5")
    parser.add_argument("--datasets", default="wikitext2,ptb")
    parser.add_argument("--batch-size", type=int, default=16, help="perplexity windows per forward")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--check-autocast", type=int, default=0, help="steps per dtype (0: skip)")
    parser.add_argument(
        "--max-windows", type=int, default=None, help="first windows only (default: full sets)"
    )
    parser.add_argument("--recompute", action="store_true", help="tune again even if recorded")
    args = parser.parse_args()
    store = Store.book()
    dtype, reason = resolve_dtype("auto", args.device)
    settings = {"batch_size": args.batch_size, "device": args.device, "dtype_reason": reason}
    ratios = [float(r) for r in args.ratios.split(",")]
    datasets = args.datasets.split(",")
    if args.check_autocast:
        rec = check_autocast(
            store, recipes.pruned(PruneConfig(ratio=ratios[0])), args.check_autocast, args.device
        )
        print(
            f"autocast: max relative gap {rec.result['max_relative_gap']:.2e}, "
            f"bf16 speed-up {rec.result['speedup']:.2f}x ({rec.path})",
            flush=True,
        )
    tune_settings = {"device": args.device, "progress": False}
    rows = []
    for ratio in ratios:
        pruned = recipes.pruned(PruneConfig(ratio=ratio))
        tuned = recipes.tuned(pruned, preset("cpu"))
        tune_config = tune_record_config(tuned)
        start = time.perf_counter()
        tuned_rec = store.run(
            "tune",
            tune_config,
            lambda c=tune_config: run_tune(c, tune_settings),
            tune_settings,
            recompute=args.recompute,
        )
        report = tuned_rec.result["tune"]
        before, after = (
            {d: perplexity_record(store, r, d, dtype, settings, args.max_windows) for d in datasets}
            for r in (pruned, tuned)
        )
        row = {
            "ratio": ratio,
            "recipe": tuned,
            "steps": report["steps"],
            "examples_seen": report["examples_seen"],
            "epochs_seen": report["epochs_seen"],
            "train_examples": report["data"]["train_examples"],
            "tune_seconds": report["seconds"],
            "val_loss": [report["val_loss"][0][1], report["val_loss"][-1][1]],
            "ppl_before": {d: r.result["ppl"] for d, r in before.items()},
            "ppl_after": {d: r.result["ppl"] for d, r in after.items()},
            "records": {
                "tune": tuned_rec.key,
                "before": {d: r.key for d, r in before.items()},
                "after": {d: r.key for d, r in after.items()},
            },
        }
        rows.append(row)
        ppl = ", ".join(
            f"{d} {row['ppl_before'][d]:.2f} -> {row['ppl_after'][d]:.2f}" for d in datasets
        )
        print(
            f"ratio {ratio:.0%}: {row['steps']} steps, {row['examples_seen']} examples "
            f"({row['epochs_seen']:.2f} epochs), {row['tune_seconds']:.0f} s "
            f"(row took {time.perf_counter() - start:.0f} s); {ppl}",
            flush=True,
        )
    summary_config = {
        "ratios": ratios,
        "preset": "cpu",
        "tune": asdict(preset("cpu")),
        "datasets": datasets,
        "protocol": "lineage-128",
        "dtype": dtype,
        "max_windows": args.max_windows,
    }
    summary = store.put("tune_recovery", summary_config, {"rows": rows}, settings, replace=True)
    print(f"summary: {summary.path}")


if __name__ == "__main__":
    main()
