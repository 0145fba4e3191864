"""`slimllm eval DIR --ppl wikitext2,ptb`: evaluate a pruned or dense model into the store."""

from __future__ import annotations

import argparse
import contextlib
import io
import tempfile
from pathlib import Path
from typing import Any

from lm_eval.tasks import TaskManager
from transformers import PreTrainedTokenizerBase

from slimllm.cli import common
from slimllm.cli.common import MODELS_HELP, positive_int
from slimllm.experiments.recipes import load_any, of_folder
from slimllm.experiments.runners import perplexity_config, zeroshot_config
from slimllm.measure import parallel
from slimllm.measure.lm_eval_tasks import TASK_PREFIX, write_task_yamls
from slimllm.measure.perplexity import PROTOCOLS, perplexity
from slimllm.measure.zeroshot import DEFAULT_BATCH_SIZE, zeroshot
from slimllm.models.precision import resolve_dtype
from slimllm.util.files import write_json

HELP = "perplexity and zero-shot accuracy of a pruned or dense model"
DESCRIPTION = (
    "Perplexity under a named protocol and/or 0-shot accuracy on the 7 commonsense tasks "
    "through lm-eval, of a pruned directory or a model. Each result is written to the "
    "results store (the user folder ~/.cache/slimllm/results, $SLIMLLM_RESULTS_DIR or "
    "--results-dir) with its configuration, dtype, threads and CPU."
)

DATASETS = ("wikitext2", "ptb", "ptb-valid")

PROTOCOL = "lineage-128"

BATCH_SIZE = 8

#: Options of the zero-shot run (destination -> flag), refused without --zeroshot.
ZEROSHOT_OPTIONS = {
    "tasks": "--tasks",
    "limit": "--limit",
    "seed": "--seed",
    "zeroshot_batch_size": "--zeroshot-batch-size",
}

#: Options of the perplexity runs, refused when only --zeroshot runs.
PERPLEXITY_OPTIONS = {
    "protocol": "--protocol",
    "max_windows": "--max-windows",
    "batch_size": "--batch-size",
}

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
        default=None,
        help=f"lm-eval requests per forward (default: {DEFAULT_BATCH_SIZE})",
    )
    e.add_argument(
        "--protocol",
        choices=sorted(PROTOCOLS),
        default=None,
        help=f"window protocol (default: {PROTOCOL})",
    )
    e.add_argument(
        "--max-windows",
        type=positive_int,
        default=None,
        help="evaluate only the first windows (quick check; default: all)",
    )
    e.add_argument(
        "--batch-size",
        type=positive_int,
        default=None,
        help=f"windows per forward (default: {BATCH_SIZE})",
    )
    common.add_device(e)
    common.add_dtype(e, "evaluation dtype; auto: bfloat16 on a GPU or an AMX CPU, else float32")
    common.add_data_dir(e)
    common.add_json(e, "also write the results with their records here")
    common.add_results_dir(e)


def _check_answers(
    model: str,
    tokenizer: PreTrainedTokenizerBase,
    tasks: list[str],
    limit: int | None,
    seed: int,
    data_dir: str | None,
) -> None:
    """lm-eval stops on an assertion, well into a run, at an answer longer than the model's
    positions (PIQA has a 1065-byte one, over the tiny models' 512 byte tokens): look for one
    among the chosen items before any scoring."""
    positions = common.positions(model)
    if positions is None:
        return
    with tempfile.TemporaryDirectory(prefix="slimllm-check-") as folder:
        files = write_task_yamls(folder, tasks, data_dir, limit, seed)
        longer = []
        for name in tasks:
            subset = Path(folder) / f"{TASK_PREFIX}{name}.items.jsonl"
            data = subset if subset.is_file() else Path(files.sources[name])
            # An answer is part of its item's line and no token is shorter than a byte, so a
            # task whose every line fits needs no tokenizing.
            if max(map(len, data.read_bytes().splitlines()), default=0) > positions:
                longer.append(name)
        if not longer:
            return
        with contextlib.redirect_stderr(io.StringIO()):  # lm-eval's progress bars
            manager = TaskManager(include_path=folder, include_defaults=False)
            loaded = manager.load([files.names[name] for name in longer])["tasks"]
        for name in longer:
            task = loaded[files.names[name]]
            with contextlib.redirect_stderr(io.StringIO()):
                task.build_all_requests(rank=0, world_size=1)
            for request in task.instances:
                tokens = len(tokenizer(request.args[1], add_special_tokens=False).input_ids)
                if tokens > positions:
                    raise ValueError(
                        f"--zeroshot: {name} item {files.items[name][request.doc_id]} has a "
                        f"{tokens}-token answer, more than the model's {positions} positions; "
                        f"leave {name} out of --tasks"
                    )


def run(args: argparse.Namespace) -> int:
    ppl = args.ppl if args.ppl is not None else ([] if args.zeroshot else ["wikitext2", "ptb"])
    if not args.zeroshot:
        common.refuse_given(
            args, ZEROSHOT_OPTIONS, "only with --zeroshot (fewer perplexity windows: --max-windows)"
        )
    if not ppl:
        common.refuse_given(args, PERPLEXITY_OPTIONS, "only with --ppl (only --zeroshot runs)")
    protocol = args.protocol or PROTOCOL
    batch_size = args.batch_size or BATCH_SIZE
    zeroshot_batch_size = args.zeroshot_batch_size or DEFAULT_BATCH_SIZE
    tasks, limit, seed = common.task_options(args)
    common.model_config(args.model)
    common.check_json(args)
    store = common.results_store(args)
    device = parallel.join(common.device_or_default(args.device))
    rank, processes = parallel.rank_and_world()
    # Every process measures its share; process 0 alone reports and writes the records.
    show = print if rank == 0 else _silent
    dtype, reason = resolve_dtype(args.dtype, device)
    where = f"{device}, {processes} processes" if processes > 1 else device
    show(f"dtype {dtype} ({reason}) on {where}")
    if ppl:
        window = PROTOCOLS[protocol].seq_len
        common.check_positions(args.model, window, f"--protocol {protocol}'s window")
    model, tokenizer = load_any(args.model, dtype, device)
    if args.zeroshot:
        _check_answers(args.model, tokenizer, tasks, limit, seed, args.data_dir)
    recipe = of_folder(args.model) if Path(args.model).is_dir() else {"base": args.model}
    results = []
    run_settings = {"device": device, "dtype_reason": reason, "processes": processes}
    if ppl:
        show(f"{'dataset':>10} {'ppl':>10} {'95% CI':>21} {'windows':>8} {'seconds':>8}")
    for name in ppl:
        res = perplexity(
            model, tokenizer, name, protocol, args.max_windows, batch_size, args.data_dir
        )
        if rank == 0:
            rec = store.put(
                "perplexity",
                perplexity_config(recipe, name, protocol, dtype, args.max_windows),
                res.to_dict(),
                {"batch_size": batch_size, **run_settings},
                seconds=res.seconds,
                replace=args.replace,
            )
            results.append(rec.to_json())
        ci = f"[{res.ci_low:.2f}, {res.ci_high:.2f}]"
        show(f"{name:>10} {res.ppl:>10.3f} {ci:>21} {res.n_windows:>8} {res.seconds:>8.1f}")
    payload: dict[str, Any] = {"model": args.model, "results": results}
    if args.zeroshot:
        zs = zeroshot(
            model,
            tokenizer,
            tasks=tasks,
            limit=limit,
            data_dir=args.data_dir,
            batch_size=zeroshot_batch_size,
            seed=seed,
        )
        show(zs.table())
        show(f"zero-shot: {zs.seconds:.1f} s, batch {zeroshot_batch_size}, {dtype}")
        if rank == 0:
            rec = store.put(
                "zeroshot",
                zeroshot_config(recipe, tasks, limit, seed, dtype),
                zs.to_dict(),
                {"batch_size": zeroshot_batch_size, **run_settings},
                seconds=zs.seconds,
                replace=args.replace,
            )
            payload["zeroshot"] = rec.to_json()
    if rank != 0:
        return 0
    print(f"records written under {common.records_note(store)}")
    if args.json is not None:
        write_json(args.json, payload)
    return 0


def _silent(*_: Any) -> None:
    """The other processes' `print`: process 0 reports for all."""


def left_as_it_was(args: argparse.Namespace) -> str:
    json_file = f"; --json {args.json} left as it was" if args.json is not None else ""
    return f"records written before it are whole{json_file}"
