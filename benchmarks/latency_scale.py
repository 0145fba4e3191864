"""Table 3 at the paper's scale: latency of LLaMA-7B's shape, dense and SlimLLM-pruned, on a GPU.

The paper times LLaMA-7B (prefill, and decoding 256 new tokens at batch 8) on a GPU. A seeded
random model with huggyllama/llama-7b's config (`prune_scale.SHAPES`) is built on the device;
copies of it are pruned there with SlimLLM at 20 % and 50 % (the paper's 32x128 calibration,
byte-tokenised from the calibration folder) and `slimllm.measure.latency.measure_latency`
times the three interleaved, as `benchmarks/latency.py` does for SmolLM2 on the CPU. Latency
depends on the shapes, not the values, so random weights give the pruned model's real widths
(which heads and channels go is the pruner's choice on these weights). One "latency_scale"
record holds the timings, the FLOP counts and the pruning reports' achieved ratios.

    python benchmarks/latency_scale.py --device cuda

Allow it more than five minutes on one H200: a first try there, with 5 repeats, had pruned
both copies and was still timing when its 320 s ran out.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import time
from dataclasses import asdict

import torch
from prune_scale import add_model_arguments, code_version, model_from_arguments

from slimllm.experiments.store import Store
from slimllm.measure.latency import LatencySpec, measure_latency, table
from slimllm.method.config import PruneConfig
from slimllm.method.pruner import prune
from slimllm.models.loaders import byte_tokenizer

RATIOS = (0.2, 0.5)
LABEL = "SlimLLM {:.0%}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_model_arguments(parser, "bfloat16", "the dtype of the dense and pruned models")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--new-tokens", type=int, default=256, help="the paper's 256")
    args = parser.parse_args()
    dense, model_record, device = model_from_arguments(args)
    tok = byte_tokenizer()
    models = {"dense": dense}
    reports = {}
    for ratio in RATIOS:
        label = LABEL.format(ratio)
        model = copy.deepcopy(dense)
        start = time.perf_counter()
        report = prune(
            model,
            tok,
            PruneConfig(ratio=ratio),
            device=device,
            data_dir=os.environ.get("SLIMLLM_DATA_DIR"),
            progress=False,
        )
        reports[label] = {"achieved": report.achieved, "seconds": time.perf_counter() - start}
        print(
            f"{label}: achieved {report.achieved:.4f} in {reports[label]['seconds']:.0f} s",
            flush=True,
        )
        models[label] = model.to(device)
    spec = LatencySpec(new_tokens=args.new_tokens, repeats=args.repeats)
    result = measure_latency(models, spec)  # its progress bar: one step per repeat
    result |= {"pruning": reports, "dtype": args.dtype, **code_version()}
    if device.type == "cuda":
        result["peak_gpu_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    record_config = {
        "model": model_record,
        "shape": args.shape,
        "dtype": args.dtype,
        "device": args.device,
        "prune": {LABEL.format(r): asdict(PruneConfig(ratio=r)) for r in RATIOS},
        **asdict(spec),
    }
    rec = Store.book().put(
        "latency_scale",
        record_config,
        result,
        {"threads": args.threads},
        replace=args.replace,
    )
    print(table(result), rec.path, flush=True)
    print(json.dumps(result["models"][LABEL.format(RATIOS[-1])]["ratios"], indent=1))


if __name__ == "__main__":
    main()
