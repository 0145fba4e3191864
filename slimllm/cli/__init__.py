"""Command line: one module per subcommand, each with `add_parser(sub)` and `run(args)`.

`slimllm prune MODEL --ratio R --out DIR`, `slimllm eval DIR --ppl ...`, and the others listed in
`COMMANDS`; `slimllm COMMAND --help` documents every option.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from types import ModuleType


def _interrupted_while_loading(signum: int, frame: object) -> None:
    print("slimllm: interrupted while loading; nothing was written", file=sys.stderr)
    raise SystemExit(130)


# Ctrl-C while torch and transformers load (seconds) ends like Ctrl-C during a command: one line
# and exit 130, not a traceback from deep inside an import. The handler lives for these imports
# only (hence the imports below the code, E402), and only where Python allows one (main thread).
_previous_handler = signal.getsignal(signal.SIGINT)
_ON_MAIN_THREAD = threading.current_thread() is threading.main_thread()
_SWAP = _ON_MAIN_THREAD and _previous_handler is not None
if _SWAP:
    signal.signal(signal.SIGINT, _interrupted_while_loading)

from slimllm.cli import bench as bench_cmd
from slimllm.cli import eval as eval_cmd
from slimllm.cli import export as export_cmd
from slimllm.cli import prune as prune_cmd
from slimllm.cli import rerun as rerun_cmd
from slimllm.cli import tasks as tasks_cmd
from slimllm.cli import tune as tune_cmd
from slimllm.cli.common import HelpFormatter, Parser
from slimllm.method.report import summary_table

if _SWAP:
    signal.signal(signal.SIGINT, _previous_handler)

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
    parser = Parser(
        prog="slimllm",
        description="SlimLLM structured pruning (Guo et al., ICML 2025), offline-first.",
        formatter_class=HelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for module in COMMANDS.values():
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command; exit code 2 and one line on stderr for any bad input (a bad argument, a
    file that is not what it should be, a place that cannot be written), 130 for Ctrl-C."""
    args = build_parser().parse_args(argv)
    command = COMMANDS[args.command]
    try:
        return command.run(args)
    except KeyboardInterrupt:
        print(
            f"slimllm {args.command}: interrupted; {command.left_as_it_was(args)}", file=sys.stderr
        )
        return 130
    # ValueError covers DataError, StoreError and JSON errors; OSError the files and folders.
    except (ValueError, OSError, RuntimeError) as err:
        text = " ".join(str(err).split()) or type(err).__name__
        print(f"slimllm {args.command}: error: {text}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
