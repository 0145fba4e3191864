"""Command line: one module per subcommand, each with `add_parser(sub)` and `run(args)`.

`slimllm prune MODEL --ratio R --out DIR`, `slimllm eval DIR --ppl ...`, and the others listed in
`COMMANDS`; `slimllm COMMAND --help` documents every option.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from types import ModuleType

from slimllm.cli import bench as bench_cmd
from slimllm.cli import eval as eval_cmd
from slimllm.cli import export as export_cmd
from slimllm.cli import prune as prune_cmd
from slimllm.cli import rerun as rerun_cmd
from slimllm.cli import tasks as tasks_cmd
from slimllm.cli import tune as tune_cmd
from slimllm.cli.common import HelpFormatter
from slimllm.data.sources import DataError
from slimllm.method.report import summary_table

#: Subcommand name -> module. A new command is a module and one line here.
COMMANDS: dict[str, ModuleType] = {
    "prune": prune_cmd,
    "eval": eval_cmd,
    "tasks": tasks_cmd,
    "bench": bench_cmd,
    "tune": tune_cmd,
    "rerun": rerun_cmd,
    "export": export_cmd,
}

__all__ = ["COMMANDS", "build_parser", "main", "summary_table"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="slimllm",
        description="SlimLLM structured pruning (Guo et al., ICML 2025), offline-first.",
        formatter_class=HelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for module in COMMANDS.values():
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command].run(args)
    except (ValueError, FileExistsError, FileNotFoundError, RuntimeError, DataError) as err:
        print(f"slimllm {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
