"""Table 3 in a real runtime: dense and SlimLLM-pruned SmolLM2 in llama.cpp, beside the FLOP
ratio and beside transformers on the same protocol.

Each model (dense, and the default SlimLLM recipe at 20 % and 50 %) is exported to GGUF as f32
and as q8_0 and timed in llama.cpp through the xllamacpp wheel
(`slimllm.deploy.llamacpp.measure_serving`): prefill of 256 tokens
(time to first token) and decoding of `--new-tokens` new tokens after a 32-token prompt at
batch 1 and batch 8 (8 concurrent requests, one server slot each), all files loaded at once
and interleaved, one thread; besides wall time, the process's CPU time, which a busy shared
machine inflates far less. Then transformers (float32, `model.generate`, one thread) times the
same models with `slimllm.measure.latency.measure_latency` at the same lengths, once per
decoding batch (wall time only). Ratios are to dense in the same runtime and type, measured in
the same run. One "llamacpp_latency" record goes to the book's results store (replaced when
run again).

    python benchmarks/llamacpp_latency.py [--repeats 5] [--warmup 1] [--new-tokens 256]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from slimllm.deploy.gguf import export_gguf
from slimllm.deploy.llamacpp import ServingSpec, measure_serving
from slimllm.experiments import recipes
from slimllm.experiments.store import Store
from slimllm.measure import flops
from slimllm.measure.latency import LatencySpec, measure_latency
from slimllm.method.config import PruneConfig
from slimllm.util.provenance import cpu_info

TYPES = ("f32", "q8_0")
TRANSFORMERS_DTYPE = "float32"


def model_recipes() -> dict[str, dict[str, Any]]:
    """dense and the default SlimLLM recipe at 20 % and 50 %."""
    return {
        "dense": recipes.dense(),
        "20%": recipes.pruned(PruneConfig(ratio=0.2)),
        "50%": recipes.pruned(PruneConfig(ratio=0.5)),
    }


def work(model: torch.nn.Module, spec: ServingSpec) -> dict[str, Any]:
    """Parameters and FLOPs of each phase, as `slimllm.measure.flops` counts them."""
    return {
        "parameters": flops.parameter_counts(model),
        "prefill_flops": flops.prefill_flops(model, spec.prefill_len),
        **{
            f"decode_b{b}_flops": flops.decode_flops(
                model, spec.decode_prompt_len, spec.new_tokens, b
            )
            for b in spec.batches
        },
    }


def time_ratios(
    models: dict[str, Any], phases: list[str], statistic: str = "median"
) -> dict[str, dict[str, float]]:
    """A time statistic of each phase (median wall time, or "cpu_median") over dense's."""
    dense = models["dense"]
    return {
        label: {p: entry[p][statistic] / dense[p][statistic] for p in phases}
        for label, entry in models.items()
    }


def flop_ratios(works: dict[str, dict[str, Any]], phases: list[str]) -> dict[str, dict[str, float]]:
    dense = works["dense"]
    return {
        label: {
            "parameters": w["parameters"]["total"] / dense["parameters"]["total"],
            "decoder_parameters": w["parameters"]["decoder"] / dense["parameters"]["decoder"],
            **{p: w[f"{p}_flops"] / dense[f"{p}_flops"] for p in phases},
        }
        for label, w in works.items()
    }


def table(result: dict[str, Any]) -> str:
    """Ratios to dense: parameters, FLOPs, and time in each runtime, per phase."""
    phases = result["phases"]
    lines = [f"{'model':<13} {'runtime':<26} " + " ".join(f"{p:>10}" for p in phases)]
    for label, r in result["flop_ratios"].items():
        lines.append(f"{label:<13} {'FLOPs':<26} " + " ".join(f"{r[p]:>10.3f}" for p in phases))
        for runtime, ratios in result["time_ratios"].items():
            if label in ratios:
                row = ratios[label]
                lines.append(
                    f"{'':<13} {runtime:<26} " + " ".join(f"{row[p]:>10.3f}" for p in phases)
                )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--new-tokens", type=int, default=256)
    args = parser.parse_args()
    torch.set_num_threads(1)
    spec = ServingSpec(new_tokens=args.new_tokens, repeats=args.repeats, warmup=args.warmup)
    phases = ["prefill", *(f"decode_b{b}" for b in spec.batches)]
    models = model_recipes()
    start, load_before = time.perf_counter(), os.getloadavg()
    built = {label: recipes.build(recipe, progress=True) for label, recipe in models.items()}
    works = {label: work(model, spec) for label, (model, _) in built.items()}
    vocab = built["dense"][0].get_input_embeddings().num_embeddings
    exports: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="llamacpp-latency-") as tmp:
        paths = {}
        for label, (model, tokenizer) in built.items():
            # A pruned model's cached folder carries its pruning record into the GGUF.
            source = recipes.cached_folder(models[label]) if label != "dense" else model
            for kind in TYPES:
                out = Path(tmp) / f"{label.replace(' ', '_').replace('%', '')}-{kind}.gguf"
                exported = export_gguf(source, out, type=kind, tokenizer=tokenizer)
                paths[f"{label} {kind}"] = exported.path
                exports.setdefault(label, {})[kind] = {
                    "bytes": exported.bytes,
                    "kept_f16": exported.kept_f16,
                }
        served = measure_serving(paths, vocab, spec)
    by_type = {
        kind: {label: served["models"][f"{label} {kind}"] for label in models} for kind in TYPES
    }
    transformers: dict[str, Any] = {}
    timed = {label: model for label, (model, _) in built.items()}
    for batch in spec.batches:
        transformers[f"b{batch}"] = measure_latency(timed, spec.latency_spec(batch))
    transformers_times = {
        label: {
            "prefill": transformers[f"b{spec.batches[0]}"]["models"][label]["prefill"],
            **{
                f"decode_b{b}": transformers[f"b{b}"]["models"][label]["decode"]
                for b in spec.batches
            },
        }
        for label in models
    }
    result = {
        "phases": phases,
        "flop_ratios": flop_ratios(works, phases),
        "time_ratios": {
            **{f"llama.cpp {kind}": time_ratios(by_type[kind], phases) for kind in TYPES},
            **{
                f"llama.cpp {kind} CPU time": time_ratios(by_type[kind], phases, "cpu_median")
                for kind in TYPES
            },
            f"transformers {TRANSFORMERS_DTYPE}": time_ratios(transformers_times, phases),
        },
        "work": works,
        "exports": exports,
        "llamacpp": {"server": served["server"], "models": by_type},
        "transformers": transformers,
        "cpu": cpu_info(),
    }
    config = {
        "models": models,
        "types": list(TYPES),
        "spec": asdict(spec),
        "transformers": {
            "dtype": TRANSFORMERS_DTYPE,
            "driver": LatencySpec.driver,
        },
    }
    settings = {
        "threads": 1,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "conditions": "2 cores shared with other jobs (load average above); models "
        "interleaved within each runtime, llama.cpp first, then transformers; ratios within one "
        "runtime and run",
    }
    record = Store.book().put(
        "llamacpp_latency",
        config,
        result,
        settings=settings,
        seconds=time.perf_counter() - start,
        replace=True,
    )
    print(table(result))
    print(f"record {record.path}")


if __name__ == "__main__":
    main()
