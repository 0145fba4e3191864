"""`slimllm eval DIR --ppl wikitext2,ptb`: evaluate a pruned or dense model."""

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
    load_any,
)
from slimllm.evaluate import PROTOCOLS, perplexity
from slimllm.models import DTYPES

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
        description="Perplexity under a named protocol, of a pruned directory or a model.",
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
        type=int,
        default=None,
        help="evaluate only the first windows (quick check)",
    )
    e.add_argument("--batch-size", type=int, default=8, help="windows per forward")
    add_device(e)
    e.add_argument("--dtype", choices=sorted(DTYPES), default="float32", help="model dtype")
    add_data_dir(e)
    e.add_argument(
        "--json", type=Path, default=None, help="also write the results with their records here"
    )


def run(args: argparse.Namespace) -> int:
    device = device_or_default(args.device)
    model, tokenizer = load_any(args.model, args.dtype, device)
    results = []
    print(f"{'dataset':>10} {'ppl':>10} {'95% CI':>21} {'windows':>8} {'seconds':>8}")
    for name in args.ppl:
        res = perplexity(
            model, tokenizer, name, args.protocol, args.max_windows, args.batch_size, args.data_dir
        )
        results.append(res.to_dict())
        ci = f"[{res.ci_low:.2f}, {res.ci_high:.2f}]"
        print(f"{name:>10} {res.ppl:>10.3f} {ci:>21} {res.n_windows:>8} {res.seconds:>8.1f}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"model": args.model, "results": results}, indent=2))
    return 0
