"""Wall time and peak memory of SlimLLM pruning on this machine's CPU, before and after a change.

Each case runs in a fresh subprocess, so its peak resident memory (ru_maxrss) is its own:
SmolLM2-135M at 20 % and 50 % (forwards in float32, and in bfloat16 with `calib_dtype`), and a
seeded random LLaMA of about 1B parameters, whose peak should stay near the model plus one
layer's calibration activations. Each (case, code) is a "prune_cost" record in the book's store;
peak memory is compared as a ratio to the same process once the dense model is resident.

`--code` names the pruners timed: "checkout" (this working tree, recorded as its HEAD commit)
and any commit, whose `slimllm/` is taken from `git archive`. The codes alternate run by run
(`--repeats`), so a before/after pair shares the machine's load; each record keeps every run's
time and the load average it started at, and its `seconds` is the fastest run. `--quality`
adds what decides whether a change kept the method's result: a digest of every layer's kept
heads and channels, a digest of the weights, and WikiText-2 perplexity on the first 256
windows (lineage-128); `--ppl-once` measures the perplexity on the first run of each code only
(equal weights digests mean equal perplexity). Besides wall time each run keeps its
process CPU seconds, which the other jobs on the shared cores inflate far less.

Where the time went (cProfile, SmolLM2 at 20 %): with float32 forwards (commit 90f74ce) the
matmuls of the forwards were 55 % of the pruning, the dense pass for the layer ratios a sixth,
each pruned layer's MLP pass (its forward, statistics, eigh, fit) over half; bfloat16 forwards
(`calib_dtype`, the precision probe's choice on this CPU) cut the matmuls fourfold, after which
the rest showed (one thread, CPU seconds of 17.4): matmuls 6.2, SDPA 1.5, the float64 Gram
matrices of o_proj inputs and MLP outputs 1.8, the regression's pruned outputs 1.3, eigh 1.0,
copying each layer into bfloat16 0.9, regression moments 0.9. The Gram matrices are now float32
products summed in float64 and the copies are made from converted tensors. Since 51b97c1 each
folded projection's calibration output is A * pruned + B rather than a second product, and the
regression moments are float32 products summed in float64; the profile then (one thread, CPU
seconds of 16.4 under cProfile on the shared cores): matmuls 6.1, the two Gram streams 1.8, SDPA
1.6, eigh 1.1, projecting down_proj onto the eigenbasis 0.6, regression moments 0.6.

    python benchmarks/prune_cost.py --cases smollm2-135m@20,smollm2-135m@50 \
        --code checkout,5c295e6 --repeats 2 --quality --ppl-once
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path
from typing import Any

import torch

from slimllm.experiments import recipes
from slimllm.experiments.store import Store
from slimllm.method.config import PruneConfig

ROOT = Path(__file__).resolve().parents[1]
CASES: dict[str, dict[str, Any]] = {
    "smollm2-135m@20": {"model": "smollm2-135m", "ratio": 0.2, "samples": 32},
    "smollm2-135m@50": {"model": "smollm2-135m", "ratio": 0.5, "samples": 32},
    "smollm2-135m@20-bf16": {
        "model": "smollm2-135m",
        "ratio": 0.2,
        "samples": 32,
        "calib_dtype": "bfloat16",
    },
    "smollm2-135m@50-bf16": {
        "model": "smollm2-135m",
        "ratio": 0.5,
        "samples": 32,
        "calib_dtype": "bfloat16",
    },
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
#: The paths whose uncommitted changes would make a "checkout" record's commit a lie.
PRUNER_PATHS = ("slimllm/method", "slimllm/models", "slimllm/data")


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def prune_config(spec: dict[str, Any]) -> PruneConfig:
    extra = {"calib_dtype": spec["calib_dtype"]} if "calib_dtype" in spec else {}
    return PruneConfig(ratio=float(spec["ratio"]), calib_samples=int(spec["samples"]), **extra)


def digest(values: Any) -> str:
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()


def run_case(spec: dict[str, Any], quality: bool, ppl: bool = True) -> dict[str, Any]:
    """Load, make resident and prune one case in this process (the package on sys.path)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from slimllm.data.calibration import calibration_corpus_ids
    from slimllm.method.pruner import prune
    from slimllm.models.adapters import get_adapter
    from slimllm.models.loaders import byte_tokenizer, load_model
    from slimllm.models.surgery import layer_layout

    torch.manual_seed(0)
    base_rss = peak_mib()
    if spec["model"] == "random-llama-1b":
        model, tok = LlamaForCausalLM(LlamaConfig(**RANDOM_1B)).eval(), byte_tokenizer()
    else:
        model, tok = load_model(str(spec["model"]))
    params = sum(p.numel() for p in model.parameters())
    # Safetensors are memory-mapped: touch every weight so "loaded" means resident.
    with torch.no_grad():
        for p in model.parameters():
            p.sum()
    loaded_rss = peak_mib()
    # The corpus is tokenised once per process (cached): not part of the pruning's time.
    calibration_corpus_ids(tok, os.environ.get("SLIMLLM_DATA_DIR"), "bookcorpus")
    start, cpu_start = time.perf_counter(), time.process_time()
    report = prune(model, tok, prune_config(spec), progress=False)
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start
    row: dict[str, Any] = {
        "parameters": params,
        "parameters_after": report.params_after,
        "achieved": report.achieved,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "model_mib": params * 4 / 2**20,
        "rss_before_load_mib": base_rss,
        "rss_after_load_mib": loaded_rss,
        "peak_rss_mib": peak_mib(),
        "peak_over_loaded": peak_mib() / loaded_rss,
        "calibration_tokens": int(spec["samples"]) * 128,
        "threads": torch.get_num_threads(),
    }
    if quality:
        from slimllm.measure.perplexity import perplexity

        adapter = get_adapter(model)
        layouts = [layer_layout(layer, adapter).to_dict() for layer in adapter.layers(model)]
        weights = hashlib.sha256()
        for name, tensor in sorted(model.state_dict().items()):
            weights.update(name.encode())
            weights.update(tensor.contiguous().view(torch.uint8).numpy().tobytes())
        row |= {
            "layouts_sha256": digest(layouts),
            "kept_heads": [layout["kept_heads"] for layout in layouts],
            "kept_channels": [len(layout["kept_channels"]) for layout in layouts],
            "weights_sha256": weights.hexdigest(),
        }
        if ppl:
            found = perplexity(model, tok, "wikitext2", max_windows=256, progress=False)
            row["wikitext2_ppl_256_windows"] = found.ppl
    return row


def checkout_code() -> tuple[str, list[str]]:
    """This checkout's HEAD commit and the pruner files changed since (should be none)."""
    git = ["git", "-C", str(ROOT)]
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
    status = subprocess.run(
        [*git, "status", "--porcelain", "--", *PRUNER_PATHS],
        capture_output=True,
        text=True,
        check=True,
    )
    return head.stdout.strip(), [line[3:] for line in status.stdout.splitlines()]


def archived(commit: str, into: Path) -> tuple[str, Path]:
    """`slimllm/` as of `commit`, unpacked under `into`; returns the full commit and the root."""
    full = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", commit], capture_output=True, text=True, check=True
    ).stdout.strip()
    data = subprocess.run(
        ["git", "-C", str(ROOT), "archive", full, "slimllm"], capture_output=True, check=True
    ).stdout
    root = into / full[:12]
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        tar.extractall(root, filter="data")
    return full, root


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--code", default="checkout", help="checkout and/or commits, by commas")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quality", action="store_true")
    parser.add_argument(
        "--ppl-once",
        action="store_true",
        help="with --quality, perplexity on the first run of each --code only (the digests "
        "on every run: equal weights digests mean equal perplexity)",
    )
    parser.add_argument("--no-ppl", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--replace", action="store_true", help="replace records of these runs")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        torch.set_num_threads(args.threads)
        print(json.dumps(run_case(CASES[args.case], args.quality, not args.no_ppl)))
        return
    store = Store.book()
    with tempfile.TemporaryDirectory() as tmp:
        codes: dict[str, tuple[str, str | None, list[str]]] = {}
        for code in args.code.split(","):
            if code == "checkout":
                commit, dirty = checkout_code()
                codes[code] = (commit, None, dirty)
            else:
                commit, root = archived(code, Path(tmp))
                codes[code] = (commit, str(root), [])
        for name in args.cases.split(","):
            spec = CASES[name]
            runs: dict[str, list[dict[str, Any]]] = {code: [] for code in codes}
            for repeat in range(args.repeats):
                for code, (_, path, _) in codes.items():
                    env = dict(os.environ)
                    if path is not None:
                        env["PYTHONPATH"] = os.pathsep.join([path, env.get("PYTHONPATH", "")])
                    command = [sys.executable, __file__, "--case", name]
                    command += ["--threads", str(args.threads)]
                    if args.quality:
                        command.append("--quality")
                        if args.ppl_once and repeat > 0:
                            command.append("--no-ppl")
                    load = os.getloadavg()[0]
                    done = subprocess.run(
                        command,
                        capture_output=True,
                        text=True,
                        check=True,
                        env=env,
                    )
                    row = json.loads(done.stdout.strip().splitlines()[-1])
                    runs[code].append({**row, "load_average_1min": load})
                    print(
                        name,
                        code,
                        f"{row['seconds']:.1f} s, CPU {row['cpu_seconds']:.1f} s (load {load:.1f})",
                        flush=True,
                    )
            for code, (commit, _, dirty) in codes.items():
                rows = runs[code]
                best = min(rows, key=lambda r: r["seconds"])
                measured = [r for r in rows if "wikitext2_ppl_256_windows" in r]
                result = {
                    **best,
                    **(
                        {"wikitext2_ppl_256_windows": measured[0]["wikitext2_ppl_256_windows"]}
                        if measured
                        else {}
                    ),
                    "seconds_runs": [r["seconds"] for r in rows],
                    "cpu_seconds_runs": [r["cpu_seconds"] for r in rows],
                    "load_average_runs": [r["load_average_1min"] for r in rows],
                    "uncommitted_pruner_files": dirty,
                }
                del result["load_average_1min"]
                recipe = recipes.pruned(prune_config(spec), base=str(spec["model"]))
                rec = store.put(
                    "prune_cost",
                    {"model": recipe, "case": name, "code": commit},
                    result,
                    {"device": "cpu", "subprocess": True, "threads": args.threads},
                    seconds=best["seconds"],
                    replace=args.replace,
                )
                print(
                    name, code, commit[:12], f"best {best['seconds']:.1f} s", rec.path, flush=True
                )


if __name__ == "__main__":
    main()
