"""Evaluation speed on this machine, and whether bfloat16 changes the numbers.

1. Tokens per second of `perplexity`'s scoring against a bare forward (`model(ids).logits`) of
   the same model and dtype, interleaved in one process, for float32 and bfloat16, plus a batch
   size sweep (record kind "eval_speed"; target: perplexity at >= 0.9 of the bare forward).
2. bfloat16 against float32 perplexity on the first 256 WikiText-2 windows, dense and SlimLLM
   50 % (four "perplexity" records; target: within 0.3 %).
3. The dense full WikiText-2 and PTB passes in the dtype `auto` picks here (timed records).

    python benchmarks/eval_speed.py                   # all three
    python benchmarks/eval_speed.py --parts speed     # only part 1 (speed,agreement,full)
    python benchmarks/eval_speed.py --quick           # part 1 on 16 windows, 1 repeat
"""

from __future__ import annotations

import argparse

from slimllm.experiments import recipes
from slimllm.experiments.runners import measure_perplexity, run_eval_speed
from slimllm.experiments.store import Store
from slimllm.method.config import PruneConfig
from slimllm.models.precision import resolve_dtype
from slimllm.util.provenance import cpu_info


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--parts", default="speed,agreement,full", help="comma-separated")
    args = parser.parse_args()
    store = Store.book()
    auto, reason = resolve_dtype("auto", "cpu")
    print(f"CPU: {cpu_info()}; auto dtype: {auto} ({reason})")

    parts = set(args.parts.split(","))
    if "speed" in parts or args.quick:
        speed(store, args.model, auto, args.quick)
    if "agreement" in parts and not args.quick:
        agreement(store, args.model)
    if "full" in parts and not args.quick:
        full_passes(store, args.model, auto)


def speed(store: Store, model: str, auto: str, quick: bool) -> None:
    config = {
        "model": recipes.dense(model),
        "dataset": "wikitext2",
        "windows": 16 if quick else 64,
        "repeats": 1 if quick else 5,
        "batch_size": 8,
        "dtypes": ["float32", "bfloat16"],
        "sweep_dtype": auto,
        "batch_sizes": [1, 4, 8, 16, 32],
    }
    rec = store.run("eval_speed", config, lambda: run_eval_speed(config, {}), recompute=True)
    for dtype, entry in rec.result["dtypes"].items():
        bare, ppl = entry["bare_forward"], entry["perplexity"]
        print(
            f"{dtype:>9}: bare forward {bare['ms_per_token']:.3f} ms/token, perplexity "
            f"{ppl['ms_per_token']:.3f} ms/token, ratio {entry['perplexity_over_bare']:.3f}"
        )
        for bs, speed in entry.get("batch_sweep", {}).items():
            print(f"           batch {bs:>2}: {speed['ms_per_token']:.3f} ms/token")


def agreement(store: Store, model: str) -> None:
    windows = 256
    for name, recipe in {
        "dense": recipes.dense(model),
        "slimllm-50": recipes.pruned(PruneConfig(ratio=0.5), base=model),
    }.items():
        ppl = {
            dtype: measure_perplexity(
                recipe, "wikitext2", dtype=dtype, max_windows=windows, store=store, recompute=True
            ).result["ppl"]
            for dtype in ("float32", "bfloat16")
        }
        rel = ppl["bfloat16"] / ppl["float32"] - 1
        print(
            f"{name}: first {windows} windows, fp32 {ppl['float32']:.3f}, "
            f"bf16 {ppl['bfloat16']:.3f} ({rel:+.3%})"
        )


def full_passes(store: Store, model: str, auto: str) -> None:
    for dataset in ("wikitext2", "ptb"):
        rec = measure_perplexity(
            recipes.dense(model), dataset, dtype=auto, store=store, recompute=True
        )
        print(
            f"dense full {dataset} in {auto}: ppl {rec.result['ppl']:.3f}, "
            f"{rec.result['n_tokens']} tokens in {rec.result['seconds']:.1f} s"
        )


if __name__ == "__main__":
    main()
