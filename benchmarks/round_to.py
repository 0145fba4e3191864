"""What `slimllm prune --round-to 32` costs and buys at 50 %: WikiText-2 perplexity, q8_0 size
and llama.cpp speed, against the default recipe (no rounding).

q8_0 stores 32-element blocks, so a matrix whose rows are not a multiple of 32 long (the
`ffn_down` of most pruned layers) stays f16; rounding each pruned layer's kept MLP channels to
a multiple of 32 lets every matrix quantize. Quality: perplexity on the first 256 windows of
the lineage-128 protocol (float32, `slimllm.measure.perplexity`). Size: the f32 and q8_0 GGUF
files and the tensors left in f16. Speed: both q8_0 files in llama.cpp, interleaved, one
thread, on the protocol of `benchmarks/llamacpp_latency.py` (`measure_serving`: prefill of 256
tokens, decoding at batch 1 and 8; wall and CPU time). One "round_to" record goes to the book's
results store (replaced when run again). Then book/deploy.md is rendered from the newest
"gguf_agreement", "llamacpp_latency" and "round_to" records (`--page-only`: only that).

    python benchmarks/round_to.py [--repeats 5] [--warmup 1] [--new-tokens 256] [--page-only]
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
from slimllm.deploy.page import PAGE_KINDS, newest, render
from slimllm.experiments import recipes
from slimllm.experiments.store import Store
from slimllm.measure import flops
from slimllm.measure.perplexity import get_protocol, perplexity
from slimllm.method.config import PruneConfig
from slimllm.util.provenance import cpu_info

RATIO = 0.5
MULTIPLE = 32
WINDOWS = 256
PAGE = Path(__file__).resolve().parents[1] / "book" / "deploy.md"
TYPES = ("f32", "q8_0")


def model_recipes() -> dict[str, dict[str, Any]]:
    return {
        "50%": recipes.pruned(PruneConfig(ratio=RATIO)),
        f"50% round {MULTIPLE}": recipes.pruned(
            PruneConfig(ratio=RATIO, round_channels_to=MULTIPLE)
        ),
    }


def write_page(store: Store) -> Path:
    """book/deploy.md rendered from the store's newest records of the page's kinds."""
    records = [newest(r.to_json() for r in store.records(kind)) for kind in PAGE_KINDS]
    PAGE.write_text(render(*records))
    return PAGE


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", default="wikitext2")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--new-tokens", type=int, default=256)
    parser.add_argument("--page-only", action="store_true", help="only render book/deploy.md")
    args = parser.parse_args()
    store = Store.book()
    if args.page_only:
        print(f"wrote {write_page(store)}")
        return
    spec = ServingSpec(new_tokens=args.new_tokens, repeats=args.repeats, warmup=args.warmup)
    torch.set_num_threads(1)
    start = time.perf_counter()
    models = model_recipes()
    result: dict[str, Any] = {"models": {}, "cpu": cpu_info()}
    q8_0_files = {}
    with tempfile.TemporaryDirectory(prefix="round-to-") as tmp:
        for index, (label, recipe) in enumerate(models.items()):
            model, tokenizer = recipes.build(recipe, progress=True)
            ppl = perplexity(model, tokenizer, args.dataset, max_windows=WINDOWS, progress=True)
            exports = {
                kind: export_gguf(
                    recipes.cached_folder(recipe), Path(tmp) / f"{index}-{kind}.gguf", kind
                )
                for kind in TYPES
            }
            files = {k: {"bytes": e.bytes, "kept_f16": e.kept_f16} for k, e in exports.items()}
            q8_0_files[label] = exports["q8_0"].path
            result["models"][label] = {
                "ppl": ppl.ppl,
                "parameters": flops.parameter_counts(model),
                "intermediate_sizes": [s.channels for s in flops.layer_shapes(model)],
                "gguf": files,
            }
            print(f"{label}: ppl {ppl.ppl:.3f}, q8_0 {files['q8_0']['bytes']:,} bytes", flush=True)
        vocab = model.get_input_embeddings().num_embeddings
        served = measure_serving(q8_0_files, vocab, spec)
    default, rounded = (result["models"][label] for label in models)
    result["ppl_change"] = rounded["ppl"] / default["ppl"] - 1
    result["q8_0_size_change"] = (
        rounded["gguf"]["q8_0"]["bytes"] / default["gguf"]["q8_0"]["bytes"] - 1
    )
    timings = [served["models"][label] for label in models]
    result["q8_0_serving"] = served
    result["q8_0_time_ratios"] = {
        statistic: {p: timings[1][p][statistic] / timings[0][p][statistic] for p in timings[0]}
        for statistic in ("median", "cpu_median")
    }
    config = {
        "models": models,
        "dataset": args.dataset,
        "protocol": get_protocol("lineage-128").name,
        "max_windows": WINDOWS,
        "dtype": "float32",
        "types": list(TYPES),
        "serving": asdict(spec),
    }
    record = store.put(
        "round_to",
        config,
        result,
        settings={
            "threads": 1,
            "load_average_after": os.getloadavg(),
            "conditions": "2 cores shared with other jobs; the two models interleaved",
        },
        seconds=time.perf_counter() - start,
        replace=True,
    )
    print(
        f"round to {MULTIPLE}: perplexity {result['ppl_change']:+.2%}, "
        f"q8_0 file {result['q8_0_size_change']:+.2%}, q8_0 time ratios "
        f"{result['q8_0_time_ratios']}; record {record.path}"
    )
    print(f"wrote {write_page(store)}")


if __name__ == "__main__":
    main()
