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
    positive_int,
)
from slimllm.cli.tasks import add_task_options
from slimllm.evaluate import PROTOCOLS, perplexity
from slimllm.models import DTYPES
from slimllm.zeroshot import DEFAULT_BATCH_SIZE, zeroshot

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
        help="perplexity and zero-shot accuracy of a pruned or dense model",
        formatter_class=HelpFormatter,
        description="Perplexity under a named protocol and/or 0-shot accuracy on the 7 "
        "commonsense tasks through lm-eval, of a pruned directory or a model.",
    )
    e.add_argument(
        "model", help=f"a pruned directory, {MODELS_HELP}, a local directory or a hub id"
    )
    e.add_argument(
        "--ppl",
        type=datasets,
        default=None,
        help=f"comma-separated: {', '.join(DATASETS)} "
        "(default: wikitext2,ptb unless only --zeroshot is given)",
    )
    e.add_argument(
        "--zeroshot",
        action="store_true",
        help="also (or, without --ppl, only) 0-shot accuracy through lm-eval",
    )
    add_task_options(e)
    e.add_argument(
        "--zeroshot-batch-size",
        type=positive_int,
        default=DEFAULT_BATCH_SIZE,
        help="lm-eval requests per forward",
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
    ppl = args.ppl if args.ppl is not None else ([] if args.zeroshot else ["wikitext2", "ptb"])
    results: list[dict[str, Any]] = []
    if ppl:
        print(f"{'dataset':>10} {'ppl':>10} {'95% CI':>21} {'windows':>8} {'seconds':>8}")
    for name in ppl:
        res = perplexity(
            model, tokenizer, name, args.protocol, args.max_windows, args.batch_size, args.data_dir
        )
        results.append(res.to_dict())
        ci = f"[{res.ci_low:.2f}, {res.ci_high:.2f}]"
        print(f"{name:>10} {res.ppl:>10.3f} {ci:>21} {res.n_windows:>8} {res.seconds:>8.1f}")
    payload: dict[str, Any] = {"model": args.model, "results": results}
    if args.zeroshot:
        zs = zeroshot(
            model,
            tokenizer,
            tasks=args.tasks,
            limit=args.limit,
            data_dir=args.data_dir,
            batch_size=args.zeroshot_batch_size,
            seed=args.seed,
        )
        print(zs.table())
        print(f"zero-shot: {zs.seconds:.1f} s, batch {args.zeroshot_batch_size}, {args.dtype}")
        payload["zeroshot"] = zs.to_dict()
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2))
    return 0
