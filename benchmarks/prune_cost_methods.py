"""Pruning time and peak memory of every method on SmolLM2-135M on this CPU (after loading).

Each (method, ratio) runs in a fresh subprocess so its peak resident memory is its own, and
writes a "prune_cost" record (runner: slimllm.experiments.prune_cost.run_prune_cost). Run it alone:

    flock /tmp/slimllm-heavy.lock python benchmarks/prune_cost_methods.py
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import subprocess
import sys

from slimllm.experiments.prune_cost import prune_cost_config, run_prune_cost
from slimllm.experiments.recipes import pruned
from slimllm.experiments.store import Store
from slimllm.peers.registry import METHODS, method_config


def recipe_for(method: str, ratio: float, model: str) -> dict[str, object]:
    return pruned(method_config(method, ratio=ratio), base=model, method=method)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--ratios", default="0.2,0.5")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--recompute", action="store_true")
    parser.add_argument(
        "--profile",
        default="",
        help="comma-separated methods to profile once more under cProfile (prune_profile records)",
    )
    parser.add_argument(
        "--markdown", action="store_true", help="print the README's table from the records"
    )
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--one-profile", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    settings = {"threads": args.threads}
    if args.one:
        config = json.loads(args.one)
        if not args.one_profile:
            print(json.dumps(run_prune_cost(config, settings)))
            return
        prof = cProfile.Profile()
        result = prof.runcall(run_prune_cost, config, settings)
        stats = pstats.Stats(prof)
        rows = [
            {
                "function": f"{f[0].split('site-packages/')[-1]}:{f[1]}({f[2]})",
                "calls": v[1],
                "tottime": v[2],
                "cumtime": v[3],
            }
            for f, v in stats.stats.items()  # type: ignore[attr-defined]
        ]
        top = sorted(rows, key=lambda r: -r["tottime"])[:25]
        print(json.dumps({"seconds_profiled": result["seconds"], "top_tottime": top}))
        return
    store = Store.book()
    lines = [
        "| method | ratio | achieved | pruning | tokenising (once) | peak RSS | over loaded |",
        "|---|---|---|---|---|---|---|",
    ]
    for ratio in (float(r) for r in args.ratios.split(",")):
        for method in args.methods.split(","):
            config = prune_cost_config(recipe_for(method, ratio, args.model))
            found = store.get("prune_cost", config)
            if found is None or args.recompute:
                done = subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--threads",
                        str(args.threads),
                        "--one",
                        json.dumps(config),
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                result = json.loads(done.stdout.strip().splitlines()[-1])
                found = store.put(
                    "prune_cost",
                    config,
                    result,
                    settings,
                    result["seconds"],
                    replace=args.recompute,
                )
            if method in args.profile.split(",") and (
                store.get("prune_profile", config) is None or args.recompute
            ):
                done = subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--threads",
                        str(args.threads),
                        "--one",
                        json.dumps(config),
                        "--one-profile",
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                profile = json.loads(done.stdout.strip().splitlines()[-1])
                store.put(
                    "prune_profile",
                    config,
                    profile,
                    settings,
                    profile["seconds_profiled"],
                    replace=args.recompute,
                )
            r = found.result
            print(
                f"{method:>13} {ratio:.0%}: {r['seconds']:6.1f} s, "
                f"peak {r['peak_rss_mib']:7.0f} MiB "
                f"(+{r['peak_over_loaded_mib']:.0f} over the loaded model), achieved "
                f"{r['achieved']:.4f}",
                flush=True,
            )
            lines.append(
                f"| {method} | {ratio:.0%} | {r['achieved']:.1%} | {r['seconds']:.1f} s "
                f"| {r['calibration_tokenize_seconds']:.1f} s | {r['peak_rss_mib']:.0f} MiB "
                f"| +{r['peak_over_loaded_mib']:.0f} MiB |"
            )
    if args.markdown:
        print("\n".join(lines))


if __name__ == "__main__":
    main()
