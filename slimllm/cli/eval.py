"""`slimllm eval DIR --ppl wikitext2,ptb`: evaluate a pruned or dense model into the store."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from slimllm.cli import common
from slimllm.cli.common import MODELS_HELP, positive_int
from slimllm.experiments.recipes import load_any, of_folder
from slimllm.experiments.runners import perplexity_config, zeroshot_config
from slimllm.experiments.store import Store
from slimllm.measure.perplexity import PROTOCOLS, perplexity
from slimllm.measure.zeroshot import DEFAULT_BATCH_SIZE, zeroshot
from slimllm.models.precision import resolve_dtype

HELP = "perplexity and zero-shot accuracy of a pruned or dense model"
DESCRIPTION = (
    "Perplexity under a named protocol and/or 0-shot accuracy on the 7 commonsense tasks "
    "through lm-eval, of a pruned directory or a model. Each result is written to the "
    "results store (results/ of the checkout, or $SLIMLLM_RESULTS_DIR) with its "
    "configuration, dtype, threads and CPU."
)

DATASETS = ("wikitext2", "ptb", "ptb-valid")

datasets = common.name_list(
    DATASETS, lambda text, _: f"choose from {', '.join(DATASETS)} (comma-separated), got {text!r}"
)


def add_parser(sub: Any) -> None:
    e = common.command_parser(sub, "eval", HELP, DESCRIPTION)
    common.add_model(e, f"a pruned directory, {MODELS_HELP}, a local directory or a hub id")
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
    common.add_task_options(e)
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
        type=positive_int,
        default=None,
        help="evaluate only the first windows (quick check; default: all)",
    )
    e.add_argument("--batch-size", type=positive_int, default=8, help="windows per forward")
    common.add_device(e)
    common.add_dtype(e, "evaluation dtype; auto: bfloat16 on a GPU or an AMX CPU, else float32")
    common.add_data_dir(e)
    common.add_json(e, "also write the results with their records here")


def run(args: argparse.Namespace) -> int:
    device = common.device_or_default(args.device)
    dtype, reason = resolve_dtype(args.dtype, device)
    print(f"dtype {dtype} ({reason}) on {device}")
    model, tokenizer = load_any(args.model, dtype, device)
    recipe = of_folder(args.model) if Path(args.model).is_dir() else {"base": args.model}
    ppl = args.ppl if args.ppl is not None else ([] if args.zeroshot else ["wikitext2", "ptb"])
    store, results = Store(), []
    if ppl:
        print(f"{'dataset':>10} {'ppl':>10} {'95% CI':>21} {'windows':>8} {'seconds':>8}")
    for name in ppl:
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
        rec = store.put(
            "zeroshot",
            zeroshot_config(recipe, args.tasks, args.limit, args.seed, dtype),
            zs.to_dict(),
            {"batch_size": args.zeroshot_batch_size, "device": device, "dtype_reason": reason},
            seconds=zs.seconds,
        )
        print(zs.table())
        print(f"zero-shot: {zs.seconds:.1f} s, batch {args.zeroshot_batch_size}, {dtype}")
        payload["zeroshot"] = rec.to_json()
    print(f"records written under {store.root}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2))
    return 0
