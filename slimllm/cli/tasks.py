"""`slimllm tasks DIR [--limit N --seed S]`: lm-eval task YAMLs for lm-eval's own command line."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from slimllm.cli.common import HelpFormatter, add_data_dir, positive_int
from slimllm.measure.lm_eval_tasks import GROUP_TAG, SEVEN_TASKS, write_task_yamls
from slimllm.util.files import write_json

MANIFEST = "slimllm_tasks.json"


def task_list(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in SEVEN_TASKS]
    if bad or not names:
        raise argparse.ArgumentTypeError(
            f"unknown task(s) {', '.join(bad) or repr(text)}; choose from {', '.join(SEVEN_TASKS)}"
        )
    return names


def add_task_options(parser: argparse.ArgumentParser) -> None:
    """--tasks, --limit, --seed: shared with `slimllm eval --zeroshot`."""
    parser.add_argument(
        "--tasks",
        type=task_list,
        default=list(SEVEN_TASKS),
        help=f"comma-separated zero-shot tasks (default: all of {', '.join(SEVEN_TASKS)})",
    )
    parser.add_argument(
        "--limit",
        type=positive_int,
        default=None,
        help="a seeded subset of this many items per task, the same for every model "
        "(default: every item)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the --limit subset (default: 0)"
    )


def add_parser(sub: Any) -> None:
    t = sub.add_parser(
        "tasks",
        help="write lm-eval task YAMLs for the local zero-shot data",
        formatter_class=HelpFormatter,
        description="Write one lm-eval task YAML per zero-shot task (and the --limit item "
        "subsets) into DIR, so that `lm_eval --model hf --model_args pretrained=MODELDIR,"
        f"trust_remote_code=True --include_path DIR --tasks {GROUP_TAG}` scores a saved model "
        "on the same items as `slimllm eval MODELDIR --zeroshot`.",
    )
    t.add_argument("dir", type=Path, help="folder to write the YAMLs into (created)")
    add_task_options(t)
    add_data_dir(t)


def run(args: argparse.Namespace) -> int:
    files = write_task_yamls(args.dir, args.tasks, args.data_dir, args.limit, args.seed)
    manifest = {
        "tasks": files.names,
        "limit": args.limit,
        "seed": args.seed,
        "items": files.items,
        "sizes": files.sizes,
        "sources": files.sources,
    }
    write_json(files.folder / MANIFEST, manifest)
    for name, lm_name in files.names.items():
        print(f"{lm_name:>22}: {len(files.items[name])} of {files.sizes[name]} items")
    print(
        "run: lm_eval --model hf --model_args pretrained=MODELDIR,trust_remote_code=True "
        f"--include_path {files.folder} --tasks {','.join(files.names.values())} --num_fewshot 0"
    )
    return 0
