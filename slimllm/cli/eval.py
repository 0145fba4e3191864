"""`slimllm eval DIR --ppl wikitext2,ptb`: evaluate a pruned or dense model into the store."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from slimllm.cli.common import (
    MODELS_HELP,
    HelpFormatter,
    add_data_dir,
    add_device,
    device_or_default,
    positive_int,
)
from slimllm.evaluate import PROTOCOLS, perplexity, perplexity_config
from slimllm.precision import DTYPE_CHOICES, resolve_dtype
from slimllm.recipes import load_any, of_folder
from slimllm.store import Store

DATASETS = ("wikitext2", "ptb", "ptb-valid")


def datasets(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in DATASETS]
    if bad or not names:
        raise argparse.ArgumentTypeError(
            f"choose from {', '.join(DATASETS)} (comma-separated), got {text!r}"
        )
    return names


def add_parser(sub: Any) -> None:
    e = sub.add_parser(
        "eval",
        help="perplexity of a pruned or dense model",
        formatter_class=HelpFormatter,
        description="Perplexity under a named protocol, of a pruned directory or a model. Each "
        "result is written to the results store (results/ of the checkout, or "
        "$SLIMLLM_RESULTS_DIR) with its configuration, dtype, threads and CPU.",
    )
    e.add_argument(
        "model", help=f"a pruned directory, {MODELS_HELP}, a local directory or a hub id"
    )
    e.add_argument(
        "--ppl",
        type=datasets,
        default=["wikitext2", "ptb"],
        help=f"comma-separated: {', '.join(DATASETS)}",
    )
    e.add_argument(
        "--protocol", choices=sorted(PROTOCOLS), default="lineage-128", help="window protocol"
    )
    e.add_argument(
        "--max-windows",
        type=positive_int,
        default=None,
        help="evaluate only the first windows (quick check; default: all)",
    )
    e.add_argument("--batch-size", type=positive_int, default=8, help="windows per forward")
    add_device(e)
    e.add_argument(
        "--dtype",
        choices=DTYPE_CHOICES,
        default="auto",
        help="evaluation dtype; auto: bfloat16 on a GPU or an AMX CPU, else float32",
    )
    add_data_dir(e)
    e.add_argument(
        "--json", type=Path, default=None, help="also write the results with their records here"
    )


def run(args: argparse.Namespace) -> int:
    device = device_or_default(args.device)
    dtype, reason = resolve_dtype(args.dtype, device)
    print(f"dtype {dtype} ({reason}) on {device}")
    model, tokenizer = load_any(args.model, dtype, device)
    recipe = of_folder(args.model) if Path(args.model).is_dir() else {"base": args.model}
    store, results = Store(), []
    print(f"{'dataset':>10} {'ppl':>10} {'95% CI':>21} {'windows':>8} {'seconds':>8}")
    for name in args.ppl:
        res = perplexity(
            model, tokenizer, name, args.protocol, args.max_windows, args.batch_size, args.data_dir
        )
        config = perplexity_config(recipe, name, args.protocol, dtype, args.max_windows)
        rec = store.put(
            "perplexity",
            config,
            res.to_dict(),
            {"batch_size": args.batch_size, "device": device, "dtype_reason": reason},
            seconds=res.seconds,
        )
        results.append(rec.to_json())
        ci = f"[{res.ci_low:.2f}, {res.ci_high:.2f}]"
        print(f"{name:>10} {res.ppl:>10.3f} {ci:>21} {res.n_windows:>8} {res.seconds:>8.1f}")
    print(f"records written under {store.root}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"model": args.model, "results": results}, indent=2))
    return 0
