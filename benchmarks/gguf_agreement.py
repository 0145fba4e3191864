"""Does llama.cpp run the exported GGUF as transformers runs the folder? WikiText-2 perplexity.

Exports a pruned (or dense) model folder to GGUF (f32, f16, q8_0), loads each file in
llama.cpp through the xllamacpp CPU wheel, and computes perplexity on the first windows of the
"lineage-128" protocol (the same token stream and windows as slimllm.measure.perplexity), next
to transformers' number on the same windows. It also checks that llama.cpp tokenizes the whole
test text exactly as transformers does. One "gguf_agreement" record goes to the book's results
store.

llama.cpp's number: the llama.cpp server reports no log-probs for prompt tokens, so each target
token is forced with a logit bias and its log-prob read from the raw (pre-sampler) logits that
the server reports; with the prompt cache, each request evaluates one new token. A target
that is a partial UTF-8 byte is held back by the server with its log-probs, so for those a
plain token is forced instead and the target read from the full distribution (counted).
One thread, an f32 KV cache and flash attention off.

    python benchmarks/gguf_agreement.py /tmp/p50 [--windows 64] [--types f32,f16,q8_0]
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import xllamacpp as xlc

from slimllm.data.texts import load_text_rows
from slimllm.deploy.gguf import GGUF_TYPES, export_gguf
from slimllm.deploy.llamacpp import forced_token, server, tokenize
from slimllm.experiments.store import Store
from slimllm.measure.perplexity import get_protocol, make_windows, perplexity
from slimllm.models.io import load_pruned
from slimllm.models.loaders import load_model

METHOD = (
    "llama.cpp (xllamacpp {version}) completions API: each window's target token forced with "
    "logit_bias +100 and its log-prob read from the raw logits (post_sampling_probs false), "
    "prompt cache on (partial UTF-8 targets: an ASCII token forced and the target read from all "
    "vocab log-probs), 1 thread, f32 KV cache, flash attention off"
)


def window_nll(srv: Any, window: list[int], plain: int, vocab: int) -> tuple[float, int]:
    """Mean NLL of tokens 1.. of `window`, each forced in turn after its prefix, and how many
    targets (partial UTF-8 byte tokens) were read instead from the full distribution while a
    `plain` ASCII token was forced."""
    total, fallbacks = 0.0, 0
    for t in range(1, len(window)):
        chosen = forced_token(srv, window[:t], window[t], 1)
        if chosen is not None:
            if chosen["id"] != window[t]:
                raise RuntimeError(f"forcing token {window[t]} failed at position {t}")
            total -= chosen["logprob"]
            continue
        fallbacks += 1
        full = forced_token(srv, window[:t], plain, vocab)
        if full is None:
            raise RuntimeError(f"no log-probs at position {t}")
        total -= next(p["logprob"] for p in full["top_logprobs"] if p["id"] == window[t])
    return total / (len(window) - 1), fallbacks


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("folder", type=Path, help="a pruned folder (slimllm prune) or dense one")
    parser.add_argument("--windows", type=int, default=64)
    parser.add_argument("--types", default=",".join(GGUF_TYPES))
    parser.add_argument("--dataset", default="wikitext2")
    parser.add_argument(
        "--replace", action="store_true", help="replace a stored record whose numbers differ"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    types = args.types.split(",")
    entry = json.loads((args.folder / "config.json").read_text()).get("slimllm")
    model, tok = load_model(str(args.folder)) if entry is None else load_pruned(args.folder)
    recipe = entry["record"]["recipe"] if entry else {"dense": str(args.folder)}
    protocol = get_protocol("lineage-128")

    start = time.perf_counter()
    reference = perplexity(model, tok, args.dataset, protocol, max_windows=args.windows)
    rows, _ = load_text_rows(args.dataset)
    text = protocol.joiner.join(rows)
    ids = tok(text, add_special_tokens=False, verbose=False)["input_ids"]
    windows = make_windows(torch.tensor(ids), protocol.seq_len, tok.bos_token_id, False)
    windows = windows[: args.windows].tolist()
    plain = tok.convert_tokens_to_ids("a")
    result: dict[str, Any] = {
        "transformers_ppl": reference.ppl,
        "method": METHOD.format(version=xlc.__version__),
        "types": {},
    }
    with tempfile.TemporaryDirectory(prefix="gguf-agreement-") as tmp:
        for kind in types:
            exported = export_gguf(args.folder, Path(tmp) / f"{kind}.gguf", type=kind)
            srv = server(exported.path)
            if kind == types[0]:
                llama_ids = tokenize(srv, text)
                same = llama_ids == ids
                first_diff = next(
                    (i for i, (a, b) in enumerate(zip(llama_ids, ids, strict=False)) if a != b),
                    None,
                )
                result["tokenization"] = {
                    "identical": same,
                    "tokens": len(ids),
                    "llama_tokens": len(llama_ids),
                    "first_difference": first_diff,
                }
                print(f"tokenization identical: {same} ({len(ids)} tokens)", flush=True)
            t0 = time.perf_counter()
            nlls, fallbacks = [], 0
            for i, window in enumerate(windows):
                nll, held_back = window_nll(srv, window, plain, len(tok))
                nlls.append(nll)
                fallbacks += held_back
                if i % 16 == 15:
                    print(f"{kind}: {i + 1} windows, {time.perf_counter() - t0:.0f} s", flush=True)
            ppl = math.exp(sum(nlls) / len(nlls))
            result["types"][kind] = {
                "ppl": ppl,
                "relative_difference": ppl / reference.ppl - 1,
                "max_window_nll_difference": max(
                    abs(a - b) for a, b in zip(nlls, reference.window_nll, strict=True)
                ),
                "bytes": exported.bytes,
                "kept_f16": exported.kept_f16,
                "targets_read_from_full_distribution": fallbacks,
                "seconds": time.perf_counter() - t0,
            }
            print(f"{kind}: llama.cpp {ppl:.4f} vs transformers {reference.ppl:.4f}", flush=True)
            del srv
    config = {
        "model": recipe,
        "dataset": args.dataset,
        "protocol": protocol.name,
        "windows": args.windows,
        "types": types,
    }
    record = Store.book().put(
        "gguf_agreement",
        config,
        result,
        settings={"threads": 1, "runtime": f"xllamacpp {xlc.__version__}"},
        seconds=time.perf_counter() - start,
        replace=args.replace,
    )
    print(json.dumps(result, indent=1))
    print(f"record {record.path}")


if __name__ == "__main__":
    main()
