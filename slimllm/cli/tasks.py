"""`slimllm tasks DIR [--limit N --seed S]`: lm-eval task YAMLs for lm-eval's own command line."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from slimllm.cli import common
from slimllm.measure.lm_eval_tasks import GROUP_TAG, write_task_yamls
from slimllm.util.files import write_json

HELP = "write lm-eval task YAMLs for the local zero-shot data"
DESCRIPTION = (
    "Write one lm-eval task YAML per zero-shot task (and the --limit item "
    "subsets) into DIR, so that `lm_eval --model hf --model_args pretrained=MODELDIR,"
    f"trust_remote_code=True --include_path DIR --tasks {GROUP_TAG}` scores a saved model "
    "on the same items as `slimllm eval MODELDIR --zeroshot`."
)

MANIFEST = "slimllm_tasks.json"


def add_parser(sub: Any) -> None:
    t = common.command_parser(sub, "tasks", HELP, DESCRIPTION)
    t.add_argument("dir", type=Path, help="folder to write the YAMLs into (created)")
    common.add_task_options(t)
    common.add_data_dir(t)


def run(args: argparse.Namespace) -> int:
    common.check_writable(args.dir, "DIR", is_folder=True, into=True)
    tasks, limit, seed = common.task_options(args)
    files = write_task_yamls(args.dir, tasks, args.data_dir, limit, seed)
    manifest = {
        "tasks": files.names,
        "limit": limit,
        "seed": seed,
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


def left_as_it_was(args: argparse.Namespace) -> str:
    return f"the files in {args.dir} are whole; its manifest {MANIFEST} is written last"
